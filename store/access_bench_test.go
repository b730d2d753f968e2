package store

import (
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
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
