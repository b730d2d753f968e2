package httpcache

import (
	"net/http"
	"strings"
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
			r.get("/")
			switched.Store(true)
			r.clock.Advance(11 * time.Second)
			if got := r.get("/"); got.body != "v1" {
				t.Fatalf("revalidated GET body = %q, want v1", got.body)
			}
			n := r.origin.count()
			got := r.get("/")
			if cs := got.header.Get("Cache-Status"); strings.Contains(cs, "hit") || r.origin.count() != n+1 {
				t.Errorf("after a 304 with Cache-Control %q: Cache-Status %q, origin asked %d times more; want the origin asked, not a hit", cc, cs, r.origin.count()-n)
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
			r.get("/")
			r.clock.Advance(20 * time.Second)
			if got := r.do(http.MethodHead, "/"); !strings.Contains(got.header.Get("Cache-Status"), "stale-while-revalidate") {
				t.Fatalf("HEAD in the stale-while-revalidate window: Cache-Status %q, want detail=stale-while-revalidate", got.header.Get("Cache-Status"))
			}
			n := r.origin.count()
			got := r.get("/")
			if cs := got.header.Get("Cache-Status"); !strings.HasPrefix(cs, "firstrender; hit") || strings.Contains(cs, "stale") || r.origin.count() != n {
				t.Errorf("GET after the background revalidation: Cache-Status %q, origin asked %d more; want a fresh hit", cs, r.origin.count()-n)
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
				r.get("/")
				if got := r.get("/", tt.hdr...); got.body != "v1" {
					t.Fatalf("visitor with %v got %q, want v1", tt.hdr, got.body)
				}
				n := r.origin.count()
				if got := r.get("/"); !strings.HasPrefix(got.header.Get("Cache-Status"), "firstrender; hit") || r.origin.count() != n {
					t.Errorf("after a request with %v: Cache-Status %q, want a hit (the entry must survive)", tt.hdr, got.header.Get("Cache-Status"))
				}
			})
		}
	}
}
