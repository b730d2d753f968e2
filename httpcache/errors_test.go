package httpcache

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// statusOrigin answers with the status in *code (200 when zero), a body
// naming it, and cache-control cc.
func statusOrigin(code *atomic.Int64, cc string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c := int(code.Load())
		if c == 0 {
			c = 200
		}
		w.Header().Set("Cache-Control", cc)
		w.Header().Set("Etag", `"v`+strconv.Itoa(c)+`"`)
		w.WriteHeader(c)
		w.Write([]byte("status " + strconv.Itoa(c)))
	}
}

// TestErrors_NeverReplaceGoodEntry: when a stale entry is revalidated and
// the origin answers an error, the stored entry survives: within
// stale-if-error it is served, otherwise the error goes to that client
// uncached and the next request after the origin recovers still finds the
// entry (a conditional request, answered 304).
func TestErrors_NeverReplaceGoodEntry(t *testing.T) {
	for _, c := range []struct {
		name      string
		cc        string
		code      int
		wantFirst int
	}{
		{"503 within stale-if-error serves the stored page", "max-age=60, stale-if-error=600", 503, 200},
		{"503 without stale-if-error is forwarded", "max-age=60", 503, 503},
		{"404 is forwarded and the entry kept", "max-age=60", 404, 404},
		{"405 (an override header) is forwarded and the entry kept", "max-age=60", 405, 405},
		{"431 is forwarded and the entry kept", "max-age=60", 431, 431},
	} {
		t.Run(c.name, func(t *testing.T) {
			var code atomic.Int64
			r := newRig(t, statusOrigin(&code, c.cc), nil)
			r.Get("/")
			r.Clock.Advance(2 * time.Minute)
			code.Store(int64(c.code))
			got := r.Get("/")
			if got.Status != c.wantFirst {
				t.Fatalf("revalidation answered %d: client got %d (%q), want %d", c.code, got.Status, got.Header.Get("Cache-Status"), c.wantFirst)
			}
			if c.wantFirst != 200 && match(cs(t, got), "stored") {
				t.Errorf("error response claims stored: %q", got.Header.Get("Cache-Status"))
			}
			code.Store(0)
			got = r.Get("/")
			if got.Status != 200 || got.Body != "status 200" {
				t.Errorf("after the origin recovered: %d %q", got.Status, got.Body)
			}
			if last := r.Origin.LastRequest(); last.Header.Get("If-None-Match") != `"v200"` {
				t.Errorf("the entry was not kept: the next request was not conditional (If-None-Match %q)", last.Header.Get("If-None-Match"))
			}
		})
	}
}

// TestErrors_StoreErrorsOptIn checks that errors are not stored by
// default, and that StoreErrors stores the listed status with the
// operator's freshness (capped), never longer.
func TestErrors_StoreErrorsOptIn(t *testing.T) {
	var code atomic.Int64
	code.Store(404)
	r := newRig(t, statusOrigin(&code, "public, max-age=3600"), func(c *Config) {
		c.StoreErrors = map[int]time.Duration{404: 30 * time.Second}
	})
	got := r.Get("/gone")
	if !match(cs(t, got), "stored; ttl=30") {
		t.Errorf("404 opted in: Cache-Status %q, want stored; ttl=30", got.Header.Get("Cache-Status"))
	}
	if got = r.Get("/gone"); !match(cs(t, got), "hit") || got.Status != 404 {
		t.Errorf("404 opted in, second request: %d %q, want a hit", got.Status, got.Header.Get("Cache-Status"))
	}
	r.Clock.Advance(31 * time.Second)
	if got = r.Get("/gone"); match(cs(t, got), "hit") {
		t.Errorf("404 past the StoreErrors freshness is still a hit: %q", got.Header.Get("Cache-Status"))
	}
	code.Store(410)
	if got = r.Get("/other"); !match(cs(t, got), "detail=error-status", "stored") {
		t.Errorf("410 not opted in: Cache-Status %q, want detail=error-status", got.Header.Get("Cache-Status"))
	}
}

// TestErrors_EmptyHTMLNotStored: an empty 200 on an HTML route (a failed
// render) is not stored, with a known length or without one, and does
// not replace a stored page; StoreEmptyHTML opts out.
func TestErrors_EmptyHTMLNotStored(t *testing.T) {
	var empty atomic.Bool
	page := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Etag", `"e"`)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if r.URL.Query().Get("chunked") != "" {
			w.(http.Flusher).Flush() // no Content-Length
		}
		if !empty.Load() {
			w.Write([]byte("<p>page</p>"))
		}
	}
	for _, q := range []string{"", "?chunked=1"} {
		t.Run("path"+q, func(t *testing.T) {
			empty.Store(true)
			r := newRig(t, page, nil)
			if got := r.Get("/" + q); match(cs(t, got), "stored") && q == "" {
				t.Errorf("empty page claims stored: %q", got.Header.Get("Cache-Status"))
			}
			if got := r.Get("/" + q); match(cs(t, got), "hit") {
				t.Errorf("empty page was stored: %q", got.Header.Get("Cache-Status"))
			}
			empty.Store(false)
			r.Get("/" + q)
			r.Clock.Advance(2 * time.Minute)
			empty.Store(true)
			r.Get("/" + q) // revalidation answered with an empty 200
			empty.Store(false)
			r.Get("/" + q)
			if last := r.Origin.LastRequest(); last.Header.Get("If-None-Match") != `"e"` {
				t.Errorf("the empty answer replaced the stored page (next request not conditional)")
			}
		})
	}
	t.Run("StoreEmptyHTML", func(t *testing.T) {
		empty.Store(true)
		r := newRig(t, page, func(c *Config) { c.StoreEmptyHTML = true })
		if got := r.Get("/"); !match(cs(t, got), "stored") {
			t.Errorf("StoreEmptyHTML: Cache-Status %q, want stored", got.Header.Get("Cache-Status"))
		}
	})
}
