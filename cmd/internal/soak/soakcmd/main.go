// Command soakcmd runs the soak (package cmd/internal/soak) against a
// firstrender binary and prints the sampled table and a summary:
//
//	go build -o /tmp/firstrender ./cmd/server
//	go run ./cmd/internal/soak/soakcmd -binary /tmp/firstrender -duration 10m
//
// It exits 1 when a request or socket failed, or memory, goroutines or
// open files grew. It is the soak scenario's driver until the load
// command (cmd/server/loadtest) registers it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"syscall"
	"time"

	"github.com/firstrender/firstrender/cmd/internal/soak"
)

func main() {
	var cfg soak.Config
	flag.StringVar(&cfg.Binary, "binary", "", "firstrender executable (go build ./cmd/server)")
	flag.StringVar(&cfg.Dir, "dir", "", "directory for the database and the process log (default: a temporary one)")
	flag.DurationVar(&cfg.Duration, "duration", 10*time.Minute, "length of the load")
	flag.DurationVar(&cfg.Interval, "interval", 30*time.Second, "time between samples")
	flag.IntVar(&cfg.Workers, "workers", 16, "concurrent HTTP clients")
	flag.IntVar(&cfg.Sockets, "sockets", 20, "concurrent live-socket clients")
	flag.DurationVar(&cfg.OriginDelay, "origin-delay", 20*time.Millisecond, "the origin's think time per request")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := soak.Run(ctx, cfg, os.Stdout)
	if rep != nil {
		summary(rep)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	flat, why := rep.Flat()
	if rep.Errors > 0 || rep.SocketErrors > 0 || !flat {
		fmt.Println("FAIL:", why)
		os.Exit(1)
	}
	fmt.Println("PASS: no request or socket failed; memory, goroutines and open files flat")
}

func summary(r *soak.Report) {
	var total int64
	for _, n := range r.Requests {
		total += n
	}
	fmt.Printf("\nelapsed %s: %d requests (%.0f/s), p50 %s, p99 %s, max %s; %d errors; %d socket sessions, %d failed\n",
		r.Elapsed.Round(time.Second), total, float64(total)/r.Elapsed.Seconds(), r.Latency[0], r.Latency[1], r.Latency[2], r.Errors, r.Sockets, r.SocketErrors)
	kinds := make([]string, 0, len(r.Requests))
	for k := range r.Requests {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		fmt.Printf("  %s: %d\n", k, r.Requests[k])
	}
	codes := make([]int, 0, len(r.Statuses))
	for c := range r.Statuses {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	for _, c := range codes {
		fmt.Printf("  status %d: %d\n", c, r.Statuses[c])
	}
	for _, e := range r.FirstErrors {
		fmt.Println("  error:", e)
	}
	if ok, why := r.Flat(); !ok {
		fmt.Println("  not flat:", why)
	}
}
