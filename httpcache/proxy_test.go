package httpcache

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"github.com/firstrender/firstrender/httpcache/httpcachetest"
	"github.com/firstrender/firstrender/store/storetest"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/firstrender/firstrender/store"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func TestCollapsing(t *testing.T) {
	const clients = 500
	release := make(chan struct{})
	r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
		<-release
		w.Header().Set("Cache-Control", "max-age=60")
		w.Write([]byte("collapsed body"))
	}, nil)
	r.Client.Transport = &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: clients}
	hook, allWaiting := countTo(clients - 1)
	r.Proxy.onWait = hook
	var wg sync.WaitGroup
	var ok, hits, collapsed atomic.Int64
	started := make(chan struct{}, clients)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			started <- struct{}{}
			resp, err := r.Client.Get(r.Front.URL + "/cold")
			if err != nil {
				t.Error(err)
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && string(b) == "collapsed body" {
				ok.Add(1)
			}
			cs, err := httpcachetest.Find(resp.Header, CacheName)
			if err != nil {
				t.Error(err)
				return
			}
			if match(cs, "collapsed") {
				collapsed.Add(1)
			} else if match(cs, "hit") {
				hits.Add(1)
			}
		}()
	}
	for range clients {
		<-started
	}
	// The leader is held at the origin until every other request waits.
	within(t, allWaiting, 20*time.Second, "499 requests to wait on the leader")
	close(release)
	wg.Wait()
	r.Settle()
	if got := r.Origin.Count(); got != 1 {
		t.Errorf("origin asked %d times for %d concurrent requests, want 1", got, clients)
	}
	if ok.Load() != clients {
		t.Errorf("%d of %d clients got the body", ok.Load(), clients)
	}
	if got := collapsed.Load() + hits.Load(); got != clients-1 {
		t.Errorf("%d clients answered without the origin (collapsed %d, hits %d), want %d", got, collapsed.Load(), hits.Load(), clients-1)
	}
}

func TestHitForPass(t *testing.T) {
	// Uncacheable responses must not serialize: once a URL answered
	// "private", two concurrent requests for it must reach the origin
	// together (the origin waits until it sees both).
	var waiting atomic.Int64
	both := make(chan struct{})
	var once sync.Once
	r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
		if req.Header.Get("X-Wait") != "" {
			if waiting.Add(1) == 2 {
				once.Do(func() { close(both) })
			}
			select {
			case <-both:
			case <-time.After(5 * time.Second):
				w.WriteHeader(http.StatusGatewayTimeout)
				return
			}
		}
		w.Header().Set("Cache-Control", "private")
		w.Write([]byte("p"))
	}, nil)
	if cs := csOf(t, r.Get("/").Header); !match(cs, "detail=private") {
		t.Fatalf("first request Cache-Status %q, want detail=private", cs)
	}
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodGet, r.Front.URL+"/", nil)
			req.Header.Set("X-Wait", "1")
			resp, err := r.Client.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	for i, c := range codes {
		if c != 200 {
			t.Errorf("concurrent uncacheable request %d: got %d, want 200 (serialized behind the other?)", i, c)
		}
	}
}

func TestHitForPass_ReleasesWaitersOnHeaders(t *testing.T) {
	// The leader's uncacheable response releases waiters as soon as its
	// headers arrive, before its body completes.
	bodyGate := make(chan struct{})
	leaderAtOrigin := make(chan struct{})
	var n atomic.Int64
	r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
		i := n.Add(1)
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		if i == 1 {
			close(leaderAtOrigin)
			<-bodyGate // the leader's body stalls until the waiter is done
		}
		fmt.Fprintf(w, "b%d", i)
	}, nil)
	leaderDone := make(chan httpcachetest.Result)
	go func() {
		resp, err := r.Client.Get(r.Front.URL + "/slow")
		if err != nil {
			t.Error(err)
			close(leaderDone)
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		leaderDone <- httpcachetest.Result{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}
	}()
	within(t, leaderAtOrigin, 10*time.Second, "the leader at the origin")
	resp, err := r.Client.Get(r.Front.URL + "/slow")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "b2" {
		t.Errorf("waiter got %q, want its own origin response b2", b)
	}
	close(bodyGate)
	<-leaderDone
	r.Settle()
}

type recordingInspector struct {
	mu    sync.Mutex
	calls int
	f     func(r *http.Request, res *Response) Verdict
}

func (ri *recordingInspector) Inspect(r *http.Request, res *Response) Verdict {
	ri.mu.Lock()
	ri.calls++
	ri.mu.Unlock()
	return ri.f(r, res)
}

func TestInspector(t *testing.T) {
	t.Run("refuse keeps the response out of the store", func(t *testing.T) {
		ins := &recordingInspector{f: func(r *http.Request, res *Response) Verdict {
			if strings.Contains(string(res.Body), "csrf") {
				return Verdict{Refuse: "csrf meta token"}
			}
			return Verdict{}
		}}
		r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
			w.Header().Set("Cache-Control", "public, max-age=60")
			w.Write([]byte(`<meta name="csrf-token" content="x">`))
		}, func(c *Config) { c.Inspector = ins })
		r.Get("/")
		res := r.Get("/")
		if cs := csOf(t, res.Header); !match(cs, `detail="csrf meta token"`) || r.Origin.Count() != 2 {
			t.Errorf("after refusal: Cache-Status %q, origin %d; want detail=\"csrf meta token\" and 2", cs, r.Origin.Count())
		}
		if ins.calls != 2 {
			t.Errorf("inspector called %d times, want 2", ins.calls)
		}
	})
	t.Run("strip changes only the stored copy; annotations are stored", func(t *testing.T) {
		ins := &recordingInspector{f: func(r *http.Request, res *Response) Verdict {
			res.Body = []byte(strings.ReplaceAll(string(res.Body), "SECRET", "------"))
			res.Header.Del("X-Per-User")
			return Verdict{Annotations: map[string]string{"liveview.findings": `[]`}}
		}}
		r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
			w.Header().Set("Cache-Control", "public, max-age=60")
			w.Header().Set("X-Per-User", "alice")
			w.Write([]byte("token SECRET"))
		}, func(c *Config) { c.Inspector = ins })
		first := r.Get("/")
		second := r.Get("/")
		if first.Body != "token SECRET" || first.Header.Get("X-Per-User") != "alice" {
			t.Errorf("first client got %q %q, want the origin's response untouched", first.Body, first.Header.Get("X-Per-User"))
		}
		if second.Body != "token ------" || second.Header.Get("X-Per-User") != "" {
			t.Errorf("hit got %q X-Per-User=%q, want the stripped copy", second.Body, second.Header.Get("X-Per-User"))
		}
		metas, err := r.Proxy.Entries(context.Background(), r.Front.URL+"/")
		if err != nil || len(metas) != 1 || metas[0].Annotations["liveview.findings"] != "[]" {
			t.Fatalf("Entries = %+v, %v; want one entry with liveview.findings", metas, err)
		}
	})
	t.Run("not-after caps ttl and is never passed", func(t *testing.T) {
		var r *rig
		ins := &recordingInspector{f: func(req *http.Request, res *Response) Verdict {
			return Verdict{NotAfter: r.Clock.Now().Add(30 * time.Second)}
		}}
		var hits atomic.Int64
		r = newRig(t, func(w http.ResponseWriter, req *http.Request) {
			hits.Add(1)
			w.Header().Set("Cache-Control", "public, max-age=600, stale-if-error=600")
			w.Write([]byte("page"))
		}, func(c *Config) { c.Inspector = ins })
		r.Get("/")
		res := r.Get("/")
		if cs := csOf(t, res.Header); !match(cs, "hit; ttl=30") {
			t.Errorf("Cache-Status %q, want hit; ttl=30", cs)
		}
		metas, _ := r.Proxy.Entries(context.Background(), r.Front.URL+"/")
		if len(metas) != 1 || metas[0].Annotations[AnnotationNotAfter] == "" {
			t.Fatalf("Entries = %+v, want the not-after annotation", metas)
		}
		if !metas[0].Expires.Equal(r.Clock.Now().Add(30 * time.Second)) {
			t.Errorf("record Expires %v, want the not-after instant", metas[0].Expires)
		}
		r.Clock.Advance(31 * time.Second)
		res = r.Get("/")
		if cs := csOf(t, res.Header); !match(cs, "fwd=miss") || !match(cs, "detail=not-after") || r.Origin.Count() != 2 {
			t.Errorf("past not-after: Cache-Status %q, origin %d; want fwd=miss detail=not-after and 2", cs, r.Origin.Count())
		}
	})
}

func TestDisableAndEntries(t *testing.T) {
	r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=600")
		w.Write([]byte("page"))
	}, nil)
	r.Get("/page?utm_source=x")
	ctx := context.Background()
	metas, err := r.Proxy.Entries(ctx, r.Front.URL+"/page?fbclid=1")
	if err != nil || len(metas) != 1 {
		t.Fatalf("Entries = %v, %v; want 1 entry", metas, err)
	}
	if err := r.Proxy.Disable(ctx, metas[0].Key, metas[0].Variant, "join refused"); err != nil {
		t.Fatal(err)
	}
	res := r.Get("/page")
	if cs := csOf(t, res.Header); !match(cs, "fwd=miss") || !match(cs, "detail=disabled") || r.Origin.Count() != 2 {
		t.Errorf("disabled entry: Cache-Status %q, origin %d; want fwd=miss detail=disabled, 2", cs, r.Origin.Count())
	}
	res = r.Get("/page")
	if cs := csOf(t, res.Header); !match(cs, "hit") {
		t.Errorf("after refetch: Cache-Status %q, want hit", cs)
	}
	if err := r.Proxy.Disable(ctx, "http://nope/", "", ""); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Disable(missing) = %v, want ErrNotFound", err)
	}
	if m, err := r.Proxy.Entries(ctx, r.Front.URL+"/none"); err != nil || len(m) != 0 {
		t.Errorf("Entries(none) = %v, %v; want empty", m, err)
	}
	if _, err := r.Proxy.Entries(ctx, "not a url"); err == nil {
		t.Errorf("Entries(bad URL) = nil error")
	}
}

func TestStreaming(t *testing.T) {
	t.Run("the body reaches the client while it is stored", func(t *testing.T) {
		gate := make(chan struct{})
		r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
			w.Header().Set("Cache-Control", "max-age=60")
			w.Write([]byte("first-"))
			w.(http.Flusher).Flush()
			<-gate
			w.Write([]byte("second"))
		}, nil)
		resp, err := r.Client.Get(r.Front.URL + "/s")
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 6)
		if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "first-" {
			t.Fatalf("read %q, %v before the origin finished; want first-", buf, err)
		}
		close(gate)
		rest, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		r.Settle()
		if string(rest) != "second" {
			t.Errorf("rest %q", rest)
		}
		if res := r.Get("/s"); res.Body != "first-second" || !match(csOf(t, res.Header), "hit") {
			t.Errorf("second GET: %q %q, want a hit with the whole body", res.Body, res.Header.Get("Cache-Status"))
		}
	})
	t.Run("bodies over MaxObjectSize pass through unstored", func(t *testing.T) {
		big := strings.Repeat("x", 5000)
		r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
			w.Header().Set("Cache-Control", "max-age=60")
			if req.URL.Path == "/chunked" {
				w.Write([]byte(big[:100]))
				w.(http.Flusher).Flush()
				w.Write([]byte(big[100:]))
				return
			}
			w.Header().Set("Content-Length", "5000")
			w.Write([]byte(big))
		}, func(c *Config) { c.MaxObjectSize = 1000 })
		for _, path := range []string{"/sized", "/chunked"} {
			a, b := r.Get(path), r.Get(path)
			if a.Body != big || b.Body != big {
				t.Errorf("%s: bodies truncated: %d %d bytes", path, len(a.Body), len(b.Body))
			}
			if cs := csOf(t, b.Header); match(cs, "hit") {
				t.Errorf("%s: second GET Cache-Status %q, want not a hit", path, cs)
			}
		}
		if cs := csOf(t, r.Get("/sized").Header); !match(cs, "detail=too-large") {
			t.Errorf("sized: Cache-Status %q, want detail=too-large", cs)
		}
		if got := r.Origin.Count(); got != 5 {
			t.Errorf("origin asked %d times, want 5", got)
		}
	})
	t.Run("MaxBuffered bounds the copies of all transfers", func(t *testing.T) {
		// Two transfers stream at once, each within MaxObjectSize but
		// together over MaxBuffered. Both first halves are held (each
		// client has read it, so the proxy has copied it); then /b1's
		// second half takes the total over the bound, so /b1 is not
		// stored; once /b1 has ended, /b2's second half fits.
		second := map[string]chan struct{}{"/b1": make(chan struct{}), "/b2": make(chan struct{})}
		r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
			w.Header().Set("Cache-Control", "max-age=60")
			w.Write([]byte(strings.Repeat("y", 1000)))
			w.(http.Flusher).Flush()
			select {
			case <-second[req.URL.Path]:
			case <-req.Context().Done():
				return
			}
			w.Write([]byte(strings.Repeat("y", 1000)))
		}, func(c *Config) { c.MaxBuffered = 2500; c.MaxObjectSize = 2500 })
		open := func(path string) *http.Response {
			resp, err := r.Client.Get(r.Front.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(resp.Body, make([]byte, 1000)); err != nil {
				t.Fatal(err)
			}
			return resp
		}
		finish := func(path string, resp *http.Response) {
			close(second[path])
			rest, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if len(rest) != 1000 {
				t.Errorf("%s: got %d bytes after the first 1000, want 1000", path, len(rest))
			}
		}
		b1, b2 := open("/b1"), open("/b2")
		finish("/b1", b1) // returns after /b1's handler ended (chunked: the last chunk follows it)
		finish("/b2", b2)
		r.Settle()
		for path, want := range map[string]int{"/b1": 0, "/b2": 1} {
			if m, _ := r.Proxy.Entries(context.Background(), r.Front.URL+path); len(m) != want {
				t.Errorf("%s: %d entries stored, want %d (MaxBuffered 2500, 2000 bytes each, concurrently)", path, len(m), want)
			}
		}
		if got := r.Proxy.buffered.Load(); got != 0 {
			t.Errorf("buffered = %d after all transfers ended, want 0", got)
		}
	})
	t.Run("a client disconnect stores nothing", func(t *testing.T) {
		gate := make(chan struct{})
		r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
			w.Header().Set("Cache-Control", "max-age=60")
			w.Header().Set("Content-Length", "12")
			w.Write([]byte("first-"))
			w.(http.Flusher).Flush()
			select {
			case <-gate:
			case <-req.Context().Done():
				return
			}
			w.Write([]byte("second"))
		}, nil)
		resp, err := r.Client.Get(r.Front.URL + "/d")
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 6)
		io.ReadFull(resp.Body, buf)
		resp.Body.Close() // disconnect mid-body
		r.Settle()
		close(gate)
		if res := r.Get("/d"); match(csOf(t, res.Header), "hit") || res.Body != "first-second" {
			t.Errorf("after disconnect: %q %q, want a fresh miss", res.Body, res.Header.Get("Cache-Status"))
		}
	})
	t.Run("an origin stall past OriginIdleTimeout stores nothing", func(t *testing.T) {
		var n atomic.Int64
		r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
			w.Header().Set("Cache-Control", "max-age=60")
			w.Header().Set("Content-Length", "12")
			w.Write([]byte("first-"))
			w.(http.Flusher).Flush()
			if n.Add(1) == 1 {
				<-req.Context().Done() // stall until the proxy gives up
				return
			}
			w.Write([]byte("second"))
		}, func(c *Config) { c.OriginIdleTimeout = 100 * time.Millisecond })
		resp, err := r.Client.Get(r.Front.URL + "/stall")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		r.Settle()
		if string(b) == "first-second" {
			t.Fatalf("stalled body completed?")
		}
		if res := r.Get("/stall"); match(csOf(t, res.Header), "hit") {
			t.Errorf("after stall: Cache-Status %q, want a miss", res.Header.Get("Cache-Status"))
		}
	})
}

func TestForwarding(t *testing.T) {
	t.Run("X-Forwarded headers are set and the client's are not trusted", func(t *testing.T) {
		r := newRig(t, func(w http.ResponseWriter, req *http.Request) { w.Header().Set("Cache-Control", "no-store") }, nil)
		r.Get("/", "X-Forwarded-For", "6.6.6.6", "X-Forwarded-Host", "evil", "X-Forwarded-Proto", "https", "Forwarded", "for=6.6.6.6")
		h := r.Origin.LastRequest().Header
		if got := h.Get("X-Forwarded-For"); got != "127.0.0.1" {
			t.Errorf("X-Forwarded-For = %q, want 127.0.0.1", got)
		}
		if got := h.Get("X-Forwarded-Proto"); got != "http" {
			t.Errorf("X-Forwarded-Proto = %q, want http", got)
		}
		if got := h.Get("X-Forwarded-Host"); !strings.HasPrefix(got, "127.0.0.1:") {
			t.Errorf("X-Forwarded-Host = %q, want the front address", got)
		}
		if got := h.Get("Forwarded"); got != "" {
			t.Errorf("Forwarded = %q, want it removed", got)
		}
	})
	t.Run("TrustForwarded keeps and appends", func(t *testing.T) {
		r := newRig(t, func(w http.ResponseWriter, req *http.Request) { w.Header().Set("Cache-Control", "no-store") },
			func(c *Config) { c.TrustForwarded, c.Hosts = true, []string{"www.example"} })
		r.Get("/", "X-Forwarded-For", "10.0.0.1", "X-Forwarded-Proto", "https", "X-Forwarded-Host", "www.example")
		h := r.Origin.LastRequest().Header
		if got := h.Get("X-Forwarded-For"); got != "10.0.0.1, 127.0.0.1" {
			t.Errorf("X-Forwarded-For = %q, want %q", got, "10.0.0.1, 127.0.0.1")
		}
		if got := h.Get("X-Forwarded-Proto") + " " + h.Get("X-Forwarded-Host"); got != "https www.example" {
			t.Errorf("X-Forwarded-Proto/Host = %q", got)
		}
	})
	t.Run("hostile: Connection: keep-alive, Upgrade and named fields are not forwarded", func(t *testing.T) {
		r := newRig(t, func(w http.ResponseWriter, req *http.Request) { w.Header().Set("Cache-Control", "max-age=60") }, nil)
		res := r.Get("/", "Connection", "keep-alive, Upgrade, X-Secret", "X-Secret", "1", "Proxy-Authorization", "Basic eA==")
		h := r.Origin.LastRequest().Header
		for _, k := range []string{"X-Secret", "Upgrade", "Proxy-Authorization"} {
			if h.Get(k) != "" {
				t.Errorf("origin got %s: %q", k, h.Get(k))
			}
		}
		if cs := csOf(t, res.Header); !match(cs, "stored") {
			t.Errorf("Cache-Status %q: a GET with a bogus Upgrade token is still cacheable", cs)
		}
	})
	t.Run("unreachable origin gives 502 with a short plain body", func(t *testing.T) {
		r := newRig(t, func(w http.ResponseWriter, req *http.Request) {}, nil)
		r.Origin.Close()
		res := r.Get("/")
		if res.Status != 502 || res.Body != "502 bad gateway: origin unreachable\n" || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") {
			t.Errorf("got %d %q %q", res.Status, res.Body, res.Header.Get("Content-Type"))
		}
		if cs := csOf(t, res.Header); !match(cs, "detail=origin-unreachable") {
			t.Errorf("Cache-Status %q", cs)
		}
	})
	t.Run("origin header timeout gives 504", func(t *testing.T) {
		r := newRig(t, func(w http.ResponseWriter, req *http.Request) { <-req.Context().Done() },
			func(c *Config) { c.OriginTimeout = 100 * time.Millisecond })
		res := r.Get("/")
		if res.Status != 504 || !match(csOf(t, res.Header), "detail=origin-timeout") {
			t.Errorf("got %d %q %q", res.Status, res.Body, res.Header.Get("Cache-Status"))
		}
	})
	t.Run("bad request target gives 400", func(t *testing.T) {
		r := newRig(t, func(w http.ResponseWriter, req *http.Request) {}, nil)
		conn, err := net.Dial("tcp", r.Front.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "GET /a HTTP/1.1\r\nHost: bad..host\r\nConnection: close\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 400 || r.Origin.Count() != 0 {
			t.Errorf("got %d, origin %d; want 400, 0", resp.StatusCode, r.Origin.Count())
		}
	})
	t.Run("upgrade requests are tunnelled, not cached", func(t *testing.T) {
		r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
			if req.Header.Get("Upgrade") != "echo" {
				w.WriteHeader(400)
				return
			}
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
			brw.Flush()
			line, _ := brw.ReadString('\n')
			brw.WriteString("echo:" + line)
			brw.Flush()
		}, nil)
		conn, err := net.Dial("tcp", r.Front.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "GET /sock HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 101 || !match(csOf(t, resp.Header), "detail=upgrade") {
			t.Fatalf("got %d Cache-Status %q, want 101 with detail=upgrade", resp.StatusCode, resp.Header.Get("Cache-Status"))
		}
		fmt.Fprintf(conn, "ping\n")
		line, err := br.ReadString('\n')
		if err != nil || line != "echo:ping\n" {
			t.Errorf("tunnel read %q, %v", line, err)
		}
	})
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Write([]byte("12345"))
	}, func(c *Config) { c.Registerer = reg })
	r.Get("/")
	r.Get("/")
	r.Get("/")
	if got := counterValue(r.Proxy.met.requests.WithLabelValues("hit")); got != 2 {
		t.Errorf("hit requests = %v, want 2", got)
	}
	if got := counterValue(r.Proxy.met.requests.WithLabelValues("miss")); got != 1 {
		t.Errorf("miss requests = %v, want 1", got)
	}
	if got := counterValue(r.Proxy.met.originReqs.WithLabelValues("200")); got != 1 {
		t.Errorf("origin requests = %v, want 1", got)
	}
	if got := counterValue(r.Proxy.met.bytes); got != 10 {
		t.Errorf("bytes served from cache = %v, want 10", got)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, n := range []string{"firstrender_store_entries", "firstrender_store_bytes", "firstrender_store_evictions_total", "firstrender_origin_duration_seconds"} {
		if !names[n] {
			t.Errorf("metric %s not registered", n)
		}
	}
	// The store's commit counters are the store's own figures, read at
	// scrape time; the one stored miss made at least one write.
	if err := r.Proxy.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Read between two Stats calls, so a background commit in between
	// cannot make the comparison flaky.
	before := r.Store.Stats()
	commits, writes := gatheredValue(t, reg, "firstrender_store_commits_total"), gatheredValue(t, reg, "firstrender_store_writes_total")
	after := r.Store.Stats()
	if commits < float64(before.Commits) || commits > float64(after.Commits) || before.Commits < 1 {
		t.Errorf("firstrender_store_commits_total = %v, want store.Stats()'s %d..%d (at least 1)", commits, before.Commits, after.Commits)
	}
	if writes < float64(before.Writes) || writes > float64(after.Writes) || before.Writes < 1 {
		t.Errorf("firstrender_store_writes_total = %v, want store.Stats()'s %d..%d (at least 1)", writes, before.Writes, after.Writes)
	}
	// A second proxy on the same registry is refused clearly.
	up, _ := url.Parse(r.Origin.URL)
	if _, err := New(Config{Upstream: up, Store: r.Store, Registerer: reg}); err == nil {
		t.Errorf("New with an already-used Registerer: want an error")
	}
}

func TestNew_Validation(t *testing.T) {
	st := storetest.Open(t, store.Options{})
	t.Cleanup(func() { st.Close() })
	up, _ := url.Parse("http://127.0.0.1:1")
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"missing upstream", Config{Store: st}, "Upstream is required"},
		{"missing store", Config{Upstream: up}, "Store is required"},
		{"relative upstream", Config{Upstream: &url.URL{Path: "/x"}, Store: st}, "absolute http or https"},
		{"bad host entry", Config{Upstream: up, Store: st, Hosts: []string{"a/b"}}, "Hosts entry"},
		{"bad ignore pattern", Config{Upstream: up, Store: st, IgnoreParams: []string{"*"}}, "IgnoreParams"},
		{"negative timeout", Config{Upstream: up, Store: st, OriginTimeout: -1}, "OriginTimeout"},
		{"bad strip prefix", Config{Upstream: up, Store: st, StripSetCookie: []string{"x"}}, "StripSetCookie"},
		{"buffer below object size", Config{Upstream: up, Store: st, MaxObjectSize: 100 << 20, MaxBuffered: 1 << 20}, "MaxBuffered"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New(%s) = %v, want an error containing %q", tt.name, err, tt.want)
			}
		})
	}
}

func counterValue(c prometheus.Collector) float64 {
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	var pb dto.Metric
	if err := (<-ch).Write(&pb); err != nil {
		return -1
	}
	return pb.GetCounter().GetValue()
}

func TestHotCache_PurgeThroughStore(t *testing.T) {
	// An admin purge goes to the store directly; the in-memory copy of a
	// hot entry must not outlive it (the memory tier follows store.Watch).
	ctx := context.Background()
	for _, tt := range []struct {
		name  string
		purge func(st *store.Store, key string) error
	}{
		{"DeletePrefix", func(st *store.Store, key string) error { _, err := st.DeletePrefix(ctx, key); return err }},
		{"Delete", func(st *store.Store, key string) error { return st.Delete(ctx, key, "") }},
		{"DeleteKey", func(st *store.Store, key string) error { _, err := st.DeleteKey(ctx, key); return err }},
		{"DeleteTag", func(st *store.Store, key string) error { _, err := st.DeleteTag(ctx, "t1"); return err }},
		{"DeleteAll", func(st *store.Store, key string) error { _, err := st.DeleteAll(ctx); return err }},
		{"Annotate disabled", func(st *store.Store, key string) error {
			return st.Annotate(ctx, key, "", map[string]string{AnnotationDisabled: "admin"})
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
				w.Header().Set("Cache-Control", "max-age=600")
				w.Header().Set("Surrogate-Key", "t1")
				w.Write([]byte("page"))
			}, nil)
			r.Get("/hot")
			r.Get("/hot") // read from the store, now in memory
			if cs := csOf(t, r.Get("/hot").Header); !match(cs, "hit") {
				t.Fatalf("Cache-Status %q, want hit", cs)
			}
			key, _ := r.Proxy.Key(r.Front.URL + "/hot")
			if err := tt.purge(r.Store, key); err != nil {
				t.Fatalf("purge: %v", err)
			}
			res := r.Get("/hot")
			if cs := csOf(t, res.Header); !cs.Has("fwd") || r.Origin.Count() != 2 {
				t.Errorf("after purge: Cache-Status %q, origin %d; want a miss and 2", cs, r.Origin.Count())
			}
		})
	}
}

func TestCollapsing_Revalidation(t *testing.T) {
	const clients = 50
	gate := make(chan struct{})
	var conditional atomic.Int64
	var r *rig
	r = newRig(t, func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Date", r.Clock.Now().Format(http.TimeFormat))
		w.Header().Set("Cache-Control", "max-age=10")
		w.Header().Set("Etag", `"v"`)
		if req.Header.Get("If-None-Match") == `"v"` {
			conditional.Add(1)
			<-gate
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Write([]byte("body"))
	}, nil)
	r.Get("/")
	r.Clock.Advance(20 * time.Second)
	hook, allWaiting := countTo(clients - 1)
	r.Proxy.onWait = hook
	var wg sync.WaitGroup
	var good atomic.Int64
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := r.Client.Get(r.Front.URL + "/")
			if err != nil {
				t.Error(err)
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && string(b) == "body" {
				good.Add(1)
			}
		}()
	}
	within(t, allWaiting, 20*time.Second, "the other requests to wait on the revalidation")
	close(gate)
	wg.Wait()
	r.Settle()
	if got := conditional.Load(); got != 1 {
		t.Errorf("%d concurrent requests for a stale entry sent %d revalidations, want 1", clients, got)
	}
	if good.Load() != clients {
		t.Errorf("%d of %d clients got the body", good.Load(), clients)
	}
}

func TestInspector_PanicDoesNotCrash(t *testing.T) {
	ins := InspectorFunc(func(r *http.Request, res *Response) Verdict { panic("lint bug") })
	r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Write([]byte("x"))
	}, func(c *Config) { c.Inspector = ins; c.Logger = discardLogger() })
	if res := r.Get("/"); res.Status != 200 || res.Body != "x" {
		t.Fatalf("got %d %q", res.Status, res.Body)
	}
	if res := r.Get("/"); res.Status != 200 || match(csOf(t, res.Header), "hit") {
		t.Errorf("after an inspector panic: %d %q, want a 200 that is not a hit", res.Status, res.Header.Get("Cache-Status"))
	}
}

func TestCollapsing_Bounds(t *testing.T) {
	t.Run("waiters beyond MaxWaiters go to the origin themselves", func(t *testing.T) {
		gate := make(chan struct{})
		arrived := make(chan struct{}, 10)
		var n atomic.Int64
		r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
			n.Add(1)
			arrived <- struct{}{}
			<-gate // every origin request waits, so none is stored meanwhile
			w.Header().Set("Cache-Control", "max-age=60")
			w.Write([]byte("b"))
		}, func(c *Config) { c.MaxWaiters = 1 })
		hook, waiting := countTo(1)
		r.Proxy.onWait = hook
		var wg sync.WaitGroup
		get := func() {
			defer wg.Done()
			resp, err := r.Client.Get(r.Front.URL + "/w")
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		wg.Add(1)
		go get()
		within(t, arrived, 10*time.Second, "the leader at the origin")
		wg.Add(1)
		go get() // waits
		within(t, waiting, 10*time.Second, "one waiter")
		wg.Add(2)
		go get() // over the bound: to the origin
		go get()
		within(t, arrived, 10*time.Second, "the first request over MaxWaiters at the origin")
		within(t, arrived, 10*time.Second, "the second request over MaxWaiters at the origin")
		if got := n.Load(); got != 3 {
			t.Errorf("origin saw %d requests while the leader was blocked, want 3 (leader + 2 over MaxWaiters)", got)
		}
		close(gate)
		wg.Wait()
		r.Settle()
	})
	t.Run("waiters give up after CollapseWait", func(t *testing.T) {
		gate := make(chan struct{})
		leaderAtOrigin := make(chan struct{})
		var n atomic.Int64
		r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
			if n.Add(1) == 1 {
				close(leaderAtOrigin)
				<-gate
			}
			w.Header().Set("Cache-Control", "max-age=60")
			w.Write([]byte("b"))
		}, func(c *Config) { c.CollapseWait = 50 * time.Millisecond })
		done := make(chan struct{})
		go func() {
			defer close(done)
			resp, err := r.Client.Get(r.Front.URL + "/w")
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
		within(t, leaderAtOrigin, 10*time.Second, "the leader at the origin")
		resp, err := r.Client.Get(r.Front.URL + "/w") // not r.get: the leader is still blocked
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || n.Load() != 2 {
			t.Errorf("waiter: got %d, origin %d; want 200 from its own origin request (2)", resp.StatusCode, n.Load())
		}
		close(gate)
		<-done
		r.Settle()
	})
}

func TestStoreFailureFallsBackToOrigin(t *testing.T) {
	o := httpcachetest.NewOrigin(t, func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Write([]byte("ok"))
	})
	st := storetest.Open(t, store.Options{})
	up, _ := url.Parse(o.URL)
	p, err := New(Config{Upstream: up, Store: st, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(p)
	defer front.Close()
	st.Close() // every store call now fails with store.ErrClosed
	for i := 1; i <= 2; i++ {
		resp, err := http.Get(front.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "ok" {
			t.Errorf("request %d with a closed store: got %d %q, want 200 from the origin", i, resp.StatusCode, b)
		}
		p.Wait(context.Background())
	}
	if o.Count() != 2 {
		t.Errorf("origin asked %d times, want 2", o.Count())
	}
	p.Close(context.Background())
}

func TestCollapsing_VaryMismatch(t *testing.T) {
	// A waiter whose request selects another variant than the leader's
	// response must not get that response.
	gate := make(chan struct{})
	leaderAtOrigin := make(chan struct{})
	var once sync.Once
	r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
		theme := req.Header.Get("X-Theme")
		if theme == "dark" {
			once.Do(func() { close(leaderAtOrigin) })
			<-gate
		}
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Vary", "X-Theme")
		w.Write([]byte(theme))
	}, nil)
	hook, waiting := countTo(1)
	r.Proxy.onWait = hook
	get := func(theme string) string {
		req, _ := http.NewRequest(http.MethodGet, r.Front.URL+"/v", nil)
		req.Header.Set("X-Theme", theme)
		resp, err := r.Client.Do(req)
		if err != nil {
			t.Error(err)
			return ""
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return string(b)
	}
	leader := make(chan string)
	go func() { leader <- get("dark") }()
	within(t, leaderAtOrigin, 10*time.Second, "the leader at the origin")
	waiter := make(chan string)
	go func() { waiter <- get("light") }()
	within(t, waiting, 10*time.Second, "the waiter")
	close(gate)
	if got := <-leader; got != "dark" {
		t.Errorf("leader got %q, want dark", got)
	}
	if got := <-waiter; got != "light" {
		t.Errorf("waiter with X-Theme: light got %q, want light", got)
	}
	r.Settle()
}

// gatheredValue is the value of the unlabelled counter or gauge name in reg.
func gatheredValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name || len(mf.GetMetric()) != 1 {
			continue
		}
		m := mf.GetMetric()[0]
		if c := m.GetCounter(); c != nil {
			return c.GetValue()
		}
		return m.GetGauge().GetValue()
	}
	t.Fatalf("metric %s not gathered", name)
	return 0
}
