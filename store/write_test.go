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

// BenchmarkWriteTx_Fills is the store writer's share of a stored miss,
// without the wait for company or fsync: transactions of 200 puts of
// 20 KB pages (new keys in the loadtest's order, an expiry each, as the
// proxy's fills), each batch encoded before the timer runs, NoSync. Per
// record: allocs/op and B/op (the writer's: bbolt's page buffers, nodes
// and cursors), cpu-µs (the process's user and system CPU, the commit's
// pwrite included), ops-µs (the time inside the put ops, the rest being
// bbolt's commit: spill and write).
//
//	go test ./store -run '^$' -bench WriteTx_Fills -benchtime=4000x -benchmem
func BenchmarkWriteTx_Fills(b *testing.B) {
	s := newTestStore(b, Options{})
	const per = 200
	tmpl := pageRecord("x", 20<<10)
	type put struct{ ck, v []byte }
	next := 0
	var ops, cpu time.Duration
	b.ReportAllocs()
	b.SetBytes(int64(len(tmpl.Body)))
	b.ResetTimer()
	for done := 0; done < b.N; {
		b.StopTimer()
		batch := make([]put, min(per, b.N-done))
		exp := time.Now().Add(24 * time.Hour)
		for j := range batch {
			r := *tmpl
			r.Key = fmt.Sprintf("http://127.0.0.1:8080/u/1-%d", next)
			r.StoredTime, r.Expires = time.Now(), exp
			batch[j] = put{recKey(r.Key, r.Variant), encodeRecord(&r)}
			next++
		}
		b.StartTimer()
		cpu0 := cpuTime()
		err := s.do(ctx, 0, func(w *wtx) error {
			start := time.Now()
			for _, p := range batch {
				if err := w.put(p.ck, p.v, tmpl.Body, nil, exp, w.nowNs); err != nil {
					return err
				}
			}
			ops += time.Since(start)
			return nil
		})
		cpu += cpuTime() - cpu0
		if err != nil {
			b.Fatal(err)
		}
		done += len(batch)
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/1e3/float64(b.N), "cpu-µs/record")
	b.ReportMetric(float64(ops.Nanoseconds())/1e3/float64(b.N), "ops-µs/record")
}

// TestWtx_PutAfterDeleteAllInOneTransaction: DeleteAll recreates the rec
// bucket; a put after it in the same transaction (ops of one batch) looks
// in the new bucket, not through a cursor of the dropped one, which still
// reads the record committed before: the counters stay right (Records,
// and checkIntegrity at cleanup).
func TestWtx_PutAfterDeleteAllInOneTransaction(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	s := newTestStore(t, Options{Now: clock.Now})
	a := pageRec("https://example.com/a", "v", 20<<10, "t")
	if err := s.Put(ctx, a); err != nil {
		t.Fatal(err)
	}
	put := func(w *wtx, r *Record) error {
		rr := *r
		rr.StoredTime = clock.Now()
		return w.put(recKey(rr.Key, rr.Variant), encodeRecord(&rr), rr.Body, rr.Tags, rr.Expires, w.nowNs)
	}
	var n int
	err := s.do(ctx, 0, func(w *wtx) (err error) {
		if err := put(w, a); err != nil { // replaces the committed one
			return err
		}
		if n, err = w.deleteAll(); err != nil {
			return err
		}
		return put(w, a)
	})
	if err != nil || n != 1 {
		t.Fatalf("deleteAll = %d, %v; want 1, nil", n, err)
	}
	if st := s.Stats(); st.Records != 1 {
		t.Fatalf("Records = %d, want 1", st.Records)
	}
	mustGet(t, s, a)
}
