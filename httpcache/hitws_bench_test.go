package httpcache_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/firstrender/firstrender/cmd/server/loadtest/page"
	"github.com/firstrender/firstrender/httpcache"
	"github.com/firstrender/firstrender/store"
	"github.com/firstrender/firstrender/store/storetest"
	"github.com/prometheus/client_golang/prometheus"
)

// netHTTPWriter is a ResponseWriter that does with the header what
// net/http's does for a handler: a fresh map per request (make(Header)),
// cloned at WriteHeader once the handler called Header, and the fields
// written sorted (Header.WriteSubset) into a buffer; the body is
// discarded. So the cost of the map a hit fills (its size, its growth)
// shows as it does in the server.
type netHTTPWriter struct {
	h      http.Header
	called bool
	code   int
	n      int
	out    strings.Builder
}

func (w *netHTTPWriter) reset() {
	w.h, w.called, w.code, w.n = make(http.Header), false, 0, 0
	w.out.Reset()
}

func (w *netHTTPWriter) Header() http.Header { w.called = true; return w.h }

func (w *netHTTPWriter) WriteHeader(code int) {
	w.code = code
	h := w.h
	if w.called {
		h = h.Clone()
	}
	h.WriteSubset(&w.out, nil)
}

func (w *netHTTPWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.WriteHeader(http.StatusOK)
	}
	w.n += len(p)
	return len(p), nil
}

// BenchmarkServeHTTP_HitWorkingSet is the loadtest's working-set scenario
// without sockets: 10,000 distinct load-command pages (20 KB,
// cmd/server/loadtest/page, with their stored Date) in the memory tier,
// requested in order as the load command's client does (Host, User-Agent,
// Accept-Encoding: identity) straight into Proxy.ServeHTTP with a
// netHTTPWriter. It measures the proxy's own work per memory hit where
// every hit's entry is cold in the CPU's caches (about 200 MB of
// entries), with the header map work net/http does for it; every
// response must be a hit. cpu-ns/op is the process's CPU time per request
// (getrusage), steadier than ns/op on a shared machine.
//
// "aged": the proxy's clock (Config.Now) moves 67 µs per request, so
// each page is asked for every 0.67 s of its age, as at the loadtest's
// 15,000 requests/s: most hits fall in a new second of the entry's age
// (Age, Cache-Status ttl=). "wall": no Config.Now, as the server runs
// (time.Now; a page's age then moves once per ten or so of its hits).
// "store": "wall" with the memory tier off (MemoryCacheSize -1), so every
// hit reads and decodes its record from the bbolt store, as most hits of
// the loadtest's large scenario do.
func BenchmarkServeHTTP_HitWorkingSet(b *testing.B) {
	b.Run("aged", func(b *testing.B) { benchHitWorkingSet(b, true, false) })
	b.Run("wall", func(b *testing.B) { benchHitWorkingSet(b, false, false) })
	b.Run("store", func(b *testing.B) { benchHitWorkingSet(b, false, true) })
}

func benchHitWorkingSet(b *testing.B, aged, storeOnly bool) {
	const pages = 10000
	bodies := make([][]byte, pages)
	for i := range bodies {
		bodies[i] = page.Body(20480, i)
	}
	origin := httptest.NewServer(page.Origin(bodies))
	b.Cleanup(origin.Close)
	up, _ := url.Parse(origin.URL)
	st := storetest.Open(b, store.Options{NoSync: true})
	base := time.Now()
	var tick atomic.Int64
	var now func() time.Time
	if aged {
		now = func() time.Time { return base.Add(time.Duration(tick.Load()) * 67 * time.Microsecond) }
	}
	var memory int64
	if storeOnly {
		memory = -1
	}
	p, err := httpcache.New(httpcache.Config{Upstream: up, Store: st, Logger: slog.New(slog.DiscardHandler), Now: now,
		MemoryCacheSize: memory,
		Registerer:      prometheus.NewRegistry()}) // metrics on, as the server has them
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close(context.Background()) })
	// One request, its target set per page as net/http's reader would
	// have parsed it: like a server's, the request itself is fresh in the
	// CPU's caches, the entry it finds is not.
	r := httptest.NewRequest(http.MethodGet, "http://127.0.0.1:8080/", nil)
	r.Header = http.Header{"User-Agent": {"firstrender-loadtest"}, "Accept-Encoding": {"identity"}}
	urls, targets := make([]*url.URL, pages), make([]string, pages)
	for i := range urls {
		targets[i] = "/p/" + strconv.Itoa(i)
		urls[i] = &url.URL{Path: targets[i]}
	}
	to := func(i int) *http.Request {
		r.URL, r.RequestURI = urls[i], targets[i]
		return r
	}
	w := &netHTTPWriter{}
	pass := func() (hits int) {
		for i := range pages {
			tick.Add(1)
			w.reset()
			p.ServeHTTP(w, to(i))
			if w.code != http.StatusOK || w.n != 20480 {
				b.Fatalf("GET %s: %d, %d bytes", r.URL, w.code, w.n)
			}
			if strings.HasPrefix(w.h.Get("Cache-Status"), "firstrender; hit") {
				hits++
			}
		}
		return hits
	}
	pass() // fill
	p.Wait(context.Background())
	pass() // from the store: first sighting
	pass() // from the store: admitted
	if h := pass(); h != pages {
		b.Fatalf("%d of %d hits", h, pages)
	}
	b.ReportAllocs()
	b.SetBytes(20480)
	i := 0
	cpu0 := processCPU()
	for b.Loop() {
		r := to(i)
		if i++; i == pages {
			i = 0
		}
		tick.Add(1)
		w.reset()
		p.ServeHTTP(w, r)
		if w.code != http.StatusOK {
			b.Fatalf("status %d", w.code)
		}
	}
	b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// processCPU is this process's user and system CPU time: on a shared
// machine, the benchmark's own work, where ns/op also counts the time
// other processes held the CPU.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
