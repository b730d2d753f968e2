package store

import (
	"context"
	"slices"
	"sync"
	"testing"
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
