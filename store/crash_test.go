package store

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// crashBody is the body the crash child writes for key, so the parent can
// check that what it reads back is the whole record.
func crashBody(key string, n int) []byte {
	unit := []byte(key + ";")
	return bytes.Repeat(unit, n/len(unit)+1)[:n]
}

// childCrash writes and purges in a loop from 4 goroutines until killed.
// After each acknowledged operation it prints one line:
//
//	P key      a Put returned nil
//	X key      a Delete returned nil
//	D prefix   a group purge (DeletePrefix, DeleteTag or DeleteKey of each key) returned
func childCrash(path string) int {
	s, err := Open(path, Options{Timeout: 5 * time.Second})
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	fmt.Println("ready")
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		fmt.Printf(format+"\n", args...)
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(os.Getpid()), uint64(w)))
			pid := os.Getpid()
			group := func(g int) string { return fmt.Sprintf("p%d-w%d-g%06d/", pid, w, g) }
			for i := 0; ; i++ {
				g := i / 10
				key := fmt.Sprintf("%sr%d", group(g), i%10)
				r := &Record{Key: key, Status: 200, Body: crashBody(key, 100+rng.IntN(20000)),
					Tags: []string{"t-" + group(g), "all"}}
				if err := s.Put(ctx, r); err != nil {
					say("error: put %v", err)
					os.Exit(1)
				}
				say("P %s", key)
				switch {
				case i%10 == 5 && i >= 10:
					victim := fmt.Sprintf("%sr%d", group(g), 2)
					if err := s.Delete(ctx, victim, ""); err != nil {
						say("error: delete %v", err)
						os.Exit(1)
					}
					say("X %s", victim)
				case i%10 == 9 && g >= 2:
					old := group(g - 2)
					var err error
					switch g % 3 {
					case 0:
						_, err = s.DeletePrefix(ctx, old)
					case 1:
						_, err = s.DeleteTag(ctx, "t-"+old)
					case 2:
						for j := range 10 {
							if _, err = s.DeleteKey(ctx, fmt.Sprintf("%sr%d", old, j)); err != nil {
								break
							}
						}
					}
					if err != nil {
						say("error: purge %v", err)
						os.Exit(1)
					}
					say("D %s", old)
				}
			}
		}()
	}
	wg.Wait()
	return 0
}

// TestStore_CrashConsistency kills a writing, purging child process with
// SIGKILL at a random moment, several times, and checks after each kill
// that every record is whole, every acknowledged purge held and every
// acknowledged put is there.
func TestStore_CrashConsistency(t *testing.T) {
	t.Parallel()
	rounds := 5
	if testing.Short() {
		rounds = 2
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	puts, dels, purges := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for round := range rounds {
		cmd := childCommand(t, "crash", path)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 1024)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()
		if l := <-lines; l != "ready" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("round %d: child said %q, want ready", round, l)
		}
		// Kill at a random moment (0-600 ms) after the child acknowledged
		// its first group purge, so that every round has purges to check
		// even on a loaded machine (or after 20 s, whatever it did).
		var killAt <-chan time.Time
		armed := false
		deadline := time.After(20 * time.Second)
		var acked []string
	collect:
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					break collect
				}
				acked = append(acked, l)
				if !armed && strings.HasPrefix(l, "D ") {
					armed = true
					killAt = time.After(time.Duration(rand.IntN(600)) * time.Millisecond)
				}
			case <-deadline:
				deadline = nil
				cmd.Process.Signal(syscall.SIGKILL)
			case <-killAt:
				cmd.Process.Signal(syscall.SIGKILL)
				killAt = nil
			}
		}
		err = cmd.Wait()
		var ee interface{ Sys() any }
		if !errors.As(err, &ee) {
			t.Fatalf("round %d: child exited with %v, want killed", round, err)
		}
		if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: child exited with %v, want killed by SIGKILL (output %q)", round, err, acked)
		}
		for _, l := range acked {
			kind, arg, _ := strings.Cut(l, " ")
			switch kind {
			case "P":
				puts[arg] = true
			case "X":
				dels[arg] = true
			case "D":
				purges[arg] = true
			default:
				t.Fatalf("round %d: child said %q", round, l)
			}
		}
		checkIntegrity(t, path)
		verifyCrashDB(t, round, path, puts, dels, purges)
		t.Logf("round %d: %d acknowledged lines; totals %d puts, %d deletes, %d group purges", round, len(acked), len(puts), len(dels), len(purges))
	}
	if len(purges) == 0 || len(dels) == 0 {
		t.Errorf("the child acknowledged %d group purges and %d deletes in %d rounds: the test proved nothing", len(purges), len(dels), rounds)
	}
}

func verifyCrashDB(t *testing.T, round int, path string, puts, dels, purges map[string]bool) {
	t.Helper()
	s, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("round %d: reopen after kill = %v", round, err)
	}
	defer s.Close()
	// Every record is whole.
	n := 0
	after := ""
	for {
		p, err := s.Scan(ctx, ScanOptions{After: after, Limit: 1000})
		if err != nil {
			t.Fatalf("round %d: Scan = %v", round, err)
		}
		for _, m := range p.Entries {
			n++
			r, err := s.Get(ctx, m.Key, m.Variant)
			if err != nil {
				t.Errorf("round %d: Get(%q) = %v, want the whole record", round, m.Key, err)
				continue
			}
			if !bytes.Equal(r.Body, crashBody(m.Key, len(r.Body))) {
				t.Errorf("round %d: Get(%q) body is not the body written", round, m.Key)
			}
		}
		if p.Next == "" {
			break
		}
		after = p.Next
	}
	if got := s.Stats().Records; got != int64(n) {
		t.Errorf("round %d: Stats().Records = %d, scan found %d", round, got, n)
	}
	// Every acknowledged purge held; every acknowledged put that was not purged is there.
	for prefix := range purges {
		if p, _ := s.Scan(ctx, ScanOptions{Prefix: prefix}); len(p.Entries) != 0 {
			t.Errorf("round %d: acknowledged purge of %q did not hold: %d records left", round, prefix, len(p.Entries))
		}
	}
	for key := range dels {
		if _, err := s.Get(ctx, key, ""); !errors.Is(err, ErrNotFound) {
			t.Errorf("round %d: acknowledged Delete(%q) did not hold: Get = %v", round, key, err)
		}
	}
	for key := range puts {
		if dels[key] || mayBeGone(key, puts) {
			continue
		}
		if _, err := s.Get(ctx, key, ""); err != nil {
			t.Errorf("round %d: acknowledged Put(%q) lost: Get = %v", round, key, err)
		}
	}
}

// mayBeGone reports whether an acknowledged put of key may have been
// removed by a purge or delete that committed but whose acknowledgement
// the kill cut off: the child starts the purge of group g right after
// acknowledging the put of group g+2's r9, and deletes r2 of a group right
// after acknowledging that group's r5.
func mayBeGone(key string, puts map[string]bool) bool {
	var pid, w, g, r int
	if _, err := fmt.Sscanf(key, "p%d-w%d-g%d/r%d", &pid, &w, &g, &r); err != nil {
		return false
	}
	if puts[fmt.Sprintf("p%d-w%d-g%06d/r9", pid, w, g+2)] {
		return true
	}
	return r == 2 && puts[fmt.Sprintf("p%d-w%d-g%06d/r5", pid, w, g)]
}
