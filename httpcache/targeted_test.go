package httpcache

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/firstrender/firstrender/httpcache/httpcachetest"
)

// TestTargetedCacheControl checks RFC 9213 precedence (Firstrender-,
// then CDN-Cache-Control over Cache-Control and Expires, an invalid
// targeted field ignored), Surrogate-Control's no-store and max-age, and
// that clients never receive the fields that target this cache.
func TestTargetedCacheControl(t *testing.T) {
	for _, c := range []struct {
		name   string
		hdr    []string // response fields
		wantCS string   // on the first response
		notCS  string
	}{
		{"CDN-Cache-Control overrides Cache-Control", []string{"Cache-Control", "no-store", "Cdn-Cache-Control", "max-age=120"}, "stored; ttl=120", ""},
		{"Firstrender-Cache-Control wins over CDN-Cache-Control", []string{"Cache-Control", "max-age=10", "Cdn-Cache-Control", "no-store", "Firstrender-Cache-Control", "max-age=30"}, "stored; ttl=30", ""},
		{"a targeted no-store is obeyed", []string{"Cache-Control", "public, max-age=600", "Cdn-Cache-Control", "no-store"}, "detail=no-store", "stored"},
		{"Expires is ignored under a targeted field", []string{"Expires", "Thu, 01 Jan 2099 00:00:00 GMT", "Cdn-Cache-Control", "max-age=60"}, "stored; ttl=60", ""},
		{"an invalid targeted field falls back to Cache-Control", []string{"Cache-Control", "max-age=40", "Cdn-Cache-Control", "max-age=\"x, MAX-AGE=1"}, "stored; ttl=40", ""},
		{"Surrogate-Control no-store", []string{"Cache-Control", "public, max-age=600", "Surrogate-Control", "no-store"}, "detail=no-store", "stored"},
		{"Surrogate-Control max-age", []string{"Cache-Control", "max-age=10", "Surrogate-Control", "max-age=90+30"}, "stored; ttl=90", ""},
		{"Surrogate-Control keeps Cache-Control private", []string{"Cache-Control", "private", "Surrogate-Control", "max-age=90"}, "detail=private", "stored"},
		{"Surrogate-Control for another surrogate is ignored", []string{"Cache-Control", "max-age=10", "Surrogate-Control", "no-store;other"}, "stored; ttl=10", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
				for i := 0; i+1 < len(c.hdr); i += 2 {
					w.Header().Set(c.hdr[i], c.hdr[i+1])
				}
				w.Write([]byte("page"))
			}, nil)
			for i := range 2 {
				got := r.Get("/")
				if i == 0 && !match(cs(t, got), c.wantCS) {
					t.Errorf("Cache-Status %q, want %s", got.Header.Get("Cache-Status"), c.wantCS)
				}
				if i == 0 && c.notCS != "" && match(cs(t, got), c.notCS) {
					t.Errorf("Cache-Status %q, want no %s", got.Header.Get("Cache-Status"), c.notCS)
				}
				for _, k := range targetedFields {
					if v := got.Header.Get(k); v != "" {
						t.Errorf("response %d: client received %s: %q", i, k, v)
					}
				}
			}
		})
	}
}

func TestSFDictToCacheControl(t *testing.T) {
	for _, c := range []struct {
		in, want string
		ok       bool
	}{
		{"max-age=60", "max-age=60", true},
		{"max-age=60, must-revalidate", "max-age=60, must-revalidate", true},
		{"no-store=?1, private=?0", "no-store", true},
		{`private="x", max-age=1;a=b`, `private="x", max-age=1`, true},
		{"Max-Age=60", "", false},
		{"max-age=60,", "", false},
		{"max-age=", "", false},
		{`a="unterminated`, "", false},
		// RFC 8941 §4.2.2: a repeated key keeps its place, takes the last value.
		{"max-age=60, no-store, max-age=5", "max-age=5, no-store", true},
		{"no-store, max-age=5, no-store=?0", "max-age=5", true},
		// RFC 9213 §2.1: an integer directive of another type is not consumed.
		{`max-age="10000"`, "", true},
		{"max-age=3600.5, no-cache", "no-cache", true},
		{"s-maxage=-1, stale-if-error=x, stale-while-revalidate=?1", "", true},
	} {
		got, ok := sfDictToCacheControl(c.in)
		if ok != c.ok || got != c.want {
			t.Errorf("sfDictToCacheControl(%q) = %q, %v; want %q, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func FuzzTargeted(f *testing.F) {
	for _, s := range []string{"max-age=60", "no-store", `a="b", c=?1;d`, "max-age=1+2", ":YWJj:", "-1.5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if cc, ok := sfDictToCacheControl(s); ok {
			if cc2, ok2 := sfDictToCacheControl(cc); cc != "" && (!ok2 || cc2 != cc) {
				t.Fatalf("%q -> %q -> %q, %v: not stable", s, cc, cc2, ok2)
			}
		}
		parseSurrogateControl(s)
		targetedDirectives(http.Header{"Cdn-Cache-Control": {s}, "Surrogate-Control": {s}})
	})
}

// TestPoison_VaryPerUser: a response that varies on Cookie or
// Authorization is per-user and not stored, and the variants of one URL
// are bounded.
func TestPoison_VaryPerUser(t *testing.T) {
	for _, v := range []string{"Cookie", "Authorization", "accept-encoding, cookie"} {
		t.Run("Vary: "+v, func(t *testing.T) {
			r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
				w.Header().Set("Cache-Control", "public, max-age=600")
				w.Header().Set("Vary", v)
				w.Write([]byte("page"))
			}, nil)
			got := r.Get("/")
			if m := cs(t, got); match(m, "stored") || !(match(m, "detail=vary-cookie") || match(m, "detail=vary-authorization")) {
				t.Errorf("Vary: %s: Cache-Status %q, want detail=vary-cookie or vary-authorization, not stored", v, got.Header.Get("Cache-Status"))
			}
		})
	}
	t.Run("MaxVariants", func(t *testing.T) {
		r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
			w.Header().Set("Cache-Control", "public, max-age=600")
			w.Header().Set("Vary", "X-Theme")
			w.Write([]byte("theme " + req.Header.Get("X-Theme")))
		}, func(c *Config) { c.MaxVariants = 3 })
		for i := range 5 {
			got := r.Get("/", "X-Theme", strconv.Itoa(i))
			stored := match(cs(t, got), "stored")
			if want := i < 3; stored != want {
				t.Errorf("variant %d: Cache-Status %q, stored %v, want %v", i, got.Header.Get("Cache-Status"), stored, want)
			}
			if i >= 3 && !match(cs(t, got), "detail=max-variants") {
				t.Errorf("variant %d: Cache-Status %q, want detail=max-variants", i, got.Header.Get("Cache-Status"))
			}
		}
		if got := r.Get("/", "X-Theme", "1"); !match(cs(t, got), "hit") || got.Body != "theme 1" {
			t.Errorf("a stored variant: %q %q, want a hit", got.Body, got.Header.Get("Cache-Status"))
		}
	})
	httpcachetest.Poison(t, build(nil), []httpcachetest.PoisonCase{
		{Name: "Vary: Cookie from a cookie request", Path: "/", A: []string{"Cookie", "sid=alice", httpcachetest.EchoHeader, "Vary: Cookie"}},
	})
}

// TestTargetedFieldsNeverReachClients_NotModified: the fields that target
// this cache are left out of every answer from a stored entry, a 304 to
// a conditional request included, from the store and from memory.
func TestTargetedFieldsNeverReachClients_NotModified(t *testing.T) {
	r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		w.Header().Set("Cdn-Cache-Control", "max-age=300")
		w.Header().Set("Surrogate-Control", "max-age=300")
		w.Header().Set("Firstrender-Cache-Control", "max-age=300")
		w.Header().Set("Etag", `"v1"`)
		w.Write([]byte("page"))
	}, nil)
	r.Get("/")
	r.Settle()
	for i := range 4 { // from the store, then from memory (admitted on the second read)
		for _, cond := range [][]string{nil, {"If-None-Match", `"v1"`}} {
			got := r.Get("/", cond...)
			want := http.StatusOK
			if cond != nil {
				want = http.StatusNotModified
			}
			if got.Status != want || !match(cs(t, got), "hit") {
				t.Fatalf("read %d %v: %d, Cache-Status %q; want %d, a hit", i, cond, got.Status, got.Header.Get("Cache-Status"), want)
			}
			for _, k := range targetedFields {
				if v := got.Header.Get(k); v != "" {
					t.Errorf("read %d %v: client received %s: %q", i, cond, k, v)
				}
			}
		}
	}
}

// TestIsTargetedField keeps isTargetedField and targetedFields in step.
func TestIsTargetedField(t *testing.T) {
	for _, k := range targetedFields {
		if !isTargetedField(k) {
			t.Errorf("isTargetedField(%q) = false", k)
		}
	}
	for _, k := range []string{"Cache-Control", "Etag", "cdn-cache-control", ""} {
		if isTargetedField(k) {
			t.Errorf("isTargetedField(%q) = true", k)
		}
	}
}
