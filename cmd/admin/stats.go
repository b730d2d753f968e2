package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/firstrender/firstrender/cmd/internal/cli"
	"github.com/firstrender/firstrender/httpcache/admin"
)

type statsCmd struct {
	conn connFlags
	json bool
}

const statsUsage = `usage: admin stats [flags]

Prints the server's figures: entries, bytes, file size, requests, hits,
misses, the hit ratio since start, origin latency, open live sockets. Read
offline from the file, only the store's figures are known.`

func parseStats(args []string, e env) (runner, error) {
	c := &statsCmd{conn: defaultConn()}
	fs := newFlagSet("stats", statsUsage, e)
	fs.Var(cli.Bool(&c.json), "json", "print the figures as one JSON document")
	c.conn.add(fs)
	if err := parseFlags(fs, args, e); err != nil {
		return nil, err
	}
	if len(fs.Args()) > 0 {
		return nil, usagef("stats: unexpected argument %q", fs.Args()[0])
	}
	return c, nil
}

func (c *statsCmd) run(ctx context.Context, e env) error {
	s, err := c.conn.connect(ctx, e, readFile)
	if err != nil {
		return err
	}
	defer s.Close()
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	st, err := s.client.Stats(cctx)
	cancel()
	if err != nil {
		return err
	}
	if c.json {
		return writeJSON(e.stdout, st)
	}
	return writeStats(e.stdout, st, s)
}

func writeStats(w io.Writer, st admin.Stats, s *session) error {
	tw := newTable(w)
	row := func(k, f string, a ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(f, a...)) }
	if s.offline {
		row("SOURCE", "%s", s.where)
	} else {
		mode := "read-write"
		if st.ReadOnly {
			mode = "read-only"
		}
		row("SOURCE", "%s (%s)", s.where, mode)
	}
	if st.Instance != "" {
		row("INSTANCE", "%s", clean(st.Instance))
	}
	row("VERSION", "%s", clean(st.Version))
	if !s.offline {
		row("UPTIME", "%s (since %s)", humanDuration(time.Duration(st.UptimeS)*time.Second), st.StartedAt.UTC().Format(time.RFC3339))
	}
	row("STORE", "%s", clean(st.StorePath))
	maxSize := "unbounded"
	if st.MaxSize > 0 {
		maxSize = humanBytes(st.MaxSize)
	}
	row("ENTRIES", "%d", st.Entries)
	row("BYTES", "%s of records (max %s), file %s", humanBytes(st.Bytes), maxSize, humanBytes(st.FileSize))
	if !s.offline {
		row("REQUESTS", "%d", st.Requests)
		row("HITS", "%d", st.Hits)
		row("MISSES", "%d", st.Misses)
		row("HIT RATIO", "%.1f%%", 100*st.HitRatio)
		row("STALE", "%d served stale, %d revalidated", st.Stale, st.Revalidated)
		row("PASS", "%d", st.Pass)
		row("ERRORS", "%d", st.Errors)
		row("ORIGIN", "%d requests, mean latency %s", st.OriginRequests, time.Duration(st.OriginLatencyS*float64(time.Second)).Round(time.Microsecond))
		row("OPEN SOCKETS", "%d", st.OpenSockets)
		row("PURGED", "%d", st.Purged)
	}
	row("EVICTIONS", "%d", st.Evictions)
	row("EXPIRED", "%d", st.Expired)
	row("DISABLED", "%d", st.Disabled)
	row("STORE ERRORS", "%d", st.StoreErrors)
	return tw.Flush()
}

type eventsCmd struct {
	conn  connFlags
	json  bool
	stats bool
	count int
}

const eventsUsage = `usage: admin events [flags]

Tails the server's event stream: stores, purges, evictions, disables and
enables, one line each (JSON lines with --json), until interrupted, --count
events were printed, or the server ends the stream. --stats adds the figures
sample the server sends once a second. It needs a running server.`

func parseEvents(args []string, e env) (runner, error) {
	c := &eventsCmd{conn: defaultConn()}
	fs := newFlagSet("events", eventsUsage, e)
	fs.Var(cli.Bool(&c.json), "json", "print each event as one line of JSON")
	fs.Var(cli.Bool(&c.stats), "stats", "include the once-a-second figures samples")
	fs.Var(cli.Int(&c.count, 0), "count", "stop after `N` events (0: until interrupted)")
	c.conn.add(fs)
	if err := parseFlags(fs, args, e); err != nil {
		return nil, err
	}
	if len(fs.Args()) > 0 {
		return nil, usagef("events: unexpected argument %q", fs.Args()[0])
	}
	return c, nil
}

func (c *eventsCmd) run(ctx context.Context, e env) error {
	s, err := c.conn.connect(ctx, e, onlineOnly)
	if err != nil {
		return err
	}
	defer s.Close()
	stream, err := s.client.Events(ctx)
	if err != nil {
		return err
	}
	defer stream.Close()
	for n := 0; c.count == 0 || n < c.count; {
		ev, err := stream.Next()
		if err != nil {
			if ctx.Err() != nil {
				return nil // interrupted: the normal end of a tail
			}
			if errors.Is(err, io.EOF) {
				return failf("the server ended the event stream (shutting down?)")
			}
			return err
		}
		if ev.Type == "stats" && !c.stats {
			continue
		}
		n++
		if c.json {
			if err := writeJSONLine(e.stdout, ev); err != nil {
				return err
			}
		} else {
			fmt.Fprintln(e.stdout, eventLine(ev))
		}
		if ev.Type == "dropped" {
			return failf("the server dropped this reader: it fell behind (%s)", ev.Reason)
		}
	}
	return nil
}

// eventLine is the human form of one event: time, type, then what it is
// about.
func eventLine(ev admin.Event) string {
	parts := []string{ev.Time.UTC().Format("15:04:05.000"), fmt.Sprintf("%-7s", ev.Type)}
	switch {
	case ev.Purge != nil:
		p := ev.Purge
		parts = append(parts, fmt.Sprintf("%s %s count=%d client=%s", p.ID, describePurge(p.Selector), p.Count, clean(p.Client)))
		if p.Selector.Soft {
			parts = append(parts, "soft")
		}
		if p.Error != "" {
			parts = append(parts, "error="+clean(p.Error))
		}
	case ev.Stats != nil:
		st := ev.Stats
		parts = append(parts, fmt.Sprintf("entries=%d bytes=%s requests=%d hits=%d misses=%d hit-ratio=%.1f%% sockets=%d",
			st.Entries, humanBytes(st.Bytes), st.Requests, st.Hits, st.Misses, 100*st.HitRatio, st.OpenSockets))
	default:
		if ev.Key != "" {
			parts = append(parts, clean(ev.Key))
		}
		if ev.Variant != "" {
			parts = append(parts, "variant="+clean(ev.Variant))
		}
	}
	if ev.Reason != "" && ev.Purge == nil {
		parts = append(parts, "reason="+clean(ev.Reason))
	}
	return strings.Join(parts, "  ")
}
