package httpcache

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// TestPoison_UnkeyedForwardingHeaders checks that forwarding headers a
// client makes up, which the key does not hold but which frameworks use to
// build absolute URLs (Plug.RewriteOn, Rack, Spring), do not reach the
// origin unless TrustForwarded says a front proxy set them.
func TestPoison_UnkeyedForwardingHeaders(t *testing.T) {
	hostile := []struct{ name, value string }{
		{"Forwarded", "for=203.0.113.9;host=evil.test;proto=https"},
		{"X-Forwarded-Port", "1337"},
		{"X-Forwarded-Prefix", "/evil"},
		{"X-Forwarded-Server", "evil.test"},
		{"X-Forwarded-Ssl", "on"},
		{"X-Forwarded-Scheme", "https"},
		{"X-Real-Ip", "203.0.113.9"},
		{"X-Original-Url", "/admin"},
		{"X-Rewrite-Url", "/admin"},
		{"Front-End-Https", "on"},
	}
	for _, trust := range []bool{false, true} {
		for _, hh := range hostile {
			name := "untrusted " + hh.name + " is dropped"
			if trust {
				name = "trusted " + hh.name + " is passed on"
				if hh.name == "Forwarded" {
					name = "Forwarded is dropped even when trusted"
				}
			}
			t.Run(name, func(t *testing.T) {
				r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
					w.Header().Set("Cache-Control", "public, s-maxage=600")
					w.Write([]byte("seen=" + req.Header.Get(hh.name)))
				}, func(c *Config) { c.TrustForwarded = trust })
				first := r.Get("/page", hh.name, hh.value)
				got := r.Origin.LastRequest().Header.Get(hh.name)
				want := ""
				if trust && hh.name != "Forwarded" {
					want = hh.value
				}
				if got != want {
					t.Errorf("origin saw %s = %q, want %q", hh.name, got, want)
				}
				if !trust {
					if first.Body != "seen=" {
						t.Errorf("attacker's response body = %q, want %q", first.Body, "seen=")
					}
					if victim := r.Get("/page"); strings.Contains(victim.Body, hh.value) {
						t.Errorf("next visitor got %q: poisoned by %s", victim.Body, hh.name)
					}
				}
			})
		}
	}
}

// TestPoison_HostSpelling checks that the host the origin is told
// (X-Forwarded-Host) is the normalized one the key holds, so a variant
// spelling of a cached host (trailing dot, upper case, a leading-zero
// port) cannot store absolute URLs naming another origin (a browser
// treats "app.test." as a site of its own: its live socket Origin is
// refused) for the visitors of the plain spelling.
func TestPoison_HostSpelling(t *testing.T) {
	r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Cache-Control", "public, s-maxage=600")
		w.Write([]byte("host=" + req.Header.Get("X-Forwarded-Host")))
	}, nil)
	_, port, _ := strings.Cut(strings.TrimPrefix(r.Front.URL, "http://"), ":")
	plain := "localhost:" + port
	for i, spelling := range []string{"localhost.:" + port, "LOCALHOST:" + port, "localhost:0" + port} {
		path := "/p" + strconv.Itoa(i)
		r.DoWith(http.MethodGet, path, func(req *http.Request) { req.Host = spelling })
		if got := r.Origin.LastRequest().Header.Get("X-Forwarded-Host"); got != plain {
			t.Errorf("Host %q: origin told X-Forwarded-Host %q, want %q", spelling, got, plain)
		}
		if got := r.DoWith(http.MethodGet, path, func(req *http.Request) { req.Host = plain }); got.Body != "host="+plain {
			t.Errorf("after a request with Host %q, a visitor of %q got %q, want %q", spelling, plain, got.Body, "host="+plain)
		}
	}
}

// TestPoison_TrustedForwardedHostIsKeyed checks that behind a trusted
// proxy that sends its own name as Host (nginx's default) and the public
// host in X-Forwarded-Host, the key holds the host the origin renders for:
// otherwise every public host shares one entry.
func TestPoison_TrustedForwardedHostIsKeyed(t *testing.T) {
	r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Cache-Control", "public, s-maxage=600")
		w.Write([]byte("host=" + req.Header.Get("X-Forwarded-Host")))
	}, func(c *Config) {
		c.TrustForwarded = true
		c.Hosts = []string{"a.test", "b.test", "localhost", "127.0.0.1"}
	})
	for _, h := range []string{"a.test", "b.test", "a.test"} {
		got := r.Get("/", "X-Forwarded-Host", h)
		if got.Body != "host="+h {
			t.Errorf("X-Forwarded-Host %s: got %q (Cache-Status %q), want %q", h, got.Body, got.Header.Get("Cache-Status"), "host="+h)
		}
	}
	if n := r.Origin.Count(); n != 2 {
		t.Errorf("origin asked %d times, want 2 (one per host)", n)
	}
	if got := r.Get("/", "X-Forwarded-Host", "evil.test"); !match(csOf(t, got.Header), "detail=host-not-cached") {
		t.Errorf("X-Forwarded-Host evil.test: Cache-Status %q, want detail=host-not-cached", got.Header.Get("Cache-Status"))
	}
}

// TestPoison_FatGET checks that a GET carrying a body (which some
// frameworks read as parameters: the "fat GET" of cache-poisoning lore)
// is never stored: the key does not hold the body.
func TestPoison_FatGET(t *testing.T) {
	r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		w.Header().Set("Cache-Control", "public, s-maxage=600")
		w.Write([]byte("q=" + string(b)))
	}, nil)
	req, err := http.NewRequest(http.MethodGet, r.Front.URL+"/search", strings.NewReader("evil"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := r.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	r.Settle()
	if cs := csOf(t, resp.Header); !match(cs, "fwd=bypass") || match(cs, "stored") {
		t.Errorf("GET with a body: Cache-Status %q, want fwd=bypass and not stored", cs)
	}
	if got := r.Get("/search"); got.Body != "q=" {
		t.Errorf("next visitor got %q, want %q (not the body-carrying request's response)", got.Body, "q=")
	}
}
