package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

func putN(t *testing.T, s *Store, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if err := s.Put(context.Background(), &Record{Key: k, Status: 200, Body: []byte(k), Tags: []string{"t-" + k[len(k)-1:]}}); err != nil {
			t.Fatalf("Put(%q) = %v", k, err)
		}
	}
}

func present(s *Store, key, variant string) bool {
	_, err := s.Get(context.Background(), key, variant)
	return err == nil
}

func TestStore_ApplyInvalidations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestStore(t, Options{chunk: 3}) // steps of 3 cross step boundaries
	var keys []string
	for i := range 10 {
		keys = append(keys, fmt.Sprintf("https://a.test/p/%d", i))
	}
	putN(t, s, keys...)
	putN(t, s, "https://b.test/x1", "https://b.test/x2")
	if err := s.Put(ctx, &Record{Key: "https://b.test/x1", Variant: "gzip", Status: 200}); err != nil {
		t.Fatal(err)
	}

	batch := []Sequenced{
		{Seq: 1, Inv: Invalidation{Keys: []string{"https://b.test/x1"}}},
		{Seq: 2, Inv: Invalidation{Prefix: "https://a.test/p/"}},
		{Seq: 5, Inv: Invalidation{Tag: "t-2"}},
	}
	n, err := s.ApplyInvalidations(ctx, batch)
	// x1 (2 variants) + 10 under the prefix + x2 (tag t-2; a.test/p/2 is gone already).
	if err != nil || n != 13 {
		t.Fatalf("ApplyInvalidations = %d, %v; want 13, nil", n, err)
	}
	for i, want := range []int{2, 10, 1} {
		if batch[i].Count != want {
			t.Errorf("batch[%d].Count = %d, want %d (the prefix crosses steps of 3)", i, batch[i].Count, want)
		}
	}
	if got := s.AppliedSequence(); got != 5 {
		t.Errorf("AppliedSequence() = %d, want 5", got)
	}
	if st := s.Stats(); st.Records != 0 {
		t.Errorf("Stats().Records = %d after the purges, want 0", st.Records)
	}

	// Idempotent: a redelivered sequence is a no-op, even for a record stored since.
	putN(t, s, "https://b.test/x1")
	if n, err := s.ApplyInvalidation(ctx, 5, Invalidation{Keys: []string{"https://b.test/x1"}}); n != 0 || err != nil {
		t.Errorf("ApplyInvalidation(5) again = %d, %v; want 0, nil", n, err)
	}
	if !present(s, "https://b.test/x1", "") {
		t.Error("a redelivered (already applied) sequence deleted a record stored after it")
	}
	// Sequence 0 applies without moving the applied sequence.
	if n, err := s.ApplyInvalidation(ctx, 0, Invalidation{Keys: []string{"https://b.test/x1"}}); n != 1 || err != nil {
		t.Errorf("ApplyInvalidation(0) = %d, %v; want 1, nil", n, err)
	}
	if got := s.AppliedSequence(); got != 5 {
		t.Errorf("AppliedSequence() = %d after a local apply, want 5", got)
	}

	// The sequence survives a reopen.
	path := s.Path()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if got := s2.AppliedSequence(); got != 5 {
		t.Errorf("AppliedSequence() after reopen = %d, want 5", got)
	}
}

func TestStore_ApplyInvalidations_Invalid(t *testing.T) {
	t.Parallel()
	s := newTestStore(t, Options{})
	ctx := context.Background()
	tests := []struct {
		name  string
		batch []Sequenced
	}{
		{"zero sequence", []Sequenced{{Seq: 0, Inv: Invalidation{All: true}}}},
		{"sequences must increase", []Sequenced{{Seq: 3, Inv: Invalidation{All: true}}, {Seq: 3, Inv: Invalidation{All: true}}}},
		{"no selector", []Sequenced{{Seq: 1}}},
		{"two selectors", []Sequenced{{Seq: 1, Inv: Invalidation{Prefix: "a", Tag: "b"}}}},
		{"key with NUL", []Sequenced{{Seq: 1, Inv: Invalidation{Keys: []string{"a\x00b"}}}}},
		{"empty key", []Sequenced{{Seq: 1, Inv: Invalidation{Keys: []string{""}}}}},
		{"tag with NUL", []Sequenced{{Seq: 1, Inv: Invalidation{Tag: "a\x00"}}}},
		{"soft all", []Sequenced{{Seq: 1, Inv: Invalidation{All: true, Mark: map[string]string{"x": "y"}}}}},
	}
	for _, tt := range tests {
		if _, err := s.ApplyInvalidations(ctx, tt.batch); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: ApplyInvalidations = %v, want ErrInvalid", tt.name, err)
		}
	}
	if got := s.AppliedSequence(); got != 0 {
		t.Errorf("AppliedSequence() = %d after refused batches, want 0", got)
	}
}

func TestStore_ApplyInvalidation_Soft(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestStore(t, Options{chunk: 2})
	putN(t, s, "https://a.test/1", "https://a.test/2", "https://a.test/3", "https://c.test/1")
	mark := map[string]string{"soft": "yes"}
	n, err := s.ApplyInvalidation(ctx, 1, Invalidation{Prefix: "https://a.test/", Mark: mark})
	if err != nil || n != 3 {
		t.Fatalf("soft prefix = %d, %v; want 3, nil", n, err)
	}
	for _, k := range []string{"https://a.test/1", "https://a.test/2", "https://a.test/3"} {
		r, err := s.Get(ctx, k, "")
		if err != nil {
			t.Fatalf("Get(%q) after soft purge = %v, want the record kept", k, err)
		}
		if r.Annotations["soft"] != "yes" || string(r.Body) != k {
			t.Errorf("Get(%q) = annotations %v body %q; want soft=yes and the body kept", k, r.Annotations, r.Body)
		}
	}
	if r, _ := s.Get(ctx, "https://c.test/1", ""); r == nil || r.Annotations["soft"] != "" {
		t.Error("soft purge marked a record outside its prefix")
	}
	// Soft by tag, through the index (tags end in the key's last character).
	if n, err := s.ApplyInvalidation(ctx, 2, Invalidation{Tag: "t-1", Mark: map[string]string{"soft": "2"}}); err != nil || n != 2 {
		t.Errorf("soft tag = %d, %v; want 2, nil", n, err)
	}
}

func TestStore_Epoch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := func() time.Time { return clock }
	s := newTestStore(t, Options{Now: now, chunk: 2})
	putN(t, s, "https://a.test/1", "https://a.test/2", "https://a.test/3")
	gen := s.Generation()
	n, err := s.ApplyInvalidation(ctx, 7, Invalidation{All: true})
	if err != nil || n != 3 {
		t.Fatalf("ApplyInvalidation(all) = %d, %v; want 3, nil", n, err)
	}
	if s.Generation() == gen {
		t.Error("the epoch did not advance Generation: in-memory copies would outlive it")
	}
	if !s.Epoch().Equal(clock) {
		t.Errorf("Epoch() = %v, want %v", s.Epoch(), clock)
	}
	for _, k := range []string{"https://a.test/1", "https://a.test/2", "https://a.test/3"} {
		if _, err := s.Get(ctx, k, ""); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q) after the epoch = %v, want ErrNotFound", k, err)
		}
	}
	clock = clock.Add(time.Second)
	putN(t, s, "https://a.test/new")
	if !present(s, "https://a.test/new", "") {
		t.Error("a record stored after the epoch is not served")
	}
	// A record whose StoredTime was taken before the epoch is hidden too.
	if err := s.Put(ctx, &Record{Key: "https://a.test/old", Status: 200, StoredTime: clock.Add(-2 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	if present(s, "https://a.test/old", "") {
		t.Error("a record stored with a StoredTime before the epoch is served")
	}
	swept, err := s.SweepEpoch(ctx)
	if err != nil || swept != 4 {
		t.Errorf("SweepEpoch() = %d, %v; want 4, nil", swept, err)
	}
	if st := s.Stats(); st.Records != 1 {
		t.Errorf("Stats().Records = %d after the sweep, want 1", st.Records)
	}
	// The epoch survives a reopen.
	path := s.Path()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(path, Options{NoSync: true, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if !s2.Epoch().Equal(clock.Add(-time.Second)) || s2.AppliedSequence() != 7 {
		t.Errorf("after reopen Epoch() = %v, AppliedSequence() = %d; want %v, 7", s2.Epoch(), s2.AppliedSequence(), clock.Add(-time.Second))
	}
	// A clock that stepped back never moves the epoch back.
	clock = clock.Add(-time.Hour)
	if _, err := s2.ApplyInvalidation(ctx, 8, Invalidation{All: true}); err != nil {
		t.Fatal(err)
	}
	if !s2.Epoch().Equal(clock.Add(time.Hour - time.Second)) {
		t.Errorf("Epoch() = %v after a purge-all with the clock an hour back, want it kept", s2.Epoch())
	}
}

func TestStore_ResetCluster(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestStore(t, Options{})
	putN(t, s, "https://a.test/1", "https://a.test/2")
	if _, err := s.ApplyInvalidation(ctx, 40, Invalidation{Keys: []string{"https://x.test/"}}); err != nil {
		t.Fatal(err)
	}
	n, err := s.ResetCluster(ctx, "S@2", 3)
	if err != nil || n != 2 {
		t.Fatalf("ResetCluster = %d, %v; want 2, nil", n, err)
	}
	if s.AppliedSequence() != 3 || s.ClusterStream() != "S@2" {
		t.Errorf("after reset: applied %d stream %q; want 3, S@2", s.AppliedSequence(), s.ClusterStream())
	}
	if present(s, "https://a.test/1", "") {
		t.Error("a record from before ResetCluster is served")
	}
	if err := s.SetClusterStream(ctx, "S@3"); err != nil || s.ClusterStream() != "S@3" || s.AppliedSequence() != 3 {
		t.Errorf("SetClusterStream = %v; stream %q applied %d", err, s.ClusterStream(), s.AppliedSequence())
	}
}

func TestStore_Outbox(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "o.db")
	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	putN(t, s, "https://a.test/1")
	n, err := s.ApplyAndQueue(ctx, Invalidation{Keys: []string{"https://a.test/1"}}, OutboxItem{ID: "m1", Data: []byte("one")})
	if err != nil || n != 1 {
		t.Fatalf("ApplyAndQueue = %d, %v; want 1, nil", n, err)
	}
	if err := s.OutboxAdd(ctx, OutboxItem{ID: "m2", Data: []byte("two")}); err != nil {
		t.Fatal(err)
	}
	if err := s.OutboxAdd(ctx, OutboxItem{ID: ""}); !errors.Is(err, ErrInvalid) {
		t.Errorf("OutboxAdd(empty id) = %v, want ErrInvalid", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	items, err := s.Outbox(ctx, 0, 0)
	if err != nil || len(items) != 2 || items[0].ID != "m1" || string(items[1].Data) != "two" || items[0].Seq >= items[1].Seq {
		t.Fatalf("Outbox() after reopen = %+v, %v; want m1, m2 in order", items, err)
	}
	if items[0].Added.IsZero() {
		t.Error("Outbox item has no Added time")
	}
	if later, _ := s.Outbox(ctx, items[0].Seq, 0); len(later) != 1 || later[0].ID != "m2" {
		t.Errorf("Outbox(after first) = %+v, want m2", later)
	}
	if err := s.OutboxRemove(ctx, items[0].Seq, 999); err != nil {
		t.Fatal(err)
	}
	if n, err := s.OutboxLen(ctx); n != 1 || err != nil {
		t.Errorf("OutboxLen() = %d, %v; want 1", n, err)
	}
	if present(s, "https://a.test/1", "") {
		t.Error("ApplyAndQueue did not delete the record")
	}
}

// TestStore_ApplyInvalidations_Done: a Done item (an invalidation this
// store applied before it was sequenced) advances the applied sequence in
// order with the others, deletes nothing, and needs no valid Inv; the
// items around it are applied. With steps of 3 the batch spans several
// transactions.
func TestStore_ApplyInvalidations_Done(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestStore(t, Options{chunk: 3})
	putN(t, s, "https://a.test/1", "https://a.test/2", "https://a.test/3", "https://a.test/own")
	batch := []Sequenced{
		{Seq: 1, Inv: Invalidation{Keys: []string{"https://a.test/1"}}},
		{Seq: 2, Done: true, Inv: Invalidation{Keys: []string{"https://a.test/own"}}},
		{Seq: 3, Done: true}, // no selector: not validated
		{Seq: 4, Inv: Invalidation{Keys: []string{"https://a.test/2"}}},
	}
	n, err := s.ApplyInvalidations(ctx, batch)
	if err != nil || n != 2 {
		t.Fatalf("ApplyInvalidations = %d, %v; want 2, nil", n, err)
	}
	if got := s.AppliedSequence(); got != 4 {
		t.Errorf("AppliedSequence = %d, want 4", got)
	}
	if present(s, "https://a.test/1", "") || present(s, "https://a.test/2", "") {
		t.Error("an item around the Done ones was not applied")
	}
	if !present(s, "https://a.test/own", "") || !present(s, "https://a.test/3", "") {
		t.Error("a Done item deleted a record")
	}
	if batch[1].Count != 0 || batch[2].Count != 0 {
		t.Errorf("Done items' Count = %d, %d; want 0", batch[1].Count, batch[2].Count)
	}
	// Only Done items: the sequence still advances, and persists.
	if _, err := s.ApplyInvalidations(ctx, []Sequenced{{Seq: 7, Done: true}}); err != nil {
		t.Fatal(err)
	}
	if got := s.AppliedSequence(); got != 7 {
		t.Errorf("AppliedSequence after a lone Done item = %d, want 7", got)
	}
	path := s.Path()
	s.Close()
	s2, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if got := s2.AppliedSequence(); got != 7 {
		t.Errorf("AppliedSequence after reopening = %d, want 7", got)
	}
}
