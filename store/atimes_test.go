package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// recordedTouches is how many touches took the tracker's lock so far.
func recordedTouches(s *Store) int64 {
	s.access.mu.Lock()
	defer s.access.mu.Unlock()
	return s.access.recorded
}

// knownAt returns the access time the table holds for record key ck (to
// the second), if it holds one.
func (t *knownAtimes) knownAt(ck []byte) (time.Time, bool) {
	if t.slots == nil {
		return time.Time{}, false
	}
	h := t.hash(ck)
	g := t.group(h)
	for i := range g {
		if v := g[i].Load(); v != 0 && v>>knownSecBits == h>>knownSecBits {
			return time.Unix(0, t.base+int64(v&knownSecMask)*int64(time.Second)), true
		}
	}
	return time.Time{}, false
}

// storedAtime reads record ck's access time from the file (ok false: none).
func storedAtime(t *testing.T, s *Store, ck []byte) (time.Time, bool) {
	t.Helper()
	var ns int64
	var ok bool
	err := s.db.Load().View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketAtime).Get(ck); len(v) == 8 {
			ns, ok = int64(binary.BigEndian.Uint64(v)), true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return time.Unix(0, ns), ok
}

// TestAccess_WithinGranularitySkipped: a Get (or Touch) within
// AccessGranularity of its record's stored access time takes no lock and
// adds no pending access; one past it is recorded and flushed, and the
// time it flushed is then known.
func TestAccess_WithinGranularitySkipped(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	s := newTestStore(t, Options{Now: clock.Now, AccessFlushInterval: time.Hour})
	mustPut(t, s, mkrec("k", "v"))
	ck := recKey("k", "v")
	put := clock.Now()
	if at, ok := s.access.known.knownAt(ck); !ok || at.After(put) || put.Sub(at) >= time.Second {
		t.Fatalf("after the Put the table holds %v, %v; want the Put's time %v (to the second)", at, ok, put)
	}
	get := func() {
		t.Helper()
		if _, err := s.Get(ctx, "k", "v"); err != nil {
			t.Fatal(err)
		}
	}
	locked := recordedTouches(s)
	for range 5 {
		clock.Advance(5 * time.Second)
		get()
		s.Touch("k", "v")
	}
	// 25s after the Put: within 30s, nothing recorded.
	if n := recordedTouches(s) - locked; n != 0 {
		t.Errorf("%d of 10 touches within the granularity took the lock, want 0", n)
	}
	if n := s.Stats().PendingAccess; n != 0 {
		t.Errorf("PendingAccess = %d after touches within the granularity, want 0", n)
	}
	// 31s after: recorded, flushed, and written.
	clock.Advance(6 * time.Second)
	read := clock.Now()
	get()
	if n := recordedTouches(s) - locked; n != 1 {
		t.Errorf("a read past the granularity took the lock %d times, want 1", n)
	}
	if n := s.Stats().PendingAccess; n != 1 {
		t.Errorf("PendingAccess = %d after a read past the granularity, want 1", n)
	}
	if err := s.flushAccess(ctx); err != nil {
		t.Fatal(err)
	}
	if at, ok := storedAtime(t, s, ck); !ok || !at.Equal(read) {
		t.Errorf("stored access time after the flush = %v, %v; want %v", at, ok, read)
	}
	if at, ok := s.access.known.knownAt(ck); !ok || at.After(read) || read.Sub(at) >= time.Second {
		t.Errorf("after the flush the table holds %v, %v; want %v", at, ok, read)
	}
	// Known now: reads within 30s of the flushed time are skipped again.
	locked = recordedTouches(s)
	clock.Advance(20 * time.Second)
	get()
	s.Touch("k", "v")
	if n := recordedTouches(s) - locked; n != 0 {
		t.Errorf("%d touches within the granularity of the flushed time took the lock, want 0", n)
	}
}

// TestAccess_LockPathTeachesTable: a store that was reopened (an empty
// table) learns a record's stored access time from the first read within
// the granularity of it: that read takes the lock (and reads the stored
// time in its transaction), records nothing, and the next one takes no
// lock.
func TestAccess_LockPathTeachesTable(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	path := filepath.Join(t.TempDir(), "known.db")
	s, err := Open(path, Options{NoSync: true, Now: clock.Now, AccessFlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, mkrec("k", ""))
	put := clock.Now()
	s.Close()
	s, err = Open(path, Options{NoSync: true, Now: clock.Now, AccessFlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ck := recKey("k", "")
	if _, ok := s.access.known.knownAt(ck); ok {
		t.Fatal("a reopened store's table holds a time")
	}
	clock.Advance(10 * time.Second)
	locked := recordedTouches(s)
	if _, err := s.Get(ctx, "k", ""); err != nil {
		t.Fatal(err)
	}
	if n := recordedTouches(s) - locked; n != 1 {
		t.Fatalf("the first read took the lock %d times, want 1 (nothing known yet)", n)
	}
	if n := s.Stats().PendingAccess; n != 0 {
		t.Errorf("PendingAccess = %d, want 0 (10s after the stored time: nothing moves)", n)
	}
	if at, ok := s.access.known.knownAt(ck); !ok || at.After(put) || put.Sub(at) >= time.Second {
		t.Errorf("the table holds %v, %v; want the stored %v", at, ok, put)
	}
	clock.Advance(10 * time.Second)
	s.Touch("k", "")
	if _, err := s.Get(ctx, "k", ""); err != nil {
		t.Fatal(err)
	}
	if n := recordedTouches(s) - locked; n != 1 {
		t.Errorf("%d reads took the lock, want only the first", n)
	}
	if err := s.flushAccess(ctx); err != nil {
		t.Fatal(err)
	}
	if at, ok := storedAtime(t, s, ck); !ok || !at.Equal(put) {
		t.Errorf("stored access time = %v, %v; want the Put's %v (within the granularity)", at, ok, put)
	}
}

// TestAccess_FailedWriteMarksNothing: a flush whose transaction fails
// loses nothing (the pending time stays pending, and is written by the
// next flush), and a transaction that moved an access time and then
// rolled back leaves the table claiming nothing it wrote.
func TestAccess_FailedWriteMarksNothing(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	var fail bool
	var mu sync.Mutex
	fault := func() error {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			return errors.New("injected write failure")
		}
		return nil
	}
	s := newTestStore(t, Options{Now: clock.Now, AccessFlushInterval: time.Hour, WriteFault: fault})
	mustPut(t, s, mkrec("k", ""))
	ck := recKey("k", "")

	clock.Advance(31 * time.Second)
	read := clock.Now()
	if _, err := s.Get(ctx, "k", ""); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	fail = true
	mu.Unlock()
	if err := s.flushAccess(ctx); err == nil {
		t.Fatal("flushAccess succeeded with every write failing")
	}
	mu.Lock()
	fail = false
	mu.Unlock()
	if at, ok := s.access.known.knownAt(ck); ok && at.After(read) {
		t.Errorf("after a failed flush the table holds %v, later than the access %v", at, read)
	}
	if n := s.Stats().PendingAccess; n != 1 {
		t.Errorf("PendingAccess = %d after a failed flush, want 1 (kept)", n)
	}
	// 4s after it: within the granularity of the pending time, nothing
	// moves; the next flush writes the access that did.
	clock.Advance(4 * time.Second)
	if _, err := s.Get(ctx, "k", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.flushAccess(ctx); err != nil {
		t.Fatal(err)
	}
	if at, _ := storedAtime(t, s, ck); !at.Equal(read) {
		t.Errorf("stored access time = %v, want %v", at, read)
	}
	if n := s.Stats().PendingAccess; n != 0 {
		t.Errorf("PendingAccess = %d after the flush, want 0", n)
	}

	// A transaction that moves the access time and then aborts.
	clock.Advance(time.Hour)
	moved := clock.Now()
	before, _ := storedAtime(t, s, ck)
	err := s.do(ctx, 0, func(w *wtx) error {
		if err := w.setAtime(ck, before.UnixNano(), true, moved.UnixNano()); err != nil {
			return err
		}
		return must(errors.New("injected abort"))
	})
	if err == nil {
		t.Fatal("the aborting transaction succeeded")
	}
	if at, _ := storedAtime(t, s, ck); !at.Equal(before) {
		t.Fatalf("stored access time after the rollback = %v, want %v", at, before)
	}
	if at, ok := s.access.known.knownAt(ck); ok && at.After(before) {
		t.Errorf("after a rolled-back transaction the table holds %v, later than the stored %v", at, before)
	}
	clock.Advance(time.Second)
	if _, err := s.Get(ctx, "k", ""); err != nil {
		t.Fatal(err)
	}
	if n := s.Stats().PendingAccess; n != 1 {
		t.Errorf("PendingAccess = %d after a rolled-back transaction, want 1 (the access is 1h past the stored time)", n)
	}

	// While a transaction moves the time back (a clock that went back),
	// the table does not go on claiming the later time it held: readers
	// meanwhile would skip accesses the new time makes worth writing.
	if err := s.flushAccess(ctx); err != nil {
		t.Fatal(err)
	}
	later, _ := storedAtime(t, s, ck)
	if _, ok := s.access.known.knownAt(ck); !ok {
		t.Fatal("the flushed time is not known")
	}
	earlier := later.Add(-time.Hour)
	err = s.do(ctx, 0, func(w *wtx) error {
		if err := w.setAtime(ck, later.UnixNano(), true, earlier.UnixNano()); err != nil {
			return err
		}
		if at, ok := s.access.known.knownAt(ck); ok && at.After(earlier) {
			t.Errorf("inside the transaction moving the access time back to %v the table holds %v", earlier, at)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if at, ok := s.access.known.knownAt(ck); !ok || at.After(earlier) || earlier.Sub(at) >= time.Second {
		t.Errorf("after the commit the table holds %v, %v; want %v", at, ok, earlier)
	}
}

// TestAccess_DeleteAndReput: a deleted record's slot is forgotten, a
// re-Put makes its own time known (also with a clock that went back), and
// DeleteAll forgets every key.
func TestAccess_DeleteAndReput(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	s := newTestStore(t, Options{Now: clock.Now, AccessFlushInterval: time.Hour})
	ck := recKey("k", "")
	mustPut(t, s, mkrec("k", ""))
	if err := s.Delete(ctx, "k", ""); err != nil {
		t.Fatal(err)
	}
	if at, ok := s.access.known.knownAt(ck); ok {
		t.Errorf("after Delete the table holds %v", at)
	}
	// Re-put 100s later: that time is known.
	clock.Advance(100 * time.Second)
	mustPut(t, s, mkrec("k", ""))
	reput := clock.Now()
	clock.Advance(10 * time.Second)
	s.Touch("k", "")
	if n := s.Stats().PendingAccess; n != 0 {
		t.Errorf("PendingAccess = %d 10s after the re-Put, want 0", n)
	}
	// Delete and re-put with the clock 60s back: the table follows the
	// stored time down, so a read 35s after it is recorded.
	if err := s.Delete(ctx, "k", ""); err != nil {
		t.Fatal(err)
	}
	clock.Advance(-70 * time.Second)
	back := clock.Now()
	mustPut(t, s, mkrec("k", ""))
	if at, ok := s.access.known.knownAt(ck); !ok || at.After(back) || back.Sub(at) >= time.Second {
		t.Errorf("after a re-Put at %v (before the earlier %v) the table holds %v, %v", back, reput, at, ok)
	}
	clock.Advance(35 * time.Second)
	if _, err := s.Get(ctx, "k", ""); err != nil {
		t.Fatal(err)
	}
	if n := s.Stats().PendingAccess; n != 1 {
		t.Errorf("PendingAccess = %d 35s after the re-Put, want 1", n)
	}
	if err := s.flushAccess(ctx); err != nil {
		t.Fatal(err)
	}
	if at, _ := storedAtime(t, s, ck); !at.Equal(clock.Now()) {
		t.Errorf("stored access time = %v, want %v", at, clock.Now())
	}
	// Several keys, then DeleteAll: nothing is known afterwards.
	for i := range 10 {
		mustPut(t, s, mkrec(fmt.Sprint("d", i), ""))
	}
	if _, err := s.DeleteAll(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if at, ok := s.access.known.knownAt(recKey(fmt.Sprint("d", i), "")); ok {
			t.Errorf("after DeleteAll the table holds %v for d%d", at, i)
		}
	}
}

// TestAccess_SameOrderAsRecordingEverything runs one scripted mix of
// Gets, Touches, Puts, Deletes, Annotates, listings, flushes and
// evictions, on a fake clock that never goes back, on four stores:
//
//   - the reference: no table, and every pending access time flushed
//     before each eviction (the policy before eviction consulted pending
//     times);
//   - no table, lazy (eviction gives pending times a second chance);
//   - the default table, lazy;
//   - a table of one group of 4 slots for 30 keys (collisions all the
//     time), lazy.
//
// At every listing, each record's Meta.LastAccess must be the access
// time of a model that applies every access in order (the Put's time,
// moved to an access at least AccessGranularity later), pending or not;
// after every flush the access times stored and the lru index must be
// the same in all four, and after every eviction so must the records
// left.
func TestAccess_SameOrderAsRecordingEverything(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	const (
		nstores = 4
		maxSize = 64 << 10
		gran    = 30 * time.Second
	)
	var done [nstores]chan int
	var stores [nstores]*Store
	for i, slots := range []int{-1, -1, 0, 4} {
		done[i] = make(chan int, 4)
		stores[i] = newTestStore(t, Options{
			Now: clock.Now, AccessFlushInterval: time.Hour, MaxSize: maxSize,
			knownAtimes: slots, evictDone: done[i],
		})
	}
	names := [nstores]string{"reference (no table, flush before evicting)", "no table", "default table", "4-slot table"}
	rec := func(k string) *Record {
		r := mkrec(k, "")
		r.Body = make([]byte, 1000)
		return r
	}
	// model is every record's access time, every access applied.
	model := map[string]time.Time{}
	access := func(k string) {
		if a, ok := model[k]; ok && clock.Now().Sub(a) >= gran {
			model[k] = clock.Now()
		}
	}
	type dump struct {
		atimes map[string]int64
		lru    []string
	}
	dumpOf := func(s *Store) dump {
		d := dump{atimes: map[string]int64{}}
		err := s.db.Load().View(func(tx *bolt.Tx) error {
			if err := tx.Bucket(bucketAtime).ForEach(func(k, v []byte) error {
				d.atimes[string(k)] = int64(binary.BigEndian.Uint64(v))
				return nil
			}); err != nil {
				return err
			}
			return tx.Bucket(bucketLRU).ForEach(func(k, _ []byte) error {
				d.lru = append(d.lru, fmt.Sprintf("%d %q", binary.BigEndian.Uint64(k), k[8:]))
				return nil
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	compare := func(step int) {
		t.Helper()
		want := dumpOf(stores[0])
		for i := 1; i < nstores; i++ {
			got := dumpOf(stores[i])
			if !slices.Equal(got.lru, want.lru) || len(got.atimes) != len(want.atimes) {
				t.Fatalf("step %d: %s: lru index\n%q\nwant (%s)\n%q", step, names[i], got.lru, names[0], want.lru)
			}
			for k, ns := range want.atimes {
				if got.atimes[k] != ns {
					t.Fatalf("step %d: %s: access time of %q = %d, want %d", step, names[i], k, got.atimes[k], ns)
				}
			}
		}
	}
	listed := func(step int) {
		t.Helper()
		for i, s := range stores {
			p, err := s.Scan(ctx, ScanOptions{Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Entries) != len(model) {
				t.Fatalf("step %d: %s lists %d records, the model has %d", step, names[i], len(p.Entries), len(model))
			}
			for _, m := range p.Entries {
				if want, ok := model[m.Key]; !ok || !m.LastAccess.Equal(want) {
					t.Fatalf("step %d: %s: %q LastAccess = %v, want %v (%v)", step, names[i], m.Key, m.LastAccess, want, ok)
				}
			}
		}
	}
	all := func(f func(s *Store) error) {
		t.Helper()
		var errs [nstores]error
		for i, s := range stores {
			errs[i] = f(s)
		}
		for i := 1; i < nstores; i++ {
			if (errs[i] == nil) != (errs[0] == nil) {
				t.Fatalf("%s: %v, %s: %v", names[i], errs[i], names[0], errs[0])
			}
		}
	}
	// evictAll takes every store over MaxSize by a record "trigger", the
	// reference flushing first, waits for each eviction, compares what is
	// left, and removes the trigger again. With too little stored for the
	// trigger to survive the eviction, it does nothing (false).
	evictAll := func(step int) bool {
		t.Helper()
		bytes := stores[0].Stats().Bytes
		if bytes < maxSize/8 {
			return false
		}
		if err := stores[0].flushAccess(ctx); err != nil {
			t.Fatal(err)
		}
		for i := 1; i < nstores; i++ {
			if b := stores[i].Stats().Bytes; b != bytes {
				t.Fatalf("step %d: %s holds %d bytes, %s %d", step, names[i], b, names[0], bytes)
			}
		}
		big := mkrec("trigger", "")
		big.Body = make([]byte, maxSize-bytes+100)
		all(func(s *Store) error { return s.Put(ctx, big) })
		var left [nstores][]string
		for i, s := range stores {
			if n := <-done[i]; n == 0 {
				t.Fatalf("step %d: %s: the eviction removed nothing", step, names[i])
			}
			left[i] = keys(t, s)
		}
		for i := 1; i < nstores; i++ {
			if !slices.Equal(left[i], left[0]) {
				t.Fatalf("step %d: after eviction %s holds %q, %s %q", step, names[i], left[i], names[0], left[0])
			}
		}
		kept := map[string]bool{}
		for _, k := range left[0] {
			kept[strings.TrimSuffix(k, "|")] = true
		}
		if !kept["trigger"] {
			t.Fatalf("step %d: the trigger, the newest record, was evicted: %q (before: %d bytes)", step, left[0], bytes)
		}
		for k := range model {
			if !kept[k] {
				delete(model, k)
			}
		}
		all(func(s *Store) error { return s.Delete(ctx, "trigger", "") })
		return true
	}
	key := func(r *rand.Rand) string { return fmt.Sprintf("k%02d", r.IntN(30)) }
	for i := range 20 {
		k := fmt.Sprintf("k%02d", i)
		all(func(s *Store) error { return s.Put(ctx, rec(k)) })
		model[k] = clock.Now()
		clock.Advance(time.Second)
	}
	r := rand.New(rand.NewPCG(13, 1))
	flushes, evictions := 0, 0
	for step := range 3000 {
		switch p := r.IntN(200); {
		case p < 110:
			k := key(r)
			all(func(s *Store) error {
				_, err := s.Get(ctx, k, "")
				if errors.Is(err, ErrNotFound) {
					return nil
				}
				return err
			})
			access(k)
		case p < 140:
			k := key(r)
			all(func(s *Store) error { s.Touch(k, ""); return nil })
			access(k)
		case p < 145:
			k := key(r)
			all(func(s *Store) error {
				if err := s.Delete(ctx, k, ""); !errors.Is(err, ErrNotFound) {
					return err
				}
				return nil
			})
			delete(model, k)
		case p < 160:
			k := key(r)
			all(func(s *Store) error { return s.Put(ctx, rec(k)) })
			model[k] = clock.Now()
		case p < 166:
			k := key(r)
			all(func(s *Store) error {
				if err := s.Annotate(ctx, k, "", map[string]string{"x": fmt.Sprint(step)}); !errors.Is(err, ErrNotFound) {
					return err
				}
				return nil
			})
		case p < 180:
			listed(step)
		case p < 185:
			if evictAll(step) {
				evictions++
			}
		default:
			all(func(s *Store) error { return s.flushAccess(ctx) })
			flushes++
			compare(step)
		}
		// 0 to 3s per step, so reads fall both within and past the 30s.
		clock.Advance(time.Duration(r.IntN(4)) * time.Second)
	}
	listed(-1)
	all(func(s *Store) error { return s.flushAccess(ctx) })
	compare(-1)
	listed(-1)
	if flushes < 100 || evictions < 20 {
		t.Fatalf("only %d flushes and %d evictions in the script", flushes, evictions)
	}
	if s0, s2 := recordedTouches(stores[1]), recordedTouches(stores[2]); s2 >= s0 {
		t.Errorf("with the default table %d touches took the lock, without it %d: nothing skipped", s2, s0)
	}
	// The missing records put again, a last eviction.
	for i := range 30 {
		k := fmt.Sprintf("k%02d", i)
		if _, ok := model[k]; !ok {
			all(func(s *Store) error { return s.Put(ctx, rec(k)) })
			model[k] = clock.Now()
		}
	}
	clock.Advance(time.Second)
	if !evictAll(-1) {
		t.Fatal("too little left for a last eviction")
	}
	listed(-1)
}

// TestAccess_Concurrent reads, touches, writes and flushes at once (for
// -race), then checks that the table claims for no record a time later
// than the one stored.
func TestAccess_Concurrent(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	s := newTestStore(t, Options{Now: clock.Now, AccessFlushInterval: time.Hour, knownAtimes: 64})
	const n = 50
	name := func(i int) string { return fmt.Sprintf("c%02d", i%n) }
	for i := range n {
		mustPut(t, s, mkrec(name(i), ""))
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				k := name(i*7 + g)
				if _, err := s.Get(ctx, k, ""); err != nil && !errors.Is(err, ErrNotFound) {
					t.Error(err)
					return
				}
				s.Touch(k, "")
			}
		})
	}
	wg.Go(func() {
		for i := range 300 {
			clock.Advance(time.Second)
			var err error
			switch i % 3 {
			case 0:
				err = s.Put(ctx, mkrec(name(i*11), ""))
			case 1:
				if err = s.Delete(ctx, name(i*13), ""); errors.Is(err, ErrNotFound) {
					err = nil
				}
			default:
				err = s.flushAccess(ctx)
			}
			if err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Wait()
	if err := s.flushAccess(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		ck := recKey(name(i), "")
		at, ok := s.access.known.knownAt(ck)
		if !ok {
			continue
		}
		stored, had := storedAtime(t, s, ck)
		if !had || at.After(stored) {
			t.Errorf("%s: the table holds %v, the file %v (%v)", name(i), at, stored, had)
		}
	}
}

// TestAccess_PendingReadsLockFree: once an access has moved a record's
// access time (pending, not written), reads within the granularity of it
// take no lock, and listings show it before any flush.
func TestAccess_PendingReadsLockFree(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	s := newTestStore(t, Options{Now: clock.Now, AccessFlushInterval: time.Hour})
	mustPut(t, s, mkrec("k", "v"))
	put := clock.Now()
	ck := recKey("k", "v")
	clock.Advance(40 * time.Second)
	moved := clock.Now()
	locked := recordedTouches(s)
	if _, err := s.Get(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	if n := recordedTouches(s) - locked; n != 1 {
		t.Fatalf("the read that moves the access time took the lock %d times, want 1", n)
	}
	if at, ok := s.access.known.knownAt(ck); !ok || !at.Equal(moved) {
		t.Errorf("the table holds %v, %v; want the pending %v", at, ok, moved)
	}
	for range 5 {
		clock.Advance(5 * time.Second)
		if _, err := s.Get(ctx, "k", "v"); err != nil {
			t.Fatal(err)
		}
		s.Touch("k", "v")
	}
	if n := recordedTouches(s) - locked; n != 1 {
		t.Errorf("%d reads took the lock, want 1: those within 30s of the pending time take none", n)
	}
	if at, _ := storedAtime(t, s, ck); !at.Equal(put) {
		t.Errorf("stored access time = %v, want the Put's %v (nothing flushed yet)", at, put)
	}
	ms, err := s.Variants(ctx, "k")
	if err != nil || len(ms) != 1 || !ms[0].LastAccess.Equal(moved) {
		t.Fatalf("Variants = %+v, %v; want LastAccess %v", ms, err, moved)
	}
	p, err := s.Scan(ctx, ScanOptions{})
	if err != nil || len(p.Entries) != 1 || !p.Entries[0].LastAccess.Equal(moved) {
		t.Fatalf("Scan = %+v, %v; want LastAccess %v", p, err, moved)
	}
	// A Put afterwards: its own time, not the pending one of the record
	// it replaced.
	clock.Advance(time.Second)
	reput := clock.Now()
	mustPut(t, s, mkrec("k", "v"))
	if ms, _ := s.Variants(ctx, "k"); len(ms) != 1 || !ms[0].LastAccess.Equal(reput) {
		t.Errorf("after a re-Put LastAccess = %+v, want %v", ms, reput)
	}
	if err := s.flushAccess(ctx); err != nil {
		t.Fatal(err)
	}
	if at, _ := storedAtime(t, s, ck); !at.Equal(reput) {
		t.Errorf("after the flush the stored access time = %v, want the re-Put's %v", at, reput)
	}
	if n := s.Stats().PendingAccess; n != 0 {
		t.Errorf("PendingAccess = %d after the flush, want 0", n)
	}
}

// TestAccess_FlushInBatches: a flush of more access times than one
// transaction takes commits them in batches of at most flushBatch, and
// a purge queued between two batches commits, and returns, before the
// flush has finished.
func TestAccess_FlushInBatches(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	const n = 2*flushBatch + 500
	var steps []int
	var purged bool
	var s *Store
	s = newTestStore(t, Options{Now: clock.Now, AccessFlushInterval: time.Hour, flushStep: func(k int) {
		steps = append(steps, k)
		if len(steps) == 1 {
			left := s.Stats().PendingAccess
			if err := s.Delete(ctx, "purged", ""); err != nil {
				t.Errorf("Delete between flush batches: %v", err)
			}
			purged = true
			if left < n-flushBatch {
				t.Errorf("after the first batch only %d access times are pending, want %d", left, n-flushBatch)
			}
		}
	}})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if err := s.Put(ctx, mkrec(fmt.Sprintf("b%05d", i), "")); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	mustPut(t, s, mkrec("purged", ""))
	clock.Advance(time.Minute)
	for i := range n {
		s.Touch(fmt.Sprintf("b%05d", i), "")
	}
	if got := s.Stats().PendingAccess; got != n {
		t.Fatalf("PendingAccess = %d, want %d", got, n)
	}
	if err := s.flushAccess(ctx); err != nil {
		t.Fatal(err)
	}
	if !purged || !slices.Equal(steps, []int{flushBatch, flushBatch, 500}) {
		t.Errorf("flush batches %v (purged between: %v), want [%d %d 500]", steps, purged, flushBatch, flushBatch)
	}
	if got := s.Stats().PendingAccess; got != 0 {
		t.Errorf("PendingAccess = %d after the flush, want 0", got)
	}
	for _, i := range []int{0, n / 2, n - 1} {
		if at, _ := storedAtime(t, s, recKey(fmt.Sprintf("b%05d", i), "")); !at.Equal(clock.Now()) {
			t.Errorf("b%05d: stored access time %v, want %v", i, at, clock.Now())
		}
	}
}

// TestEvict_PendingAccessSecondChance: eviction does not flush first; the
// record with the oldest stored access time but a later pending one is
// re-timed and kept, and the next oldest evicted.
func TestEvict_PendingAccessSecondChance(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	done := make(chan int, 1)
	const maxSize = 16 << 10
	s := newTestStore(t, Options{Now: clock.Now, AccessFlushInterval: time.Hour, MaxSize: maxSize, evictDone: done})
	rec := func(k string, n int) *Record {
		r := mkrec(k, "")
		r.Body = make([]byte, n)
		return r
	}
	mustPut(t, s, rec("a", 4000))
	clock.Advance(time.Second)
	mustPut(t, s, rec("b", 4000))
	clock.Advance(time.Minute)
	read := clock.Now()
	if _, err := s.Get(ctx, "a", ""); err != nil { // pending, not written
		t.Fatal(err)
	}
	commits := s.Stats().Commits
	clock.Advance(time.Second)
	mustPut(t, s, rec("c", 9000)) // over 16 KiB: one of a, b goes
	if n := <-done; n != 1 {
		t.Fatalf("evicted %d records, want 1", n)
	}
	if got := keys(t, s); !slices.Equal(got, []string{"a|", "c|"}) {
		t.Errorf("left %q, want a (read after b was put) and c", got)
	}
	if at, _ := storedAtime(t, s, recKey("a", "")); !at.Equal(read) {
		t.Errorf("a's stored access time = %v, want the pending %v written by the eviction", at, read)
	}
	if c := s.Stats().Commits - commits; c != 2 {
		t.Errorf("%d commits for the Put and the eviction, want 2 (no flush first)", c)
	}
	if n := s.Stats().PendingAccess; n != 0 {
		t.Errorf("PendingAccess = %d after the eviction wrote it, want 0", n)
	}
}

// TestAccess_TouchOpensNoTransaction: a Touch the table cannot decide
// (here: no table) opens no read transaction, since it may run inside one
// (a Lookup's choose: a read transaction opened inside another can
// deadlock against a writer re-mapping the file); it is held and decided
// in order by the next read, listing or flush.
func TestAccess_TouchOpensNoTransaction(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	s := newTestStore(t, Options{Now: clock.Now, AccessFlushInterval: time.Hour, knownAtimes: -1})
	mustPut(t, s, mkrec("k", ""))
	ck := recKey("k", "")
	txs := func() int { return s.db.Load().Stats().TxN }
	before := txs()
	clock.Advance(10 * time.Second) // within 30s of the Put: changes nothing
	s.Touch("k", "")
	clock.Advance(25 * time.Second) // 35s after the Put: moves it
	moved := clock.Now()
	s.Touch("k", "")
	clock.Advance(20 * time.Second) // 20s after that: nothing
	s.Touch("k", "")
	if n := txs() - before; n != 0 {
		t.Errorf("three Touches opened %d read transactions, want 0", n)
	}
	var inChoose error
	_, err := s.Lookup(ctx, "k", func([]Meta) (string, bool) {
		n := txs()
		s.Touch("k", "")
		if txs() != n {
			inChoose = errors.New("Touch inside choose opened a read transaction")
		}
		return "", false
	})
	if !errors.Is(err, ErrNotFound) || inChoose != nil {
		t.Fatalf("Lookup = %v; %v", err, inChoose)
	}
	ms, err := s.Variants(ctx, "k")
	if err != nil || len(ms) != 1 || !ms[0].LastAccess.Equal(moved) {
		t.Fatalf("Variants = %+v, %v; want LastAccess %v (the Touch 35s after the Put)", ms, err, moved)
	}
	if err := s.flushAccess(ctx); err != nil {
		t.Fatal(err)
	}
	if at, _ := storedAtime(t, s, ck); !at.Equal(moved) {
		t.Errorf("stored access time = %v, want %v", at, moved)
	}
}
