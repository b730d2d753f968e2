package httpcache

import (
	"bytes"
	"context"
	"fmt"
	"github.com/firstrender/firstrender/store"
	"github.com/firstrender/firstrender/store/storetest"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// page20K is a 20 KB HTML-ish body.
var page20K = func() []byte {
	var b bytes.Buffer
	b.WriteString("<!doctype html><html><head><title>bench</title></head><body>")
	for b.Len() < 20*1024 {
		b.WriteString(`<div data-phx-id="x">lorem ipsum dolor sit amet</div>`)
	}
	b.Truncate(20*1024 - 14)
	b.WriteString("</body></html>")
	return b.Bytes()
}()

func pageHandler(cc string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", cc)
		h.Set("Content-Length", "20480")
		w.Write(page20K)
	}
}

// benchRig is a proxy with a real store (fsync off) between a loopback
// front server and a loopback origin.
type benchRig struct {
	p      *Proxy
	front  *httptest.Server
	origin *httptest.Server
	plain  *httptest.Server
	active sync.WaitGroup // handlers running
}

// settle waits until every handler returned and every store write ended.
func (br *benchRig) settle() {
	br.active.Wait()
	br.p.Wait(context.Background())
}

func newBenchRig(b *testing.B, cc string, mods ...func(*Config)) *benchRig {
	br := &benchRig{}
	br.origin = httptest.NewServer(pageHandler(cc))
	br.plain = httptest.NewServer(pageHandler(cc))
	st := storetest.Open(b, store.Options{})
	up, _ := url.Parse(br.origin.URL)
	cfg := Config{Upstream: up, Store: st, Logger: discardLogger()}
	for _, m := range mods {
		m(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	br.p = p
	br.front = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		br.active.Add(1)
		defer br.active.Done()
		p.ServeHTTP(w, r)
	}))
	b.Cleanup(func() {
		br.front.Close()
		br.plain.Close()
		br.origin.Close()
		p.Close(context.Background())
		st.Close()
	})
	return br
}

func benchClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true}}
}

func fetch(b testing.TB, c *http.Client, u string) {
	resp, err := c.Get(u)
	if err != nil {
		b.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || n != int64(len(page20K)) {
		b.Fatalf("GET %s: %d, %d bytes", u, resp.StatusCode, n)
	}
}

// runLoad sends total requests to u from conns goroutines and returns the
// elapsed time and every request's latency.
func runLoad(b testing.TB, c *http.Client, u string, conns, total int) (time.Duration, []time.Duration) {
	lat := make([]time.Duration, total)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(total) {
					return
				}
				t0 := time.Now()
				fetch(b, c, u)
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	return time.Since(start), lat
}

func pct(l []time.Duration, p float64) time.Duration {
	s := slices.Clone(l)
	slices.Sort(s)
	return s[int(float64(len(s)-1)*p)]
}

// BenchmarkHitVsPlain measures cache hits of a 20 KB page over loopback
// HTTP against a plain Go handler serving the same bytes from memory, in
// the same run, interleaved in short rounds (b.N rounds of 2×250
// requests over 8 keep-alive connections) so that interference from
// other processes hits both sides alike. Reported: throughput of each
// side, the median over rounds of the hit/plain throughput ratio, p50/p99
// latency of each, and the process CPU time per request of each side
// (client and server together, from getrusage).
func BenchmarkHitVsPlain(b *testing.B) {
	if testing.Short() {
		b.Skip("loopback benchmark")
	}
	const conns, perRound = 8, 250
	br := newBenchRig(b, "public, max-age=3600")
	c := benchClient(conns)
	fetch(b, c, br.front.URL+"/page") // fill
	br.settle()
	for range 500 { // warm up both
		fetch(b, c, br.front.URL+"/page")
		fetch(b, c, br.plain.URL+"/page")
	}
	var tHit, tPlain, cpuHit, cpuPlain time.Duration
	var lHit, lPlain []time.Duration
	var ratios []float64
	b.ResetTimer()
	for b.Loop() {
		c0 := cpuTime()
		dp, l := runLoad(b, c, br.plain.URL+"/page", conns, perRound)
		c1 := cpuTime()
		tPlain += dp
		lPlain = append(lPlain, l...)
		dh, l := runLoad(b, c, br.front.URL+"/page", conns, perRound)
		c2 := cpuTime()
		tHit += dh
		lHit = append(lHit, l...)
		cpuPlain += c1 - c0
		cpuHit += c2 - c1
		ratios = append(ratios, dp.Seconds()/dh.Seconds())
	}
	b.StopTimer()
	slices.Sort(ratios)
	hitRPS := float64(len(lHit)) / tHit.Seconds()
	plainRPS := float64(len(lPlain)) / tPlain.Seconds()
	b.ReportMetric(hitRPS, "hit-req/s")
	b.ReportMetric(plainRPS, "plain-req/s")
	b.ReportMetric(ratios[len(ratios)/2], "throughput-ratio")
	b.ReportMetric(float64(pct(lHit, .5).Microseconds()), "hit-p50-µs")
	b.ReportMetric(float64(pct(lHit, .99).Microseconds()), "hit-p99-µs")
	b.ReportMetric(float64(pct(lPlain, .5).Microseconds()), "plain-p50-µs")
	b.ReportMetric(float64(pct(lPlain, .99).Microseconds()), "plain-p99-µs")
	b.ReportMetric(float64(cpuHit.Microseconds())/float64(len(lHit)), "hit-cpu-µs/req")
	b.ReportMetric(float64(cpuPlain.Microseconds())/float64(len(lPlain)), "plain-cpu-µs/req")
}

// cpuTime is this process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// discardWriter is a reusable ResponseWriter for in-process benchmarks.
type discardWriter struct {
	h    http.Header
	code int
	n    int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) WriteHeader(c int)           { d.code = c }
func (d *discardWriter) Write(p []byte) (int, error) { d.n += len(p); return len(p), nil }

// BenchmarkServeHTTP_Hit measures the proxy's own cost per hit (no
// network): lookup, freshness, headers and body write. "hot" serves from
// the in-memory hot entries; "store" disables them (MemoryCacheSize < 0),
// so each hit reads and decodes the bbolt record.
//
// "hot-browser-ae" is "hot" for a request with a browser's
// Accept-Encoding (normalized to gzip for the origin: on a plain hit from
// memory without copying the request), "hot-identity" with the load
// command's "identity" (normalized to none).
func BenchmarkServeHTTP_Hit(b *testing.B) {
	for _, mc := range []struct {
		name string
		size int64
		ae   string
	}{{"hot", 0, ""}, {"hot-browser-ae", 0, "gzip, deflate, br, zstd"}, {"hot-identity", 0, "identity"}, {"store", -1, ""}, {"store-browser-ae", -1, "gzip, deflate, br, zstd"}} {
		b.Run(mc.name, func(b *testing.B) {
			br := newBenchRig(b, "public, max-age=3600", func(c *Config) { c.MemoryCacheSize = mc.size })
			c := benchClient(1)
			fetch(b, c, br.front.URL+"/page")
			br.settle()
			req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/page", nil)
			req.Host = strings.TrimPrefix(br.front.URL, "http://")
			if mc.ae != "" {
				req.Header.Set("Accept-Encoding", mc.ae)
			}
			w := &discardWriter{h: make(http.Header, 16)}
			b.ReportAllocs()
			b.SetBytes(int64(len(page20K)))
			for b.Loop() {
				clear(w.h)
				br.p.ServeHTTP(w, req)
				if w.code != 200 {
					b.Fatalf("status %d", w.code)
				}
			}
		})
	}
}

// BenchmarkFill measures storing one complete 20 KB response the way a
// miss does beside the response (build the record, store.Put with fsync
// off), sequentially.
func BenchmarkFill(b *testing.B) {
	br := newBenchRig(b, "public, max-age=3600")
	req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/page", nil)
	h := http.Header{"Content-Type": {"text/html"}, "Cache-Control": {"public, max-age=3600"}}
	now := time.Now()
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		job := &fillJob{req: req, key: fmt.Sprintf("http://127.0.0.1/fill%d", i), status: 200, header: h.Clone(),
			pol: policy{lifetime: time.Hour}, reqTime: now, respTime: now}
		br.p.store(&fill{p: br.p, job: job, complete: true, body: page20K})
	}
}

// BenchmarkMissOverhead compares fetching from the origin directly with
// a cache miss through the proxy (unique URL each time, so every request
// is forwarded and stored), over loopback, sequentially: "miss" includes
// competing with the previous response's store write (bbolt commit,
// fsync off), "miss-settled" waits for it outside the timing, "pass" is
// forwarding without caching (a host that is not cached).
func BenchmarkMissOverhead(b *testing.B) {
	if testing.Short() {
		b.Skip("loopback benchmark")
	}
	br := newBenchRig(b, "public, max-age=3600")
	c := benchClient(1)
	var i int
	b.Run("direct", func(b *testing.B) {
		for b.Loop() {
			i++
			fetch(b, c, fmt.Sprintf("%s/p%d", br.origin.URL, i))
		}
	})
	b.Run("miss", func(b *testing.B) {
		for b.Loop() {
			i++
			fetch(b, c, fmt.Sprintf("%s/p%d", br.front.URL, i))
		}
		b.StopTimer()
		br.settle()
	})
	b.Run("miss-settled", func(b *testing.B) { // the store write excluded from the timing
		for b.Loop() {
			i++
			fetch(b, c, fmt.Sprintf("%s/p%d", br.front.URL, i))
			b.StopTimer()
			br.settle()
			b.StartTimer()
		}
	})
	b.Run("pass", func(b *testing.B) { // uncacheable host: forwarded only
		for b.Loop() {
			i++
			req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/p%d", br.front.URL, i), nil)
			req.Host = "uncached.example"
			resp, err := c.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}

// BenchmarkMissInspected measures a miss with an Inspector (a trivial
// one, so the figure is the proxy's cost): "before-headers" reads the 20 KB
// body and inspects it before writing the headers (InspectBuffer
// default), "streamed" streams it and inspects in the background
// (InspectBuffer < 0). Sequential, unique URLs, over loopback.
func BenchmarkMissInspected(b *testing.B) {
	if testing.Short() {
		b.Skip("loopback benchmark")
	}
	ins := InspectorFunc(func(*http.Request, *Response) Verdict { return Verdict{} })
	for _, v := range []struct {
		name string
		buf  int64
	}{{"before-headers", 0}, {"streamed", -1}} {
		b.Run(v.name, func(b *testing.B) {
			br := newBenchRig(b, "public, max-age=3600", func(c *Config) { c.Inspector = ins; c.InspectBuffer = v.buf })
			c := benchClient(1)
			i := 0
			for b.Loop() {
				i++
				fetch(b, c, fmt.Sprintf("%s/p%d", br.front.URL, i))
			}
			b.StopTimer()
			br.settle()
		})
	}
}

// BenchmarkServeHTTP_HitParallel is BenchmarkServeHTTP_Hit/hot from
// GOMAXPROCS goroutines at once (b.RunParallel), where a lock on the hit
// path would show up as contention.
func BenchmarkServeHTTP_HitParallel(b *testing.B) {
	br := newBenchRig(b, "public, max-age=3600")
	c := benchClient(1)
	fetch(b, c, br.front.URL+"/page")
	br.settle()
	host := strings.TrimPrefix(br.front.URL, "http://")
	b.ReportAllocs()
	b.SetBytes(int64(len(page20K)))
	b.RunParallel(func(pb *testing.PB) {
		req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/page", nil)
		req.Host = host
		w := &discardWriter{h: make(http.Header, 16)}
		for pb.Next() {
			clear(w.h)
			br.p.ServeHTTP(w, req)
			if w.code != 200 {
				b.Errorf("status %d", w.code)
				return
			}
		}
	})
}
