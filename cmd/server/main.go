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
// shows the cache working. Metrics are served on the admin listener only
// (--admin-listen, default 127.0.0.1:9090), never on the public one.
//
// Exit codes: 0 after a clean shutdown (or --help, --print-config), 2 for a
// bad flag or environment variable, 1 for any other failure (database
// locked, address in use, ...).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/firstrender/firstrender/httpcache/server"
)

func main() {
	os.Exit(realMain(os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr))
}

// fieldFlags names the flag behind each server.FieldError field.
var fieldFlags = map[string]string{"Listen": "--listen", "AdminListen": "--admin-listen", "DB": "--db"}

func realMain(args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) int {
	f, fs, err := parseFlags(args, lookupEnv, stdout)
	if errors.Is(err, errHelp) {
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
	if f.printConfig {
		fs.WriteConfig(stdout)
		return 0
	}
	cfg.Logger = f.logger(stderr)
	for _, w := range fs.Warnings() {
		cfg.Logger.Warn(w)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// After the first signal, restore the default handling: a second
		// Ctrl-C during a slow shutdown kills the process at once.
		<-ctx.Done()
		stop()
	}()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintf(stderr, "firstrender: %v\n", err)
		return 1
	}
	return 0
}

// run builds the server and runs it until ctx ends. Errors about a listen
// address or the database name the flag.
func run(ctx context.Context, cfg server.Config) error {
	srv, err := server.New(cfg)
	if err == nil {
		err = srv.Run(ctx)
	}
	if fe, ok := err.(*server.FieldError); ok && fieldFlags[fe.Field] != "" {
		return fmt.Errorf("%s %s: %w", fieldFlags[fe.Field], fe.Value, fe.Err)
	}
	return err
}
