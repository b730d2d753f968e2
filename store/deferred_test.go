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

// Nudge ends the wait, deferred writes queued within CommitDelay after it
// do not wait at all, and a Nudge while nobody waits ends the next wait.
func TestPutDeferred_Nudge(t *testing.T) {
	t.Parallel()
	fc := newFakeLinger()
	lingering := make(chan int, 4)
	const delay = 10 * time.Second
	s := newTestStore(t, Options{CommitDelay: delay, lingering: lingering, lingerClock: fc.clock()})
	done := make(chan error, 1)
	go func() { done <- s.PutDeferred(context.Background(), deferredRec("a")) }()
	<-lingering
	fc.timer(t, delay) // never fired
	s.Nudge()
	waitErr(t, "nudged while waiting", done)

	fc.advance(delay / 2) // within CommitDelay of the Nudge
	go func() { done <- s.PutDeferred(context.Background(), deferredRec("b")) }()
	waitErr(t, "queued just after a Nudge", done) // no timer fired
	if len(lingering) != 0 {
		t.Errorf("the writer waited for company within CommitDelay of a Nudge")
	}

	s.Nudge() // nobody waits: the next wait ends at once, even later
	fc.advance(2 * delay)
	go func() { done <- s.PutDeferred(context.Background(), deferredRec("c")) }()
	<-lingering
	waitErr(t, "nudged before waiting", done)

	fc.timer(t, delay)    // c's, never fired
	fc.advance(2 * delay) // that Nudge is used up: d waits for its timer
	go func() { done <- s.PutDeferred(context.Background(), deferredRec("d")) }()
	<-lingering
	dt := fc.timer(t, delay)
	notDone(t, "d", done)
	dt <- fc.advance(delay)
	waitErr(t, "d, after its wait", done)
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

// fakeLinger is a lingerClock the test drives: now is set by the test,
// and every timer the waiting writer asks for is handed to the test
// (with its duration) to fire.
type fakeLinger struct {
	mu     sync.Mutex
	t      time.Time
	timers chan fakeTimer
}

type fakeTimer struct {
	d time.Duration
	c chan time.Time
}

func newFakeLinger() *fakeLinger {
	return &fakeLinger{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC), timers: make(chan fakeTimer, 8)}
}

func (f *fakeLinger) clock() *lingerClock {
	return &lingerClock{now: f.now, after: func(d time.Duration) <-chan time.Time {
		c := make(chan time.Time, 1)
		f.timers <- fakeTimer{d, c}
		return c
	}}
}

func (f *fakeLinger) now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

// advance moves the clock by d and returns the new time.
func (f *fakeLinger) advance(d time.Duration) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t = f.t.Add(d)
	return f.t
}

// timer returns the next timer the writer asked for, failing unless its
// duration is want.
func (f *fakeLinger) timer(t *testing.T, want time.Duration) chan time.Time {
	t.Helper()
	select {
	case tm := <-f.timers:
		if tm.d != want {
			t.Fatalf("the writer waits %v, want %v", tm.d, want)
		}
		return tm.c
	case <-time.After(30 * time.Second):
		t.Fatalf("the writer asked for no timer (want one of %v)", want)
		return nil
	}
}

// notDone fails if the deferred put has returned: called after the
// writer asked for its next timer, so it is still waiting.
func notDone(t *testing.T, what string, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		t.Fatalf("%s returned (%v) while the writer still waits", what, err)
	default:
	}
}

// While deferred Puts keep arriving, the wait goes on until CommitDelay
// has passed without one (all of them share a commit), and ends then.
func TestPutDeferred_WaitGoesOnWhileWritesArrive(t *testing.T) {
	t.Parallel()
	fc := newFakeLinger()
	lingering, added := make(chan int, 4), make(chan int, 4)
	const delay = 10 * time.Second
	s := newTestStore(t, Options{CommitDelay: delay, MaxCommitDelay: time.Hour, lingering: lingering, lingerAdded: added, lingerClock: fc.clock()})
	var c commits
	defer s.Watch(c.watch)()
	put := func(key string) chan error {
		done := make(chan error, 1)
		go func() { done <- s.PutDeferred(context.Background(), deferredRec(key)) }()
		return done
	}
	da := put("a")
	<-lingering
	first := fc.timer(t, delay)
	fc.advance(6 * time.Second)
	db := put("b") // at 6s
	<-added
	first <- fc.advance(4 * time.Second) // 10s: b came 4s ago, wait 6s more
	second := fc.timer(t, 6*time.Second)
	notDone(t, "a", da)
	fc.advance(4 * time.Second)
	dc := put("c") // at 14s
	<-added
	second <- fc.advance(2 * time.Second) // 16s: c came 2s ago, wait 8s more
	third := fc.timer(t, 8*time.Second)
	notDone(t, "a", da)
	third <- fc.advance(8 * time.Second) // 24s: quiet for CommitDelay
	waitErr(t, "a", da)
	waitErr(t, "b", db)
	waitErr(t, "c", dc)
	if got := c.take(); !slices.EqualFunc(got, [][]string{{"a", "b", "c"}}, slices.Equal) {
		t.Errorf("commits %q, want one with the three records", got)
	}
}

// MaxCommitDelay bounds the wait even while deferred Puts keep arriving.
func TestPutDeferred_MaxCommitDelay(t *testing.T) {
	t.Parallel()
	fc := newFakeLinger()
	lingering, added := make(chan int, 4), make(chan int, 4)
	const delay = 10 * time.Second
	s := newTestStore(t, Options{CommitDelay: delay, MaxCommitDelay: 12 * time.Second, lingering: lingering, lingerAdded: added, lingerClock: fc.clock()})
	var c commits
	defer s.Watch(c.watch)()
	da, db := make(chan error, 1), make(chan error, 1)
	go func() { da <- s.PutDeferred(context.Background(), deferredRec("a")) }()
	<-lingering
	first := fc.timer(t, delay)
	fc.advance(9 * time.Second)
	go func() { db <- s.PutDeferred(context.Background(), deferredRec("b")) }()
	<-added
	first <- fc.advance(time.Second) // 10s: b came 1s ago, but the bound is at 12s
	second := fc.timer(t, 2*time.Second)
	notDone(t, "a", da)
	second <- fc.advance(2 * time.Second) // 12s
	waitErr(t, "a", da)
	waitErr(t, "b", db)
	if got := c.take(); !slices.EqualFunc(got, [][]string{{"a", "b"}}, slices.Equal) {
		t.Errorf("commits %q, want one with both records", got)
	}
}

// The defaults: CommitDelay 10ms, MaxCommitDelay eight of them; a bound
// below CommitDelay is CommitDelay.
func TestPutDeferred_Defaults(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in, want Options
	}{
		{Options{}, Options{CommitDelay: 10 * time.Millisecond, MaxCommitDelay: 80 * time.Millisecond}},
		{Options{CommitDelay: 5 * time.Millisecond}, Options{CommitDelay: 5 * time.Millisecond, MaxCommitDelay: 40 * time.Millisecond}},
		{Options{CommitDelay: 5 * time.Millisecond, MaxCommitDelay: time.Millisecond}, Options{CommitDelay: 5 * time.Millisecond, MaxCommitDelay: 5 * time.Millisecond}},
		{Options{CommitDelay: -1}, Options{CommitDelay: 0, MaxCommitDelay: 0}},
	} {
		o := c.in
		if err := o.setDefaults(); err != nil {
			t.Fatal(err)
		}
		if o.CommitDelay != c.want.CommitDelay || o.MaxCommitDelay != c.want.MaxCommitDelay {
			t.Errorf("%v, %v: got %v, %v, want %v, %v", c.in.CommitDelay, c.in.MaxCommitDelay, o.CommitDelay, o.MaxCommitDelay, c.want.CommitDelay, c.want.MaxCommitDelay)
		}
	}
}
