package httpcache

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A plain hit from memory is answered before the request's
// Accept-Encoding is normalized on a copy (fwdPlan not applied): the
// variant must still be the one the normalized request selects, for every
// spelling of Accept-Encoding, and the encoding served must follow the
// client's own Accept-Encoding.
func TestMemoryHit_VariantAsForwarded(t *testing.T) {
	const page = "<html>a page that varies on Accept-Encoding</html>"
	r := newRig(t, gzipOrigin(t, page, false, true), nil)
	// Each variant: miss, first read, second read (admitted to memory).
	for range 3 {
		getRaw(t, r, "/v", "gzip, deflate, br, zstd")
		getRaw(t, r, "/v", "identity")
	}
	if n, _ := r.Proxy.hot.stats(); n != 2 {
		t.Fatalf("memory tier holds %d entries, want both variants", n)
	}
	origin := r.Origin.Count()
	for _, c := range []struct{ ae, want string }{
		{"gzip, deflate, br, zstd", "gzip"},
		{"br, GZIP;q=0.5", "gzip"},
		{"gzip", "gzip"},
		{"*", "gzip"},
		{"identity", "identity"},
		{"gzip;q=0, br", "identity"},
		{"x-unknown", "identity"},
	} {
		resp, body := getRaw(t, r, "/v", c.ae)
		if m := csOf(t, resp.Header); !match(m, "hit") {
			t.Errorf("Accept-Encoding %q: Cache-Status %q, want a hit", c.ae, resp.Header.Get("Cache-Status"))
		}
		ce := resp.Header.Get("Content-Encoding")
		switch c.want {
		case "gzip":
			if ce != "gzip" || !isGzipOf(body, page) {
				t.Errorf("Accept-Encoding %q: Content-Encoding %q, body %q; want the gzip variant", c.ae, ce, body)
			}
		default:
			if ce != "" || string(body) != page {
				t.Errorf("Accept-Encoding %q: Content-Encoding %q, body %q; want the identity variant", c.ae, ce, body)
			}
		}
	}
	if got := r.Origin.Count(); got != origin {
		t.Errorf("the origin was asked %d more times; every request was a hit", got-origin)
	}
}

// When the entry found in memory is not a plain fresh hit, the plan is
// applied before anything is forwarded: the revalidation carries the
// normalized Accept-Encoding, not the browser's.
func TestMemoryHit_StaleRevalidatesAsForwarded(t *testing.T) {
	const page = "<html>stale soon</html>"
	r := newRig(t, gzipOrigin(t, page, false, true), nil)
	const ae = "gzip, deflate, br, zstd"
	for range 3 {
		getRaw(t, r, "/s", ae)
	}
	if n, _ := r.Proxy.hot.stats(); n != 1 {
		t.Fatalf("memory tier holds %d entries, want 1", n)
	}
	r.Clock.Advance(601 * time.Second)
	resp, body := getRaw(t, r, "/s", ae)
	if resp.StatusCode != 200 || !isGzipOf(body, page) {
		t.Fatalf("revalidated: %d %q", resp.StatusCode, body)
	}
	if m := csOf(t, resp.Header); m.Match("fwd=stale") != nil {
		t.Fatalf("Cache-Status %q, want fwd=stale", resp.Header.Get("Cache-Status"))
	}
	last := r.Origin.LastRequest()
	if got := last.Header.Values("Accept-Encoding"); len(got) != 1 || got[0] != "gzip" {
		t.Fatalf("the revalidation carried Accept-Encoding %q, want the normalized \"gzip\"", got)
	}
}

// A plain hit from memory for a browser's Accept-Encoding allocates what
// one without it does (nothing of the proxy's own: the exchange is
// reused): no copy of the request or its header.
func TestMemoryHit_BrowserAcceptEncodingAllocs(t *testing.T) {
	r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=600")
		w.Header().Set("Vary", "Accept-Encoding")
		w.Write(bytes.Repeat([]byte("x"), 4096))
	}, nil)
	for range 3 {
		getRaw(t, r, "/p", "gzip, deflate, br, zstd")
	}
	host := strings.TrimPrefix(r.Front.URL, "http://")
	allocs := func(ae string) float64 {
		req := httptest.NewRequest(http.MethodGet, "http://"+host+"/p", nil)
		req.Host = host
		req.Header.Set("Accept-Encoding", ae)
		w := &discardWriter{h: make(http.Header, 16)}
		return testing.AllocsPerRun(200, func() {
			clear(w.h)
			r.Proxy.ServeHTTP(w, req)
			if w.code != 200 {
				t.Fatalf("status %d", w.code)
			}
		})
	}
	plain, browser := allocs("gzip"), allocs("gzip, deflate, br, zstd")
	if browser > plain || plain > 1 {
		t.Fatalf("a memory hit allocates %v times with Accept-Encoding gzip, %v with a browser's; want at most 1 for both", plain, browser)
	}
}

// Exchanges of plain hits from memory are reused once ServeHTTP returns:
// under concurrent hits, misses, stale revalidations and purges (run
// with -race), every request's Outcome and body must be its own.
func TestExchangeReuse_Concurrent(t *testing.T) {
	r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Cache-Control", "max-age=1")
		w.Write([]byte("page " + req.URL.Path))
	}, nil)
	paths := []string{"/a", "/b", "/c", "/d"}
	for _, p := range paths {
		for range 3 {
			r.Get(p)
		}
	}
	host := strings.TrimPrefix(r.Front.URL, "http://")
	done := make(chan struct{})
	errs := make(chan string, 64)
	for g := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 300 {
				path := paths[(g+i)%len(paths)]
				if i%50 == 49 {
					path = "/new" + strconv.Itoa(g*1000+i) // a miss, stored
				}
				ctx, out := WithOutcome(context.Background())
				req := httptest.NewRequest(http.MethodGet, "http://"+host+path, nil).WithContext(ctx)
				req.Host = host
				if i%3 == 0 {
					req.Header.Set("Accept-Encoding", "gzip, deflate, br")
				}
				rec := httptest.NewRecorder()
				r.Proxy.ServeHTTP(rec, req)
				if got := rec.Body.String(); got != "page "+path {
					errs <- path + ": body " + got
					return
				}
				if !strings.HasSuffix(out.Key, path) {
					errs <- path + ": Outcome key " + out.Key
					return
				}
			}
		}()
	}
	go func() { // time passes: entries go stale and are revalidated
		for range 20 {
			r.Clock.Advance(300 * time.Millisecond)
			time.Sleep(time.Millisecond)
		}
	}()
	for range 8 {
		<-done
	}
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
