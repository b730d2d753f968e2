package main

import (
	"bufio"
	"context"
	"fmt"
	"strings"

	"github.com/firstrender/firstrender/cmd/internal/cli"
	"github.com/firstrender/firstrender/httpcache/admin"
)

type purgeCmd struct {
	conn connFlags
	req  admin.PurgeRequest
	json bool
	wait bool // ?wait=applied
}

const purgeUsage = `usage: admin purge [flags] (--key K... | --url URL | --prefix P | --tag T | --all)

Purges what one selector names and returns after the purge committed (the
API acknowledges nothing earlier). --key takes a normalized key (as ls
prints it; all its variants), and may be repeated; --url a page URL,
normalized by the server exactly like a request. --all needs --confirm all,
or the word typed at the prompt when run in a terminal. --dry-run only
counts; --soft marks the entries stale instead (the next request
revalidates; others may get the stale copy meanwhile).

On a cluster node the purge is cluster-wide by default (--scope local
keeps it to this node): it returns once the cluster's log acknowledged it,
with its sequence; --wait also waits until every live node applied it and
prints each node. If the log does not answer in time the purge was applied
on this node only (queued for the others) and the command exits 1.

Without a server, the database is purged directly, but only when no process
holds it; a running server must do it (its proxy forgets what it remembers
about the purged pages).`

// multiValue is a flag that may be repeated (--key a --key b).
type multiValue struct{ p *[]string }

func (m multiValue) String() string {
	if m.p == nil {
		return ""
	}
	return strings.Join(*m.p, " ")
}
func (m multiValue) Set(s string) error {
	if s == "" {
		return fmt.Errorf("want a key")
	}
	*m.p = append(*m.p, s)
	return nil
}

func parsePurge(args []string, e env) (runner, error) {
	c := &purgeCmd{conn: defaultConn()}
	var keys []string
	fs := newFlagSet("purge", purgeUsage, e)
	fs.Var(multiValue{&keys}, "key", "purge every variant of this normalized `key` (repeat for several)")
	fs.Var(cli.String(&c.req.URL), "url", "purge the page at this `URL` (normalized like a request)")
	fs.Var(cli.String(&c.req.Prefix), "prefix", "purge every key starting with `P`")
	fs.Var(cli.String(&c.req.Tag), "tag", "purge every entry tagged `T`")
	fs.Var(cli.Bool(&c.req.All), "all", "purge everything (needs --confirm all, or typing it in a terminal)")
	fs.Var(cli.String(&c.req.Confirm), "confirm", "`all` to confirm --all without a prompt")
	fs.Var(cli.Bool(&c.req.DryRun), "dry-run", "only count what would be purged")
	fs.Var(cli.Bool(&c.req.Soft), "soft", "mark stale instead of deleting (revalidated on the next request)")
	fs.Var(cli.Enum(&c.req.Scope, "cluster", "local"), "scope", "on a cluster node: `scope` cluster (every node; the default there) or local (this node only)")
	fs.Var(cli.Bool(&c.wait), "wait", "on a cluster node: also wait until every live node applied the purge, and print each node")
	fs.Var(cli.Bool(&c.json), "json", "print the result as JSON")
	c.conn.add(fs)
	if err := parseFlags(fs, args, e); err != nil {
		return nil, err
	}
	if c.wait && c.req.Scope == "local" {
		return nil, usagef("purge: --wait is for cluster purges, not --scope local")
	}
	if len(fs.Args()) > 0 {
		return nil, usagef("purge: unexpected argument %q: name what to purge with --key, --url, --prefix, --tag or --all", fs.Args()[0])
	}
	switch len(keys) {
	case 0:
	case 1:
		c.req.Key = keys[0]
	default:
		c.req.Keys = keys
	}
	n := 0
	for _, set := range []bool{c.req.Key != "" || len(c.req.Keys) > 0, c.req.URL != "", c.req.Prefix != "", c.req.Tag != "", c.req.All} {
		if set {
			n++
		}
	}
	switch {
	case n == 0:
		return nil, usagef("purge: name what to purge: --key K, --url URL, --prefix P, --tag T or --all")
	case n > 1:
		return nil, usagef("purge: give one selector (--key, --url, --prefix, --tag or --all), not %d", n)
	case c.req.Confirm != "" && !c.req.All:
		return nil, usagef("purge: --confirm is only for --all")
	case c.req.All && c.req.Confirm != "" && c.req.Confirm != "all":
		return nil, usagef("purge: --confirm %q: type --confirm all", c.req.Confirm)
	case c.req.All && c.req.Confirm == "" && !c.req.DryRun && !e.terminal():
		return nil, usagef("purge: --all removes every entry: add --confirm all (or run it in a terminal to type the confirmation)")
	case c.req.Prefix != "" && len(c.req.Prefix) > admin.MaxPrefix:
		return nil, usagef("purge: --prefix is %d bytes, at most %d", len(c.req.Prefix), admin.MaxPrefix)
	}
	if c.req.All && c.req.DryRun {
		c.req.Confirm = "all" // counting needs no confirmation
	}
	return c, nil
}

func (c *purgeCmd) run(ctx context.Context, e env) error {
	acc := writeFile
	if c.req.DryRun {
		acc = readFile
	}
	s, err := c.conn.connect(ctx, e, acc)
	if err != nil {
		return err
	}
	defer s.Close()
	if c.req.All && c.req.Confirm == "" {
		if err := c.confirmAll(ctx, e, s); err != nil {
			return err
		}
	}
	if s.offline && (c.wait || c.req.Scope == "cluster") {
		return failf("purge: --scope cluster and --wait need the running server (a cluster node); offline purges are local")
	}
	var res admin.PurgeResult
	if c.wait && !c.req.DryRun {
		res, err = s.client.PurgeWait(ctx, c.req, 0)
	} else {
		res, err = s.client.Purge(ctx, c.req)
	}
	if err != nil {
		return err
	}
	if c.json {
		return writeJSON(e.stdout, res)
	}
	what := describePurge(c.req)
	switch {
	case res.DryRun:
		fmt.Fprintf(e.stdout, "would purge %d %s (%s; dry run, nothing changed)\n", res.Count, entries(res.Count), what)
	case res.Soft:
		fmt.Fprintf(e.stdout, "marked %d %s stale (%s; soft purge %s)\n", res.Count, entries(res.Count), what, res.ID)
	default:
		fmt.Fprintf(e.stdout, "purged %d %s (%s; purge %s)\n", res.Count, entries(res.Count), what, res.ID)
	}
	if res.Sequence > 0 {
		fmt.Fprintf(e.stdout, "cluster-durable at stream sequence %d\n", res.Sequence)
	}
	if len(res.Nodes) > 0 {
		tw := newTable(e.stdout)
		fmt.Fprintln(tw, "NODE\tAPPLIED\tSEQUENCE\tERROR")
		for _, n := range res.Nodes {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", clean(n.Node), yesNo(n.Applied), n.Sequence, clean(n.Error))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if s.offline && !res.DryRun {
		fmt.Fprintf(e.stderr, "admin: purged offline in %s; a server started later will not serve them\n", c.conn.db)
	}
	return nil
}

// confirmAll asks for the typed word "all" on the terminal, after
// showing what it would remove.
func (c *purgeCmd) confirmAll(ctx context.Context, e env, s *session) error {
	dry := c.req
	dry.DryRun, dry.Confirm = true, "all"
	res, err := s.client.Purge(ctx, dry)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "This purges ALL %d %s of %s. Type 'all' to confirm: ", res.Count, entries(res.Count), s.where)
	line, _ := bufio.NewReader(e.stdin).ReadString('\n')
	if strings.TrimSpace(line) != "all" {
		fmt.Fprintln(e.stderr)
		return failf("purge --all not confirmed: nothing purged")
	}
	c.req.Confirm = "all"
	return nil
}

func describePurge(r admin.PurgeRequest) string {
	switch {
	case r.Key != "":
		return "key " + clean(r.Key) + ", all variants"
	case len(r.Keys) > 0:
		return fmt.Sprintf("%d keys, all variants", len(r.Keys))
	case r.URL != "":
		return "url " + clean(r.URL)
	case r.Prefix != "":
		return "prefix " + clean(r.Prefix)
	case r.Tag != "":
		return "tag " + clean(r.Tag)
	}
	return "everything"
}

func entries(n int) string {
	if n == 1 {
		return "entry"
	}
	return "entries"
}
