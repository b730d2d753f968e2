package store

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

// TestWtx_PutSameKeyTwiceInOneTransaction: a put finds the record an
// earlier put of the same transaction wrote (not committed yet), through
// the cursor it keeps for the transaction, after other puts changed the
// tree in between: the second put replaces the first, whose body, tags,
// expiry and access-time entries go, and the counters count one record
// (checkIntegrity at cleanup compares them and the indexes with the
// records).
func TestWtx_PutSameKeyTwiceInOneTransaction(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	s := newTestStore(t, Options{Now: clock.Now})
	first := pageRec("https://example.com/a", "v", 20<<10, "old")
	first.Expires = clock.Now().Add(time.Hour)
	second := pageRec("https://example.com/a", "v", 30<<10, "new")
	second.Expires = clock.Now().Add(2 * time.Hour)
	second.Body[1] = 'Z'
	put := func(w *wtx, r *Record) error {
		rr := *r
		rr.StoredTime = clock.Now()
		return w.put(recKey(rr.Key, rr.Variant), encodeRecord(&rr), rr.Body, rr.Tags, rr.Expires, w.nowNs)
	}
	var others []*Record
	err := s.do(ctx, 0, func(w *wtx) error {
		if err := put(w, first); err != nil {
			return err
		}
		// Enough records around it that the leaves split and nodes
		// materialize between the two puts.
		for i := range 300 {
			r := pageRec(fmt.Sprintf("https://example.com/%c/%d", 'a'+i%3, i), "v", 3<<10)
			others = append(others, r)
			if err := put(w, r); err != nil {
				return err
			}
		}
		return put(w, second)
	})
	if err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Records != int64(1+len(others)) {
		t.Fatalf("Records = %d, want %d", st.Records, 1+len(others))
	}
	mustGet(t, s, second)
	got, err := s.Get(ctx, second.Key, second.Variant)
	if err != nil || !bytes.Equal(got.Body, second.Body) {
		t.Fatalf("Get = %d bytes, %v; want the second put's %d", len(got.Body), err, len(second.Body))
	}
	if n, err := s.DeleteTag(ctx, "old"); err != nil || n != 0 {
		t.Fatalf("DeleteTag(old) = %d, %v; want 0: the first put's tag entry must be gone", n, err)
	}
	if n := bodyCount(t, s); n != 1+len(others) {
		t.Fatalf("bodies = %d, want %d", n, 1+len(others))
	}
}
