package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/firstrender/firstrender/cmd/internal/soak"
)

// The soak scenario (not a default: it runs for minutes) is package
// cmd/internal/soak behind the registry: a mixed workload of hits,
// revalidations, misses, purges and live sockets against a real
// firstrender process (cmd/server) in front of a slow origin, with the
// process's RSS, open files and goroutines sampled over time
// (docs/soak.md). Its length is not -duration (bounded at 2m for the
// comparisons) but LOADTEST_SOAK_DURATION (default 10m); the firstrender
// binary is LOADTEST_SOAK_BINARY, or built into -dir with go build.
//
//	LOADTEST_SOAK_DURATION=10m go run ./cmd/server/loadtest -pin=false -scenarios soak
func init() {
	Register(Scenario{Name: "soak", Doc: "mixed hits/revalidations/misses/purges/live sockets for LOADTEST_SOAK_DURATION (10m); RSS, fds, goroutines must stay flat", Run: runSoak})
}

func runSoak(ctx context.Context, env *Env) ([]Row, error) {
	if env.pin {
		// Pinned, the load, the origin and the server (a child of this
		// process, so on the same CPU) starve each other: socket dials
		// time out. The soak is about leaks, not per-CPU figures.
		return nil, fmt.Errorf("soak: run it with -pin=false (it measures growth over time, not CPU per request)")
	}
	d := 10 * time.Minute
	if v := os.Getenv("LOADTEST_SOAK_DURATION"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil || d <= 0 || d > 2*time.Hour {
			return nil, fmt.Errorf("LOADTEST_SOAK_DURATION %q: want a duration in (0, 2h]", v)
		}
	}
	bin := os.Getenv("LOADTEST_SOAK_BINARY")
	if bin == "" {
		bin = filepath.Join(env.dir, "firstrender")
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/firstrender/firstrender/cmd/server")
		build.Stdout, build.Stderr = env.log, env.log
		if err := build.Run(); err != nil {
			return nil, fmt.Errorf("soak: building cmd/server (or set LOADTEST_SOAK_BINARY): %w", err)
		}
	}
	dir := filepath.Join(env.dir, "soak")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	rep, err := soak.Run(ctx, soak.Config{Binary: bin, Dir: dir, Duration: d}, env.log)
	if err != nil {
		return nil, err
	}
	var total int64
	for _, n := range rep.Requests {
		total += n
	}
	last := rep.Samples[len(rep.Samples)-1]
	note := "flat"
	if ok, why := rep.Flat(); !ok {
		note = "NOT FLAT: " + why
	}
	for _, e := range rep.FirstErrors {
		fmt.Fprintln(env.log, "soak: error:", e)
	}
	note += fmt.Sprintf("; %d socket sessions (%d failed); goroutines %d, open fds %d at the end", rep.Sockets, rep.SocketErrors, last.Goroutines, last.OpenFDs)
	return []Row{{Scenario: "soak", Target: "firstrender", Note: note, M: Measurement{
		Requests: total, RPS: float64(total) / rep.Elapsed.Seconds(), P50: rep.Latency[0], P99: rep.Latency[1],
		Errors: rep.Errors, RSSMB: float64(last.RSS) / (1 << 20), Allocs: -1, GCShare: -1, HitRatio: -1,
	}}}, nil
}
