package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/firstrender/firstrender/cmd/internal/cli"
	"github.com/firstrender/firstrender/httpcache/admin"
)

type lsCmd struct {
	conn  connFlags
	q     admin.ListQuery
	limit int
	all   bool
	json  bool
}

const lsUsage = `usage: admin ls [flags]

Lists cached entries in key order, filtered on the server. Without --all it
prints up to --limit entries and, when more may match, the cursor to go on
with (--after). --all pages through everything (JSON lines with --json).`

func parseLs(args []string, e env) (runner, error) {
	c := &lsCmd{conn: defaultConn()}
	fs := newFlagSet("ls", lsUsage, e)
	fs.Var(cli.String(&c.q.Prefix), "prefix", "only keys starting with `P` (normalized keys: https://host/path)")
	fs.Var(cli.String(&c.q.Contains), "contains", "only keys containing `S`")
	fs.Var(cli.String(&c.q.Tag), "tag", "only entries tagged `T`")
	fs.Var(cli.String(&c.q.Status), "status", "only this status: a class `2xx`..5xx or a code (404)")
	fs.Var(cli.Bool(&c.q.Findings), "findings", "only entries with lint findings")
	fs.Var(cli.Bool(&c.q.Disabled), "disabled", "only entries the join guard (or an operator) disabled")
	fs.Var(cli.Int(&c.limit, 1), "limit", fmt.Sprintf("at most `N` entries (1..%d; default %d, with --all the page size, default %d)", admin.MaxLimit, admin.DefaultLimit, admin.MaxLimit))
	fs.Var(cli.String(&c.q.After), "after", "start after this `cursor` (the one a previous ls printed)")
	fs.Var(cli.Bool(&c.all), "all", "page through every matching entry")
	fs.Var(cli.Bool(&c.json), "json", "print JSON: the page as one document (JSON lines of entries with --all)")
	c.conn.add(fs)
	if err := parseFlags(fs, args, e); err != nil {
		return nil, err
	}
	if len(fs.Args()) > 0 {
		return nil, usagef("ls: unexpected argument %q (filters are flags: --prefix, --contains, --tag, ...)", fs.Args()[0])
	}
	// The server checks the rest (prefix length, status form); check the
	// status here too, so a typo is a usage error before connecting.
	if _, err := admin.ParseListQuery(c.q.Values()); err != nil {
		return nil, usagef("ls: %s", apiMessage(err))
	}
	if c.limit > admin.MaxLimit {
		return nil, usagef("ls: --limit %d: at most %d", c.limit, admin.MaxLimit)
	}
	if c.limit == 0 {
		c.limit = admin.DefaultLimit
		if c.all {
			c.limit = admin.MaxLimit
		}
	}
	return c, nil
}

func (c *lsCmd) run(ctx context.Context, e env) error {
	s, err := c.conn.connect(ctx, e, readFile)
	if err != nil {
		return err
	}
	defer s.Close()
	if c.all {
		return c.runAll(ctx, e, s)
	}
	var out admin.Page
	q := c.q
	for first := true; ; first = false {
		q.Limit = c.limit - len(out.Items)
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		p, err := s.client.List(cctx, q)
		cancel()
		if err != nil {
			return err
		}
		if first {
			out.Prev = p.Prev
		}
		out.Items = append(out.Items, p.Items...)
		out.Scanned += p.Scanned
		out.ApproxTotal, out.Done, out.Next = p.ApproxTotal, p.Done, p.Next
		// A filtered page may stop at the scan budget with fewer matches:
		// go on until the limit is met or nothing further can match.
		if p.Done || p.Next == "" || len(out.Items) >= c.limit {
			break
		}
		q.After = p.Next
	}
	if out.Items == nil {
		out.Items = []admin.Entry{}
	}
	if c.json {
		return writeJSON(e.stdout, out)
	}
	if len(out.Items) == 0 {
		fmt.Fprintf(e.stderr, "No entries (scanned %d of ~%d).\n", out.Scanned, out.ApproxTotal)
		return nil
	}
	tw := newTable(e.stdout)
	entryHeader(tw)
	now := e.clock()
	for _, en := range out.Items {
		entryRow(tw, en, now)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if !out.Done && out.Next != "" {
		fmt.Fprintf(e.stderr, "%d shown of ~%d; more may match: admin ls --after %s (same filters), or --all\n", len(out.Items), out.ApproxTotal, shellQuote(out.Next))
	}
	return nil
}

// runAll pages through everything q selects; human output is flushed
// page by page, so memory stays flat over millions of entries.
func (c *lsCmd) runAll(ctx context.Context, e env, s *session) error {
	q := c.q
	q.Limit = c.limit
	now := e.clock()
	var tw *tabwriter.Writer
	n := 0
	for {
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		p, err := s.client.List(cctx, q)
		cancel()
		if err != nil {
			return err
		}
		if !c.json && len(p.Items) > 0 {
			tw = newTable(e.stdout)
			if n == 0 {
				entryHeader(tw)
			}
		}
		for _, en := range p.Items {
			if c.json {
				if err := writeJSONLine(e.stdout, en); err != nil {
					return err
				}
			} else {
				entryRow(tw, en, now)
			}
		}
		n += len(p.Items)
		if tw != nil {
			if err := tw.Flush(); err != nil {
				return err
			}
			tw = nil
		}
		if p.Done || p.Next == "" {
			break
		}
		q.After = p.Next
	}
	if n == 0 && !c.json {
		fmt.Fprintln(e.stderr, "No entries.")
	}
	return nil
}

func entryHeader(w io.Writer) {
	fmt.Fprintln(w, "KEY\tVARIANT\tSTATUS\tAGE\tTTL\tSIZE\tHITS\tSTATE\tFINDINGS\tTAGS")
}

func entryRow(w io.Writer, en admin.Entry, now time.Time) {
	hits := "-"
	if en.Hits >= 0 {
		hits = strconv.FormatInt(en.Hits, 10)
	}
	ttl := "-"
	if en.Expires != nil {
		if d := en.Expires.Sub(now); d > 0 {
			ttl = humanDuration(d)
		} else {
			ttl = "expired"
		}
	}
	status := strconv.Itoa(en.Status)
	if en.Corrupt {
		status, ttl = "-", "-"
	}
	fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
		clean(en.Key), orDash(clean(en.Variant)), status, humanDuration(time.Duration(en.AgeS)*time.Second), ttl,
		humanBytes(en.Size), hits, state(en), orDash(clean(strings.Join(en.Findings, ","))), orDash(clean(strings.Join(en.Tags, ","))))
}

// state is the one-word state of an entry.
func state(en admin.Entry) string {
	switch {
	case en.Corrupt:
		return "corrupt"
	case en.Disabled != "":
		return "disabled"
	case en.Stale:
		return "stale"
	}
	return "fresh"
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=+,%@", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// apiMessage is an error's text without the "admin: code:" prefix of
// *admin.Error.
func apiMessage(err error) string {
	if ae, ok := err.(*admin.Error); ok {
		return ae.Message
	}
	return err.Error()
}
