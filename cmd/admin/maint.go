package main

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"

	"github.com/firstrender/firstrender/cmd/internal/cli"
	"github.com/firstrender/firstrender/httpcache/admin"
	"github.com/firstrender/firstrender/store"
)

type checkCmd struct {
	conn connFlags
	json bool
}

const checkUsage = `usage: admin check [flags]

Runs the store's integrity check (every record's checksums; seconds on a
large store): by the server while it runs, else on the file, read-only.
Exits 1 when it finds damaged records (purge them with admin purge --key).`

func parseCheck(args []string, e env) (runner, error) {
	c := &checkCmd{conn: defaultConn()}
	fs := newFlagSet("check", checkUsage, e)
	fs.Var(cli.Bool(&c.json), "json", "print the result as one JSON document")
	c.conn.add(fs)
	if err := parseFlags(fs, args, e); err != nil {
		return nil, err
	}
	if len(fs.Args()) > 0 {
		return nil, usagef("check: unexpected argument %q", fs.Args()[0])
	}
	return c, nil
}

func (c *checkCmd) run(ctx context.Context, e env) error {
	s, err := c.conn.connect(ctx, e, readFile)
	if err != nil {
		return err
	}
	defer s.Close()
	res, err := s.client.Check(ctx)
	if err != nil {
		return err
	}
	if c.json {
		if err := writeJSON(e.stdout, res); err != nil {
			return err
		}
	} else {
		for _, p := range res.Errors {
			fmt.Fprintln(e.stdout, "problem:", clean(p))
		}
		verdict := "ok"
		if !res.OK {
			verdict = "DAMAGED"
		}
		fmt.Fprintf(e.stdout, "%s: %d records checked, %d corrupt, %d problems (%s)\n", verdict, res.Records, res.Corrupt, len(res.Errors), s.where)
	}
	if !res.OK {
		return &exitError{code: exitFail, err: fmt.Errorf("check: %d problems found", len(res.Errors))}
	}
	return nil
}

type compactCmd struct {
	conn connFlags
	json bool
}

const compactUsage = `usage: admin compact [flags]

Compacts the database file (bbolt never shrinks it by itself): the running
server does it when its admin API offers it; without a server, the file is
compacted in place when no process holds it (a copy is written beside it and
renamed over it; the original is untouched if anything fails).`

func parseCompact(args []string, e env) (runner, error) {
	c := &compactCmd{conn: defaultConn()}
	fs := newFlagSet("compact", compactUsage, e)
	fs.Var(cli.Bool(&c.json), "json", "print the result as one JSON document")
	c.conn.add(fs)
	if err := parseFlags(fs, args, e); err != nil {
		return nil, err
	}
	if len(fs.Args()) > 0 {
		return nil, usagef("compact: unexpected argument %q", fs.Args()[0])
	}
	return c, nil
}

func (c *compactCmd) run(ctx context.Context, e env) error {
	var res admin.CompactResult
	where, tried := "", ""
	if !c.conn.offline {
		s, ce, tok, err := c.conn.dial(ctx, e)
		switch {
		case err != nil:
			return err
		case ce != nil && c.conn.explicitAdmin():
			return &exitError{code: exitConn, err: c.conn.connFailure(ce, tok)}
		case ce != nil:
			tried = fmt.Sprintf("no admin API answered at %s (%v), and ", ce.Where, ce.Err)
		default:
			defer s.Close()
			res, err = s.client.Compact(ctx)
			var ae *admin.Error
			if errors.As(err, &ae) && ae.Code == "unavailable" {
				return failf("the server at %s cannot compact its store (%s): stop it, then run admin compact (offline)", s.where, ae.Message)
			}
			if err != nil {
				return err
			}
			where = s.where
		}
	}
	if where == "" {
		if _, err := os.Stat(c.conn.db); errors.Is(err, iofs.ErrNotExist) {
			return &exitError{code: exitConn, err: fmt.Errorf("%sthere is no database at %s (--db)", tried, c.conn.db)}
		}
		var err error
		res, err = admin.CompactFile(ctx, c.conn.db, store.Options{Timeout: c.conn.lockWait})
		if errors.Is(err, store.ErrLocked) {
			return &exitError{code: exitConn, err: fmt.Errorf("%s%s is locked by a running server (waited %v): it must compact it (connect with --admin ADDRESS and --token-file), or be stopped first", tried, c.conn.db, c.conn.lockWait)}
		}
		if err != nil {
			return err
		}
		where = "file " + c.conn.db + " (offline)"
		if tried != "" {
			fmt.Fprintf(e.stderr, "admin: no server at %s: compacted %s offline\n", c.conn.baseURL(), c.conn.db)
		}
	}
	if c.json {
		return writeJSON(e.stdout, res)
	}
	fmt.Fprintf(e.stdout, "compacted %s: %s -> %s\n", where, humanBytes(res.BeforeBytes), humanBytes(res.AfterBytes))
	return nil
}

type enableCmd struct {
	conn    connFlags
	key     string
	variant string
	json    bool
}

const enableUsage = `usage: admin enable [flags] KEY

Serves again a variant of KEY that the join guard (LiveView joins of the
cached page kept failing) or an operator disabled.`

func parseEnable(args []string, e env) (runner, error) {
	c := &enableCmd{conn: defaultConn()}
	fs := newFlagSet("enable", enableUsage, e)
	fs.Var(cli.String(&c.variant), "variant", "the `variant` (as ls prints it; default: the default variant)")
	fs.Var(cli.Bool(&c.json), "json", "print the result as JSON")
	c.conn.add(fs)
	if err := parseFlags(fs, args, e); err != nil {
		return nil, err
	}
	switch rest := fs.Args(); len(rest) {
	case 1:
		c.key = rest[0]
	case 0:
		return nil, usagef("enable: want a KEY (as admin ls --disabled prints it)")
	default:
		return nil, usagef("enable: want one KEY, got %d arguments (flags go before the key)", len(rest))
	}
	return c, nil
}

func (c *enableCmd) run(ctx context.Context, e env) error {
	s, err := c.conn.connect(ctx, e, writeFile)
	if err != nil {
		return err
	}
	defer s.Close()
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	err = s.client.Enable(cctx, c.key, c.variant)
	cancel()
	if err != nil {
		return notFound(err, c.key, c.variant)
	}
	if c.json {
		return writeJSON(e.stdout, admin.EnableRequest{Key: c.key, Variant: c.variant})
	}
	fmt.Fprintf(e.stdout, "enabled %s variant %s: it is served again\n", clean(c.key), orDefault(clean(c.variant)))
	return nil
}
