package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// Benchmarks. The million-record ones skip under -short; they share one
// database built once per process (in big transactions, so it takes
// seconds) in a temporary directory removed by TestMain.
//
//	go test ./store -run '^$' -bench . -benchtime=2s

func BenchmarkGet20KB(b *testing.B) {
	s := newTestStore(b, Options{})
	r := mkrec("https://example.com/page", "")
	r.Body = make([]byte, 20<<10)
	mustPut(b, s, r)
	b.ReportAllocs()
	b.SetBytes(int64(len(r.Body)))
	start := time.Now()
	for b.Loop() {
		if _, err := s.Get(ctx, r.Key, ""); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
}

// BenchmarkLookupMiss is the store's part of every miss: a Lookup of a key
// with no variant, its neighbours stored (a miss reads the rec bucket's
// leaf where the key would be).
func BenchmarkLookupMiss(b *testing.B) {
	s := newTestStore(b, Options{})
	for i := range 100 {
		mustPut(b, s, mkrec(fmt.Sprintf("https://example.com/page/%03d", i), ""))
	}
	choose := func(ms []Meta) (string, bool) { return ms[0].Variant, true }
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.LookupInto(ctx, "https://example.com/page/050x", choose, nil); !errors.Is(err, ErrNotFound) {
			b.Fatal(err)
		}
	}
}

// BenchmarkPut measures durable (fsync'd) Put throughput with 1 and 64
// concurrent writers; writes/commit shows the coalescing.
func BenchmarkPut(b *testing.B) {
	for _, size := range []int{1 << 10, 20 << 10} {
		for _, writers := range []int{1, 64} {
			b.Run(fmt.Sprintf("size=%dKB/writers=%d", size>>10, writers), func(b *testing.B) {
				path := filepath.Join(b.TempDir(), "put.db")
				s, err := Open(path, Options{})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				body := make([]byte, size)
				b.ReportAllocs()
				b.SetBytes(int64(size))
				before := s.Stats()
				elapsed := putConcurrently(b, s, writers, func(i int64) *Record {
					return &Record{Key: fmt.Sprintf("https://example.com/p/%09d", i), Status: 200, Body: body}
				})
				st := s.Stats()
				b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
				b.ReportMetric(float64(st.Writes-before.Writes)/float64(max(1, st.Commits-before.Commits)), "writes/commit")
			})
		}
	}
}

const millionN = 1_000_000

var million struct {
	once sync.Once
	dir  string
	path string
	err  error
	took time.Duration
}

func millionKey(i int) string {
	return fmt.Sprintf("https://example.com/s%d/p%07d", i/100_000, i)
}

func millionRecord(i int, at time.Time) *Record {
	return &Record{
		Key: millionKey(i), Status: 200,
		Header:     map[string][]string{"Content-Type": {"text/html"}},
		Body:       []byte("<html><body data-phx-main>a cached first render, kept short for the benchmark</body></html>"),
		StoredTime: at,
		Tags:       []string{fmt.Sprintf("s%d", i/100_000)},
	}
}

// putMany stores records [from, to) in transactions of 50,000.
func putMany(ctx context.Context, s *Store, from, to int) error {
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for lo := from; lo < to; lo += 50_000 {
		hi := min(lo+50_000, to)
		type enc struct {
			ck, v []byte
			m     *Meta
		}
		recs := make([]enc, 0, hi-lo)
		for i := lo; i < hi; i++ {
			r := millionRecord(i, at)
			recs = append(recs, enc{recKey(r.Key, ""), encodeRecord(r), &Meta{Tags: r.Tags}})
		}
		err := s.do(ctx, 0, func(w *wtx) error {
			for _, e := range recs {
				if err := w.put(e.ck, e.v, nil, e.m.Tags, e.m.Expires, w.nowNs); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// millionDB returns the path of a closed store holding 1,000,000 records
// (keys https://example.com/s<0-9>/p<0000000-0999999>, tag s<0-9>).
func millionDB(b *testing.B) string {
	b.Helper()
	if testing.Short() {
		b.Skip("builds a 1,000,000-record database; skipped under -short")
	}
	million.once.Do(func() {
		start := time.Now()
		million.dir, million.err = os.MkdirTemp("", "firstrender-store-bench")
		if million.err != nil {
			return
		}
		million.path = filepath.Join(million.dir, "million.db")
		s, err := Open(million.path, Options{NoSync: true})
		if err != nil {
			million.err = err
			return
		}
		million.err = putMany(context.Background(), s, 0, millionN)
		if err := s.Close(); million.err == nil {
			million.err = err
		}
		million.took = time.Since(start)
		var size int64
		if fi, err := os.Stat(million.path); err == nil {
			size = fi.Size()
		}
		fmt.Fprintf(os.Stderr, "built %d-record database (%d MB) in %v\n", millionN, size>>20, million.took.Round(time.Millisecond))
	})
	if million.err != nil {
		b.Fatal(million.err)
	}
	return million.path
}

func cleanupBenchDB() {
	if million.dir != "" {
		os.RemoveAll(million.dir)
	}
}

func BenchmarkScan1M(b *testing.B) {
	path := millionDB(b)
	s, err := Open(path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if got := s.Stats().Records; got != millionN {
		b.Fatalf("Stats().Records = %d, want %d", got, millionN)
	}
	for _, tt := range []struct {
		name string
		o    ScanOptions
	}{
		{"first-page", ScanOptions{Limit: 100}},
		{"deep-page", ScanOptions{After: millionKey(900_000), Limit: 100}},
	} {
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p, err := s.Scan(ctx, tt.o)
				if err != nil || len(p.Entries) != 100 {
					b.Fatalf("Scan = %d entries, %v", len(p.Entries), err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/page")
		})
	}
}

func BenchmarkOpen1M(b *testing.B) {
	path := millionDB(b)
	b.ReportAllocs()
	for b.Loop() {
		s, err := Open(path, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if got := s.Stats().Records; got != millionN {
			b.Fatalf("Stats().Records = %d, want %d", got, millionN)
		}
		b.StopTimer()
		s.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/open")
}

// BenchmarkDeletePrefix1M deletes the 100,000 records under one prefix of
// the million (durably), then restores them outside the timer.
func BenchmarkDeletePrefix1M(b *testing.B) {
	path := millionDB(b)
	s, err := Open(path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.ReportAllocs()
	var deleted int
	for b.Loop() {
		n, err := s.DeletePrefix(ctx, "https://example.com/s3/")
		if err != nil || n != 100_000 {
			b.Fatalf("DeletePrefix = %d, %v; want 100000", n, err)
		}
		deleted += n
		b.StopTimer()
		if err := putMany(ctx, s, 300_000, 400_000); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(deleted)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkPutRatio alternates short phases of 1 writer (32 Puts) and 64
// concurrent writers (640 Puts) on the same store, so that both rates see
// the same disk and CPU load (this machine is shared and fsync latency
// drifts), and reports the ratio of the 64-writer rate to the 1-writer rate.
func BenchmarkPutRatio(b *testing.B) {
	for _, size := range []int{1 << 10, 20 << 10} {
		b.Run(fmt.Sprintf("size=%dKB", size>>10), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "ratio.db")
			s, err := Open(path, Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			body := make([]byte, size)
			var seq atomic.Int64
			put := func() {
				r := &Record{Key: fmt.Sprintf("https://example.com/p/%09d", seq.Add(1)), Status: 200, Body: body}
				if err := s.Put(ctx, r); err != nil {
					b.Error(err)
				}
			}
			const singleN, writers, perWriter = 32, 64, 10
			var t1, t64 time.Duration
			b.ReportAllocs()
			for b.Loop() {
				start := time.Now()
				for range singleN {
					put()
				}
				t1 += time.Since(start)

				start = time.Now()
				var wg sync.WaitGroup
				for range writers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for range perWriter {
							put()
						}
					}()
				}
				wg.Wait()
				t64 += time.Since(start)
			}
			r1 := float64(b.N*singleN) / t1.Seconds()
			r64 := float64(b.N*writers*perWriter) / t64.Seconds()
			b.ReportMetric(r1, "records/s-1-writer")
			b.ReportMetric(r64, "records/s-64-writers")
			b.ReportMetric(r64/r1, "x-64-vs-1")
		})
	}
}

// BenchmarkPutKeyOrder measures what a durable 20 KB Put writes, with keys
// in sequence (as BenchmarkPut) and in scattered order (as URLs hash into
// a real store), into a store already holding 5,000 such records:
// page-bytes/record is bbolt's page allocation per record (everything the
// commits write, bar the meta page), so page-bytes/record over the encoded
// record size is the write amplification. The freelist=nosync cases set
// bbolt's NoFreelistSync (not done by Open: a store would then rebuild
// its free list by reading the whole file at every Open after a crash) to
// show what skipping the free-list write would save.
//
//	go test ./store -run '^$' -bench PutKeyOrder -benchtime=3000x
func BenchmarkPutKeyOrder(b *testing.B) {
	if testing.Short() {
		b.Skip("writes hundreds of MB; skipped under -short")
	}
	const size = 20 << 10
	type bcase struct {
		order    string
		writers  int
		freelist string
	}
	var cases []bcase
	for _, order := range []string{"sequential", "scattered"} {
		cases = append(cases, bcase{order, 1, "sync"}, bcase{order, 64, "sync"}, bcase{order, 64, "nosync"})
	}
	for _, c := range cases {
		order, writers := c.order, c.writers
		b.Run(fmt.Sprintf("order=%s/writers=%d/freelist=%s", order, writers, c.freelist), func(b *testing.B) {
			s, err := Open(filepath.Join(b.TempDir(), "order.db"), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			// Read by the writer goroutine after the do below (a channel
			// send orders the two).
			s.db.Load().NoFreelistSync = c.freelist == "nosync"
			body := make([]byte, size)
			key := func(i int64) string {
				if order == "scattered" {
					i = i * 2654435761 % 1_000_000_007 // a bijection: keys stay unique
				}
				return fmt.Sprintf("https://example.com/p/%010d", i)
			}
			// 5,000 records already there (scattered: spread over the key space).
			prefill5000(b, s, func(j int64) *Record {
				return &Record{Key: key(j*200_000 + 2_000_000_000), Status: 200, Body: body}
			})
			encoded := len(encodeRecord(&Record{Key: key(1), Status: 200, Body: body})) + len(body)
			b.ReportAllocs()
			b.SetBytes(size)
			before, beforeDB := s.Stats(), s.db.Load().Stats()
			elapsed := putConcurrently(b, s, writers, func(i int64) *Record {
				return &Record{Key: key(i), Status: 200, Body: body}
			})
			st, db := s.Stats(), s.db.Load().Stats()
			pages := db.TxStats.GetPageAlloc() - beforeDB.TxStats.GetPageAlloc()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
			b.ReportMetric(float64(st.Writes-before.Writes)/float64(max(1, st.Commits-before.Commits)), "writes/commit")
			b.ReportMetric(float64(pages)/float64(b.N), "page-bytes/record")
			b.ReportMetric(float64(pages)/float64(b.N)/float64(encoded), "x-amplification")
		})
	}
}

// pageRecord is a record shaped like a stored LiveView first render as the
// proxy writes it: the origin's five header fields, the proxy's
// annotations, a body of size bytes.
func pageRecord(key string, size int) *Record {
	body := make([]byte, size)
	for i := range body {
		body[i] = byte('a' + i%26)
	}
	return &Record{
		Key: key, Variant: "Accept-Encoding=identity", Status: 200,
		Header: map[string][]string{
			"Content-Type":  {"text/html; charset=utf-8"},
			"Cache-Control": {"public, max-age=86400"},
			"Etag":          {`"fr-12345"`},
			"Last-Modified": {"Tue, 24 Nov 2026 12:00:00 GMT"},
			"Vary":          {"Accept-Encoding"},
		},
		Body:         body,
		RequestTime:  time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC),
		ResponseTime: time.Date(2026, 11, 25, 12, 0, 0, 1000, time.UTC),
		Annotations: map[string]string{
			"httpcache.policy": "lifetime=86400 age=0 swr=0 sie=0 flags=",
			"httpcache.vary":   "Accept-Encoding",
		},
	}
}

// scatteredKey is the i-th of a set of page URLs in an order unrelated to
// i (a bijection), as URLs hash into a real store.
func scatteredKey(i int64) string {
	return fmt.Sprintf("https://example.com/p/%010d", i*2654435761%1_000_000_007)
}

// largeDB builds (once per benchmark) a store of n 20 KB pages with
// scattered keys, in transactions of 1,000, and returns it open.
func largeDB(b *testing.B, n int) *Store {
	b.Helper()
	// No access-time flush during the run: allocs/op counts the reads only.
	s, err := Open(filepath.Join(b.TempDir(), "large.db"), Options{NoSync: true, AccessFlushInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	for lo := 0; lo < n; lo += 1000 {
		err := s.do(ctx, 0, func(w *wtx) error {
			for i := lo; i < min(lo+1000, n); i++ {
				if err := putRecord(w, pageRecord(scatteredKey(int64(i)), 20<<10)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return s
}

// BenchmarkGetLarge reads random 20 KB pages of a 20,000-page store
// (400 MB) the ways the proxy does: Get (the Vary names known), and the
// cold lookup of a key whose Vary names are not known yet, as two reads
// (Variants, then Get: what httpcache did before Store.Lookup) and as one
// (Lookup).
//
//	go test ./store -run '^$' -bench GetLarge -benchtime=20000x -benchmem
func BenchmarkGetLarge(b *testing.B) {
	const n = 20_000
	s := largeDB(b, n)
	const variant = "Accept-Encoding=identity"
	pick := func(i int) string { return scatteredKey(int64(i*7919) % n) }
	for i := range n { // every page read once: the mmap is faulted in
		if _, err := s.Get(ctx, pick(i), variant); err != nil {
			b.Fatal(err)
		}
	}
	// cpu-ns/op is the CPU time of the benchmark's own thread per read
	// (system time included: page faults of the memory map), which other
	// processes on a shared machine disturb far less than ns/op.
	run := func(b *testing.B, read func(key string) error) {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		b.ReportAllocs()
		i := 0
		cpu0 := threadCPU()
		for b.Loop() {
			if err := read(pick(i)); err != nil {
				b.Fatal(err)
			}
			i++
		}
		b.ReportMetric(float64((threadCPU()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
	b.Run("scan-all", func(b *testing.B) { // metadata of every page, 100 a page
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		b.ReportAllocs()
		cpu0 := threadCPU()
		for b.Loop() {
			o := ScanOptions{Limit: 100}
			for seen := 0; ; {
				p, err := s.Scan(ctx, o)
				if err != nil {
					b.Fatal(err)
				}
				seen += len(p.Entries)
				if p.Next == "" {
					if seen != n {
						b.Fatalf("scanned %d records, want %d", seen, n)
					}
					break
				}
				o.After = p.Next
			}
		}
		b.ReportMetric(float64((threadCPU()-cpu0).Nanoseconds())/float64(b.N)/n, "cpu-ns/record")
	})
	b.Run("get", func(b *testing.B) {
		run(b, func(key string) error {
			_, err := s.Get(ctx, key, variant)
			return err
		})
	})
	b.Run("get-into", func(b *testing.B) { // the body into one reused buffer (BodyBuffer)
		buf := make([]byte, 64<<10)
		into := func(int) []byte { return buf }
		run(b, func(key string) error {
			_, err := s.GetInto(ctx, key, variant, into)
			return err
		})
	})
	b.Run("variants+get", func(b *testing.B) {
		run(b, func(key string) error {
			ms, err := s.Variants(ctx, key)
			if err != nil || len(ms) != 1 {
				return fmt.Errorf("Variants = %d, %v", len(ms), err)
			}
			_, err = s.Get(ctx, key, ms[0].Variant)
			return err
		})
	})
	b.Run("lookup", func(b *testing.B) {
		run(b, func(key string) error {
			_, err := s.Lookup(ctx, key, func(ms []Meta) (string, bool) { return ms[0].Variant, true })
			return err
		})
	})
}

// BenchmarkPutConcurrent measures durable (fsync'd) Puts of 20 KB pages
// by 32 concurrent writers (the proxy's misses), with scattered keys into a
// store already holding 5,000 pages. cpu-µs/record is the process's user
// plus system CPU time per record (getrusage), the figure the miss path
// pays; page-bytes/record is bbolt's page allocation per record (what the
// commits write, bar the meta page).
//
//	go test ./store -run '^$' -bench PutConcurrent -benchtime=3000x -benchmem
func BenchmarkPutConcurrent(b *testing.B) {
	const writers = 32
	s, err := Open(filepath.Join(b.TempDir(), "put.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	prefill5000(b, s, func(j int64) *Record { return pageRecord(scatteredKey(j+1_000_000), 20<<10) })
	tmpl := pageRecord("x", 20<<10)
	b.ReportAllocs()
	b.SetBytes(int64(len(tmpl.Body)))
	before, beforeDB := s.Stats(), s.db.Load().Stats()
	cpu0 := cpuTime()
	elapsed := putConcurrently(b, s, writers, func(i int64) *Record {
		r := *tmpl
		r.Key = scatteredKey(i)
		return &r
	})
	cpu := cpuTime() - cpu0
	st, db := s.Stats(), s.db.Load().Stats()
	pages := db.TxStats.GetPageAlloc() - beforeDB.TxStats.GetPageAlloc()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/record")
	b.ReportMetric(float64(st.Writes-before.Writes)/float64(max(1, st.Commits-before.Commits)), "writes/commit")
	b.ReportMetric(float64(pages)/float64(b.N), "page-bytes/record")
}

// putConcurrently puts records 1..b.N (rec builds record i) from writers goroutines
// with the benchmark timer running, and returns the time they took.
func putConcurrently(b *testing.B, s *Store, writers int, rec func(i int64) *Record) time.Duration {
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range writers {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				if err := s.Put(ctx, rec(i)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	return elapsed
}

// prefill5000 writes records 0..4999 (rec builds record j) in five
// transactions, before a benchmark measures writes into a store that is
// not empty.
func prefill5000(b *testing.B, s *Store, rec func(j int64) *Record) {
	for lo := int64(0); lo < 5000; lo += 1000 {
		err := s.do(ctx, 0, func(w *wtx) error {
			for j := lo; j < lo+1000; j++ {
				if err := putRecord(w, rec(j)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// threadCPU is the calling thread's CPU time so far (Linux; 0 elsewhere).
func threadCPU() time.Duration {
	var ts syscall.Timespec
	const clockThreadCPUTime = 3 // CLOCK_THREAD_CPUTIME_ID
	if _, _, e := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTime, uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		return 0
	}
	return time.Duration(ts.Nano())
}

// cpuTime is the process's user plus system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// putRecord stores r in w's transaction as Put does (the body apart when
// it is large), with no tags or expiry.
func putRecord(w *wtx, r *Record) error {
	var body []byte
	if separateBody(len(r.Body)) {
		body = r.Body
	}
	return w.put(recKey(r.Key, r.Variant), encodeRecord(r), body, nil, time.Time{}, w.nowNs)
}

// BenchmarkFillDeferred stores pages as the proxy stores its misses:
// PutDeferred calls arriving at a fixed rate, each in a goroutine of its
// own (a fill is stored after its response went out, so arrivals do not
// wait for commits), records shaped like pageRecord with an expiry a day
// after the put, keys in the loadtest's order ("sequential": a run id and
// a counter, as the miss scenario's URLs) or scattered over the key
// space, into a store already holding 5,000 pages. rate=2000 is the
// loadtest's miss scenario (every request a stored miss), rate=250 its
// mixed one (2% of ~12,000 requests/s). cpu-µs/record is the process's
// user plus system CPU time per record (getrusage: the commits' pwrite
// and fdatasync included), page-bytes/record bbolt's page allocation per
// record (what the commits write, bar the meta page), writes/commit the
// sharing of commits. max is Options.MaxCommitDelay: 10ms (= CommitDelay)
// holds a batch 10ms from its first write, as before MaxCommitDelay
// existed; 80ms is the default.
//
//	go test ./store -run '^$' -bench FillDeferred -benchtime=2000x -benchmem
func BenchmarkFillDeferred(b *testing.B) {
	type bcase struct {
		order   string
		rate    int
		maxWait time.Duration
	}
	var cases []bcase
	for _, c := range []bcase{{"sequential", 2000, 0}, {"scattered", 2000, 0}, {"scattered", 250, 0}} {
		// max=10ms: no wait beyond CommitDelay from the first write (as
		// before MaxCommitDelay); max=80ms: the default.
		cases = append(cases, bcase{c.order, c.rate, 10 * time.Millisecond}, bcase{c.order, c.rate, 80 * time.Millisecond})
	}
	for _, c := range cases {
		b.Run(fmt.Sprintf("order=%s/rate=%d/max=%v", c.order, c.rate, c.maxWait), func(b *testing.B) {
			s, err := Open(filepath.Join(b.TempDir(), "fill.db"), Options{MaxCommitDelay: c.maxWait})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			key := func(i int64) string {
				if c.order == "scattered" {
					return scatteredKey(i)
				}
				return fmt.Sprintf("http://127.0.0.1:8080/u/1-%d", i)
			}
			prefill5000(b, s, func(j int64) *Record { return pageRecord(scatteredKey(j+1_000_000), 20<<10) })
			tmpl := pageRecord("x", 20<<10)
			b.ReportAllocs()
			b.SetBytes(int64(len(tmpl.Body)))
			before, beforeDB := s.Stats(), s.db.Load().Stats()
			interval := time.Second / time.Duration(c.rate)
			var wg sync.WaitGroup
			b.ResetTimer()
			cpu0 := cpuTime()
			start := time.Now()
			for i := range int64(b.N) {
				if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
					time.Sleep(d) // pacing the arrivals, not synchronization
				}
				wg.Go(func() {
					r := *tmpl
					r.Key = key(i + 1)
					r.Expires = time.Now().Add(24 * time.Hour)
					if err := s.PutDeferred(ctx, &r); err != nil {
						b.Error(err)
					}
				})
			}
			wg.Wait()
			cpu := cpuTime() - cpu0
			b.StopTimer()
			st, db := s.Stats(), s.db.Load().Stats()
			pages := db.TxStats.GetPageAlloc() - beforeDB.TxStats.GetPageAlloc()
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/record")
			b.ReportMetric(float64(st.Writes-before.Writes)/float64(max(1, st.Commits-before.Commits)), "writes/commit")
			b.ReportMetric(float64(pages)/float64(b.N), "page-bytes/record")
		})
	}
}

// BenchmarkFlushAccess is one access-time flush of n records read since
// their last recorded access (older than AccessGranularity): the lru
// index gets n new entries at its end and loses n old ones.
func BenchmarkFlushAccess(b *testing.B) {
	for _, n := range []int{1000, 20000, 60000} {
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			now := time.Unix(1_700_000_000, 0)
			clock := func() time.Time { return now }
			s, err := Open(filepath.Join(b.TempDir(), "flush.db"), Options{NoSync: true, Now: clock, AccessFlushInterval: time.Hour})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			keys := make([]string, n)
			for i := range n {
				keys[i] = fmt.Sprintf("/flush/%08x", uint32(i)*2654435761) // scattered
				if err := s.Put(ctx, pageRecord(keys[i], 64)); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				// Read in random order, at increasing times, as requests do.
				now = now.Add(time.Hour)
				for j, p := range rand.Perm(n) {
					s.touchAt(recKey(keys[p], pageRecord("", 0).Variant), now.Add(time.Duration(j)*time.Microsecond).UnixNano())
				}
				if err := s.flushAccess(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
		})
	}
}
