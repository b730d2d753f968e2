// Package admin is firstrender's operator surface: the admin HTTP API served
// on the admin listener (never the public one), and its Go client, used by
// cmd/admin, the terminal UI and the cluster mode.
//
// The wire types in this package (Entry, Page, PurgeRequest, Stats, Event,
// ...) are the API's own and documented in docs/admin-api.md.
//
// # Server
//
// NewHandler serves /admin/v1/ and the Varnish-style PURGE method behind a
// bearer token (LoadOrCreateToken keeps one in "<db>.admin-token"). It reads
// through a Reader, which *store.Store satisfies whether opened read-write by
// the server or read-only offline, and writes through a Purger: the proxy
// implements it so that a purge also forgets what the proxy remembers, and
// StorePurger implements it over the store alone. Stats come from a
// StatsSource, events from an Events hub the server publishes to.
//
// # Client
//
// NewClient talks to the API over TCP or a unix socket ("unix:///path"),
// with typed methods, cursor iteration (Client.Entries) and an event stream
// reader (Client.Events). API errors are *Error, unreachable servers
// *ConnError.
//
// The package imports the store and the leaf token package phxtoken, not the
// caching proxy.
package admin
