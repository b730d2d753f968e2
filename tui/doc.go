// Package tui is firstrender's operator terminal UI: a bubbletea program
// that browses, inspects, decodes and purges the page cache, and shows the
// hit ratio and request rate as they move.
//
// It reads everything through a [Source], which the admin API's Go client
// (a running server) and the offline read-only store reader both satisfy.
// [Run] starts the program; [New] builds the model for callers that run
// their own tea.Program.
//
// # Screens
//
// The entry list is the home screen: it pages through millions of entries
// by cursor, keeping only a few pages resident (see [Options.MaxPages]).
// enter opens an entry's detail (overview, headers, body, tokens, findings),
// enter on a token or ":decode" opens the decode panel, d / space /
// ":purge …" open the purge dialog (never in read-only mode), ? the help,
// ":stats" the counters and ":cluster" the cluster's nodes (when the Source
// is a [ClusterSource]). A Source that is also an [EventSource] updates the
// header and the visible rows live from the server's event stream. Every screen shares the header (instance, uptime,
// hit ratio over 10/100/1000 s, requests/s, entries, bytes, sockets).
//
// # Concurrency
//
// Update never waits on the network: every Source call runs in a tea.Cmd
// with its own timeout and carries a request id; a reply whose id is no
// longer the one the model waits for (the user left the screen, or asked
// again) is dropped. A Source must be safe for concurrent use, since calls
// of different kinds may overlap. The event stream is read on a goroutine
// of its own into a bounded buffer and reaches Update as messages; it ends
// when the program quits or Run's context ends.
//
// # Output safety
//
// Keys, headers, bodies and terms are outside data: every string from the
// Source is stripped of control characters and bidi overrides before it is
// drawn, so a stored page cannot move the cursor or recolour the terminal.
package tui
