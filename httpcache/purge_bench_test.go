package httpcache

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/firstrender/firstrender/store"
)

// statusWriter is a ResponseWriter that keeps the status only.
type statusWriter struct {
	h      http.Header
	status int
}

func (w *statusWriter) Header() http.Header         { return w.h }
func (w *statusWriter) WriteHeader(s int)           { w.status = s }
func (w *statusWriter) Write(b []byte) (int, error) { return len(b), nil }

// BenchmarkPurgePrefix100k measures what a prefix purge of 100,000 stored
// entries costs the hit path: the p99 latency of hits on other pages
// (ServeHTTP in process, 4 goroutines) while the purge runs, against the
// p99 of the same hits for one second before it, in the same run, plus
// the purge's duration, alone (another 100,000-entry prefix purged first
// with no hits competing for the CPU) and during the hits. The store syncs (fsync per commit) as in
// production; the 100,000 records are written beforehand without sync.
// "memory-tier" is the default configuration; "store-reads" disables the
// memory tier so that every hit reads bbolt while the purge commits.
//
//	go test -run '^$' -bench BenchmarkPurgePrefix100k -benchtime 1x ./httpcache/
func BenchmarkPurgePrefix100k(b *testing.B) {
	for _, mem := range []struct {
		name string
		size int64
	}{{"memory-tier", 0}, {"store-reads", -1}} {
		b.Run(mem.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				benchPurgeOnce(b, mem.size)
			}
		})
	}
}

const (
	benchPurged = 100_000
	benchOthers = 1000
	benchHitG   = 4
)

func benchPurgeOnce(b *testing.B, memSize int64) {
	b.StopTimer()
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "bench.db")
	fill, err := store.Open(path, store.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(strings.Repeat("x", 1024))
	now := time.Now()
	var wg sync.WaitGroup
	work := make(chan int, 256)
	for range 64 {
		wg.Go(func() {
			for i := range work {
				rec := &store.Record{
					Key: fmt.Sprintf("http://bench.test/purge%d/%06d", i%2, i/2), Status: 200,
					Header:      map[string][]string{"Content-Type": {"text/plain"}, "Cache-Control": {"public, max-age=600"}},
					Body:        body,
					RequestTime: now, ResponseTime: now,
					Annotations: map[string]string{AnnotationPolicy: "lifetime=600 age=0 swr=0 sie=0 flags=", AnnotationVary: ""},
				}
				if err := fill.Put(ctx, rec); err != nil {
					b.Error(err)
				}
			}
		})
	}
	for i := range 2 * benchPurged { // purge0/ (purged alone) and purge1/ (purged during hits)
		work <- i
	}
	close(work)
	wg.Wait()
	fill.Close()

	st, err := store.Open(path, store.Options{}) // fsync on every commit
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	origin := httptest.NewServer(pageHandler("public, max-age=600"))
	defer origin.Close()
	up, _ := url.Parse(origin.URL)
	p, err := New(Config{Upstream: up, Store: st, Hosts: []string{"bench.test"}, Logger: discardLogger(), MemoryCacheSize: memSize})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close(ctx)
	get := func(path string) int {
		w := &statusWriter{h: http.Header{}}
		p.ServeHTTP(w, httptest.NewRequest("GET", "http://bench.test"+path, nil))
		if !strings.Contains(strings.Join(w.h["Cache-Status"], ","), "firstrender; hit") {
			return 0
		}
		return 1
	}
	for round := range 3 { // store, then admit to the memory tier
		for i := range benchOthers {
			get(fmt.Sprintf("/other/%d", i))
		}
		if round == 0 {
			p.Wait(ctx)
		}
	}

	// hits runs benchHitG goroutines of hits on the other pages until
	// stop is closed and returns their latencies and the non-hits.
	hits := func(stop <-chan struct{}) ([]time.Duration, int64) {
		var (
			mu     sync.Mutex
			all    []time.Duration
			misses atomic.Int64
			hg     sync.WaitGroup
		)
		for g := range benchHitG {
			hg.Go(func() {
				var lat []time.Duration
				for i := g; ; i += benchHitG {
					select {
					case <-stop:
						mu.Lock()
						all = append(all, lat...)
						mu.Unlock()
						return
					default:
					}
					t0 := time.Now()
					if get(fmt.Sprintf("/other/%d", i%benchOthers)) == 0 {
						misses.Add(1)
					}
					lat = append(lat, time.Since(t0))
				}
			})
		}
		hg.Wait()
		return all, misses.Load()
	}
	p99 := func(d []time.Duration) time.Duration {
		if len(d) == 0 {
			return 0
		}
		slices.Sort(d)
		return d[len(d)*99/100]
	}

	// The purge alone first, for its duration without competing hits.
	t0 := time.Now()
	if n, err := p.Purge(ctx, Selection{Prefix: "http://bench.test/purge0/"}); err != nil || n != benchPurged {
		b.Fatalf("Purge alone = %d, %v; want %d", n, err, benchPurged)
	}
	alone := time.Since(t0)

	b.StartTimer()
	stop := make(chan struct{})
	time.AfterFunc(time.Second, func() { close(stop) })
	base, baseMiss := hits(stop)

	stop = make(chan struct{})
	var (
		n        int
		perr     error
		took     time.Duration
		purgeEnd = make(chan struct{})
	)
	go func() {
		defer close(purgeEnd)
		t0 := time.Now()
		n, perr = p.Purge(ctx, Selection{Prefix: "http://bench.test/purge1/"})
		took = time.Since(t0)
		close(stop)
	}()
	during, duringMiss := hits(stop)
	<-purgeEnd
	b.StopTimer()
	if perr != nil || n != benchPurged {
		b.Fatalf("Purge = %d, %v; want %d", n, perr, benchPurged)
	}
	if baseMiss+duringMiss > 0 {
		b.Errorf("%d + %d hits on other pages were not hits", baseMiss, duringMiss)
	}
	pb, pd := p99(base), p99(during)
	b.ReportMetric(float64(pb.Nanoseconds()), "hit-p99-ns")
	b.ReportMetric(float64(pd.Nanoseconds()), "hit-p99-during-purge-ns")
	if pb > 0 {
		b.ReportMetric(float64(pd)/float64(pb), "p99-ratio")
	}
	b.ReportMetric(float64(took.Milliseconds()), "purge-during-hits-ms")
	b.ReportMetric(float64(alone.Milliseconds()), "purge-alone-ms")
	b.ReportMetric(float64(len(during)), "hits-during-purge")
}
