package httpcache

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestRevalidate_304ForbidsStoring checks that a 304 whose headers make
// the response unstorable for a shared cache (private, no-store) does not
// leave the refreshed entry in the store to be served to others: RFC 9111
// §4.3.4 updates the stored headers from the 304, and a shared cache does
// not keep (§3) what it could not store.
func TestRevalidate_304ForbidsStoring(t *testing.T) {
	for _, cc := range []string{"private, max-age=600", "no-store", "max-age=600, private=\"Set-Cookie\""} {
		t.Run(cc, func(t *testing.T) {
			var switched atomic.Bool
			r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
				w.Header().Set("Etag", `"e1"`)
				if switched.Load() && req.Header.Get("If-None-Match") == `"e1"` {
					w.Header().Set("Cache-Control", cc)
					w.WriteHeader(http.StatusNotModified)
					return
				}
				w.Header().Set("Cache-Control", "max-age=10")
				if switched.Load() {
					w.Header().Set("Cache-Control", cc)
				}
				w.Write([]byte("v1"))
			}, nil)
			r.Get("/")
			switched.Store(true)
			r.Clock.Advance(11 * time.Second)
			if got := r.Get("/"); got.Body != "v1" {
				t.Fatalf("revalidated GET body = %q, want v1", got.Body)
			}
			n := r.Origin.Count()
			got := r.Get("/")
			if cs := csOf(t, got.Header); match(cs, "hit") || r.Origin.Count() != n+1 {
				t.Errorf("after a 304 with Cache-Control %q: Cache-Status %q, origin asked %d times more; want the origin asked, not a hit", cc, cs, r.Origin.Count()-n)
			}
		})
	}
}

// TestRevalidate_HEADTriggersBackgroundGET checks that a HEAD served
// stale under stale-while-revalidate refreshes the entry: the background
// request is a GET, and its answer (304 or 200) is judged as one, not
// refused as a response to HEAD (which deleted the entry).
func TestRevalidate_HEADTriggersBackgroundGET(t *testing.T) {
	for _, answer := range []int{http.StatusNotModified, http.StatusOK} {
		t.Run(http.StatusText(answer), func(t *testing.T) {
			r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
				w.Header().Set("Etag", `"e1"`)
				w.Header().Set("Cache-Control", "max-age=10, stale-while-revalidate=60")
				if answer == http.StatusNotModified && req.Header.Get("If-None-Match") == `"e1"` {
					w.WriteHeader(http.StatusNotModified)
					return
				}
				w.Write([]byte("v1"))
			}, nil)
			r.Get("/")
			r.Clock.Advance(20 * time.Second)
			if got := r.Do(http.MethodHead, "/"); !match(csOf(t, got.Header), "detail=stale-while-revalidate") {
				t.Fatalf("HEAD in the stale-while-revalidate window: Cache-Status %q, want detail=stale-while-revalidate", got.Header.Get("Cache-Status"))
			}
			n := r.Origin.Count()
			got := r.Get("/")
			if cs := csOf(t, got.Header); !match(cs, "hit", "fwd", "detail") || r.Origin.Count() != n {
				t.Errorf("GET after the background revalidation: Cache-Status %q, origin asked %d more; want a fresh hit", cs, r.Origin.Count()-n)
			}
		})
	}
}

// TestRevalidate_RequestCannotPurge checks that a visitor cannot delete a
// stored entry with request headers alone: a revalidation whose answer is
// unstorable only because of the request (Cache-Control: no-store,
// Authorization) answers that visitor and leaves the entry for the others.
func TestRevalidate_RequestCannotPurge(t *testing.T) {
	for _, tt := range []struct {
		name string
		hdr  []string
	}{
		{"no-cache, no-store", []string{"Cache-Control", "no-cache, no-store"}},
		{"no-cache with Authorization", []string{"Cache-Control", "no-cache", "Authorization", "Bearer x"}},
	} {
		for _, etag := range []bool{false, true} {
			name := tt.name
			if etag {
				name += " (304)"
			}
			t.Run(name, func(t *testing.T) {
				r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
					w.Header().Set("Cache-Control", "max-age=600")
					if etag {
						w.Header().Set("Etag", `"e1"`)
						if req.Header.Get("If-None-Match") == `"e1"` {
							w.WriteHeader(http.StatusNotModified)
							return
						}
					}
					w.Write([]byte("v1"))
				}, nil)
				r.Get("/")
				if got := r.Get("/", tt.hdr...); got.Body != "v1" {
					t.Fatalf("visitor with %v got %q, want v1", tt.hdr, got.Body)
				}
				n := r.Origin.Count()
				if got := r.Get("/"); !match(csOf(t, got.Header), "hit") || r.Origin.Count() != n {
					t.Errorf("after a request with %v: Cache-Status %q, want a hit (the entry must survive)", tt.hdr, got.Header.Get("Cache-Status"))
				}
			})
		}
	}
}

// The three tests below hold the background revalidation (stale-while-
// revalidate) to the rules of the foreground one: they share one origin
// path (fill.go), and before they did, the background copy had drifted.

// TestRevalidate_Background304OtherValidator checks RFC 9111 §4.3.4 on the
// background path: a 304 whose ETag names another representation cannot
// freshen the stored one (its headers would be pasted onto the old body);
// the proxy asks again without validators and stores that answer.
func TestRevalidate_Background304OtherValidator(t *testing.T) {
	var version atomic.Int64
	version.Store(1)
	r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Cache-Control", "max-age=10, stale-while-revalidate=60")
		if version.Load() == 1 {
			w.Header().Set("Etag", `"e1"`)
			w.Write([]byte("v1"))
			return
		}
		w.Header().Set("Etag", `"e2"`)
		if req.Header.Get("If-None-Match") != "" {
			// An origin behind a load balancer answering for another
			// server's representation.
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Write([]byte("v2"))
	}, nil)
	r.Get("/")
	version.Store(2)
	r.Clock.Advance(20 * time.Second)
	if got := r.Get("/"); got.Body != "v1" || !match(csOf(t, got.Header), "detail=stale-while-revalidate") {
		t.Fatalf("GET in the stale-while-revalidate window: %q, Cache-Status %q; want v1 served stale", got.Body, got.Header.Get("Cache-Status"))
	}
	got := r.Get("/")
	if got.Body != "v2" || got.Header.Get("Etag") != `"e2"` {
		t.Errorf("after the background revalidation got body %q with ETag %s, want v2 with \"e2\" (a 304 for \"e2\" must not freshen the stored \"e1\")", got.Body, got.Header.Get("Etag"))
	}
}

// TestRevalidate_BackgroundMaxBuffered checks that the body a background
// revalidation copies for storing counts against MaxBuffered like any
// other: with the bound taken by a transfer in progress, the background
// fill is given up at once (its origin request ends) and the stored entry
// stays as it was.
func TestRevalidate_BackgroundMaxBuffered(t *testing.T) {
	holdGate, bGate := make(chan struct{}), make(chan struct{})
	bCancelled := make(chan struct{})
	var revalidating atomic.Bool
	r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
		switch {
		case req.URL.Path == "/hold":
			w.Header().Set("Cache-Control", "max-age=60")
			w.Header().Set("Content-Length", "2000")
			w.Write([]byte(strings.Repeat("h", 1000)))
			w.(http.Flusher).Flush()
			select {
			case <-holdGate:
			case <-req.Context().Done():
				return
			}
			w.Write([]byte(strings.Repeat("h", 1000)))
		case !revalidating.Load():
			w.Header().Set("Cache-Control", "max-age=10, stale-while-revalidate=60")
			w.Write([]byte("v1"))
		default:
			w.Header().Set("Cache-Control", "max-age=10, stale-while-revalidate=60")
			w.Header().Set("Content-Length", "2000")
			w.Write([]byte(strings.Repeat("b", 1000)))
			w.(http.Flusher).Flush()
			select {
			case <-bGate:
				w.Write([]byte(strings.Repeat("b", 1000)))
			case <-req.Context().Done():
				close(bCancelled)
			}
		}
	}, func(c *Config) { c.MaxBuffered = 3000; c.MaxObjectSize = 3000 })
	var gates sync.Once
	openGates := func() { gates.Do(func() { close(bGate); close(holdGate) }) }
	t.Cleanup(openGates) // runs before the rig's cleanup, even on failure
	r.Get("/b")
	hold, err := r.Client.Get(r.Front.URL + "/hold")
	if err != nil {
		t.Fatal(err)
	}
	if cs := csOf(t, hold.Header); !match(cs, "stored") {
		t.Fatalf("/hold Cache-Status = %q, want stored (2000 of 3000 bytes reserved)", cs)
	}
	revalidating.Store(true)
	r.Clock.Advance(20 * time.Second)
	// Not r.get: its settle would wait for /hold.
	stale, err := r.Client.Get(r.Front.URL + "/b")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(stale.Body)
	stale.Body.Close()
	if string(body) != "v1" {
		t.Fatalf("stale GET /b = %q, want v1", body)
	}
	within(t, bCancelled, 10*time.Second, "the background revalidation to give up its 2000-byte body (MaxBuffered 3000, 2000 held)")
	openGates()
	io.ReadAll(hold.Body)
	hold.Body.Close()
	r.Settle()
	rec, err := r.Store.Get(context.Background(), "http://"+r.Front.Listener.Addr().String()+"/b", "")
	if err != nil {
		t.Fatalf("stored /b: %v", err)
	}
	if string(rec.Body) != "v1" {
		t.Errorf("stored /b has %d bytes, want the old v1 (the refresh did not fit MaxBuffered)", len(rec.Body))
	}
	if got := r.Proxy.buffered.Load(); got != 0 {
		t.Errorf("buffered = %d, want 0", got)
	}
}

// TestRevalidate_BackgroundHitForPass checks that a background
// revalidation whose answer is not storable records hit-for-pass like the
// foreground one: the next requests for the URL go straight to the origin
// instead of queueing behind one another's fetch of an uncacheable page.
func TestRevalidate_BackgroundHitForPass(t *testing.T) {
	var private atomic.Bool
	var arrivals atomic.Int64
	both, release := make(chan struct{}), make(chan struct{})
	r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
		if !private.Load() {
			w.Header().Set("Cache-Control", "max-age=10, stale-while-revalidate=60")
			w.Write([]byte("v"))
			return
		}
		w.Header().Set("Cache-Control", "private, max-age=60")
		if req.Header.Get("X-Probe") != "" {
			if arrivals.Add(1) == 2 {
				close(both)
			}
			select {
			case <-both:
			case <-release:
			}
		}
		w.Write([]byte("p"))
	}, nil)
	r.Get("/")
	private.Store(true)
	r.Clock.Advance(20 * time.Second)
	if got := r.Get("/"); !match(csOf(t, got.Header), "detail=stale-while-revalidate") {
		t.Fatalf("GET in the stale-while-revalidate window: Cache-Status %q", got.Header.Get("Cache-Status"))
	}
	// The background revalidation got "private": two concurrent requests
	// must both reach the origin (it answers once both arrived).
	waited := make(chan struct{})
	var once sync.Once
	r.Proxy.onWait = func() { once.Do(func() { close(waited) }) }
	done := make(chan struct{}, 2)
	for range 2 {
		go func() {
			defer func() { done <- struct{}{} }()
			req, _ := http.NewRequest(http.MethodGet, r.Front.URL+"/", nil)
			req.Header.Set("X-Probe", "1")
			if resp, err := r.Client.Do(req); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	select {
	case <-both:
	case <-waited:
		t.Errorf("a request waited on another's fetch of a URL the background revalidation found private; want hit-for-pass (both go to the origin)")
	case <-time.After(10 * time.Second):
		t.Errorf("timed out waiting for the two requests")
	}
	close(release)
	<-done
	<-done
}
