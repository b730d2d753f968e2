package admin

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/firstrender/firstrender/store"
)

// The benchmarks' large store holds ADMIN_BENCH_N records (default
// 1,000,000), built once per test binary, only when a benchmark asks:
//
//	ADMIN_BENCH_N=1000000 go test -run '^$' -bench . -benchtime 20x ./httpcache/admin
func benchN(b *testing.B) int {
	if s := os.Getenv("ADMIN_BENCH_N"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1000 {
			b.Fatalf("ADMIN_BENCH_N=%q: want a number >= 1000", s)
		}
		return n
	}
	return 1_000_000
}

var large struct {
	once sync.Once
	dir  string
	path string
	n    int
	err  error
}

func largeStore(b *testing.B) (*store.Store, int) {
	b.Helper()
	large.once.Do(func() {
		large.n = benchN(b)
		large.dir, large.err = os.MkdirTemp("", "admin-bench")
		if large.err != nil {
			return
		}
		large.path = filepath.Join(large.dir, "large.db")
		st, err := store.Open(large.path, store.Options{NoSync: true})
		if err != nil {
			large.err = err
			return
		}
		start := time.Now()
		recs := make([]*store.Record, 0, 20000)
		for i := range large.n {
			recs = append(recs, bulkRecord(i))
			if len(recs) == cap(recs) || i == large.n-1 {
				put(b, st, recs)
				recs = recs[:0]
			}
		}
		fmt.Fprintf(os.Stderr, "built a %d-record store in %v\n", large.n, time.Since(start).Round(time.Millisecond))
		large.err = st.Close()
	})
	if large.err != nil {
		b.Fatal(large.err)
	}
	st, err := store.Open(large.path, store.Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st, large.n
}

func benchHandler(b *testing.B, st *store.Store) *Handler {
	h, err := NewHandler(HandlerConfig{Token: testToken, Store: st, Logger: discardLogger()})
	if err != nil {
		b.Fatal(err)
	}
	return h
}

func serve(b *testing.B, h http.Handler, method, target, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testToken)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		b.Fatalf("%s %s: %d %s", method, target, rec.Code, rec.Body.String())
	}
	return rec
}

// BenchmarkEntries is one GET entries page (JSON encoding included) from
// the large store: the first page, one in the middle, the last, a page
// backward from the middle, and filtered pages.
func BenchmarkEntries(b *testing.B) {
	st, n := largeStore(b)
	h := benchHandler(b, st)
	mid := encodeCursor(recPos(bulkKey(n/2), ""))
	for _, bc := range []struct{ name, q string }{
		{"first/limit=100", "limit=100"},
		{"middle/limit=100", "limit=100&after=" + url.QueryEscape(mid)},
		{"middle/limit=1000", "limit=1000&after=" + url.QueryEscape(mid)},
		{"last/limit=100", "limit=100&last=1"},
		{"backward-from-middle/limit=100", "limit=100&before=" + url.QueryEscape(mid)},
		{"filter-status-4xx/limit=100", "limit=100&status=4xx&after=" + url.QueryEscape(mid)},
		{"filter-prefix/limit=100", "limit=100&prefix=" + url.QueryEscape("https://bulk.test/s7/p05")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				serve(b, h, "GET", "/admin/v1/entries?"+bc.q, "")
			}
		})
	}
}

// BenchmarkStats is GET stats on the large store and on a 100-record
// one: O(1) means the same cost.
func BenchmarkStats(b *testing.B) {
	st, n := largeStore(b)
	small := newTestStore(b)
	var recs []*store.Record
	for i := range 100 {
		recs = append(recs, bulkRecord(i))
	}
	put(b, small, recs)
	for _, bc := range []struct {
		name string
		st   *store.Store
	}{{"records=100", small}, {fmt.Sprintf("records=%d", n), st}} {
		b.Run(bc.name, func(b *testing.B) {
			h := benchHandler(b, bc.st)
			b.ReportAllocs()
			for b.Loop() {
				serve(b, h, "GET", "/admin/v1/stats", "")
			}
		})
	}
}

// BenchmarkPurgePrefix purges 100,000 of 110,000 records through POST
// purge (StorePurger, DeletePrefix in steps of 10,000) while a reader
// keeps calling Get on a record outside the prefix, as hits would; it
// reports the reader's p99 during the purge against its p99 over the
// same time without one.
func BenchmarkPurgePrefix(b *testing.B) {
	const purged, kept = 100_000, 10_000
	ctx := context.Background()
	var during, base []time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		st, err := store.Open(filepath.Join(b.TempDir(), "p.db"), store.Options{NoSync: true})
		if err != nil {
			b.Fatal(err)
		}
		recs := make([]*store.Record, 0, purged+kept)
		for j := range purged + kept {
			r := bulkRecord(j)
			if j >= purged {
				r.Key = fmt.Sprintf("https://kept.test/p%06d", j)
			}
			recs = append(recs, r)
		}
		put(b, st, recs)
		h, err := NewHandler(HandlerConfig{Token: testToken, Store: st, Purger: &StorePurger{Store: st}, Logger: discardLogger()})
		if err != nil {
			b.Fatal(err)
		}
		reader := func(stop <-chan struct{}) []time.Duration {
			var lat []time.Duration
			for {
				select {
				case <-stop:
					return lat
				default:
				}
				t0 := time.Now()
				if _, err := st.Get(ctx, "https://kept.test/p100001", ""); err != nil {
					b.Error(err)
					return lat
				}
				lat = append(lat, time.Since(t0))
			}
		}
		stop := make(chan struct{})
		got := make(chan []time.Duration)
		go func() { got <- reader(stop) }()
		b.StartTimer()
		t0 := time.Now()
		rec := serve(b, h, "POST", "/admin/v1/purge", `{"prefix":"https://bulk.test/"}`)
		took := time.Since(t0)
		b.StopTimer()
		close(stop)
		during = append(during, <-got...)
		if !strings.Contains(rec.Body.String(), fmt.Sprintf(`"count": %d`, purged)) {
			b.Fatalf("purge reply %s", rec.Body.String())
		}
		// Baseline: the same reader for the same time, no purge.
		stop = make(chan struct{})
		go func() { got <- reader(stop) }()
		time.Sleep(took) // measuring a duration, not synchronizing
		close(stop)
		base = append(base, <-got...)
		st.Close()
		b.StartTimer()
	}
	b.StopTimer()
	pd, pb := p99(during), p99(base)
	b.ReportMetric(float64(pd.Microseconds()), "get-p99-during-µs")
	b.ReportMetric(float64(pb.Microseconds()), "get-p99-without-µs")
	if pb > 0 {
		b.ReportMetric(float64(pd)/float64(pb), "p99-ratio")
	}
}

func p99(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[len(d)*99/100]
}
