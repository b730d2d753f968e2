package httpcache

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"weak"

	"github.com/firstrender/firstrender/httpcache/httpcachetest"
)

// TestFillCacheStatus checks the Cache-Status of the response that fills
// an entry: exact when the Inspector ran before the headers went out,
// never a false "stored" or ttl= when the outcome is still open.
func TestFillCacheStatus(t *testing.T) {
	const page = `<html><meta name="csrf-token" content="abc">page</html>`
	refuseCSRF := func(r *http.Request, res *Response) Verdict {
		if strings.Contains(string(res.Body), "csrf-token") {
			return Verdict{Refuse: "csrf-meta"}
		}
		return Verdict{}
	}
	accept := func(r *http.Request, res *Response) Verdict { return Verdict{} }
	// scribble replaces the stored body, as a lint blanking a token
	// does; the first client must still get the origin's bytes.
	scribble := func(r *http.Request, res *Response) Verdict {
		res.Body = append([]byte("XXXXXX"), res.Body[6:]...)
		return Verdict{}
	}
	tests := []struct {
		name          string
		inspect       func(*rig) func(*http.Request, *Response) Verdict // nil: no Inspector
		chunked       bool
		inspectBuffer int64
		// wantFirst are parameter lists the first response's Cache-Status
		// member must match (httpcachetest.Member.Match); it must lack
		// every one of notFirst (a bare key: any value).
		wantFirst []string
		notFirst  []string
		// wantSecond must match the second response's member.
		wantSecond string
		// wantStoredBody is the body of the second (hit) response.
		wantStoredBody string
	}{
		{
			name:       "refusal shows on the first response",
			inspect:    func(*rig) func(*http.Request, *Response) Verdict { return refuseCSRF },
			wantFirst:  []string{"fwd=uri-miss", "fwd-status=200", "detail=csrf-meta"},
			notFirst:   []string{"stored", "ttl"},
			wantSecond: "detail=csrf-meta",
		},
		{
			name: "not-after caps the first response's ttl",
			inspect: func(r *rig) func(*http.Request, *Response) Verdict {
				return func(*http.Request, *Response) Verdict {
					return Verdict{NotAfter: r.Clock.Now().Add(30 * time.Second)}
				}
			},
			wantFirst:      []string{"fwd=uri-miss; fwd-status=200; stored; ttl=30"},
			wantSecond:     "hit; ttl=30",
			wantStoredBody: page,
		},
		{
			name:           "accepted: stored with the full ttl",
			inspect:        func(*rig) func(*http.Request, *Response) Verdict { return accept },
			wantFirst:      []string{"fwd=uri-miss; fwd-status=200; stored; ttl=600"},
			notFirst:       []string{"detail"},
			wantSecond:     "hit; ttl=600",
			wantStoredBody: page,
		},
		{
			name:           "a replaced body reaches only the stored copy",
			inspect:        func(*rig) func(*http.Request, *Response) Verdict { return scribble },
			wantFirst:      []string{"stored; ttl=600"},
			wantSecond:     "hit",
			wantStoredBody: "XXXXXX" + page[6:],
		},
		{
			name:           "no Inspector, known length: stored is certain",
			wantFirst:      []string{"fwd=uri-miss; fwd-status=200; stored; ttl=600"},
			notFirst:       []string{"detail"},
			wantSecond:     "hit; ttl=600",
			wantStoredBody: page,
		},
		{
			name:       "chunked with an Inspector: pending, refused later",
			inspect:    func(*rig) func(*http.Request, *Response) Verdict { return refuseCSRF },
			chunked:    true,
			wantFirst:  []string{"fwd=uri-miss; fwd-status=200; detail=pending-inspection"},
			notFirst:   []string{"stored", "ttl"},
			wantSecond: "detail=csrf-meta",
		},
		{
			name:           "chunked with an Inspector: pending, stored later",
			inspect:        func(*rig) func(*http.Request, *Response) Verdict { return accept },
			chunked:        true,
			wantFirst:      []string{"detail=pending-inspection"},
			notFirst:       []string{"stored", "ttl"},
			wantSecond:     "hit; ttl=600",
			wantStoredBody: page,
		},
		{
			name:           "chunked without an Inspector: size pending",
			chunked:        true,
			wantFirst:      []string{"fwd=uri-miss; fwd-status=200; detail=pending-size"},
			notFirst:       []string{"stored", "ttl"},
			wantSecond:     "hit; ttl=600",
			wantStoredBody: page,
		},
		{
			name:          "longer than InspectBuffer: pending, refused later",
			inspect:       func(*rig) func(*http.Request, *Response) Verdict { return refuseCSRF },
			inspectBuffer: 10,
			wantFirst:     []string{"detail=pending-inspection"},
			notFirst:      []string{"stored", "ttl"},
			wantSecond:    "detail=csrf-meta",
		},
		{
			name:          "negative InspectBuffer streams everything",
			inspect:       func(*rig) func(*http.Request, *Response) Verdict { return refuseCSRF },
			inspectBuffer: -1,
			wantFirst:     []string{"detail=pending-inspection"},
			notFirst:      []string{"stored", "ttl"},
			wantSecond:    "detail=csrf-meta",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r *rig
			r = newRig(t, func(w http.ResponseWriter, req *http.Request) {
				w.Header().Set("Cache-Control", "public, max-age=600")
				if tt.chunked {
					w.Write([]byte(page[:10]))
					w.(http.Flusher).Flush() // headers out without a length
					w.Write([]byte(page[10:]))
					return
				}
				w.Header().Set("Content-Length", strconv.Itoa(len(page)))
				w.Write([]byte(page))
			}, func(c *Config) {
				c.InspectBuffer = tt.inspectBuffer
				c.Logger = discardLogger()
				if tt.inspect != nil {
					c.Inspector = InspectorFunc(func(req *http.Request, res *Response) Verdict {
						return tt.inspect(r)(req, res)
					})
				}
			})
			first := r.Get("/")
			cs := csOf(t, first.Header)
			if first.Status != 200 || first.Body != page {
				t.Errorf("first response %d %q, want 200 and the origin's body unchanged", first.Status, first.Body)
			}
			for _, want := range tt.wantFirst {
				if err := cs.Match(want); err != nil {
					t.Errorf("first response: %v", err)
				}
			}
			for _, not := range tt.notFirst {
				if err := cs.Lacks(not); err != nil {
					t.Errorf("first response: %v", err)
				}
			}
			second := r.Get("/")
			if err := csOf(t, second.Header).Match(tt.wantSecond); err != nil {
				t.Errorf("second response: %v", err)
			}
			if tt.wantStoredBody != "" && second.Body != tt.wantStoredBody {
				t.Errorf("second body = %q, want %q", second.Body, tt.wantStoredBody)
			}
			if got := r.Proxy.buffered.Load(); got != 0 {
				t.Errorf("buffered = %d after the transfers, want 0", got)
			}
		})
	}
}

// TestFillCacheStatus_LargeBodyStreams checks that a body longer than
// InspectBuffer reaches the client before the origin has finished it.
func TestFillCacheStatus_LargeBodyStreams(t *testing.T) {
	gate := make(chan struct{})
	head, tail := strings.Repeat("a", 1000), strings.Repeat("b", 1000)
	ins := &recordingInspector{f: func(r *http.Request, res *Response) Verdict { return Verdict{} }}
	r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Content-Length", "2000")
		w.Write([]byte(head))
		w.(http.Flusher).Flush()
		select {
		case <-gate:
		case <-req.Context().Done():
			return
		}
		w.Write([]byte(tail))
	}, func(c *Config) { c.Inspector = ins; c.InspectBuffer = 1500 })
	resp, err := r.Client.Get(r.Front.URL + "/big")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if cs := csOf(t, resp.Header); !match(cs, "detail=pending-inspection") || match(cs, "stored") {
		t.Errorf("Cache-Status = %q, want detail=pending-inspection and no stored", cs)
	}
	buf := make([]byte, len(head))
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != head {
		t.Fatalf("read %d bytes (%v) before the origin finished, want the first %d", len(buf), err, len(head))
	}
	close(gate)
	rest, err := io.ReadAll(resp.Body)
	if err != nil || string(rest) != tail {
		t.Fatalf("rest: %d bytes, %v; want %d", len(rest), err, len(tail))
	}
	r.Settle()
	if res := r.Get("/big"); !match(csOf(t, res.Header), "hit") || len(res.Body) != 2000 {
		t.Errorf("second GET: %q, %d bytes; want a hit with 2000", res.Header.Get("Cache-Status"), len(res.Body))
	}
	if ins.calls != 1 {
		t.Errorf("inspector called %d times, want 1", ins.calls)
	}
}

// TestFillCacheStatus_ClientLeavesDuringInspectRead checks that a client
// leaving while the proxy reads a body for inspection stores nothing and
// releases the MaxBuffered reservation.
func TestFillCacheStatus_ClientLeavesDuringInspectRead(t *testing.T) {
	sent, handlerDone := make(chan struct{}), make(chan struct{})
	ins := &recordingInspector{f: func(r *http.Request, res *Response) Verdict { return Verdict{} }}
	r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/slow" {
			w.Header().Set("Cache-Control", "max-age=60")
			w.Write([]byte("other"))
			return
		}
		defer close(handlerDone)
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Content-Length", "12")
		w.Write([]byte("first-"))
		w.(http.Flusher).Flush()
		close(sent)
		<-req.Context().Done() // until the proxy gives up on it
	}, func(c *Config) { c.Inspector = ins; c.Logger = discardLogger() })
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.Front.URL+"/slow", nil)
	errc := make(chan error, 1)
	go func() {
		resp, err := r.Client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	within(t, sent, 10*time.Second, "the origin's first bytes")
	cancel()
	if err := <-errc; err == nil {
		t.Errorf("client got a response before the body was complete; want none (headers wait for the inspection)")
	}
	within(t, handlerDone, 10*time.Second, "the origin request to be cancelled")
	r.Settle()
	if m, _ := r.Proxy.Entries(context.Background(), r.Front.URL+"/slow"); len(m) != 0 {
		t.Errorf("%d entries stored after the client left, want 0", len(m))
	}
	if ins.calls != 0 {
		t.Errorf("inspector called %d times on an incomplete body, want 0", ins.calls)
	}
	if got := r.Proxy.buffered.Load(); got != 0 {
		t.Errorf("buffered = %d, want 0", got)
	}
	if res := r.Get("/other"); res.Body != "other" {
		t.Errorf("proxy unusable afterwards: %q", res.Body)
	}
}

// TestFillCacheStatus_MaxBufferedKnownLength checks that a known length is
// reserved up front: a response that does not fit says so at once
// instead of claiming "stored".
func TestFillCacheStatus_MaxBufferedKnownLength(t *testing.T) {
	gate := make(chan struct{})
	r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Content-Length", "2000")
		w.Write([]byte(strings.Repeat("z", 1000)))
		w.(http.Flusher).Flush()
		if req.URL.Path == "/hold" {
			select {
			case <-gate:
			case <-req.Context().Done():
				return
			}
		}
		w.Write([]byte(strings.Repeat("z", 1000)))
	}, func(c *Config) { c.MaxBuffered = 3000; c.MaxObjectSize = 3000 })
	hold, err := r.Client.Get(r.Front.URL + "/hold")
	if err != nil {
		t.Fatal(err)
	}
	if cs := csOf(t, hold.Header); !match(cs, "stored; ttl=60") {
		t.Errorf("/hold Cache-Status = %q, want stored; ttl=60", cs)
	}
	// /hold has 2000 of 3000 bytes reserved; another 2000 do not fit.
	// (Not r.get: its settle would wait for /hold's handler.)
	next, err := r.Client.Get(r.Front.URL + "/next")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(next.Body)
	next.Body.Close()
	if cs := csOf(t, next.Header); !match(cs, "detail=max-buffered") || match(cs, "stored") {
		t.Errorf("/next Cache-Status = %q, want detail=max-buffered and no stored", cs)
	}
	if len(body) != 2000 {
		t.Errorf("/next body %d bytes, want 2000", len(body))
	}
	close(gate)
	io.ReadAll(hold.Body)
	hold.Body.Close()
	r.Settle()
	if cs := csOf(t, r.Get("/hold").Header); !match(cs, "hit") {
		t.Errorf("/hold again: Cache-Status %q, want hit", cs)
	}
	if cs := csOf(t, r.Get("/next").Header); !match(cs, "stored") {
		t.Errorf("/next again: Cache-Status %q, want stored (the bound is free now)", cs)
	}
	if got := r.Proxy.buffered.Load(); got != 0 {
		t.Errorf("buffered = %d, want 0", got)
	}
}

// TestFill_InspectorVary checks that an entry is keyed by the Vary the
// Inspector left on the stored copy (liveview's vary-cookie strip), so
// what the proxy keys on and the Vary it serves agree: with Cookie taken
// out, one entry serves every cookie; it is never served per cookie while
// saying it does not vary on Cookie.
func TestFill_InspectorVary(t *testing.T) {
	for _, inspectBuffer := range []int64{-1, 0} {
		t.Run(fmt.Sprintf("InspectBuffer=%d", inspectBuffer), func(t *testing.T) {
			r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
				w.Header().Set("Cache-Control", "public, s-maxage=600")
				w.Header().Set("Vary", "Accept-Encoding, Cookie")
				w.Write([]byte("page"))
			}, func(c *Config) {
				// The cookies are allowed (removed before forwarding):
				// otherwise the requests are per-user and bypass.
				c.IgnoreCookies = []string{"a", "b"}
				c.InspectBuffer = inspectBuffer
				c.Inspector = InspectorFunc(func(req *http.Request, res *Response) Verdict {
					res.Header.Set("Vary", "Accept-Encoding")
					return Verdict{}
				})
			})
			r.Get("/", "Cookie", "a=1")
			got := r.Get("/", "Cookie", "b=2")
			if cs := csOf(t, got.Header); !match(cs, "hit") || r.Origin.Count() != 1 {
				t.Errorf("second cookie: Cache-Status %q, origin asked %d times; want a hit from the one entry", cs, r.Origin.Count())
			}
			if v := got.Header.Get("Vary"); v != "Accept-Encoding" {
				t.Errorf("served Vary = %q, want Accept-Encoding", v)
			}
		})
	}
}

// blockedWriter is a ResponseWriter whose first Write hands its bytes to
// the test (got) and blocks until unblock is closed: a client that has
// not taken the body yet.
type blockedWriter struct {
	h       http.Header
	got     chan []byte
	unblock chan struct{}
}

func (w *blockedWriter) Header() http.Header { return w.h }
func (w *blockedWriter) WriteHeader(int)     {}
func (w *blockedWriter) Write(p []byte) (int, error) {
	w.got <- p
	<-w.unblock
	return len(p), nil
}

// TestInspectedBody_WaiterKeepsItsBuffer: the body an inspected miss
// reads is a pooled buffer (fill.pooled), and a collapsed waiter serves
// the published entry from it. While that waiter's client has not taken
// the body, the leader's store write ends and other misses are filled:
// the buffer must not have been recycled into them, so the waiter's
// bytes are still the page it waited for.
func TestInspectedBody_WaiterKeepsItsBuffer(t *testing.T) {
	const size = 20 << 10
	arrived, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
		c := byte('b')
		if req.URL.Path == "/a" {
			once.Do(func() { close(arrived) })
			<-release
			c = 'a'
		}
		w.Header().Set("Cache-Control", "public, max-age=600")
		w.Header().Set("Content-Length", strconv.Itoa(size))
		w.Write(bytes.Repeat([]byte{c}, size))
	}, func(c *Config) {
		c.Inspector = InspectorFunc(func(*http.Request, *Response) Verdict { return Verdict{} })
	})
	waiting := make(chan struct{})
	r.Proxy.onWait = func() { close(waiting) }
	leader := make(chan httpcachetest.Result, 1)
	go func() { leader <- r.Get("/a") }()
	within(t, arrived, 10*time.Second, "the leader at the origin")

	bw := &blockedWriter{h: http.Header{}, got: make(chan []byte, 1), unblock: make(chan struct{})}
	waiterDone := make(chan struct{})
	go func() {
		defer close(waiterDone)
		req := httptest.NewRequest(http.MethodGet, r.Front.URL+"/a", nil)
		req.Host = strings.TrimPrefix(r.Front.URL, "http://")
		r.Proxy.ServeHTTP(bw, req)
	}()
	within(t, waiting, 10*time.Second, "the second request to wait on the leader")
	close(release)
	var body []byte
	select {
	case body = <-bw.got:
	case <-time.After(10 * time.Second):
		t.Fatal("the waiter wrote no body")
	}
	if res := <-leader; res.Body != strings.Repeat("a", size) || !match(res.CacheStatus(t, CacheName), "stored") {
		t.Fatalf("leader: %d bytes, Cache-Status %q", len(res.Body), res.Header.Get("Cache-Status"))
	}
	r.Settle() // the leader's store write has ended
	for i := range 20 {
		if res := r.Get(fmt.Sprintf("/b%d", i)); len(res.Body) != size {
			t.Fatalf("/b%d: %d bytes", i, len(res.Body))
		}
	}
	r.Settle()
	if n := bytes.Count(body, []byte{'a'}); n != size {
		t.Errorf("the waiter's body holds %d of %d bytes of its page: its buffer was recycled while in use", n, size)
	}
	close(bw.unblock)
	<-waiterDone
}

// TestFlightGroup_Joined: end reports whether any request besides the
// leader joined the flight (the condition for recycling a fill's body).
func TestFlightGroup_Joined(t *testing.T) {
	var g flightGroup
	f, leader := g.join("k")
	if !leader {
		t.Fatal("first join is not the leader")
	}
	if g.end(f) {
		t.Error("end: joined with no other request")
	}
	f, _ = g.join("k")
	if f2, leader := g.join("k"); leader || f2 != f {
		t.Fatal("second join did not get the flight")
	}
	if !g.end(f) {
		t.Error("end: not joined, though a second request joined")
	}
	if f3, leader := g.join("k"); !leader || f3 == f {
		t.Error("a join after end got the ended flight")
	}
}

// TestBodyPool: getBody returns a buffer of the asked length whose
// capacity is its class's (at most 1/8 above the length, 4 KiB at
// least), and putBody takes back only such buffers.
func TestBodyPool(t *testing.T) {
	for _, n := range []int{0, 1, 4 << 10, 4<<10 + 1, 5000, 20 << 10, 20<<10 + 1, 100_000, 256 << 10, 256<<10 + 1, 1 << 20} {
		b, bp := getBody(n)
		if len(b) != n {
			t.Errorf("getBody(%d): length %d", n, len(b))
		}
		if pooled := n <= 256<<10; (bp != nil) != pooled {
			t.Errorf("getBody(%d): pooled %v, want %v", n, bp != nil, pooled)
		}
		if bp != nil {
			if c := cap(*bp); c < n || c < 4<<10 || (c > 4<<10 && c > n+n/8) {
				t.Errorf("getBody(%d): capacity %d", n, c)
			}
		}
		putBody(bp)
	}
	if _, bp := getBody(20 << 10); cap(*bp) != 20<<10 {
		t.Errorf("getBody(20 KiB): capacity %d, want exactly 20 KiB", cap(*bp))
	}
	odd := make([]byte, 5000)
	putBody(&odd) // not a class's capacity: dropped, not pooled
	for range 10 {
		if _, bp := getBody(5000); cap(*bp) != 5120 {
			t.Fatalf("getBody(5000) after putting a 5000-byte buffer: capacity %d", cap(*bp))
		}
	}
}

// TestBodyPool_FreeListSurvivesGC: recycled buffers wait on the free list
// through garbage collections (a sync.Pool empties within two), up to
// maxFreeBodyBytes in all; beyond it they go to the pools.
func TestBodyPool_FreeListSurvivesGC(t *testing.T) {
	fb := &freeBodies
	fb.mu.Lock()
	saved, savedBytes := fb.c, fb.bytes
	fb.c, fb.bytes = [bodyClasses][]*[]byte{}, 0
	fb.mu.Unlock()
	t.Cleanup(func() {
		fb.mu.Lock()
		fb.c, fb.bytes = saved, savedBytes
		fb.mu.Unlock()
	})
	const n = 150_000 // a class nothing else in the package uses
	var put []*[]byte
	for range 3 {
		_, bp := getBody(n)
		put = append(put, bp)
	}
	for _, bp := range put {
		putBody(bp)
	}
	runtime.GC()
	runtime.GC()
	for i := range put {
		if _, bp := getBody(n); bp != put[len(put)-1-i] {
			t.Fatalf("get %d after two GCs: not a recycled buffer", i)
		}
	}
	// The bound: more than maxFreeBodyBytes recycled at once keeps no
	// more than that (other tests' fills may recycle buffers meanwhile,
	// so only the bound and this class's share are checked).
	_, size := bodyClass(n)
	var many []*[]byte
	for range maxFreeBodyBytes/size + 10 {
		_, bp := getBody(n)
		many = append(many, bp)
	}
	for _, bp := range many {
		putBody(bp)
	}
	c, _ := bodyClass(n)
	fb.mu.Lock()
	held, inClass := fb.bytes, len(fb.c[c])
	fb.mu.Unlock()
	if held > maxFreeBodyBytes || inClass*size > held || inClass > maxFreeBodyBytes/size || inClass == 0 {
		t.Fatalf("free list holds %d bytes, %d buffers of %d bytes, bound %d", held, inClass, size, maxFreeBodyBytes)
	}
}

// TestAfterInspection_VaryAsParseVary: afterInspection's Vary check,
// which reads the field without building parseVary's slice, refuses
// exactly when parseVary's names hold Cookie or Authorization, naming the
// first of them in parseVary's (sorted) order.
func TestAfterInspection_VaryAsParseVary(t *testing.T) {
	p := &Proxy{}
	ref := func(h http.Header) string {
		names, _ := parseVary(h)
		for _, n := range names {
			switch n {
			case "Cookie":
				return reasonVaryCookie
			case "Authorization":
				return reasonVaryAuthorization
			}
		}
		return ""
	}
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	for _, lines := range [][]string{
		nil, {""}, {"Accept-Encoding"}, {"cookie"}, {"COOKIE, accept"}, {" Cookie ,*"}, {"*"}, {"Accept", "*"},
		{"authorization"}, {"Cookie, Authorization"}, {"Cookie", "Authorization"}, {"x, cookie"},
		{"coo kie"}, {"coo\u212aie"}, {"Cookie2"}, {",,,"}, {"Cookie", ""}, {"*, Cookie"},
	} {
		h := http.Header{"Content-Type": {"text/plain"}}
		if lines != nil {
			h["Vary"] = lines
		}
		if got, want := p.afterInspection(req, 200, h, 10), ref(h); got != want {
			t.Errorf("Vary %q: afterInspection = %q, parseVary says %q", lines, got, want)
		}
	}
}

// TestRevalidate_BackgroundInspectedBody: a background revalidation
// answered with a new page goes through the same inspected fill as a
// miss (inspectNow, a pooled body, the store write): the request that
// waits on it, and the hits after other misses have reused pooled
// buffers, get the new page whole.
func TestRevalidate_BackgroundInspectedBody(t *testing.T) {
	const size = 20 << 10
	var version atomic.Int64
	version.Store(1)
	var inspected atomic.Int64
	r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
		c := byte('x')
		if req.URL.Path == "/" {
			c = byte('0' + version.Load())
		}
		w.Header().Set("Cache-Control", "max-age=10, stale-while-revalidate=60")
		w.Header().Set("Content-Length", strconv.Itoa(size))
		w.Write(bytes.Repeat([]byte{c}, size))
	}, func(c *Config) {
		c.Inspector = InspectorFunc(func(*http.Request, *Response) Verdict { inspected.Add(1); return Verdict{} })
	})
	want := func(c byte) string { return strings.Repeat(string(c), size) }
	if got := r.Get("/"); got.Body != want('1') {
		t.Fatalf("first GET: %d bytes", len(got.Body))
	}
	version.Store(2)
	r.Clock.Advance(20 * time.Second)
	if got := r.Get("/"); got.Body != want('1') || !match(csOf(t, got.Header), "detail=stale-while-revalidate") {
		t.Fatalf("GET in the stale-while-revalidate window: Cache-Status %q, want v1 served stale", got.Header.Get("Cache-Status"))
	}
	if got := r.Get("/"); got.Body != want('2') {
		t.Fatalf("after the background revalidation: %d bytes of v2 in %d", strings.Count(got.Body, "2"), len(got.Body))
	}
	r.Settle()
	for i := range 10 {
		r.Get(fmt.Sprintf("/other%d", i))
	}
	r.Settle()
	if got := r.Get("/"); got.Body != want('2') || !match(csOf(t, got.Header), "hit") {
		t.Errorf("hit after other misses: %d bytes of v2 in %d, Cache-Status %q", strings.Count(got.Body, "2"), len(got.Body), got.Header.Get("Cache-Status"))
	}
	if n := inspected.Load(); n != 12 {
		t.Errorf("Inspector ran %d times, want 12 (two fills of /, ten misses)", n)
	}
}

// TestInspectedMiss_CorkedOnGuardedListener: behind a guarded listener
// (hop.GuardListener, hop.ConnContext, as the server runs the proxy), an
// inspected miss's response leaves corked (fill.cork); pipelined misses
// and hits of several sizes on one connection all arrive whole and in
// order, so the batching ends with each response.
func TestInspectedMiss_CorkedOnGuardedListener(t *testing.T) {
	r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
		n, _ := strconv.Atoi(strings.TrimPrefix(req.URL.Path, "/"))
		w.Header().Set("Cache-Control", "public, max-age=600")
		w.Header().Set("Content-Length", strconv.Itoa(n))
		w.Write(bytes.Repeat([]byte{byte('a' + n%26)}, n))
	}, func(c *Config) {
		c.Inspector = InspectorFunc(func(*http.Request, *Response) Verdict { return Verdict{} })
	})
	host := strings.TrimPrefix(r.Front.URL, "http://") // the host the rig's proxy caches
	c, err := net.Dial("tcp", guardedServer(t, r.Proxy))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	sizes := []int{20480, 1, 4000, 4096, 9000, 20480, 70000, 1}
	var raw bytes.Buffer
	for _, n := range sizes { // pipelined; the repeated sizes are hits or collapsed
		raw.WriteString("GET /" + strconv.Itoa(n) + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n")
	}
	if _, err := c.Write(raw.Bytes()); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	for i, n := range sizes {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := bytes.Repeat([]byte{byte('a' + n%26)}, n); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("response %d (%d bytes): got %d bytes, %v; Cache-Status %q", i, n, len(got), err, resp.Header.Get("Cache-Status"))
		}
	}
}

// TestForward_BatchedWritesOnGuardedListener: behind a guarded listener,
// each write of a forwarded body leaves in one writev (interimWriter's
// per-write cork): pipelined responses of every size and framing, not
// stored (no-store) and stored without an Inspector, arrive whole and in
// order; and a streamed body's first bytes reach the client before the
// origin writes the rest, so nothing is held past a write.
func TestForward_BatchedWritesOnGuardedListener(t *testing.T) {
	gate := make(chan struct{})
	r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/stream" {
			w.Header().Set("Cache-Control", "no-store")
			w.Write([]byte("first-"))
			w.(http.Flusher).Flush()
			<-gate
			w.Write([]byte("second"))
			return
		}
		n, _ := strconv.Atoi(strings.TrimPrefix(strings.TrimPrefix(req.URL.Path, "/ns"), "/"))
		if strings.HasPrefix(req.URL.Path, "/ns/") {
			w.Header().Set("Cache-Control", "no-store")
		} else {
			w.Header().Set("Cache-Control", "public, max-age=600")
		}
		body := bytes.Repeat([]byte{byte('a' + n%26)}, n)
		if req.URL.Query().Has("chunked") {
			w.Write(body[:n/2])
			w.(http.Flusher).Flush()
			w.Write(body[n/2:])
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(n))
		w.Write(body)
	}, nil)
	var once sync.Once
	release := func() { once.Do(func() { close(gate) }) }
	t.Cleanup(release) // before the rig's: a failure must not leave the origin waiting
	host := strings.TrimPrefix(r.Front.URL, "http://")
	addr := guardedServer(t, r.Proxy)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	var paths []string
	var sizes []int
	for _, n := range []int{1, 4000, 4096, 9000, 20480, 70000} {
		for _, p := range []string{"/ns/%d", "/ns/%d?chunked", "/%d", "/%d?chunked"} {
			paths = append(paths, fmt.Sprintf(p, n))
			sizes = append(sizes, n)
		}
	}
	var raw bytes.Buffer
	for _, p := range paths {
		raw.WriteString("GET " + p + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n")
	}
	if _, err := c.Write(raw.Bytes()); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	for i, n := range sizes {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", paths[i], err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := bytes.Repeat([]byte{byte('a' + n%26)}, n); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: got %d bytes, %v; Cache-Status %q", paths[i], len(got), err, resp.Header.Get("Cache-Status"))
		}
	}
	// The stream, on the same connection: its header and first bytes
	// must come while the origin still holds the rest.
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write([]byte("GET /stream HTTP/1.1\r\nHost: " + host + "\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	first := make([]byte, 6)
	if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != "first-" {
		t.Fatalf("read %q, %v before the origin wrote the rest; want first-", first, err)
	}
	release()
	rest, err := io.ReadAll(resp.Body)
	if err != nil || string(rest) != "second" {
		t.Errorf("rest %q, %v", rest, err)
	}
}

// TestTeeBody_NoRearmAfterEnd: net/http returns the last bytes of a body
// of known length with io.EOF; the read that follows (readExactly's check
// for a longer body) must not arm the idle timer again, which kept the
// exchange, its fill and entry reachable for OriginIdleTimeout after the
// response.
func TestTeeBody_NoRearmAfterEnd(t *testing.T) {
	timer := time.AfterFunc(time.Hour, func() {})
	timer.Stop()
	tb := &teeBody{rc: io.NopCloser(&eofWithData{b: []byte("page")}), max: -1, idle: time.Hour, expect: 4, timer: timer}
	b, bp, err := tb.readExactly(4)
	if err != nil || string(b) != "page" {
		t.Fatalf("readExactly = %q, %v", b, err)
	}
	putBody(bp)
	if timer.Stop() {
		t.Error("the idle timer was armed after the body ended")
	}
}

// eofWithData returns all of b with io.EOF, then io.EOF.
type eofWithData struct{ b []byte }

func (r *eofWithData) Read(p []byte) (int, error) {
	n := copy(p, r.b)
	r.b = r.b[n:]
	if len(r.b) == 0 {
		return n, io.EOF
	}
	return n, nil
}

// TestInspectedMiss_FillUnreachableAfter: once a response is sent and
// stored, nothing keeps its fill (here: the Response the Inspector saw,
// which lives in the fill's job) reachable, so the GC has no heap of
// recent misses to mark.
func TestInspectedMiss_FillUnreachableAfter(t *testing.T) {
	var seen []weak.Pointer[Response]
	var mu sync.Mutex
	r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=600")
		w.Header().Set("Content-Length", "4")
		w.Write([]byte("page"))
	}, func(c *Config) {
		c.Inspector = InspectorFunc(func(_ *http.Request, res *Response) Verdict {
			mu.Lock()
			seen = append(seen, weak.Make(res))
			mu.Unlock()
			return Verdict{}
		})
	})
	for i := range 20 {
		if got := r.Get(fmt.Sprintf("/p%d", i)); got.Body != "page" {
			t.Fatalf("/p%d: %q", i, got.Body)
		}
	}
	r.Settle()
	runtime.GC()
	runtime.GC()
	mu.Lock()
	defer mu.Unlock()
	live := 0
	for _, w := range seen {
		if w.Value() != nil {
			live++
		}
	}
	if live > 1 { // the client's idle connection may hold the latest exchange
		t.Errorf("%d of %d fills still reachable after their responses and store writes", live, len(seen))
	}
}
