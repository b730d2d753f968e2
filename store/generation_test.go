package store

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestStore_Generation runs each kind of operation in turn on one store and
// checks by how much it advanced Generation: every committed change to
// records by one, reads and access-time flushes not at all.
func TestStore_Generation(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	s := newTestStore(t, Options{Now: clock.Now})
	if got := s.Generation(); got != 1 {
		t.Fatalf("Generation() after Open = %d, want 1", got)
	}
	tests := []struct {
		name string
		do   func() error
		want uint64 // advance
	}{
		{"Put", func() error { return s.Put(ctx, mkrec("a", "", "t1")) }, 1},
		{"Put variant", func() error { return s.Put(ctx, mkrec("a", "v2")) }, 1},
		{"Put replace", func() error { return s.Put(ctx, mkrec("a", "", "t1")) }, 1},
		{"Get", func() error { _, err := s.Get(ctx, "a", ""); return err }, 0},
		{"Get missing", func() error {
			if _, err := s.Get(ctx, "nope", ""); !errors.Is(err, ErrNotFound) {
				return fmt.Errorf("Get(nope) = %v, want ErrNotFound", err)
			}
			return nil
		}, 0},
		{"Scan", func() error { _, err := s.Scan(ctx, ScanOptions{}); return err }, 0},
		{"Variants", func() error { _, err := s.Variants(ctx, "a"); return err }, 0},
		{"Stats", func() error { s.Stats(); return nil }, 0},
		{"access-time flush", func() error { return s.flushAccess(ctx) }, 0},
		{"Annotate", func() error { return s.Annotate(ctx, "a", "", map[string]string{"x": "1"}) }, 1},
		{"Annotate missing", func() error {
			if err := s.Annotate(ctx, "nope", "", map[string]string{"x": "1"}); !errors.Is(err, ErrNotFound) {
				return fmt.Errorf("Annotate(nope) = %v, want ErrNotFound", err)
			}
			return nil
		}, 0},
		{"Delete", func() error { return s.Delete(ctx, "a", "v2") }, 1},
		{"Delete missing", func() error {
			if err := s.Delete(ctx, "a", "v2"); !errors.Is(err, ErrNotFound) {
				return fmt.Errorf("Delete(a, v2) again = %v, want ErrNotFound", err)
			}
			return nil
		}, 0},
		{"DeleteKey", func() error { return expectN(s.DeleteKey(ctx, "a"))(1) }, 1},
		{"Put b/1", func() error { return s.Put(ctx, mkrec("b/1", "", "t2")) }, 1},
		{"DeletePrefix", func() error { return expectN(s.DeletePrefix(ctx, "b/"))(1) }, 1},
		{"DeletePrefix none", func() error { return expectN(s.DeletePrefix(ctx, "b/"))(0) }, 0},
		{"Put c", func() error { return s.Put(ctx, mkrec("c", "", "t3")) }, 1},
		{"DeleteTag", func() error { return expectN(s.DeleteTag(ctx, "t3"))(1) }, 1},
		{"Put expiring", func() error {
			r := mkrec("d", "")
			r.Expires = clock.Now().Add(time.Second)
			return s.Put(ctx, r)
		}, 1},
		{"RemoveExpired none due", func() error { return expectN(s.RemoveExpired(ctx, clock.Now()))(0) }, 0},
		{"RemoveExpired", func() error { return expectN(s.RemoveExpired(ctx, clock.Now().Add(time.Hour)))(1) }, 1},
		{"Put e", func() error { return s.Put(ctx, mkrec("e", "")) }, 1},
		{"DeleteAll", func() error { return expectN(s.DeleteAll(ctx))(1) }, 1},
	}
	for _, tt := range tests {
		before := s.Generation()
		if err := tt.do(); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := s.Generation() - before; got != tt.want {
			t.Errorf("%s: Generation advanced by %d, want %d", tt.name, got, tt.want)
		}
	}
}

// expectN turns a (count, error) result into a check of the count.
func expectN(n int, err error) func(want int) error {
	return func(want int) error {
		if err != nil {
			return err
		}
		if n != want {
			return fmt.Errorf("removed %d records, want %d", n, want)
		}
		return nil
	}
}

// TestStore_Generation_Background checks that the background eviction and
// expiry sweeps advance Generation when they remove records.
func TestStore_Generation_Background(t *testing.T) {
	t.Parallel()
	t.Run("eviction", func(t *testing.T) {
		done := make(chan int, 16)
		body := make([]byte, 1000)
		s := newTestStore(t, Options{MaxSize: 5000, evictDone: done})
		// Fill to just under MaxSize (no eviction can start), then one Put
		// that goes over: the eviction cannot run before before is read.
		var before uint64
		size := int64(0)
		for i := 0; ; i++ {
			r := mkrec(fmt.Sprintf("k%02d", i), "")
			r.Body = body
			if last := s.Stats().Bytes; size > 0 && last+size > s.opts.MaxSize {
				before = s.Generation()
				mustPut(t, s, r) // this Put starts an eviction
				break
			}
			mustPut(t, s, r)
			if size == 0 {
				size = s.Stats().Bytes // every record has the same size
			}
		}
		if n := <-done; n == 0 {
			t.Fatalf("eviction removed nothing")
		}
		// One for the Put, one for the eviction's transaction.
		if got := s.Generation() - before; got != 2 {
			t.Errorf("Put + eviction advanced Generation by %d, want 2", got)
		}
	})
	t.Run("expiry", func(t *testing.T) {
		clock := newFakeClock()
		done := make(chan int, 16)
		s := newTestStore(t, Options{ExpireInterval: time.Millisecond, Now: clock.Now, expireDone: done})
		r := mkrec("k", "")
		r.Expires = clock.Now().Add(time.Second)
		mustPut(t, s, r)
		before := s.Generation()
		clock.Advance(time.Hour)
		deadline := time.After(10 * time.Second)
		for removed := false; !removed; {
			select {
			case n := <-done:
				removed = n > 0
			case <-deadline:
				t.Fatal("no expiry sweep removed the record within 10s")
			}
		}
		if got := s.Generation() - before; got != 1 {
			t.Errorf("expiry sweep advanced Generation by %d, want 1", got)
		}
	})
}

// TestStore_Generation_Concurrent reads Generation while writers commit:
// each reader must see it never decrease, and after the writers are done it
// must have advanced by one per committed change at most and at least once.
// With -race it also checks that Generation needs no lock.
func TestStore_Generation_Concurrent(t *testing.T) {
	t.Parallel()
	s := newTestStore(t, Options{})
	start := s.Generation()
	const writers, puts = 4, 50
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			last := s.Generation()
			for {
				select {
				case <-stop:
					return
				default:
				}
				g := s.Generation()
				if g < last {
					t.Errorf("Generation went back from %d to %d", last, g)
					return
				}
				last = g
			}
		}()
	}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range puts {
				before := s.Generation()
				if err := s.Put(ctx, mkrec(fmt.Sprintf("w%d/%d", w, i), "")); err != nil {
					t.Errorf("Put = %v", err)
					return
				}
				if after := s.Generation(); after <= before {
					t.Errorf("Put returned with Generation %d, was %d before it", after, before)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	st := s.Stats()
	got := s.Generation() - start
	if got == 0 || int64(got) > st.Commits {
		t.Errorf("Generation advanced by %d over %d commits of %d puts, want 1..%d", got, st.Commits, writers*puts, st.Commits)
	}
}

// TestStore_Put_BufferReuse: Put encodes into pooled buffers that bbolt
// reads until the commit. Many concurrent Puts of different sizes and
// contents (so buffers are reused, grown and shared by one batch) must each
// store exactly their own bytes, also when a Put fails with ErrTooLarge.
func TestStore_Put_BufferReuse(t *testing.T) {
	t.Parallel()
	const limit = 40 << 10
	s := newTestStore(t, Options{MaxObjectSize: limit})
	const writers, puts = 16, 12
	body := func(w, i int) []byte {
		b := make([]byte, (w*7919+i*104729)%(30<<10))
		for j := range b {
			b[j] = byte(w*31 + i*7 + j)
		}
		return b
	}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range puts {
				r := mkrec(fmt.Sprintf("w%02d/%02d", w, i), fmt.Sprint(i%3), fmt.Sprintf("t%d", w))
				r.Body = body(w, i)
				if err := s.Put(ctx, r); err != nil {
					t.Errorf("Put(%s) = %v", r.Key, err)
					return
				}
				tooBig := mkrec(r.Key+"/big", "")
				tooBig.Body = make([]byte, limit)
				if err := s.Put(ctx, tooBig); !errors.Is(err, ErrTooLarge) {
					t.Errorf("Put(%s) = %v, want ErrTooLarge", tooBig.Key, err)
				}
			}
		}()
	}
	wg.Wait()
	for w := range writers {
		for i := range puts {
			key, variant := fmt.Sprintf("w%02d/%02d", w, i), fmt.Sprint(i%3)
			got, err := s.Get(ctx, key, variant)
			if err != nil {
				t.Fatalf("Get(%s, %s) = %v", key, variant, err)
			}
			if want := body(w, i); !bytes.Equal(got.Body, want) || got.Key != key || got.Variant != variant ||
				!slices.Equal(got.Tags, []string{fmt.Sprintf("t%d", w)}) {
				t.Errorf("Get(%s, %s) = key %q variant %q tags %q, %d body bytes; want its own, %d bytes",
					key, variant, got.Key, got.Variant, got.Tags, len(got.Body), len(want))
			}
		}
	}
	if st := s.Stats(); st.Records != writers*puts {
		t.Errorf("Stats().Records = %d, want %d", st.Records, writers*puts)
	}
}
