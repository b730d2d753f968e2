package server

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/firstrender/firstrender/cmd/server/loadtest/page"
	"github.com/firstrender/firstrender/httpcache"
)

// rawConn is a minimal keep-alive HTTP/1.1 client: it costs far less
// per request than net/http's, so that the process CPU a benchmark
// reports is mostly the server's. It allocates nothing per request.
type rawConn struct {
	c    net.Conn
	br   *bufio.Reader
	req  []byte
	body []byte
}

func dialRaw(tb testing.TB, addr string) *rawConn {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return &rawConn{c: c, br: bufio.NewReaderSize(c, 8<<10), body: make([]byte, 64<<10)}
}

// get sends GET path and reads the response; it returns the status and
// whether the response's Cache-Status says hit.
func (rc *rawConn) get(host, path string) (status int, hit bool, err error) {
	rc.req = append(rc.req[:0], "GET "...)
	rc.req = append(rc.req, path...)
	rc.req = append(rc.req, " HTTP/1.1\r\nHost: "...)
	rc.req = append(rc.req, host...)
	rc.req = append(rc.req, "\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n"...)
	if _, err := rc.c.Write(rc.req); err != nil {
		return 0, false, err
	}
	clen := -1
	for first := true; ; first = false {
		line, err := rc.br.ReadSlice('\n')
		if err != nil {
			return 0, false, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		if first {
			if len(line) < 12 {
				return 0, false, fmt.Errorf("status line %q", line)
			}
			status, _ = strconv.Atoi(string(line[9:12]))
			continue
		}
		name, val, _ := bytes.Cut(line, []byte(":"))
		val = bytes.TrimSpace(val)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			clen, _ = strconv.Atoi(string(val))
		case bytes.EqualFold(name, []byte("Cache-Status")):
			hit = bytes.Contains(val, []byte("firstrender; hit"))
		}
	}
	if clen < 0 || clen > len(rc.body) {
		return status, hit, fmt.Errorf("Content-Length %d", clen)
	}
	_, err = io.ReadFull(rc.br, rc.body[:clen])
	return status, hit, err
}

// processCPU is this process's user and system CPU time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// heapAllocs is the count of heap objects allocated so far.
func heapAllocs() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:objects"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// BenchmarkServer_MemoryHit serves memory-tier hits of the load
// command's 20 KB pages (cmd/server/loadtest/page) through the whole
// public listener of [New]'s server (guarded listener, accept gate,
// access log at warn, broker wrapper, proxy) over real keep-alive
// loopback connections, against a plain net/http handler writing the
// same header fields and the same bytes (one body per page) from memory,
// in the same run. Each b.Loop round sends every one of benchPages pages
// once to each side (plain first), over benchConns connections.
// Reported per request, for each side: the process's CPU time (client
// included: the raw client above, the same for both) and heap
// allocations, and the ratio of firstrender's CPU to the plain
// handler's. Every firstrender response must be a hit (Cache-Status).
//
// Both servers share one process, so the plain handler runs beside the
// memory tier's 200 MB and pays the same cache and TLB misses: the ratio
// isolates what the handler chain adds. The load command's working-set
// baseline serves one body (page 0) for every path, which stays in the
// CPU's caches; a third side does the same here ("one-body", measured
// after firstrender in each round), so the share of the load command's
// ratio that comes from that difference can be read in the same run.
func BenchmarkServer_MemoryHit(b *testing.B) {
	const benchPages, benchConns = 10000, 32
	bodies := make([][]byte, benchPages)
	for i := range bodies {
		bodies[i] = page.Body(20480, i)
	}
	origin := httptest.NewServer(page.Origin(bodies))
	b.Cleanup(origin.Close)
	// The plain handler: the fields a hit carries (the origin's, Date
	// from net/http, Age, Cache-Status, Content-Length) and the body.
	// plainOne is the load command's baseline: page 0 for every path.
	plainHandler := func(one bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			n, ok := page.Num(r.URL.Path, benchPages)
			if !ok {
				http.NotFound(w, r)
				return
			}
			if one {
				n = 0
			}
			h := w.Header()
			page.Header(h, n)
			h["Age"] = []string{"1"}
			h["Cache-Status"] = []string{"firstrender; hit; ttl=86399"}
			h["Content-Length"] = []string{"20480"}
			w.Write(bodies[n])
		}
	}
	// Each server's goroutines carry a profiler label "side" (plain,
	// one-body, firstrender), inherited from the goroutine that starts
	// it, so a CPU profile of this benchmark splits by side:
	// go tool pprof -tagfocus side=firstrender.
	labelled := func(side string, start func()) {
		pprof.SetGoroutineLabels(pprof.WithLabels(context.Background(), pprof.Labels("side", side)))
		defer pprof.SetGoroutineLabels(context.Background())
		start()
	}
	var plain, plainOne *httptest.Server
	labelled("plain", func() { plain = httptest.NewServer(plainHandler(false)) })
	labelled("one-body", func() { plainOne = httptest.NewServer(plainHandler(true)) })
	b.Cleanup(plain.Close)
	b.Cleanup(plainOne.Close)

	logger := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var s *testServer
	labelled("firstrender", func() {
		s = startServer(b, Config{Upstream: mustURL(b, origin.URL), Logger: logger, Cache: httpcache.Config{}})
	})
	frAddr := s.srv.PublicAddr().String()
	plainAddr, oneAddr := strings.TrimPrefix(plain.URL, "http://"), strings.TrimPrefix(plainOne.URL, "http://")

	conns := func(addr string) []*rawConn {
		cs := make([]*rawConn, benchConns)
		for i := range cs {
			cs[i] = dialRaw(b, addr)
		}
		return cs
	}
	frConns, plainConns, oneConns := conns(frAddr), conns(plainAddr), conns(oneAddr)
	paths := make([]string, benchPages)
	for i := range paths {
		paths[i] = "/p/" + strconv.Itoa(i)
	}
	// round sends every page once over cs and counts hits.
	round := func(cs []*rawConn, host string) (hits int) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		var firstErr error
		for ci, c := range cs {
			wg.Go(func() {
				h := 0
				for i := ci; i < benchPages; i += len(cs) {
					status, hit, err := c.get(host, paths[i])
					if err == nil && status != http.StatusOK {
						err = fmt.Errorf("GET %s: status %d", paths[i], status)
					}
					if err != nil {
						mu.Lock()
						firstErr = err
						mu.Unlock()
						return
					}
					if hit {
						h++
					}
				}
				mu.Lock()
				hits += h
				mu.Unlock()
			})
		}
		wg.Wait()
		if firstErr != nil {
			b.Fatal(firstErr)
		}
		return hits
	}
	// Fill, then two reads from the store: the memory tier admits a page
	// on its second read.
	round(frConns, frAddr)
	s.stored(b)
	round(frConns, frAddr)
	round(frConns, frAddr)
	round(plainConns, plainAddr)
	round(oneConns, oneAddr)

	var cpuFR, cpuPlain, cpuOne time.Duration
	var allocFR, allocPlain uint64
	var reqs int
	for b.Loop() {
		c0, a0 := processCPU(), heapAllocs()
		round(plainConns, plainAddr)
		c1, a1 := processCPU(), heapAllocs()
		if h := round(frConns, frAddr); h != benchPages {
			b.Fatalf("%d of %d responses were hits", h, benchPages)
		}
		c2, a2 := processCPU(), heapAllocs()
		round(oneConns, oneAddr)
		cpuOne += processCPU() - c2
		cpuPlain += c1 - c0
		cpuFR += c2 - c1
		allocPlain += a1 - a0
		allocFR += a2 - a1
		reqs += benchPages
	}
	b.ReportMetric(float64(cpuFR.Nanoseconds())/float64(reqs), "fr-cpu-ns/req")
	b.ReportMetric(float64(cpuPlain.Nanoseconds())/float64(reqs), "plain-cpu-ns/req")
	b.ReportMetric(cpuFR.Seconds()/cpuPlain.Seconds(), "cpu-ratio")
	b.ReportMetric(float64(cpuOne.Nanoseconds())/float64(reqs), "plain-one-body-cpu-ns/req")
	b.ReportMetric(cpuFR.Seconds()/cpuOne.Seconds(), "cpu-ratio-vs-one-body")
	b.ReportMetric(float64(allocFR)/float64(reqs), "fr-allocs/req")
	b.ReportMetric(float64(allocPlain)/float64(reqs), "plain-allocs/req")
}
