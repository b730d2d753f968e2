package httpcache

import (
	"strings"
	"testing"
	"time"

	"github.com/firstrender/firstrender/httpcache/httpcachetest"
)

// build returns a httpcachetest build function for a Proxy with mod
// applied to its Config (nil: defaults).
func build(mod func(*Config)) func(httpcachetest.Env) (*Proxy, error) {
	return func(env httpcachetest.Env) (*Proxy, error) {
		cfg := Config{Upstream: env.Upstream, Store: env.Store, Now: env.Clock.Now, Logger: env.Logger}
		if mod != nil {
			mod(&cfg)
		}
		return New(cfg)
	}
}

// TestPoison_PerUserRequests: a logged-in visitor's request for a dynamic
// route with a static-looking suffix (web cache deception), or any request
// with Authorization or a cookie, never leaves its page for the next
// anonymous visitor, whatever the response says (Echo answers public,
// max-age=600).
func TestPoison_PerUserRequests(t *testing.T) {
	httpcachetest.Poison(t, build(nil), []httpcachetest.PoisonCase{
		{Name: "session cookie on a .css route", Path: "/users/me.css", A: []string{"Cookie", "_app_key=alice"}},
		{Name: "session cookie on a .js route", Path: "/account.js", A: []string{"Cookie", "_app_key=alice"}},
		{Name: "any cookie", Path: "/", A: []string{"Cookie", "theme=dark"}},
		{Name: "Authorization with a public response", Path: "/api/me", A: []string{"Authorization", "Bearer alice"}},
		{Name: "empty Authorization", Path: "/", A: []string{"Authorization", ""}},
		{Name: "cookie in a second field line", Path: "/p", A: []string{"Cookie", "", "Cookie", "sid=alice"}},
		{Name: "X-HTTP-Method-Override", Path: "/item", A: []string{"X-Http-Method-Override", "DELETE"}},
		{Name: "X-HTTP-Method", Path: "/item", A: []string{"X-Http-Method", "PUT"}},
		{Name: "X-Method-Override", Path: "/item", A: []string{"X-Method-Override", "POST"}},
	})
}

// TestPerUser_NoLookup checks that a per-user request is not answered
// from the cache either: it bypasses (detail= says why) and reaches the
// origin with its credentials even when an anonymous copy is stored.
func TestPerUser_NoLookup(t *testing.T) {
	for _, c := range []struct{ name, header, value, detail string }{
		{"cookie", "Cookie", "sid=alice", "cookie"},
		{"authorization", "Authorization", "Basic YWxpY2U6eA==", "authorization"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t, httpcachetest.Echo, nil)
			r.Get("/page")
			if got := r.Get("/page"); !match(cs(t, got), "hit") {
				t.Fatalf("anonymous copy not stored: %q", got.Header.Get("Cache-Status"))
			}
			got := r.Get("/page", c.header, c.value)
			if !match(cs(t, got), "fwd=bypass; detail="+c.detail, "stored", "hit") {
				t.Errorf("%s: Cache-Status %q, want fwd=bypass; detail=%s", c.header, got.Header.Get("Cache-Status"), c.detail)
			}
			if !strings.Contains(got.Body, c.header+": "+c.value) {
				t.Errorf("%s: origin did not see it; body %q", c.header, got.Body)
			}
			if n := r.Origin.Count(); n != 2 {
				t.Errorf("origin asked %d times, want 2", n)
			}
		})
	}
}

// TestPerUser_AllowedCookies checks the opt-ins: cookies declared
// irrelevant everywhere, the session cookie on public prefixes, and the
// AllowCookie hook. Allowed cookies are removed before forwarding and the
// request is served from the cache; one other cookie makes it per-user.
func TestPerUser_AllowedCookies(t *testing.T) {
	r := newRig(t, httpcachetest.Echo, func(c *Config) {
		c.IgnoreCookies = []string{"_ga*", "consent"}
		c.PublicPrefixes = []string{"/blog/"}
		c.SessionCookies = []string{"_app_key"}
		c.AllowCookie = func(path, name string) bool { return path == "/splice" && name == "_app_key" }
	})
	for _, c := range []struct {
		name, path, cookie string
		cached             bool
	}{
		{"analytics cookies are removed", "/", "_ga=1; _ga_XYZ=2; consent=yes", true},
		{"session cookie outside public prefixes is per-user", "/account", "_app_key=alice", false},
		{"session cookie under a public prefix is removed", "/blog/post", "_app_key=alice; _ga=1", true},
		{"public prefix does not allow other cookies", "/blog/post2", "_app_key=alice; sid=x", false},
		{"AllowCookie hook", "/splice", "_app_key=alice", true},
		{"a prefix pattern matches only its prefix", "/x", "_gb=1", false},
		{"empty cookie field carries no cookie", "/empty", "", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := r.Get(c.path, "Cookie", c.cookie)
			seen := r.Origin.LastRequest().Header.Get("Cookie")
			if c.cached {
				if seen != "" {
					t.Errorf("origin saw Cookie %q, want none", seen)
				}
				if again := r.Get(c.path, "Cookie", c.cookie); !match(cs(t, again), "hit") {
					t.Errorf("second request: Cache-Status %q, want hit", again.Header.Get("Cache-Status"))
				}
			} else {
				if seen != c.cookie {
					t.Errorf("origin saw Cookie %q, want %q (forwarded as sent)", seen, c.cookie)
				}
				if !match(cs(t, got), "fwd=bypass; detail=cookie") {
					t.Errorf("Cache-Status %q, want fwd=bypass; detail=cookie", got.Header.Get("Cache-Status"))
				}
			}
		})
	}
}

// TestPerUser_Config checks that half-set cookie options are refused.
func TestPerUser_Config(t *testing.T) {
	r := newRig(t, httpcachetest.Echo, nil)
	for _, c := range []struct {
		name string
		mod  func(*Config)
	}{
		{"public prefixes without a session cookie", func(c *Config) { c.PublicPrefixes = []string{"/"} }},
		{"session cookie without public prefixes", func(c *Config) { c.SessionCookies = []string{"_k"} }},
		{"bad cookie pattern", func(c *Config) { c.IgnoreCookies = []string{"*"} }},
		{"relative public prefix", func(c *Config) { c.PublicPrefixes, c.SessionCookies = []string{"blog"}, []string{"_k"} }},
		{"success status in StoreErrors", func(c *Config) { c.StoreErrors = map[int]time.Duration{200: time.Minute} }},
		{"StoreErrors without freshness", func(c *Config) { c.StoreErrors = map[int]time.Duration{404: 0} }},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := Config{Upstream: mustURL(t, r.Origin.URL), Store: r.Store}
			c.mod(&cfg)
			if _, err := New(cfg); err == nil {
				t.Errorf("New accepted %s", c.name)
			}
		})
	}
}
