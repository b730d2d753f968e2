package store

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

// commits records, per commit, the records it changed (Watch runs once
// per committed transaction that changed records).
type commits struct {
	mu  sync.Mutex
	got [][]string
}

func (c *commits) watch(all bool, keys []RecordKey) {
	var ks []string
	for _, k := range keys {
		ks = append(ks, k.Key)
	}
	slices.Sort(ks)
	c.mu.Lock()
	c.got = append(c.got, ks)
	c.mu.Unlock()
}

func (c *commits) take() [][]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.got
	c.got = nil
	return g
}

func deferredRec(key string) *Record {
	return &Record{Key: key, Status: 200, Body: []byte("body of " + key)}
}

// waitErr waits for a write started in a goroutine; the bound only turns
// a writer that never commits into a failure instead of a hung test.
func waitErr(t *testing.T, what string, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: not committed after 30s", what)
	}
}

// A deferred Put waits for company; an ordinary write that arrives
// meanwhile ends the wait at once and both share one commit.
func TestPutDeferred_OrdinaryWriteEndsTheWait(t *testing.T) {
	t.Parallel()
	lingering := make(chan int, 4)
	s := newTestStore(t, Options{CommitDelay: time.Hour, lingering: lingering})
	var c commits
	defer s.Watch(c.watch)()
	done := make(chan error, 1)
	go func() { done <- s.PutDeferred(context.Background(), deferredRec("a")) }()
	if n := <-lingering; n != 1 {
		t.Fatalf("writer waits with %d ops, want 1", n)
	}
	mustPut(t, s, deferredRec("b")) // returns after its commit: an hour's wait would hang here
	waitErr(t, "deferred put", done)
	if got := c.take(); !slices.EqualFunc(got, [][]string{{"a", "b"}}, slices.Equal) {
		t.Errorf("commits %q, want one with both records", got)
	}
	for _, k := range []string{"a", "b"} {
		if _, err := s.Get(context.Background(), k, ""); err != nil {
			t.Errorf("Get(%s) after the commit: %v", k, err)
		}
	}
}

// Deferred Puts arriving within CommitDelay share one commit.
func TestPutDeferred_SharesACommit(t *testing.T) {
	t.Parallel()
	lingering := make(chan int, 4)
	s := newTestStore(t, Options{CommitDelay: 2 * time.Second, lingering: lingering})
	var c commits
	defer s.Watch(c.watch)()
	da, db := make(chan error, 1), make(chan error, 1)
	go func() { da <- s.PutDeferred(context.Background(), deferredRec("a")) }()
	<-lingering
	go func() { db <- s.PutDeferred(context.Background(), deferredRec("b")) }()
	waitErr(t, "first deferred put", da)
	waitErr(t, "second deferred put", db)
	if got := c.take(); !slices.EqualFunc(got, [][]string{{"a", "b"}}, slices.Equal) {
		t.Errorf("commits %q, want one with both records (the second arrived within CommitDelay)", got)
	}
}

// Nudge ends the wait, whether it comes before the writer starts waiting
// or while it waits.
func TestPutDeferred_Nudge(t *testing.T) {
	t.Parallel()
	lingering := make(chan int, 4)
	s := newTestStore(t, Options{CommitDelay: time.Hour, lingering: lingering})
	done := make(chan error, 1)
	go func() { done <- s.PutDeferred(context.Background(), deferredRec("a")) }()
	<-lingering
	s.Nudge()
	waitErr(t, "nudged while waiting", done)

	s.Nudge() // nobody waits: the next wait ends at once
	go func() { done <- s.PutDeferred(context.Background(), deferredRec("b")) }()
	<-lingering
	waitErr(t, "nudged before waiting", done)
}

// Close commits what a deferred wait holds.
func TestPutDeferred_Close(t *testing.T) {
	t.Parallel()
	lingering := make(chan int, 4)
	path := t.TempDir() + "/c.db"
	s, err := Open(path, Options{CommitDelay: time.Hour, lingering: lingering})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.PutDeferred(context.Background(), deferredRec("a")) }()
	<-lingering
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	waitErr(t, "deferred put at Close", done)
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Get(context.Background(), "a", ""); err != nil {
		t.Errorf("after Close and reopen: %v", err)
	}
}
