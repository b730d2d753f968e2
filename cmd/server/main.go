// Command server is firstrender: a caching reverse proxy for the public first
// render of Phoenix LiveView pages, with an Origin-checked live socket broker,
// shipped as one binary.
//
// It reads flags (each with a FIRSTRENDER_* environment variable; secrets
// from a file or the environment, see cmd/internal/cli), builds a
// server.Config (package httpcache/server, which assembles and runs
// everything), and runs it until SIGINT or SIGTERM. With no --upstream it
// starts a built-in demo origin on loopback, so
//
//	go run ./cmd/server
//	curl -si http://localhost:8080/ | grep Cache-Status   # miss, then hit
//
// shows the cache working. Metrics and the /healthz and /readyz probes are
// served on the admin listener only (--admin-listen, default
// 127.0.0.1:9090), never on the public one. Under systemd socket
// activation (LISTEN_FDS) the passed sockets are served instead of binding
// --listen and --admin-listen, so a restart never closes the port.
//
// SIGHUP is logged and otherwise ignored: flags and variables are read
// only at start (restart to apply a change); it never stops the server.
//
// Exit codes: 0 after a clean shutdown (or --help, --print-config,
// --version, a valid --check-config), 2 for a bad flag or environment
// variable (or an invalid --check-config), 1 for any other failure
// (database locked, address in use, ...).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/firstrender/firstrender/cmd/internal/cli"
	"github.com/firstrender/firstrender/httpcache/server"
)

func main() {
	os.Exit(realMain(os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

// fieldFlags names the flag behind each server.FieldError field.
var fieldFlags = map[string]string{"Listen": "--listen", "AdminListen": "--admin-listen", "DB": "--db",
	"AdminToken": "--admin-token", "AdminSocket": "--admin-socket"}

// otherEnv are FIRSTRENDER_* variables that are not flags of this binary
// but are read elsewhere, so not worth a warning: the demo origin's
// client bundle and the variables of cmd/admin (often set in the same
// shell).
var otherEnv = []string{
	"FIRSTRENDER_NODE_MODULES",
	"FIRSTRENDER_ADMIN_URL", "FIRSTRENDER_ADMIN_TOKEN", "FIRSTRENDER_ADMIN_TOKEN_FILE",
	"FIRSTRENDER_SECRET_KEY_BASE", "FIRSTRENDER_SECRET_KEY_BASE_FILE", "FIRSTRENDER_SALT",
	"FIRSTRENDER_VERIFIER_MAX_AGE", "FIRSTRENDER_JSON",
}

// lookupIn is os.LookupEnv over environ (KEY=VALUE pairs; the last wins,
// as in the process environment).
func lookupIn(environ []string) func(string) (string, bool) {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func realMain(args, environ []string, stdout, stderr io.Writer) int {
	lookupEnv := lookupIn(environ)
	f, fs, err := parseFlags(args, lookupEnv, stdout)
	if errors.Is(err, errHelp) {
		return 0
	}
	if err == nil && f.version {
		fmt.Fprintln(stdout, cli.Version("firstrender"))
		return 0
	}
	var cfg server.Config
	if err == nil {
		cfg, err = f.config()
	}
	if err != nil {
		fmt.Fprintf(stderr, "firstrender: %v\nRun with --help to see every flag.\n", err)
		return 2
	}
	cfg.Version = cli.Version("firstrender")
	warnings := append(fs.Warnings(), fs.UnknownEnv(environ, otherEnv...)...)
	if f.checkConfig {
		return checkConfig(cfg, fs, warnings, stdout, stderr)
	}
	if f.printConfig {
		fs.WriteConfig(stdout)
		return 0
	}
	cfg.Logger = f.logger(stderr)
	for _, w := range warnings {
		cfg.Logger.Warn(w)
	}
	lns, err := server.SystemdListeners(lookupEnv)
	if err != nil {
		fmt.Fprintf(stderr, "firstrender: %v\n", err)
		return 1
	}
	if err := useListeners(&cfg, lns); err != nil {
		fmt.Fprintf(stderr, "firstrender: %v\n", err)
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// After the first signal, restore the default handling: a second
		// Ctrl-C during a slow shutdown kills the process at once.
		<-ctx.Done()
		stop()
	}()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go logHangups(ctx, hup, cfg.Logger)

	if err := run(ctx, cfg); err != nil {
		fmt.Fprintf(stderr, "firstrender: %v\n", err)
		return 1
	}
	return 0
}

// logHangups answers every SIGHUP on hup with a log line until ctx ends.
// Nothing is reloaded or reopened: the configuration is read only at
// start, and the log goes to stderr, which needs no reopening.
func logHangups(ctx context.Context, hup <-chan os.Signal, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			log.Warn("SIGHUP received and ignored: flags and FIRSTRENDER_* variables are read only at start, nothing was reloaded; restart to apply a change (with socket activation, without closing the port)")
		}
	}
}

// useListeners puts the listeners systemd passed into cfg, and checks
// they match the flags: an admin socket with --admin-listen="" is
// refused, a missing one means the admin listener binds --admin-listen.
func useListeners(cfg *server.Config, lns map[string]net.Listener) error {
	if lns == nil {
		return nil
	}
	pub, ok := lns[server.ListenerPublic]
	if !ok {
		for _, ln := range lns {
			ln.Close()
		}
		return errors.New("socket activation: no socket named \"public\" was passed (FileDescriptorName=public in the .socket unit)")
	}
	cfg.PublicListener, cfg.Listen = pub, pub.Addr().String()
	if adm, ok := lns[server.ListenerAdmin]; ok {
		if cfg.NoAdmin {
			pub.Close()
			adm.Close()
			return errors.New("socket activation passed an admin socket but --admin-listen is empty (admin disabled): remove the socket or the flag")
		}
		cfg.AdminListener, cfg.AdminListen = adm, adm.Addr().String()
	}
	cfg.Logger.Info("socket activation: serving the passed sockets", "public", cfg.Listen, "admin", cfg.AdminListen, "admin_passed", cfg.AdminListener != nil)
	return nil
}

// checkConfig is --check-config: everything parseFlags and config
// checked, plus server.Check (database directory, policies, addresses),
// then the effective configuration. Exit 0 when valid, 2 when not.
func checkConfig(cfg server.Config, fs *cli.FlagSet, warnings []string, stdout, stderr io.Writer) int {
	for _, w := range warnings {
		fmt.Fprintf(stderr, "firstrender: warning: %s\n", w)
	}
	err := server.Check(cfg)
	fs.WriteConfig(stdout)
	if err != nil {
		for _, e := range flattenErrors(err) {
			fmt.Fprintf(stderr, "firstrender: %s\n", nameFlag(e))
		}
		fmt.Fprintln(stderr, "firstrender: configuration is NOT valid")
		return 2
	}
	upstream := "the built-in demo origin (no --upstream)"
	if cfg.Upstream != nil {
		upstream = cfg.Upstream.String() + " (form checked, not contacted)"
	}
	fmt.Fprintf(stderr, "firstrender: configuration is valid; upstream %s; database %s (directory writable)\n", upstream, cfg.DB)
	return 0
}

// flattenErrors lists the leaves of errors.Join trees.
func flattenErrors(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flattenErrors(e)...)
		}
		return out
	}
	return []error{err}
}

// nameFlag formats an error attributed to a server.Config field with the
// flag's name.
func nameFlag(err error) string {
	var fe *server.FieldError
	if errors.As(err, &fe) && fieldFlags[fe.Field] != "" {
		msg := fmt.Sprintf("%s %s: %v", fieldFlags[fe.Field], fe.Value, fe.Err)
		var le *server.LockError
		if errors.As(fe.Err, &le) {
			msg += fmt.Sprintf(" (--db-lock-wait %v)", le.Wait)
		}
		return msg
	}
	return err.Error()
}

// run builds the server and runs it until ctx ends. Errors about a listen
// address or the database name the flag.
func run(ctx context.Context, cfg server.Config) error {
	srv, err := server.New(cfg)
	if err == nil {
		err = srv.Run(ctx)
	}
	if fe, ok := errors.AsType[*server.FieldError](err); ok && fieldFlags[fe.Field] != "" {
		return &flagError{msg: nameFlag(fe), err: fe}
	}
	return err
}

// flagError is a server.FieldError reworded with the flag's name.
type flagError struct {
	msg string
	err error
}

func (e *flagError) Error() string { return e.msg }
func (e *flagError) Unwrap() error { return e.err }
