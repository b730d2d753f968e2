package main

import (
	"context"

	"github.com/firstrender/firstrender/cmd/internal/cli"
	"github.com/firstrender/firstrender/tui"
)

type tuiCmd struct {
	conn     connFlags
	readOnly bool
	mouse    bool
}

const tuiUsage = `usage: admin [--read-only] [--mouse] [connection flags]

Opens the terminal UI on the running server, or, when none answers, on the
database file read-only. ? shows every key; q quits.`

func parseTUI(args []string, e env) (runner, error) {
	c := &tuiCmd{conn: defaultConn()}
	fs := newFlagSet("admin", tuiUsage, e)
	fs.Var(cli.Bool(&c.readOnly), "read-only", "no purge keys or commands")
	fs.Var(cli.Bool(&c.mouse), "mouse", "turn on mouse reporting (the wheel scrolls)")
	c.conn.add(fs)
	if err := parseFlags(fs, args, e); err != nil {
		return nil, err
	}
	if len(fs.Args()) > 0 {
		return nil, usagef("unexpected argument %q (subcommands come first: admin ls ...)", fs.Args()[0])
	}
	return c, nil
}

func (c *tuiCmd) run(ctx context.Context, e env) error {
	if !e.terminal() {
		return usagef("the terminal UI needs a terminal on stdin and stdout; give a subcommand for scripts (admin --help)")
	}
	s, err := c.conn.connect(ctx, e, readFile)
	if err != nil {
		return err
	}
	defer s.Close()
	return tui.Run(ctx, s.client, tui.Options{ReadOnly: c.readOnly, Mouse: c.mouse, Instance: s.where, Input: e.stdin, Output: e.stdout})
}
