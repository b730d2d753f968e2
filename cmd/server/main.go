// Command server is firstrender: a caching reverse proxy for the public first
// render of Phoenix LiveView pages, with an Origin-checked live socket broker,
// shipped as one binary.
//
// It reads flags (each with a FIRSTRENDER_* environment variable), builds a
// config, and calls run until SIGINT or SIGTERM. With no --upstream it starts
// a built-in demo origin on loopback, so
//
//	go run ./cmd/server
//	curl -si http://localhost:8080/ | grep Cache-Status   # miss, then hit
//
// shows the cache working. Metrics are served on the admin listener only
// (--admin-listen, default 127.0.0.1:9090), never on the public one.
//
// Exit codes: 0 after a clean shutdown, 2 for a bad flag or environment
// variable, 1 for any other failure (database locked, address in use, ...).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	os.Exit(realMain(os.Args[1:]))
}

func realMain(args []string) int {
	cfg, err := parseConfig(args, os.LookupEnv, os.Stdout)
	if errors.Is(err, errHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "firstrender: %v\nRun with --help to see every flag.\n", err)
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
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintf(os.Stderr, "firstrender: %v\n", err)
		return 1
	}
	return 0
}
