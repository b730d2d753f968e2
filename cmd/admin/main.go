// Command admin is firstrender's operator tool: a client of the admin API
// of a running server (httpcache/admin), which reads the database file
// directly when no server runs. Without a subcommand it opens the
// terminal UI (package tui).
//
// Usage:
//
//	admin [--read-only] [--mouse] [connection flags]   # the terminal UI
//	admin ls [--prefix P] [--contains S] [--tag T] [--status 2xx] [--findings] [--disabled] [--limit N | --all]
//	admin get KEY [--variant V] [--body] [--decode]
//	admin purge --key K... | --prefix P | --tag T | --all --confirm all  [--dry-run] [--soft]
//	admin stats | events | check | compact | enable KEY [--variant V]
//	admin decode [--lv-secret-key-base-file F --lv-signing-salt S] [TOKEN]
//
// Every subcommand takes --json: one JSON document, or JSON lines for the
// streams (events, ls --all). Human output is aligned columns.
//
// # Finding the server
//
// The same defaults and variables as cmd/server: the admin listener at
// http://127.0.0.1:9090 (--admin, FIRSTRENDER_ADMIN; unix:///PATH for a
// unix socket), the token from --token-file / FIRSTRENDER_TOKEN_FILE,
// the server's FIRSTRENDER_ADMIN_TOKEN / FIRSTRENDER_ADMIN_TOKEN_FILE, or
// the file <db>.admin-token the server generates beside its database
// (--db, FIRSTRENDER_DB, default firstrender.db). When the default address
// does not answer, ls, get, stats, check and the UI read the database
// read-only; purge, enable and compact change it only when no process holds
// it. A database held by a running server is reported in one line, after a
// short lock wait (--lock-wait), never a hang.
//
// # Exit codes
//
//	0  success
//	1  the operation failed, or found a problem (check: damaged records;
//	   decode: a signature that does not verify; a purge not confirmed)
//	2  usage: a bad flag, argument or selector
//	3  cannot connect: no server answered and the file cannot be used
//	   (missing, or locked by a running server), or the token was refused
//	4  not found: no such entry (get, enable)
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/firstrender/firstrender/cmd/internal/cli"
	"github.com/firstrender/firstrender/httpcache/admin"
	"github.com/firstrender/firstrender/store"
)

// Exit codes; documented in the package comment, usage and README.
const (
	exitOK       = 0
	exitFail     = 1
	exitUsage    = 2
	exitConn     = 3
	exitNotFound = 4
)

// command is one subcommand: parse turns its arguments into a runnable
// configuration, so flag errors surface before anything runs.
type command struct {
	name    string
	summary string
	parse   func(args []string, env env) (runner, error)
	hidden  bool
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
	// isTerminal reports whether stdin and stdout are a terminal (the
	// TUI, purge --all's typed confirmation); nil means neither is.
	isTerminal func() bool
	// now is the clock (token expiry); nil means time.Now.
	now func() time.Time
}

func (e env) clock() time.Time {
	if e.now != nil {
		return e.now()
	}
	return time.Now()
}

func (e env) terminal() bool { return e.isTerminal != nil && e.isTerminal() }

// commandLineOnly are flags that say what a command does (selectors,
// filters, confirmations): they are read from the command line only,
// never from a FIRSTRENDER_* variable left in the environment, so an
// exported variable can never widen a purge.
var commandLineOnly = map[string]bool{}

func lineOnly(names ...string) {
	for _, n := range names {
		commandLineOnly[cli.EnvName(n)] = true
	}
}

func init() {
	lineOnly("key", "keys", "prefix", "contains", "tag", "status", "findings", "disabled", "all", "confirm",
		"dry-run", "soft", "variant", "body", "decode", "limit", "after", "before", "count", "stats",
		"read-only", "mouse", "url", "scope", "wait")
}

// parseFlags parses a subcommand's flags the one way every subcommand
// does: help is flagHelp, a bad flag a usage error (a secret file that
// cannot be read is not: exit 1), warnings (a secret on the command line)
// go to stderr.
func parseFlags(fs *cli.FlagSet, args []string, e env) error {
	lookup := func(k string) (string, bool) {
		if commandLineOnly[k] {
			return "", false
		}
		return e.lookupEnv(k)
	}
	err := fs.Parse(args, lookup)
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

// newFlagSet is cli.NewFlagSet with the usage going to stdout and the
// variables of command-line-only flags left out of it.
func newFlagSet(name, header string, e env) *cli.FlagSet {
	return cli.NewFlagSet(name, header, usageFilter{e.stdout})
}

// usageFilter drops the "[FIRSTRENDER_X]" of flags that read no variable
// from the --help text written through it.
type usageFilter struct{ w io.Writer }

func (u usageFilter) Write(p []byte) (int, error) {
	s := string(p)
	for env := range commandLineOnly {
		s = strings.ReplaceAll(s, "  ["+env+"]", "")
	}
	if _, err := io.WriteString(u.w, s); err != nil {
		return 0, err
	}
	return len(p), nil
}

var commands = []command{
	{name: "ls", summary: "list cached entries (filters, paging; --all for everything)", parse: parseLs},
	{name: "get", summary: "show one entry: headers, expiry and why, findings, tokens; --body", parse: parseGet},
	{name: "purge", summary: "purge by --key, --prefix, --tag or --all (--dry-run counts, --soft marks stale)", parse: parsePurge},
	{name: "stats", summary: "the server's figures (entries, bytes, hit ratio, ...)", parse: parseStats},
	{name: "events", summary: "tail the server's events (stores, purges, evictions, disables)", parse: parseEvents},
	{name: "check", summary: "the store's integrity check (exit 1 when records are damaged)", parse: parseCheck},
	{name: "compact", summary: "compact the database file (by the server, or offline when unlocked)", parse: parseCompact},
	{name: "cluster", summary: "the cluster view: every node's applied sequence, lag, state and figures", parse: parseCluster},
	{name: "enable", summary: "serve again an entry the join guard (or an operator) disabled", parse: parseEnable},
	{name: "decode", summary: "decode a Phoenix token (signed-at, max age, expiry, data)", parse: parseDecode},
	{name: "tui", summary: "the terminal UI (the default without a subcommand)", parse: parseTUI, hidden: true},
}

// usageError is a bad command line: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// exitError carries an explicit exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// failf is an operation that failed or found a problem: exit 1.
func failf(format string, args ...any) error {
	return &exitError{code: exitFail, err: fmt.Errorf(format, args...)}
}

var flagHelp = errors.New("help requested")

// config is the parsed command line.
type config struct {
	cmd runner
}

func parse(args []string, e env) (config, error) {
	if len(args) > 0 {
		switch args[0] {
		case "-h", "-help", "--help":
			printUsage(e.stdout)
			return config{}, flagHelp
		case "help":
			if len(args) > 1 {
				return parse([]string{args[1], "--help"}, e)
			}
			printUsage(e.stdout)
			return config{}, flagHelp
		}
	}
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		r, err := parseTUI(args, e)
		return config{cmd: r}, err
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
	return config{}, usagef("unknown subcommand %q (try: %s; or 'admin --help')", args[0], names())
}

func names() string {
	var ns []string
	for _, c := range commands {
		if !c.hidden {
			ns = append(ns, c.name)
		}
	}
	return strings.Join(ns, ", ")
}

const usageTail = `
Without a subcommand, admin opens the terminal UI (--read-only, --mouse).

Finding the server (same defaults and variables as the server):
  --admin ADDRESS     admin API: http://HOST:PORT, HOST:PORT or unix:///PATH
                      [FIRSTRENDER_ADMIN] (default http://127.0.0.1:9090)
  --token-file FILE   the admin token [FIRSTRENDER_TOKEN_FILE]; else
                      FIRSTRENDER_TOKEN, the server's FIRSTRENDER_ADMIN_TOKEN
                      or FIRSTRENDER_ADMIN_TOKEN_FILE, else <db>.admin-token
  --db FILE           the server's database [FIRSTRENDER_DB] (default
                      firstrender.db): read directly when no server answers
  --offline           read the file without trying a server

When nothing answers at the default address, ls, get, stats, check and the
UI read the database read-only; purge, enable and compact change it only
when no process holds it. A database held by a running server is reported,
never waited on for more than --lock-wait.

Output: aligned columns; --json prints one JSON document (JSON lines for
events and ls --all). Flags that select what a command does (filters,
selectors, --all, --confirm) are read from the command line only.

Exit codes:
  0  success
  1  the operation failed or found a problem (check: damaged records;
     decode: signature invalid; purge not confirmed)
  2  usage: bad flag, argument or selector
  3  cannot connect: no server answered and the database cannot be used
     (missing, or locked by a running server), or the token was refused
  4  not found (get, enable: no such entry)

Run 'admin <subcommand> --help' for its flags.
`

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: admin [subcommand] [flags] [args]")
	fmt.Fprintln(w, "\nfirstrender's operator tool: list, inspect, decode and purge the page cache.")
	fmt.Fprintln(w, "\nsubcommands:")
	for _, c := range commands {
		if !c.hidden {
			fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
		}
	}
	fmt.Fprint(w, usageTail)
}

func run(ctx context.Context, cfg config, e env) error {
	return cfg.cmd.run(ctx, e)
}

// exitCode maps an error to the process exit code (see the package
// comment).
func exitCode(err error) int {
	var ue *usageError
	var xe *exitError
	var ce *admin.ConnError
	var ae *admin.Error
	switch {
	case err == nil, errors.Is(err, flagHelp):
		return exitOK
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &xe):
		return xe.code
	case errors.As(err, &ce), errors.Is(err, store.ErrLocked):
		return exitConn
	case errors.As(err, &ae):
		switch ae.Code {
		case "not_found":
			return exitNotFound
		case "unauthorized", "rate_limited":
			return exitConn
		case "bad_request", "confirm_required":
			return exitUsage
		}
	}
	return exitFail
}

func main() {
	os.Exit(mainE(os.Args[1:], env{
		stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, lookupEnv: os.LookupEnv,
		isTerminal: func() bool { return isCharDevice(os.Stdin) && isCharDevice(os.Stdout) },
	}))
}

// isCharDevice reports whether f is a character device: a terminal, or
// /dev/null (for which a typed confirmation reads end of file and so
// declines).
func isCharDevice(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func mainE(args []string, e env) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return mainCtx(ctx, args, e)
}

// mainCtx runs the command line args until done or ctx ends, printing
// the error, and returns the exit code.
func mainCtx(ctx context.Context, args []string, e env) int {
	cfg, err := parse(args, e)
	if err == nil {
		err = run(ctx, cfg, e)
	}
	if err != nil && !errors.Is(err, flagHelp) {
		fmt.Fprintln(e.stderr, "admin:", strings.TrimPrefix(err.Error(), "admin: "))
	}
	return exitCode(err)
}
