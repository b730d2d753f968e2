package firstrender_test

// This file is the black-box, end-to-end test of firstrender as its users
// meet it. For now it covers the page store alone: open, put, close, reopen,
// read back, purge, reopen. Later issues extend it to the whole server
// (origin -> server -> bbolt file -> restart -> admin purge).

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/firstrender/firstrender/store"
)

func TestPageStore_SurvivesRestartAndPurge(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "firstrender.db")
	opts := store.Options{Timeout: time.Second}

	open := func(t *testing.T) *store.Store {
		t.Helper()
		s, err := store.Open(path, opts)
		if err != nil {
			t.Fatalf("Open(%q) = %v, want nil error", path, err)
		}
		return s
	}

	stored := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	records := []*store.Record{
		{
			Key: "https://example.com/", Status: 200,
			Header:     map[string][]string{"Content-Type": {"text/html; charset=utf-8"}},
			Body:       []byte("<html><body data-phx-main>home</body></html>"),
			StoredTime: stored, Tags: []string{"page", "home"},
		},
		{
			Key: "https://example.com/blog/1", Variant: "accept-language=en", Status: 200,
			Header:     map[string][]string{"Content-Type": {"text/html"}, "Vary": {"Accept-Language"}},
			Body:       []byte("<p>post one (en)</p>"),
			StoredTime: stored, Tags: []string{"page", "blog"},
		},
		{
			Key: "https://example.com/blog/1", Variant: "accept-language=de", Status: 200,
			Header:     map[string][]string{"Content-Type": {"text/html"}, "Vary": {"Accept-Language"}},
			Body:       []byte("<p>Beitrag eins (de)</p>"),
			StoredTime: stored, Tags: []string{"page", "blog"},
			Annotations: map[string]string{"liveview.expires": "2026-11-26T12:00:00Z"},
		},
		{
			Key: "https://example.com/blog/2", Status: 404,
			Body:       []byte("not found"),
			StoredTime: stored, Tags: []string{"blog"},
		},
	}

	// Open a fresh file and fill it.
	s := open(t)
	for _, r := range records {
		if err := s.Put(ctx, r); err != nil {
			t.Fatalf("Put(%q, %q) = %v, want nil", r.Key, r.Variant, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v, want nil", err)
	}

	// Reopen: everything is read back exactly.
	s = open(t)
	if got, want := s.Stats().Records, int64(len(records)); got != want {
		t.Errorf("after reopen Stats().Records = %d, want %d", got, want)
	}
	for _, want := range records {
		got, err := s.Get(ctx, want.Key, want.Variant)
		if err != nil {
			t.Fatalf("after reopen Get(%q, %q) = %v, want nil", want.Key, want.Variant, err)
		}
		if got.Status != want.Status || !bytes.Equal(got.Body, want.Body) ||
			!got.StoredTime.Equal(want.StoredTime) || len(got.Tags) != len(want.Tags) {
			t.Errorf("after reopen Get(%q, %q) = status %d body %q stored %v tags %q, want %d %q %v %q",
				want.Key, want.Variant, got.Status, got.Body, got.StoredTime, got.Tags,
				want.Status, want.Body, want.StoredTime, want.Tags)
		}
		for name, vals := range want.Header {
			if g := got.Header[name]; len(g) != len(vals) || g[0] != vals[0] {
				t.Errorf("after reopen Get(%q, %q).Header[%q] = %q, want %q", want.Key, want.Variant, name, g, vals)
			}
		}
		for k, v := range want.Annotations {
			if g := got.Annotations[k]; g != v {
				t.Errorf("after reopen Get(%q, %q).Annotations[%q] = %q, want %q", want.Key, want.Variant, k, g, v)
			}
		}
	}
	variants, err := s.Variants(ctx, "https://example.com/blog/1")
	if err != nil || len(variants) != 2 {
		t.Errorf("Variants(blog/1) = %d entries, %v; want 2, nil", len(variants), err)
	}

	// Purge: by tag, then one key; both acknowledged before Close.
	n, err := s.DeleteTag(ctx, "blog")
	if err != nil || n != 3 {
		t.Errorf("DeleteTag(blog) = %d, %v; want 3, nil", n, err)
	}
	if err := s.Delete(ctx, "https://example.com/", ""); err != nil {
		t.Errorf("Delete(home) = %v, want nil", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v, want nil", err)
	}

	// Reopen: the purges held.
	s = open(t)
	defer s.Close()
	for _, r := range records {
		if _, err := s.Get(ctx, r.Key, r.Variant); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("after purge and reopen Get(%q, %q) = %v, want ErrNotFound", r.Key, r.Variant, err)
		}
	}
	if st := s.Stats(); st.Records != 0 || st.Bytes != 0 {
		t.Errorf("after purge and reopen Stats() = %d records, %d bytes; want 0, 0", st.Records, st.Bytes)
	}
	page, err := s.Scan(ctx, store.ScanOptions{Limit: 10})
	if err != nil || len(page.Entries) != 0 || page.Next != "" {
		t.Errorf("after purge and reopen Scan() = %d entries, next %q, %v; want 0, \"\", nil", len(page.Entries), page.Next, err)
	}
}

// TestPageStore_LockedWhileOpen shows what the offline admin tool meets when
// a server holds the database: a clear, matchable error naming the file, not a hang.
func TestPageStore_LockedWhileOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "firstrender.db")
	s, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatalf("Open(%q) = %v", path, err)
	}
	defer s.Close()

	start := time.Now()
	_, err = store.Open(path, store.Options{ReadOnly: true, Timeout: 100 * time.Millisecond})
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("second read-only Open(%q) = %v, want ErrLocked", path, err)
	}
	if !bytes.Contains([]byte(err.Error()), []byte(path)) {
		t.Errorf("error %q does not name the path %q", err, path)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("locked Open took %v, want about the 100ms timeout", d)
	}
}
