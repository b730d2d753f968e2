package store

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkGetHitsParallel is store-served cache hits on every core
// (b.RunParallel): GetInto of 10,000 distinct 20 KB pages, each body
// copied into the goroutine's own reused buffer, as httpcache's pooled
// store reads do, so that what remains per hit is the B-tree searches,
// the checksums, the copy and the access-time tracking. The pages were
// just stored, so every read is within AccessGranularity of its record's
// stored access time (the case a cache serving a working set is in most
// of the time).
//
//	go test ./store -run '^$' -bench GetHitsParallel -benchmem -benchtime=200000x
func BenchmarkGetHitsParallel(b *testing.B) {
	const pages = 10000
	s, err := Open(filepath.Join(b.TempDir(), "hits.db"), Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	keys := make([]string, pages)
	var wg sync.WaitGroup
	var failed atomic.Value
	for w := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < pages; i += 64 {
				keys[i] = fmt.Sprintf("https://example.com/hits/%05d", i)
				if err := s.Put(ctx, pageRecord(keys[i], 20<<10)); err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, ok := failed.Load().(error); ok {
		b.Fatal(err)
	}
	variant := pageRecord("", 0).Variant
	var next atomic.Uint64
	b.ReportAllocs()
	b.SetBytes(20 << 10)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 32<<10)
		into := func(int) []byte { return buf }
		i := next.Add(7919) // each goroutine from its own place
		for pb.Next() {
			i += 7919 // a prime: every page, scattered
			if _, err := s.GetInto(ctx, keys[i%pages], variant, into); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkTouchWithinGranularity is n records read again within
// AccessGranularity of their Put (Touch, as the memory tier reports its
// hits; Get records the same way), then the periodic flush: the steady
// cost of access-time tracking for a working set read over and over.
// ns/access counts both the touches and the flush's share.
//
//	go test ./store -run '^$' -bench TouchWithinGranularity -benchtime=20x
func BenchmarkTouchWithinGranularity(b *testing.B) {
	const n = 20000
	now := time.Unix(1_700_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s, err := Open(filepath.Join(b.TempDir(), "touch.db"), Options{NoSync: true, Now: clock, AccessFlushInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	keys := make([]string, n)
	variant := pageRecord("", 0).Variant
	for i := range n {
		keys[i] = fmt.Sprintf("/touch/%08x", uint32(i)*2654435761)
		if err := s.Put(ctx, pageRecord(keys[i], 64)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		mu.Lock()
		now = now.Add(time.Millisecond) // within the 30s for any b.N used
		mu.Unlock()
		for _, k := range keys {
			s.Touch(k, variant)
		}
		if err := s.flushAccess(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/access")
}

// BenchmarkAccessUniformOld is store-served reads (GetInto) drawn
// uniformly from n records whose stored access times are all older than
// AccessGranularity, as in the loadtest's `large` scenario once its pages
// have been stored for more than 30 s: nearly every record's access time
// moves (by the granularity) again and again. The fake clock runs at
// rate reads per second, and the store's periodic flush
// (Options.AccessFlushInterval, its default) is called whenever that much
// fake time has passed, plus once at the end (what Close writes), so
// that what the flushes write is counted in full. One op is one pass of
// n reads (one second of fake time). Reported: ns/access (the reads and
// the flushes), flush-ns/access (the flushes alone), and
// pages-written/access (bbolt pages the flushes wrote).
//
//	go test ./store -run '^$' -bench AccessUniformOld -benchtime=600x
func BenchmarkAccessUniformOld(b *testing.B) {
	const (
		n    = 20000
		rate = 20000 // reads per fake second
	)
	var mu sync.Mutex
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	s, err := Open(filepath.Join(b.TempDir(), "uniform.db"), Options{NoSync: true, Now: clock})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	keys := make([]string, n)
	variant := pageRecord("", 0).Variant
	for i := range n {
		keys[i] = fmt.Sprintf("https://example.com/uniform/%08x", uint32(i)*2654435761)
	}
	for i := 0; i < n; i += 500 {
		var wg sync.WaitGroup
		for j := i; j < min(i+500, n); j++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := s.Put(ctx, pageRecord(keys[j], 64)); err != nil {
					b.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	advance(time.Minute) // every stored time is older than the granularity
	interval := s.opts.AccessFlushInterval
	step := time.Second / rate
	buf := make([]byte, 4<<10)
	into := func(int) []byte { return buf }
	r := rand.New(rand.NewPCG(1, 2))
	var flushNs int64
	flush := func() {
		t0 := time.Now()
		if err := s.flushAccess(ctx); err != nil {
			b.Fatal(err)
		}
		flushNs += time.Since(t0).Nanoseconds()
	}
	pagesWritten := func() int64 { st := s.db.Load().Stats(); return st.TxStats.GetWrite() }
	writes0 := pagesWritten()
	var sinceFlush time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for range n {
			advance(step)
			if _, err := s.GetInto(ctx, keys[r.IntN(n)], variant, into); err != nil {
				b.Fatal(err)
			}
		}
		if sinceFlush += time.Second; sinceFlush >= interval {
			sinceFlush = 0
			flush()
		}
	}
	flush()
	b.StopTimer()
	accesses := float64(b.N) * n
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/accesses, "ns/access")
	b.ReportMetric(float64(flushNs)/accesses, "flush-ns/access")
	b.ReportMetric(float64(pagesWritten()-writes0)/accesses, "pages-written/access")
}
