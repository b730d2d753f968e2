package httpcache

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
)

func cachedPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=600")
	w.Header().Set("Content-Type", "text/html")
	w.Write([]byte("<p>page " + r.URL.Path + "</p>"))
}

// TestProxy_HitGate: while the gate gives a reason, stored pages are not
// served (nor stored): every request reaches the origin with the reason
// in Cache-Status; once it opens, the stored page is a hit again.
func TestProxy_HitGate(t *testing.T) {
	var closed atomic.Bool
	rg := newRig(t, cachedPage, func(c *Config) {
		c.HitGate = func() string {
			if closed.Load() {
				return "cluster-catching-up"
			}
			return ""
		}
	})
	if m := cs(t, rg.Get("/a")); !match(m, "fwd=uri-miss; stored") {
		t.Fatalf("first GET: %s, want a stored miss", m)
	}
	if m := cs(t, rg.Get("/a")); !match(m, "hit") {
		t.Fatalf("second GET: %s, want a hit", m)
	}
	closed.Store(true)
	before := rg.Origin.Count()
	for i := range 3 {
		res := rg.Get("/a")
		if m := cs(t, res); !match(m, `fwd=bypass; detail=cluster-catching-up`, "hit", "stored") {
			t.Fatalf("gated GET %d: %s, want fwd=bypass with the gate's reason, no hit, nothing stored", i, m)
		}
	}
	if m := cs(t, rg.Get("/b")); !match(m, `fwd=bypass; detail=cluster-catching-up`, "stored") {
		t.Fatalf("gated GET of a new page: %s, want bypass, not stored", m)
	}
	if got := rg.Origin.Count() - before; got != 4 {
		t.Fatalf("origin saw %d requests while gated, want 4 (every one)", got)
	}
	closed.Store(false)
	if m := cs(t, rg.Get("/a")); !match(m, "hit") {
		t.Fatalf("after the gate opened: %s, want a hit", m)
	}
	if m := cs(t, rg.Get("/b")); !match(m, "fwd=uri-miss; stored") {
		t.Fatalf("a page forwarded while gated: %s, want a miss (it was not stored)", m)
	}
}

// TestProxy_UnsafeHook: with Config.Unsafe the RFC 9111 §4.4 invalidation
// is handed over (target and same-origin Location keys); when it fails,
// the proxy deletes the keys itself.
func TestProxy_UnsafeHook(t *testing.T) {
	var (
		mu   sync.Mutex
		got  [][]string
		fail atomic.Bool
	)
	origin := func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			w.Header().Set("Location", "/other")
			w.WriteHeader(http.StatusSeeOther)
			return
		}
		cachedPage(w, r)
	}
	rg := newRig(t, origin, func(c *Config) {
		c.Unsafe = func(ctx context.Context, keys []string) error {
			mu.Lock()
			got = append(got, slices.Clone(keys))
			mu.Unlock()
			if fail.Load() {
				return errors.New("node closed")
			}
			return nil
		}
	})
	rg.Get("/form")
	rg.Get("/other")
	rg.Do(http.MethodPost, "/form")
	mu.Lock()
	if len(got) != 1 || len(got[0]) != 2 || got[0][0] != rg.Proxy.keyOf(t, rg, "/form") || got[0][1] != rg.Proxy.keyOf(t, rg, "/other") {
		t.Fatalf("Unsafe got %q, want the target's and Location's keys", got)
	}
	mu.Unlock()
	if m := cs(t, rg.Get("/form")); !match(m, "hit") {
		t.Fatalf("after a handed-over invalidation: %s, want a hit (the hook, not the proxy, deletes)", m)
	}
	fail.Store(true)
	rg.Do(http.MethodPost, "/form")
	if m := cs(t, rg.Get("/form")); !match(m, "fwd=uri-miss") {
		t.Fatalf("after a failed hook: %s, want a miss (the proxy deleted it itself)", m)
	}
}

// keyOf is the primary key the proxy uses for a GET of path through rg.
func (p *Proxy) keyOf(t *testing.T, rg *rig, path string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rg.Front.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := normalize("http", req.URL.Host, req.URL.EscapedPath(), req.URL.RawQuery, p.ignore)
	if err != nil {
		t.Fatal(err)
	}
	return n.key()
}
