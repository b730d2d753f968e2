package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
)

// TestWalk: a walk visits exactly the records its prefix and tag select,
// in key order, across page boundaries (walkPage records a page), and
// stops when fn says so or the context ends.
func TestWalk(t *testing.T) {
	s := newTestStore(t, Options{})
	const n = 2*walkPage + 17
	var want, wantTagged []string
	for i := range n {
		key := fmt.Sprintf("/a/%05d", i)
		if i%3 == 0 {
			key = fmt.Sprintf("/b/%05d", i)
		}
		var tags []string
		if i%7 == 0 {
			tags = []string{"seven"}
		}
		if err := s.Put(ctx, pageRec(key, "", 64, tags...)); err != nil {
			t.Fatal(err)
		}
		if key[:3] == "/a/" {
			want = append(want, key)
			if tags != nil {
				wantTagged = append(wantTagged, key)
			}
		}
	}
	slices.Sort(want)
	slices.Sort(wantTagged)
	walk := func(prefix, tag string, stop int) []string {
		t.Helper()
		var got []string
		err := Walk(ctx, s, prefix, tag, func(m *Meta) bool {
			got = append(got, m.Key)
			return len(got) != stop
		})
		if err != nil {
			t.Fatalf("Walk(%q, %q) = %v", prefix, tag, err)
		}
		return got
	}
	if got := walk("/a/", "", -1); !slices.Equal(got, want) {
		t.Errorf("prefix /a/: %d keys (first %v), want %d in key order", len(got), got[:min(3, len(got))], len(want))
	}
	if got := walk("/a/", "seven", -1); !slices.Equal(got, wantTagged) {
		t.Errorf("prefix /a/, tag seven: %d keys, want %d", len(got), len(wantTagged))
	}
	if got := walk("", "", -1); len(got) != n {
		t.Errorf("everything: %d keys, want %d", len(got), n)
	}
	if got := walk("/a/", "", walkPage+1); !slices.Equal(got, want[:walkPage+1]) {
		t.Errorf("stopped after %d: got %d keys", walkPage+1, len(got))
	}
	if got := walk("/c/", "", -1); len(got) != 0 {
		t.Errorf("prefix /c/: %d keys, want none", len(got))
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := Walk(cctx, s, "", "", func(*Meta) bool { return true }); !errors.Is(err, cctx.Err()) {
		t.Errorf("Walk with an ended context = %v, want %v", err, cctx.Err())
	}
}

// TestAnnotateEach: every record the walk yields is annotated, records
// gone meanwhile are skipped without failing, and the walk's own error
// is returned.
func TestAnnotateEach(t *testing.T) {
	s := newTestStore(t, Options{})
	const n = 300
	for i := range n {
		if err := s.Put(ctx, pageRec(fmt.Sprintf("/p/%03d", i), "", 64)); err != nil {
			t.Fatal(err)
		}
	}
	mark := map[string]string{"test.mark": "1"}
	got, err := s.AnnotateEach(ctx, mark, func(visit func(*Meta) bool) error {
		if !visit(&Meta{Key: "/p/gone"}) { // never stored: skipped
			return nil
		}
		return Walk(ctx, s, "/p/", "", visit)
	})
	if err != nil || got != n {
		t.Fatalf("AnnotateEach = %d, %v; want %d, nil", got, err, n)
	}
	for _, k := range []string{"/p/000", "/p/150", "/p/299"} {
		r, err := s.Get(ctx, k, "")
		if err != nil {
			t.Fatal(err)
		}
		if r.Annotations["test.mark"] != "1" {
			t.Errorf("%s: annotations %v, want test.mark=1", k, r.Annotations)
		}
	}
	werr := errors.New("walk failed")
	if _, err := s.AnnotateEach(ctx, mark, func(func(*Meta) bool) error { return werr }); !errors.Is(err, werr) {
		t.Errorf("AnnotateEach with a failing walk = %v, want %v", err, werr)
	}
}
