package store

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// childEnv switches the test binary into a child-process role (see
// TestMain): "lock" holds a store open, "crash" writes and purges in a
// loop until killed, "open" reports how opening a file fails.
const childEnv = "FIRSTRENDER_STORE_CHILD"

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "lock":
		os.Exit(childLock(os.Getenv("FIRSTRENDER_STORE_PATH")))
	case "crash":
		os.Exit(childCrash(os.Getenv("FIRSTRENDER_STORE_PATH")))
	case "open":
		os.Exit(childOpen(os.Getenv("FIRSTRENDER_STORE_PATH")))
	}
	code := m.Run()
	cleanupBenchDB()
	os.Exit(code)
}

// childCommand re-executes the test binary in a child role.
func childCommand(t testing.TB, role, path string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+role, "FIRSTRENDER_STORE_PATH="+path)
	cmd.Stderr = os.Stderr
	return cmd
}

// childLock opens the store, says "locked" and holds it until stdin closes.
func childLock(path string) int {
	s, err := Open(path, Options{})
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	fmt.Println("locked")
	var b [1]byte
	os.Stdin.Read(b[:])
	if err := s.Close(); err != nil {
		fmt.Println("error:", err)
		return 1
	}
	return 0
}

// fakeClock is a settable clock for Options.Now.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// newTestStore opens a store under t.TempDir() (NoSync unless opts says
// otherwise is irrelevant for correctness) and closes it at cleanup,
// checking the bbolt file's integrity and the persisted counters.
func newTestStore(t testing.TB, opts Options) *Store {
	t.Helper()
	path := filepath.Join(t.TempDir(), "test.db")
	opts.NoSync = true
	s, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open(%q) = %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil && err != ErrClosed {
			t.Errorf("Close() = %v", err)
		}
		checkIntegrity(t, path)
	})
	return s
}

// checkIntegrity runs bbolt's consistency check and verifies that the
// persisted counters and indexes agree with the records.
func checkIntegrity(t testing.TB, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		t.Errorf("integrity: open %s: %v", path, err)
		return
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			t.Errorf("integrity: bbolt check: %v", err)
		}
		var records, bytes int64
		body := tx.Bucket(bucketBody)
		tx.Bucket(bucketRec).ForEach(func(k, v []byte) error {
			records++
			bytes += int64(len(k) + len(v) + len(bodyValue(body, k)))
			if tx.Bucket(bucketAtime).Get(k) == nil {
				t.Errorf("integrity: record %q has no access time", k)
			}
			return nil
		})
		c, ok := decodeCounters(tx.Bucket(bucketMeta).Get(metaCounters))
		if !ok || c.Records != records || c.Bytes != bytes {
			t.Errorf("integrity: counters say %d records, %d bytes; file has %d, %d", c.Records, c.Bytes, records, bytes)
		}
		if body != nil {
			body.ForEach(func(k, v []byte) error {
				if tx.Bucket(bucketRec).Get(k) == nil {
					t.Errorf("integrity: body of %q without its record", k)
				}
				return nil
			})
		}
		if n := tx.Bucket(bucketLRU).Stats().KeyN; int64(n) != records {
			t.Errorf("integrity: lru index has %d entries, want %d", n, records)
		}
		return nil
	})
	if err != nil {
		t.Errorf("integrity: %v", err)
	}
}
