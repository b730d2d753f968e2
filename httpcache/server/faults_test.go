package server

import (
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/firstrender/firstrender/store"
	bolt "go.etcd.io/bbolt"
)

// TestServer_CorruptDBStartsEmpty: a database file that is garbage,
// another format or another application's bbolt file is moved aside
// (logged with the reason), the server starts empty and caches; a second
// server on the same file still gets the clear "locked" error and moves
// nothing.
func TestServer_CorruptDBStartsEmpty(t *testing.T) {
	t.Parallel()
	random := make([]byte, 64<<10)
	for i := range random {
		random[i] = byte(rand.Uint32())
	}
	otherBolt := func(path string) {
		db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("sessions")); return err })
		db.Close()
	}
	for _, tc := range []struct {
		name  string
		write func(path string)
	}{
		{"random bytes", func(p string) { os.WriteFile(p, random, 0o600) }},
		{"text", func(p string) { os.WriteFile(p, []byte(strings.Repeat("not a database\n", 500)), 0o600) }},
		{"SQLite header", func(p string) { os.WriteFile(p, append([]byte("SQLite format 3\x00"), random[:8192]...), 0o600) }},
		{"another application's bbolt file", otherBolt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			origin, counts := countingOrigin(t)
			db := filepath.Join(t.TempDir(), "fr.db")
			tc.write(db)
			s := startServer(t, Config{Upstream: mustURL(t, origin.URL), DB: db})
			if !strings.Contains(s.logs.String(), "moved it aside") {
				t.Errorf("no log line about the damaged file:\n%s", s.logs)
			}
			aside, _ := filepath.Glob(db + ".corrupt-*")
			if len(aside) != 1 {
				t.Fatalf("files moved aside: %v, want one", aside)
			}
			fetch(t, "GET", s.public+"/p")
			s.stored(t)
			res, _ := fetch(t, "GET", s.public+"/p")
			if res.StatusCode != 200 || hits(counts, "/p") != 1 {
				t.Errorf("second GET: %d, origin saw %d requests; want a hit", res.StatusCode, hits(counts, "/p"))
			}
			_, err := New(testConfig(t, Config{Upstream: mustURL(t, origin.URL), DB: db, Store: store.Options{Timeout: 100 * time.Millisecond}}, io.Discard))
			if !errors.Is(err, store.ErrLocked) {
				t.Errorf("second server on the same file: %v, want ErrLocked", err)
			}
			if a, _ := filepath.Glob(db + ".corrupt-*"); len(a) != 1 {
				t.Errorf("the second server moved files aside: %v", a)
			}
		})
	}
}

// TestServer_ReadyzShowsStoreHealth: while the store's writes fail the
// server stays ready (hits are served, misses forwarded) and /readyz
// says the store is degraded and why; it says ok again once a write
// commits.
func TestServer_ReadyzShowsStoreHealth(t *testing.T) {
	t.Parallel()
	origin, _ := countingOrigin(t)
	var failing atomic.Bool
	s := startServer(t, Config{Upstream: mustURL(t, origin.URL), Store: store.Options{WriteFault: func() error {
		if failing.Load() {
			return &os.PathError{Op: "write", Path: "fr.db", Err: syscall.ENOSPC}
		}
		return nil
	}}})
	readyz := func() (int, string) {
		res, body := fetch(t, "GET", s.admin+"/readyz")
		return res.StatusCode, body
	}
	if code, body := readyz(); code != 200 || !strings.Contains(body, "store: ok") {
		t.Fatalf("healthy /readyz: %d %q", code, body)
	}
	failing.Store(true)
	res, _ := fetch(t, "GET", s.public+"/miss")
	s.stored(t)
	if res.StatusCode != 200 {
		t.Fatalf("miss on a full disk: %d", res.StatusCode)
	}
	code, body := readyz()
	if code != 200 || !strings.Contains(body, "store: degraded: writes failing (no-space)") {
		t.Errorf("/readyz on a full disk: %d %q", code, body)
	}
	failing.Store(false)
	if code, body := readyz(); code != 200 || !strings.Contains(body, "store: ok") { // its probe write commits
		t.Errorf("/readyz after the disk recovered: %d %q", code, body)
	}
}

// TestServer_ShutdownCutRequestLogged: a request still waiting on the
// origin when the shutdown timeout ends is cut; its access line says the
// client got no response (status 0, aborted), not status=200 bytes=0.
func TestServer_ShutdownCutRequestLogged(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-r.Context().Done()
	}))
	defer origin.Close()
	s := startServer(t, Config{Upstream: mustURL(t, origin.URL), ShutdownTimeout: 200 * time.Millisecond})
	got := make(chan error, 1)
	go func() {
		res, err := http.Get(s.public + "/hang")
		if err == nil {
			_, err = io.ReadAll(res.Body)
			res.Body.Close()
			if err == nil {
				err = errors.New("got a complete response: " + res.Status)
			}
		}
		got <- err
	}()
	<-started
	s.cancel()
	if err := <-got; err == nil {
		t.Fatal("the client got a response")
	}
	s.wait(t)
	// The handler unwinds after Run gave up on it: wait for its line.
	var line map[string]any
	for range 200 {
		for _, l := range s.logs.lines(t) {
			if l["msg"] == "request" && l["path"] == "/hang" {
				line = l
			}
		}
		if line != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if line == nil {
		t.Fatalf("no access line for the cut request:\n%s", s.logs)
	}
	if line["status"] != float64(0) || line["aborted"] != true || line["bytes"] != float64(0) {
		t.Errorf("access line for a request cut at shutdown: status=%v aborted=%v bytes=%v, want 0, true, 0", line["status"], line["aborted"], line["bytes"])
	}
}
