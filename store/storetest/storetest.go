// Package storetest holds test helpers for packages that use a
// [store.Store]: an opener that checks the file's integrity when the test
// ends (the shape of bbolt's btesting) and a fake clock. It is imported by
// tests only; nothing in a production build links it.
package storetest

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/firstrender/firstrender/store"
)

// Open opens a store in a new file under t.TempDir() with opts (NoSync is
// forced on: the file is the test's, and fsync only slows it). It fails the
// test at once when Open fails. At cleanup it closes the store (a store the
// test closed itself is fine), opens the file again read-only and runs
// [store.Store.Check], failing the test for every structural problem and
// every damaged record, so a test that corrupts the file by accident cannot
// pass. Use [store.Open] directly for a store that must fsync or must
// outlive the test.
func Open(t testing.TB, opts store.Options) *store.Store {
	t.Helper()
	path := filepath.Join(t.TempDir(), "store.db")
	opts.NoSync = true
	s, err := store.Open(path, opts)
	if err != nil {
		t.Fatalf("storetest: Open(%q) = %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, store.ErrClosed) {
			t.Errorf("storetest: Close() = %v", err)
		}
		Check(t, path)
	})
	return s
}

// Check opens the store file at path read-only and fails t for every
// problem [store.Store.Check] reports. The file must not be open read-write
// elsewhere (Open would fail with [store.ErrLocked]).
func Check(t testing.TB, path string) {
	t.Helper()
	s, err := store.Open(path, store.Options{ReadOnly: true})
	if err != nil {
		t.Errorf("storetest: integrity: open %s: %v", path, err)
		return
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := s.Check(ctx)
	if err != nil {
		t.Errorf("storetest: integrity: check %s: %v", path, err)
		return
	}
	for _, p := range res.Problems {
		t.Errorf("storetest: integrity: %s: %s", path, p)
	}
	for _, m := range res.Damaged {
		t.Errorf("storetest: integrity: %s: damaged record %q variant %q (%d bytes)", path, m.Key, m.Variant, m.Size)
	}
}

// Start is where a [NewClock] clock starts when given the zero time:
// 2026-11-25 12:00:00 UTC, a fixed instant so that test output is stable.
var Start = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// Clock is a fake clock for the Now fields of store, httpcache, liveview
// and livesocket configs: it stands still until the test moves it. It is
// safe for concurrent use. Create one with [NewClock]; the zero value reads
// the zero time until Set.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock reading start, or [Start] when start is zero.
func NewClock(start time.Time) *Clock {
	if start.IsZero() {
		start = Start
	}
	return &Clock{t: start}
}

// Now returns the clock's time. Its method value (c.Now) fits a
// func() time.Time option.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d (backward when d is negative) and
// returns the new time.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}
