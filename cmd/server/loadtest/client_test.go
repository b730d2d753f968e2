package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The load generator's client must read every framing the servers use,
// or the next request on the connection reads garbage.
func TestConnReadsFramings(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/len":
			w.Header().Set("Cache-Status", "up; fwd=miss, firstrender; hit; ttl=5")
			w.Write([]byte("hello"))
		case "/chunked":
			w.Header().Set("Cache-Status", "firstrender; hit; collapsed")
			w.Write([]byte(strings.Repeat("a", 10)))
			w.(http.Flusher).Flush()
			w.Write([]byte(strings.Repeat("b", 7)))
		case "/304":
			w.WriteHeader(http.StatusNotModified)
		default:
			w.Header().Set("Cache-Status", "firstrender; fwd=uri-miss; stored")
			http.NotFound(w, r)
		}
	}))
	defer ts.Close()
	c := &conn{addr: strings.TrimPrefix(ts.URL, "http://")}
	defer c.close()
	for range 2 { // twice: the connection stays usable
		for _, tc := range []struct {
			path   string
			status int
			body   int
			hit    bool
		}{{"/len", 200, 5, true}, {"/chunked", 200, 17, false}, {"/304", 304, 0, false}, {"/x", 404, 19, false}} {
			r, err := c.get(tc.path)
			if err != nil {
				t.Fatalf("GET %s: %v", tc.path, err)
			}
			if r.status != tc.status || r.body != tc.body || r.hit != tc.hit {
				t.Errorf("GET %s = status %d body %d hit %v, want %d %d %v", tc.path, r.status, r.body, r.hit, tc.status, tc.body, tc.hit)
			}
		}
	}
}

func TestRegistryNamesUnique(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range registry {
		if seen[s.Name] || s.Run == nil {
			t.Errorf("scenario %q registered twice or without Run", s.Name)
		}
		seen[s.Name] = true
	}
	defer func() {
		if recover() == nil {
			t.Error("Register of a duplicate name did not panic")
		}
	}()
	Register(Scenario{Name: "hot", Run: runHot})
}

// TestLoadBackground checks a load's side traffic: it runs for as long as
// the workers do, on connections of its own (none of its requests is in
// the result), and has returned when run does.
func TestLoadBackground(t *testing.T) {
	var side, main atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/side" {
			side.Add(1)
		} else {
			main.Add(1)
		}
	}))
	defer ts.Close()
	var running atomic.Bool
	l := &load{
		addr: strings.TrimPrefix(ts.URL, "http://"), conns: 2, duration: time.Minute, max: 400,
		next: func(context.Context, int, int64, *conn) (string, error) {
			if side.Load() == 0 {
				return "/wait", nil // until the side traffic has sent one
			}
			return "/main", nil
		},
		background: func(ctx context.Context, addr string) {
			running.Store(true)
			defer running.Store(false)
			c := &conn{addr: addr}
			defer c.close()
			for ctx.Err() == nil {
				if _, err := c.get("/side"); err != nil && ctx.Err() == nil {
					t.Errorf("side GET: %v", err)
					return
				}
			}
		},
	}
	res := l.run(context.Background())
	if running.Load() {
		t.Fatal("run returned while its background still ran")
	}
	if side.Load() == 0 || res.requests != main.Load() {
		t.Fatalf("side requests %d, result %d requests for %d main ones: want side traffic, none of it counted", side.Load(), res.requests, main.Load())
	}
}
