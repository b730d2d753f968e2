package store

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// Watchers learn of every committed change to records before the write
// returns, by record; DeleteAll is "all"; a stopped watcher hears nothing.
func TestWatch_ChangesBeforeReturn(t *testing.T) {
	t.Parallel()
	s := newTestStore(t, Options{})
	ctx := context.Background()
	var mu sync.Mutex
	var got []string
	stop := s.Watch(func(all bool, keys []RecordKey) {
		mu.Lock()
		defer mu.Unlock()
		if all {
			got = append(got, "ALL")
		}
		for _, k := range keys {
			got = append(got, k.Key+"|"+k.Variant)
		}
	})
	take := func() []string {
		mu.Lock()
		defer mu.Unlock()
		g := got
		got = nil
		slices.Sort(g)
		return g
	}
	expect := func(what string, want ...string) {
		t.Helper()
		if g := take(); !slices.Equal(g, want) {
			t.Fatalf("%s: watcher saw %q, want %q", what, g, want)
		}
	}
	put := func(key, variant string, tags ...string) {
		t.Helper()
		if err := s.Put(ctx, &Record{Key: key, Variant: variant, Status: 200, Body: []byte("b"), Tags: tags}); err != nil {
			t.Fatal(err)
		}
	}
	put("a", "")
	expect("Put", "a|")
	put("a", "v=1", "t")
	put("b", "", "t")
	expect("Puts", "a|v=1", "b|")
	s.Touch("a", "")
	if err := s.flushAccess(ctx); err != nil {
		t.Fatal(err)
	}
	expect("access-time flush")
	if err := s.Annotate(ctx, "a", "", map[string]string{"x.y": "1"}); err != nil {
		t.Fatal(err)
	}
	expect("Annotate", "a|")
	if _, err := s.DeleteTag(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	expect("DeleteTag", "a|v=1", "b|")
	put("c", "")
	take()
	if _, err := s.DeletePrefix(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	expect("DeletePrefix", "c|")
	if _, err := s.DeleteAll(ctx); err != nil {
		t.Fatal(err)
	}
	expect("DeleteAll", "ALL")
	stop()
	put("d", "")
	expect("after stop")
}

// Every record of commits that change many records at once is reported
// exactly once, key and variant apart, and the strings a watcher got stay
// what they were after later commits (the change list's memory is reused
// from one transaction to the next).
func TestWatch_ManyChangesPerCommit(t *testing.T) {
	t.Parallel()
	s := newTestStore(t, Options{CommitDelay: 5 * time.Millisecond})
	ctx := context.Background()
	var mu sync.Mutex
	var got []string
	var kept []RecordKey
	stop := s.Watch(func(all bool, keys []RecordKey) {
		mu.Lock()
		defer mu.Unlock()
		if all {
			t.Error("a batch of puts reported as all")
		}
		for _, k := range keys {
			got = append(got, k.Key+"|"+k.Variant)
		}
		kept = append(kept, keys...)
	})
	defer stop()
	var want []string
	for round := range 3 {
		var wg sync.WaitGroup
		for i := range 200 {
			key := fmt.Sprintf("http://127.0.0.1/round%d/page-with-a-longer-path-%d", round, i)
			variant := ""
			if i%3 == 0 {
				variant = fmt.Sprintf("accept-encoding=gzip;n=%d", i)
			}
			want = append(want, key+"|"+variant)
			wg.Go(func() {
				if err := s.PutDeferred(ctx, &Record{Key: key, Variant: variant, Status: 200, Body: []byte("b")}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("watchers saw %d changes, want %d (first: %q / %q)", len(got), len(want), got[:min(3, len(got))], want[:3])
	}
	again := make([]string, len(kept))
	for i, k := range kept {
		again[i] = k.Key + "|" + k.Variant
	}
	slices.Sort(again)
	if !slices.Equal(again, want) {
		t.Fatal("keys a watcher kept changed after later commits")
	}
	if st := s.Stats(); st.Commits >= int64(len(want)) {
		t.Fatalf("%d commits for %d puts: the changes were not batched, the test shows nothing", st.Commits, len(want))
	}
}
