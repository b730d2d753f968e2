package httpcache

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// BenchmarkServeHTTP_StoreLarge measures hits served from the store (the
// memory tier off) over 20,000 distinct 20 KB pages, each the record of a
// real miss copied under another URL: "warm" with the pages' Vary names
// known (one store.Get per hit), "cold" with them forgotten before each
// hit (the first request of a key: the variants are listed before the
// record is read). cpu-ns/op is the benchmark thread's CPU time per hit,
// steadier than ns/op on a shared machine.
//
//	go test ./httpcache -run '^$' -bench StoreLarge -benchtime=20000x -benchmem
func BenchmarkServeHTTP_StoreLarge(b *testing.B) {
	const n = 20_000
	br := newBenchRig(b, "public, max-age=3600", func(c *Config) { c.MemoryCacheSize = -1 })
	c := benchClient(1)
	fetch(b, c, br.front.URL+"/page")
	br.settle()
	ctx := context.Background()
	host := strings.TrimPrefix(br.front.URL, "http://")
	ms, err := br.p.st.Variants(ctx, "http://"+host+"/page")
	if err != nil || len(ms) != 1 {
		b.Fatalf("Variants = %v, %v", ms, err)
	}
	tmpl, err := br.p.st.Get(ctx, ms[0].Key, ms[0].Variant)
	if err != nil {
		b.Fatal(err)
	}
	path := func(i int) string { return fmt.Sprintf("/p/%06d", i*7919%n) }
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 16 {
				r := *tmpl
				r.Key = "http://" + host + path(i)
				if err := br.p.st.Put(ctx, &r); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	reqs := make([]*http.Request, n)
	for i := range reqs {
		reqs[i] = httptest.NewRequest(http.MethodGet, "http://127.0.0.1"+path(i), nil)
		reqs[i].Host = host
	}
	w := &discardWriter{h: make(http.Header, 16)}
	serve := func(b *testing.B, i int) {
		clear(w.h)
		br.p.ServeHTTP(w, reqs[i%n])
		if w.code != 200 {
			b.Fatalf("status %d", w.code)
		}
	}
	for i := range n { // every page once: the memory map is faulted in
		serve(b, i)
	}
	for _, cold := range []bool{false, true} {
		name := "warm"
		if cold {
			name = "cold"
		}
		b.Run(name, func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			b.ReportAllocs()
			b.SetBytes(int64(len(tmpl.Body)))
			cpu0 := benchThreadCPU()
			i := 0
			for b.Loop() {
				if cold {
					br.p.vary.forget("http://" + host + path(i%n))
				}
				serve(b, i)
				i++
			}
			b.ReportMetric(float64((benchThreadCPU()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}

// benchThreadCPU is the calling thread's CPU time (Linux; 0 elsewhere).
func benchThreadCPU() time.Duration {
	var ts syscall.Timespec
	const clockThreadCPUTime = 3 // CLOCK_THREAD_CPUTIME_ID
	if _, _, e := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTime, uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		return 0
	}
	return time.Duration(ts.Nano())
}
