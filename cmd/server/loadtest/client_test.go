package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
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
