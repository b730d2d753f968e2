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

// A plain hit, from memory or read from the store, is answered before
// the request's Accept-Encoding is normalized on a copy (fwdPlan not
// applied): the variant must still be the one the normalized request
// selects, for every spelling of Accept-Encoding, and the encoding served
// must follow the client's own Accept-Encoding.
func TestPlainHit_VariantAsForwarded(t *testing.T) {
	for _, tier := range []string{"memory", "store"} {
		t.Run(tier, func(t *testing.T) {
			const page = "<html>a page that varies on Accept-Encoding</html>"
			r := newRig(t, gzipOrigin(t, page, false, true), tierConfig(tier))
			// Each variant: miss, first read, second read (admitted to memory).
			for range 3 {
				getRaw(t, r, "/v", "gzip, deflate, br, zstd")
				getRaw(t, r, "/v", "identity")
			}
			want := 2
			if tier == "store" {
				want = 0
			}
			if n, _ := r.Proxy.hot.stats(); n != want {
				t.Fatalf("memory tier holds %d entries, want %d", n, want)
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
		})
	}
}

// tierConfig configures a rig whose hits come from tier: "memory" (the
// default) or "store" (no memory tier).
func tierConfig(tier string) func(*Config) {
	if tier == "memory" {
		return nil
	}
	return func(c *Config) { c.MemoryCacheSize = -1 }
}

// When the entry found, in memory or in the store, is not a plain fresh
// hit, the plan is applied before anything is forwarded: the
// revalidation carries the normalized Accept-Encoding, not the browser's.
// A miss is forwarded normalized too.
func TestPlainHit_StaleRevalidatesAsForwarded(t *testing.T) {
	for _, tier := range []string{"memory", "store"} {
		t.Run(tier, func(t *testing.T) {
			const page = "<html>stale soon</html>"
			r := newRig(t, gzipOrigin(t, page, false, true), tierConfig(tier))
			const ae = "gzip, deflate, br, zstd"
			for range 3 {
				getRaw(t, r, "/s", ae)
			}
			want := 1
			if tier == "store" {
				want = 0
			}
			if n, _ := r.Proxy.hot.stats(); n != want {
				t.Fatalf("memory tier holds %d entries, want %d", n, want)
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
			resp, _ = getRaw(t, r, "/s-new", ae)
			if m := csOf(t, resp.Header); m.Match("fwd=uri-miss") != nil {
				t.Fatalf("a new page: Cache-Status %q, want fwd=uri-miss", resp.Header.Get("Cache-Status"))
			}
			last = r.Origin.LastRequest()
			if got := last.Header.Values("Accept-Encoding"); len(got) != 1 || got[0] != "gzip" {
				t.Fatalf("the miss carried Accept-Encoding %q, want the normalized \"gzip\"", got)
			}
		})
	}
}

// A plain hit for a browser's Accept-Encoding allocates what one without
// it does: no copy of the request or its header. From memory that is
// nothing of the proxy's own (the exchange is reused).
func TestPlainHit_BrowserAcceptEncodingAllocs(t *testing.T) {
	for _, tier := range []string{"memory", "store"} {
		t.Run(tier, func(t *testing.T) {
			r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
				w.Header().Set("Cache-Control", "public, max-age=600")
				w.Header().Set("Vary", "Accept-Encoding")
				w.Write(bytes.Repeat([]byte("x"), 4096))
			}, tierConfig(tier))
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
			if browser > plain {
				t.Fatalf("a %s hit allocates %v times with Accept-Encoding gzip, %v with a browser's; want no more for the browser's", tier, plain, browser)
			}
			if tier == "memory" && plain > 1 {
				t.Fatalf("a memory hit allocates %v times; want at most 1", plain)
			}
		})
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
