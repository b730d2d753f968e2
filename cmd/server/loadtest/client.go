package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// conn is one keep-alive HTTP/1.1 client connection: a deliberately small
// client (request line, Host, optional extra lines; Content-Length or
// chunked bodies, read and discarded) so the load generator spends far
// less CPU per request than the servers it measures.
type conn struct {
	addr string
	c    net.Conn
	br   *bufio.Reader
	req  []byte
}

// response is what the load generator keeps of a response.
type response struct {
	status int
	// hit: firstrender's Cache-Status member says "hit" (not collapsed),
	// or a peer's X-Cache says HIT (nginx's $upstream_cache_status,
	// Varnish's obj.hits > 0: see peers.go).
	hit  bool
	age  int // the Age field's value; -1 absent
	body int
}

func dial(addr string) (*conn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &conn{addr: addr, c: c, br: bufio.NewReaderSize(c, 64<<10)}, nil
}

func (c *conn) close() {
	if c.c != nil {
		c.c.Close()
	}
}

// get sends GET path and reads the whole response.
func (c *conn) get(path string) (response, error) {
	return c.do("GET", path, "")
}

func (c *conn) do(method, path, extra string) (response, error) {
	if c.c == nil {
		nc, err := dial(c.addr)
		if err != nil {
			return response{}, err
		}
		*c = *nc
	}
	c.req = append(c.req[:0], method...)
	c.req = append(c.req, ' ')
	c.req = append(c.req, path...)
	c.req = append(c.req, " HTTP/1.1\r\nHost: "...)
	c.req = append(c.req, c.addr...)
	c.req = append(c.req, "\r\nUser-Agent: firstrender-loadtest\r\nAccept-Encoding: identity\r\n"...)
	c.req = append(c.req, extra...)
	c.req = append(c.req, "\r\n"...)
	c.c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.c.Write(c.req); err != nil {
		c.reset()
		return response{}, err
	}
	r, err := c.read(method == "HEAD")
	if err != nil {
		c.reset()
	}
	return r, err
}

func (c *conn) reset() {
	if c.c != nil {
		c.c.Close()
		c.c = nil
	}
}

var (
	hContentLength = []byte("content-length:")
	hTransferEnc   = []byte("transfer-encoding:")
	hCacheStatus   = []byte("cache-status:")
	hConnection    = []byte("connection:")
	hXCache        = []byte("x-cache:")
	hAge           = []byte("age:")
)

func hasPrefixFold(line, prefix []byte) bool {
	return len(line) >= len(prefix) && bytes.EqualFold(line[:len(prefix)], prefix)
}

func (c *conn) read(head bool) (response, error) {
	r := response{age: -1}
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		return r, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return r, fmt.Errorf("bad status line %q", line)
	}
	r.status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return r, fmt.Errorf("bad status line %q", line)
	}
	clen, chunked, closeAfter := -1, false, false
	for {
		line, err = c.br.ReadSlice('\n')
		if err != nil {
			return r, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		switch {
		case hasPrefixFold(line, hContentLength):
			clen, err = strconv.Atoi(string(bytes.TrimSpace(line[len(hContentLength):])))
			if err != nil {
				return r, fmt.Errorf("bad Content-Length %q", line)
			}
		case hasPrefixFold(line, hTransferEnc):
			chunked = bytes.Contains(bytes.ToLower(line), []byte("chunked"))
		case hasPrefixFold(line, hCacheStatus):
			v := line[len(hCacheStatus):]
			if i := bytes.LastIndex(v, []byte("firstrender")); i >= 0 {
				m := v[i:]
				if j := bytes.IndexByte(m, ','); j >= 0 {
					m = m[:j]
				}
				r.hit = bytes.Contains(m, []byte("; hit")) && !bytes.Contains(m, []byte("collapsed"))
			}
		case hasPrefixFold(line, hXCache):
			v := bytes.TrimSpace(line[len(hXCache):])
			r.hit = r.hit || hasPrefixFold(v, []byte("hit"))
		case hasPrefixFold(line, hAge):
			if n, err := strconv.Atoi(string(bytes.TrimSpace(line[len(hAge):]))); err == nil {
				r.age = n
			}
		case hasPrefixFold(line, hConnection):
			closeAfter = bytes.Contains(bytes.ToLower(line), []byte("close"))
		}
	}
	switch {
	case head || r.status == 304 || r.status == 204 || r.status/100 == 1:
	case chunked:
		for {
			line, err = c.br.ReadSlice('\n')
			if err != nil {
				return r, err
			}
			n, err := strconv.ParseInt(string(bytes.TrimSpace(bytes.SplitN(line, []byte(";"), 2)[0])), 16, 64)
			if err != nil {
				return r, fmt.Errorf("bad chunk size %q", line)
			}
			if n == 0 {
				for { // trailers
					line, err = c.br.ReadSlice('\n')
					if err != nil {
						return r, err
					}
					if len(bytes.TrimRight(line, "\r\n")) == 0 {
						break
					}
				}
				break
			}
			if _, err := c.br.Discard(int(n) + 2); err != nil {
				return r, err
			}
			r.body += int(n)
		}
	case clen >= 0:
		if _, err := c.br.Discard(clen); err != nil {
			return r, err
		}
		r.body = clen
	default:
		n, err := io.Copy(io.Discard, c.br)
		r.body = int(n)
		c.reset()
		return r, err
	}
	if closeAfter {
		c.reset()
	}
	return r, nil
}

// load is one measured run of HTTP requests over keep-alive connections.
type load struct {
	addr     string
	conns    int
	duration time.Duration
	max      int64 // stop after this many requests in all (0: no bound)
	// next returns the path of a worker's i-th request. It may instead
	// return "" and act itself (a purge), returning the latency to count
	// as done (or a negative duration when nothing was done).
	next func(ctx context.Context, w int, i int64, c *conn) (path string, err error)
	// check, if set, sees every response (verification of hit ratios,
	// purge semantics).
	check func(w int, path string, r response)
	// profile names the profiles Measure writes when Options.Profile is
	// set ("" none).
	profile string
	// background, if set, runs beside the workers for as long as they do
	// (it must return once ctx ends), on connections of its own to addr: its
	// requests are not in the result, its server CPU is (mixed's misses
	// and purges, sent by other visitors than the measured ones).
	background func(ctx context.Context, addr string)
}

// result is what a load run measured.
type result struct {
	requests int64
	hits     int64
	errors   int64
	elapsed  time.Duration
	lat      []time.Duration // sorted
	firstErr error
}

func (r *result) rps() float64 { return float64(r.requests) / r.elapsed.Seconds() }

func (r *result) pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	i := int(float64(len(r.lat)-1) * p)
	return r.lat[i]
}

func (r *result) hitRatio() float64 {
	if r.requests == 0 {
		return 0
	}
	return float64(r.hits) / float64(r.requests)
}

// run drives the load until duration passes or max requests are done.
func (l *load) run(ctx context.Context) *result {
	ctx, cancel := context.WithTimeout(ctx, l.duration)
	defer cancel()
	var total atomic.Int64
	var wg sync.WaitGroup
	lats := make([][]time.Duration, l.conns)
	res := &result{}
	var mu sync.Mutex
	if l.background != nil {
		bctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			l.background(bctx, l.addr)
		}()
		defer func() {
			stop()
			<-done
		}()
	}
	start := time.Now()
	for w := range l.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &conn{addr: l.addr}
			defer c.close()
			lat := make([]time.Duration, 0, 1<<14)
			var hits, errs int64
			for i := int64(0); ctx.Err() == nil; i++ {
				if l.max > 0 && total.Add(1) > l.max {
					break
				}
				path, err := l.next(ctx, w, i, c)
				if err != nil {
					errs++
					mu.Lock()
					if res.firstErr == nil {
						res.firstErr = err
					}
					mu.Unlock()
					continue
				}
				if path == "" {
					continue
				}
				t0 := time.Now()
				r, err := c.get(path)
				d := time.Since(t0)
				if err != nil {
					if ctx.Err() != nil {
						break
					}
					errs++
					mu.Lock()
					if res.firstErr == nil {
						res.firstErr = fmt.Errorf("GET %s: %w", path, err)
					}
					mu.Unlock()
					continue
				}
				if r.status != 200 && r.status != 304 {
					errs++
					mu.Lock()
					if res.firstErr == nil {
						res.firstErr = fmt.Errorf("GET %s: status %d", path, r.status)
					}
					mu.Unlock()
				}
				if r.hit {
					hits++
				}
				if l.check != nil {
					l.check(w, path, r)
				}
				lat = append(lat, d)
			}
			mu.Lock()
			lats[w] = lat
			res.hits += hits
			res.errors += errs
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	for _, l := range lats {
		res.lat = append(res.lat, l...)
	}
	slices.Sort(res.lat)
	res.requests = int64(len(res.lat))
	return res
}

// warm requests every path from 0 to n-1 (pathOf) rounds times over conns
// connections, failing on the first error.
func warm(ctx context.Context, addr string, conns, n, rounds int, pathOf func(i int) string) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, conns)
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &conn{addr: addr}
			defer c.close()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n*rounds {
					return
				}
				p := pathOf(i % n)
				r, err := c.get(p)
				if err == nil && r.status != 200 {
					err = fmt.Errorf("status %d", r.status)
				}
				if err != nil {
					errc <- fmt.Errorf("warm-up GET %s: %w", p, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	return errors.Join(<-errc, ctx.Err())
}
