package httpcachetest

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/firstrender/firstrender/store"
	"github.com/firstrender/firstrender/store/storetest"
)

// Handler is what a [Rig] puts in front of its origin: an http.Handler
// with background work to wait for. *httpcache.Proxy satisfies it.
type Handler interface {
	http.Handler
	// Wait returns once no background work runs (or ctx ends).
	Wait(ctx context.Context) error
	// Close stops background work; the rig calls it at cleanup.
	Close(ctx context.Context) error
}

// Env is what a [Rig] gives the function that builds its handler.
type Env struct {
	Upstream *url.URL     // the origin's URL
	Store    *store.Store // a real store under t.TempDir(), checked at cleanup
	Clock    *storetest.Clock
	Logger   *slog.Logger // discards everything
}

// Rig is a handler (a caching proxy) in front of an httptest origin, with
// its own store and fake clock, behind a real loopback server (Front).
// Create it with [New]. Its methods fail the test on transport errors and
// are safe for concurrent use, except that Settle (called by Do and its
// shorthands) waits for every request in flight.
type Rig[H Handler] struct {
	Proxy  H
	Origin *Origin
	Store  *store.Store
	Clock  *storetest.Clock
	Front  *httptest.Server
	// Client sends requests to Front and never follows redirects.
	Client *http.Client

	t      testing.TB
	active sync.WaitGroup
}

// New starts origin (counted, see [Origin]), opens a store with
// storetest.Open, builds the handler with build and serves it on a
// loopback server. At cleanup it closes the front server, closes the
// handler (failing t when that takes over 10s) and the store (checked by
// storetest), then the origin. A build error fails t at once.
func New[H Handler](t testing.TB, origin http.HandlerFunc, build func(Env) (H, error)) *Rig[H] {
	t.Helper()
	r := &Rig[H]{t: t, Clock: storetest.NewClock(time.Time{})}
	r.Origin = NewOrigin(t, origin)
	r.Store = storetest.Open(t, store.Options{})
	up, err := url.Parse(r.Origin.URL)
	if err != nil {
		t.Fatal(err)
	}
	h, err := build(Env{Upstream: up, Store: r.Store, Clock: r.Clock, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	r.Proxy = h
	r.Client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	r.Front = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.active.Add(1)
		defer r.active.Done()
		h.ServeHTTP(w, req)
	}))
	t.Cleanup(func() {
		r.Front.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.Close(ctx); err != nil {
			t.Errorf("httpcachetest: Close: %v", err)
		}
	})
	return r
}

// Settle waits until every request in flight through Front returned and
// the handler's background work (store writes, revalidations) finished.
func (r *Rig[H]) Settle() {
	r.active.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Proxy.Wait(ctx); err != nil {
		r.t.Errorf("httpcachetest: Wait: %v", err)
	}
}

// Result is a response read whole.
type Result struct {
	Status int
	Header http.Header
	Body   string
}

// CacheStatus returns the member of the response's Cache-Status for
// cache (see [Find]), failing t when there is none.
func (res Result) CacheStatus(t testing.TB, cache string) Member {
	t.Helper()
	m, err := Find(res.Header, cache)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Do sends method path (relative to Front) with the header pairs hdr
// ("Name", "value", ...), reads the whole body and settles.
func (r *Rig[H]) Do(method, path string, hdr ...string) Result {
	r.t.Helper()
	return r.DoWith(method, path, func(req *http.Request) {
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Add(hdr[i], hdr[i+1])
		}
	})
}

// Get is Do with GET.
func (r *Rig[H]) Get(path string, hdr ...string) Result {
	r.t.Helper()
	return r.Do(http.MethodGet, path, hdr...)
}

// DoWith sends method path after mod changed the request (nil: none),
// reads the whole body and settles. A transport error fails the test.
func (r *Rig[H]) DoWith(method, path string, mod func(*http.Request)) Result {
	r.t.Helper()
	res, err := r.TryWith(method, path, mod)
	if err != nil {
		r.t.Fatal(err)
	}
	return res
}

// TryWith is DoWith returning a transport error (a response cut short,
// say) instead of failing the test; it settles either way.
func (r *Rig[H]) TryWith(method, path string, mod func(*http.Request)) (Result, error) {
	r.t.Helper()
	req, err := http.NewRequest(method, r.Front.URL+path, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	if mod != nil {
		mod(req)
	}
	resp, err := r.Client.Do(req)
	if err != nil {
		r.Settle()
		return Result{}, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	r.Settle()
	return Result{resp.StatusCode, resp.Header, string(b)}, err
}

// Origin is an httptest origin that counts its requests and keeps the
// last one.
type Origin struct {
	*httptest.Server
	n    atomic.Int64
	mu   sync.Mutex
	last *http.Request
}

// NewOrigin starts an origin serving h, closed at cleanup.
func NewOrigin(t testing.TB, h http.HandlerFunc) *Origin {
	t.Helper()
	o := &Origin{}
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

// Count returns how many requests reached the origin so far.
func (o *Origin) Count() int64 { return o.n.Load() }

// LastRequest returns a copy of the last request the origin received
// (its body already consumed), or nil.
func (o *Origin) LastRequest() *http.Request {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.last
}
