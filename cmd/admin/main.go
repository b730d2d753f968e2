// Command admin is firstrender's operator tool. For now it has one
// subcommand, decode, which prints a Phoenix token (data-phx-session,
// data-phx-static, Phoenix.Token) in readable form; later subcommands (the
// terminal UI, purge) plug into the same table.
//
// Every subcommand's flags follow cmd/internal/cli: --flag with a
// FIRSTRENDER_* environment variable, secrets from --name-file or the
// environment (never needed on the command line, where ps shows them).
//
// Usage:
//
//	admin decode [flags] [TOKEN]     # TOKEN or standard input
//
// Exit codes: 0 success, 1 the command failed (bad token, unreadable
// file), 2 usage error.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/firstrender/firstrender/cmd/internal/cli"
)

// command is one subcommand: parse turns its arguments into a runnable
// configuration, so flag errors surface before anything runs.
type command struct {
	name    string
	summary string
	parse   func(args []string, env env) (runner, error)
}

// runner is a parsed subcommand.
type runner interface {
	run(ctx context.Context, env env) error
}

// env is the process environment a command sees; tests replace it.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	lookupEnv      func(string) (string, bool)
}

// parseFlags parses a subcommand's flags the one way every subcommand
// does: help is flagHelp, a bad flag a usage error (a secret file that
// cannot be read is not: exit 1), warnings (a secret on the command line)
// go to stderr.
func parseFlags(fs *cli.FlagSet, args []string, e env) error {
	err := fs.Parse(args, e.lookupEnv)
	var pathErr *iofs.PathError
	switch {
	case errors.Is(err, cli.ErrHelp):
		return flagHelp
	case errors.As(err, &pathErr):
		return fmt.Errorf("%s: %w", fs.Name(), err)
	case err != nil:
		return usagef("%s: %v", fs.Name(), err)
	}
	for _, w := range fs.Warnings() {
		fmt.Fprintln(e.stderr, "admin: warning:", w)
	}
	return nil
}

var commands = []command{
	{name: "decode", summary: "decode a Phoenix token (signed-at, max age, expiry, data)", parse: parseDecode},
}

// usageError is a bad command line: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// config is the parsed command line.
type config struct {
	cmd runner
}

func parse(args []string, e env) (config, error) {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(e.stderr)
		if len(args) == 0 {
			return config{}, usagef("missing subcommand")
		}
		return config{}, flagHelp
	}
	for _, c := range commands {
		if c.name == args[0] {
			r, err := c.parse(args[1:], e)
			if err != nil {
				return config{}, err
			}
			return config{cmd: r}, nil
		}
	}
	return config{}, usagef("unknown subcommand %q (try: %s)", args[0], names())
}

var flagHelp = errors.New("help requested")

func names() string {
	ns := make([]string, len(commands))
	for i, c := range commands {
		ns[i] = c.name
	}
	sort.Strings(ns)
	return strings.Join(ns, ", ")
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: admin <subcommand> [flags] [args]")
	fmt.Fprintln(w, "\nsubcommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nrun 'admin <subcommand> -h' for its flags")
}

func run(ctx context.Context, cfg config, e env) error {
	return cfg.cmd.run(ctx, e)
}

// exitCode maps an error to the process exit code.
func exitCode(err error) int {
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, flagHelp):
		return 0
	case errors.As(err, &ue):
		return 2
	}
	return 1
}

func main() {
	os.Exit(mainE(os.Args[1:], env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, lookupEnv: os.LookupEnv}))
}

func mainE(args []string, e env) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := parse(args, e)
	if err == nil {
		err = run(ctx, cfg, e)
	}
	if err != nil && !errors.Is(err, flagHelp) {
		fmt.Fprintln(e.stderr, "admin:", err)
	}
	return exitCode(err)
}
