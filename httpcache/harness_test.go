package httpcache

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/firstrender/firstrender/store"
)

// testClock is a settable clock for Config.Now.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock {
	return &testClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// origin is an httptest origin that counts its requests.
type origin struct {
	*httptest.Server
	n    atomic.Int64
	mu   sync.Mutex
	last *http.Request
}

func (o *origin) count() int64 { return o.n.Load() }

func (o *origin) lastRequest() *http.Request {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.last
}

func newOrigin(t testing.TB, h http.HandlerFunc) *origin {
	t.Helper()
	o := &origin{}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.n.Add(1)
		o.mu.Lock()
		o.last = r.Clone(context.Background())
		o.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(o.Close)
	return o
}

// rig is a proxy in front of an origin, behind a real loopback server.
type rig struct {
	t      testing.TB
	p      *Proxy
	st     *store.Store
	origin *origin
	front  *httptest.Server
	clock  *testClock
	client *http.Client
	active sync.WaitGroup
}

func newTestStore(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "cache.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func newRig(t testing.TB, h http.HandlerFunc, mod func(*Config)) *rig {
	t.Helper()
	r := &rig{t: t, origin: newOrigin(t, h), clock: newTestClock()}
	r.st = newTestStore(t)
	up, _ := url.Parse(r.origin.URL)
	cfg := Config{Upstream: up, Store: r.st, Now: r.clock.Now}
	if mod != nil {
		mod(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.p = p
	r.client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	r.front = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.active.Add(1)
		defer r.active.Done()
		p.ServeHTTP(w, req)
	}))
	t.Cleanup(func() {
		r.front.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := r.st.Close(); err != nil {
			t.Errorf("store Close: %v", err)
		}
	})
	return r
}

// settle waits until every handler returned and every background store
// write or revalidation finished.
func (r *rig) settle() {
	r.active.Wait()
	r.p.Wait(context.Background())
}

type result struct {
	status int
	header http.Header
	body   string
}

// do sends a request through the proxy, reads the whole body and waits
// for background work to finish.
func (r *rig) do(method, path string, hdr ...string) result {
	r.t.Helper()
	req, err := http.NewRequest(method, r.front.URL+path, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := r.client.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		r.t.Fatal(err)
	}
	r.settle()
	return result{resp.StatusCode, resp.Header, string(b)}
}

func (r *rig) get(path string, hdr ...string) result { return r.do(http.MethodGet, path, hdr...) }

// do2 sends a GET for "/" after mod changes the request.
func (r *rig) do2(mod func(*http.Request)) result {
	r.t.Helper()
	return r.do2Path("/", mod)
}

// do2Path sends a GET for path after mod changes the request.
func (r *rig) do2Path(path string, mod func(*http.Request)) result {
	r.t.Helper()
	req, err := http.NewRequest(http.MethodGet, r.front.URL+path, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	mod(req)
	resp, err := r.client.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	r.settle()
	return result{resp.StatusCode, resp.Header, string(b)}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// countTo returns a hook for Proxy.onWait that closes done on its n-th call.
func countTo(n int64) (hook func(), done <-chan struct{}) {
	ch := make(chan struct{})
	var c atomic.Int64
	return func() {
		if c.Add(1) == n {
			close(ch)
		}
	}, ch
}

// within waits for ch or fails the test after d.
func within(t testing.TB, ch <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(d):
		t.Fatalf("timed out after %v waiting for %s", d, what)
	}
}
