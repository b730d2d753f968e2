package httpcache

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/firstrender/firstrender/store"
)

// purgeOrigin serves every path fresh for 10 minutes with a Surrogate-Key
// of its first segment ("/a/1" → "t-a") and a body naming the path and
// the origin's version (bumped by the test).
func purgeOrigin(version *atomic.Int64) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		seg, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		w.Header().Set("Cache-Control", "public, max-age=600")
		w.Header().Set("Surrogate-Key", "t-"+seg+" all-pages")
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, r.URL.Path+" v"+string(rune('0'+version.Load())))
	}
}

func rawGet(t *testing.T, c *http.Client, u string) string {
	t.Helper()
	res, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

func pctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestProxy_Purge_Selectors: each selector's effect on the proxy: the
// purged pages' next request is a miss (the origin answers, with its new
// version), every other page still hits.
func TestProxy_Purge_Selectors(t *testing.T) {
	pages := []string{"/a/1", "/a/2", "/b/1"}
	for _, tc := range []struct {
		name   string
		sel    func(key func(string) string) Selection
		purged []string
	}{
		{"one key purges that page only", func(k func(string) string) Selection { return Selection{Keys: []string{k("/a/1")}} }, []string{"/a/1"}},
		{"a key list", func(k func(string) string) Selection {
			return Selection{Keys: []string{k("/a/1"), k("/b/1"), k("/never-stored")}}
		}, []string{"/a/1", "/b/1"}},
		{"a prefix", func(k func(string) string) Selection { return Selection{Prefix: strings.TrimSuffix(k("/a/"), "/")} }, []string{"/a/1", "/a/2"}},
		{"a tag", func(func(string) string) Selection { return Selection{Tag: "t-b"} }, []string{"/b/1"}},
		{"all", func(func(string) string) Selection { return Selection{All: true} }, pages},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var version atomic.Int64
			version.Store(1)
			r := newRig(t, purgeOrigin(&version), nil)
			for _, p := range pages {
				r.Get(p)
			}
			for _, p := range pages {
				if c := cs(t, r.Get(p)); !match(c, "hit") {
					t.Fatalf("warm-up: %s Cache-Status %q, want hit", p, c)
				}
			}
			key := func(p string) string {
				k, err := r.Proxy.Key(r.Front.URL + p)
				if err != nil {
					t.Fatal(err)
				}
				return k
			}
			n, err := r.Proxy.Purge(pctx(t), tc.sel(key))
			if err != nil {
				t.Fatalf("Purge: %v", err)
			}
			if n != len(tc.purged) {
				t.Errorf("Purge removed %d records, want %d", n, len(tc.purged))
			}
			version.Store(2)
			for _, p := range pages {
				before := r.Origin.Count()
				res := r.Get(p)
				purged := false
				for _, q := range tc.purged {
					purged = purged || q == p
				}
				c := cs(t, res)
				switch {
				case purged && (r.Origin.Count() != before+1 || res.Body != p+" v2" || !match(c, "fwd=uri-miss")):
					t.Errorf("purged %s: %q, Cache-Status %q, origin asked %d times; want a miss with v2", p, res.Body, c, r.Origin.Count()-before)
				case !purged && (r.Origin.Count() != before || res.Body != p+" v1" || !match(c, "hit")):
					t.Errorf("not purged %s: %q, Cache-Status %q, origin asked %d times; want a hit with v1", p, res.Body, c, r.Origin.Count()-before)
				}
			}
		})
	}
}

// TestProxy_Purge_InFlightFill: a response whose origin fetch started
// before a purge covering it is never stored; a request arriving after
// the purge does not wait for that fetch either. The origin holds the
// first response on a channel while the purge runs.
func TestProxy_Purge_InFlightFill(t *testing.T) {
	for _, tc := range []struct {
		name string
		sel  func(key string) Selection
	}{
		{"key", func(k string) Selection { return Selection{Keys: []string{k}} }},
		{"prefix", func(k string) Selection { return Selection{Prefix: strings.TrimSuffix(k, "slow")} }},
		{"tag", func(string) Selection { return Selection{Tag: "t-slow"} }},
		{"all", func(string) Selection { return Selection{All: true} }},
		{"soft", func(k string) Selection { return Selection{Keys: []string{k}, Soft: true} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var version atomic.Int64
			version.Store(1)
			started, release := make(chan struct{}), make(chan struct{})
			var calls atomic.Int64
			plain := purgeOrigin(&version)
			r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
				if calls.Add(1) == 1 {
					// Rendered before the purge (v1), sent after it.
					old := version.Load()
					close(started)
					<-release
					w.Header().Set("Cache-Control", "public, max-age=600")
					w.Header().Set("Surrogate-Key", "t-slow")
					io.WriteString(w, req.URL.Path+" v"+string(rune('0'+old)))
					return
				}
				plain(w, req)
			}, nil)
			key, err := r.Proxy.Key(r.Front.URL + "/slow")
			if err != nil {
				t.Fatal(err)
			}
			first := make(chan string, 1)
			go func() {
				res, err := r.Client.Get(r.Front.URL + "/slow")
				if err != nil {
					first <- "error: " + err.Error()
					return
				}
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				first <- string(b)
			}()
			within(t, started, 10*time.Second, "the origin fetch to start")
			if _, err := r.Proxy.Purge(pctx(t), tc.sel(key)); err != nil {
				t.Fatalf("Purge: %v", err)
			}
			// The page changed at the origin, and the purge was for it.
			version.Store(2)
			// A request after the purge fetches for itself (the first
			// fetch is still held) and gets the new version.
			// (Not r.Get: its Settle would wait for the held fetch.)
			if b := rawGet(t, r.Client, r.Front.URL+"/slow"); b != "/slow v2" {
				t.Errorf("request after the purge, during the old fetch: %q, want /slow v2", b)
			}
			close(release)
			select {
			case b := <-first:
				if b != "/slow v1" {
					t.Errorf("the held request got %q, want /slow v1 (its own answer)", b)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the held request did not finish")
			}
			r.Settle()
			rec, err := r.Store.Get(pctx(t), key, "")
			if err == nil && string(rec.Body) == "/slow v1" {
				t.Fatalf("the purged v1 was stored by the fill that started before the purge")
			}
			if res := r.Get("/slow"); res.Body != "/slow v2" {
				t.Errorf("next request: %q (Cache-Status %q), want /slow v2, never the purged body", res.Body, cs(t, res))
			}
			if f := r.Proxy.Figures(); f.PurgeDropped < 1 {
				t.Errorf("Figures.PurgeDropped = %d, want the dropped fill counted", f.PurgeDropped)
			}
		})
	}
}

// TestProxy_Purge_FillAfterPurgeIsStored: the purge log only refuses
// fills that started before a covering purge: a later fetch is stored,
// and a fetch of another key during a purge is not affected.
func TestProxy_Purge_FillAfterPurgeIsStored(t *testing.T) {
	var version atomic.Int64
	version.Store(1)
	r := newRig(t, purgeOrigin(&version), nil)
	k, _ := r.Proxy.Key(r.Front.URL + "/a/1")
	if _, err := r.Proxy.Purge(pctx(t), Selection{Keys: []string{k}}); err != nil {
		t.Fatal(err)
	}
	r.Get("/a/1")
	if c := cs(t, r.Get("/a/1")); !match(c, "hit") {
		t.Errorf("after purge then fill: Cache-Status %q, want hit", c)
	}
}

// TestProxy_SoftPurge: a soft purge marks the entry stale: with
// stale-while-revalidate the next visitor gets the stored copy at once
// while it is revalidated in the background (a conditional request, 304);
// afterwards the entry is fresh again and the mark gone. Without it, the
// next request revalidates before answering.
func TestProxy_SoftPurge(t *testing.T) {
	for _, swr := range []bool{true, false} {
		t.Run(map[bool]string{true: "stale-while-revalidate", false: "no stale window"}[swr], func(t *testing.T) {
			var conditional atomic.Int64
			r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
				cc := "public, max-age=600"
				if swr {
					cc += ", stale-while-revalidate=60"
				}
				w.Header().Set("Cache-Control", cc)
				w.Header().Set("ETag", `"v1"`)
				if req.Header.Get("If-None-Match") == `"v1"` {
					conditional.Add(1)
					w.WriteHeader(http.StatusNotModified)
					return
				}
				io.WriteString(w, "page v1")
			}, nil)
			r.Get("/p")
			if c := cs(t, r.Get("/p")); !match(c, "hit") {
				t.Fatalf("warm-up: %q, want hit", c)
			}
			k, _ := r.Proxy.Key(r.Front.URL + "/p")
			n, err := r.Proxy.Purge(pctx(t), Selection{Keys: []string{k}, Soft: true})
			if err != nil || n != 1 {
				t.Fatalf("soft Purge = %d, %v; want 1", n, err)
			}
			rec, err := r.Store.Get(pctx(t), k, "")
			if err != nil {
				t.Fatalf("soft purge removed the record: %v", err)
			}
			if _, ok := rec.Annotations[annSoftPurged]; !ok {
				t.Fatalf("record lacks %s after a soft purge: %v", annSoftPurged, rec.Annotations)
			}
			res := r.Get("/p")
			c := cs(t, res)
			if res.Body != "page v1" {
				t.Errorf("after soft purge: body %q, want the stored page", res.Body)
			}
			if swr && !match(c, "hit; detail=stale-while-revalidate") {
				t.Errorf("after soft purge with swr: Cache-Status %q, want the stale copy (detail=stale-while-revalidate)", c)
			}
			if !swr && !match(c, "fwd=stale") {
				t.Errorf("after soft purge without swr: Cache-Status %q, want fwd=stale (revalidated first)", c)
			}
			r.Settle()
			if conditional.Load() != 1 {
				t.Errorf("conditional requests = %d, want 1 revalidation", conditional.Load())
			}
			rec, err = r.Store.Get(pctx(t), k, "")
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := rec.Annotations[annSoftPurged]; ok {
				t.Errorf("the soft-purge mark survived a successful revalidation")
			}
			before := r.Origin.Count()
			if c := cs(t, r.Get("/p")); !match(c, "hit", "detail") || r.Origin.Count() != before {
				t.Errorf("after the revalidation: Cache-Status %q, origin asked %d times; want a fresh hit", c, r.Origin.Count()-before)
			}
		})
	}
}

// TestProxy_Enable: an entry disabled (by the join guard or by hand) is
// not served; Enable serves it again without asking the origin.
func TestProxy_Enable(t *testing.T) {
	var version atomic.Int64
	version.Store(1)
	r := newRig(t, purgeOrigin(&version), nil)
	r.Get("/a/1")
	r.Get("/a/1") // in memory now
	k, _ := r.Proxy.Key(r.Front.URL + "/a/1")
	if err := r.Proxy.Disable(pctx(t), k, "", "test"); err != nil {
		t.Fatal(err)
	}
	if err := r.Proxy.Enable(pctx(t), k, ""); err != nil {
		t.Fatal(err)
	}
	before := r.Origin.Count()
	if c := cs(t, r.Get("/a/1")); !match(c, "hit") || r.Origin.Count() != before {
		t.Errorf("after Enable: Cache-Status %q, want a hit without the origin", c)
	}
	if err := r.Proxy.Disable(pctx(t), k, "", "test"); err != nil {
		t.Fatal(err)
	}
	if c := cs(t, r.Get("/a/1")); !match(c, "fwd=miss; detail=disabled") && !match(c, "fwd=miss") {
		t.Errorf("while disabled: Cache-Status %q, want a miss", c)
	}
	if err := r.Proxy.Enable(pctx(t), "http://nothing.example/", ""); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Enable of nothing = %v, want store.ErrNotFound", err)
	}
	if f := r.Proxy.Figures(); f.Disabled != 2 || f.Hits < 2 || f.Misses < 1 {
		t.Errorf("Figures = %+v, want 2 disables, hits and misses counted", f)
	}
}
