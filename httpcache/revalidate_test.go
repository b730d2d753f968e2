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
