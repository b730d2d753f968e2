package e2e

import (
	"net/http"
	"strings"
	"testing"

	"github.com/firstrender/firstrender/httpcache"
)

// cacheStatus is one parsed Cache-Status list member (RFC 9211 §2): the
// cache's name and its parameters, bare ones ("hit", "stored") as "?1".
// Tests compare parameters, never substrings ("ttl=60" is in "ttl=600").
type cacheStatus struct {
	raw    string
	name   string
	params map[string]string
}

func (c cacheStatus) has(param string) bool { return c.params[param] == "?1" }
func (c cacheStatus) String() string        { return "`" + c.raw + "`" }

// proxyStatus returns the proxy's own member of h's Cache-Status (the last
// one named httpcache.CacheName), failing t when there is none.
func proxyStatus(t testing.TB, h http.Header) cacheStatus {
	t.Helper()
	ms := parseCacheStatus(strings.Join(h.Values("Cache-Status"), ", "))
	for i := len(ms) - 1; i >= 0; i-- {
		if ms[i].name == httpcache.CacheName {
			return ms[i]
		}
	}
	t.Fatalf("Cache-Status %q has no %s member", h.Values("Cache-Status"), httpcache.CacheName)
	return cacheStatus{}
}

// parseCacheStatus splits a Cache-Status field value into its members:
// commas and semicolons inside sf-strings do not split, and quoted values
// are unescaped.
func parseCacheStatus(v string) []cacheStatus {
	var out []cacheStatus
	for _, m := range splitOutsideQuotes(v, ',') {
		parts := splitOutsideQuotes(m, ';')
		c := cacheStatus{raw: strings.TrimSpace(m), name: unquote(strings.TrimSpace(parts[0])), params: map[string]string{}}
		for _, p := range parts[1:] {
			k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
			if !ok {
				val = "?1"
			}
			c.params[k] = unquote(val)
		}
		out = append(out, c)
	}
	return out
}

func splitOutsideQuotes(s string, sep byte) []string {
	var out []string
	start, quoted := 0, false
	for i := 0; i < len(s); i++ {
		switch {
		case quoted && s[i] == '\\':
			i++
		case s[i] == '"':
			quoted = !quoted
		case !quoted && s[i] == sep:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func unquote(s string) string {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return s
	}
	var b strings.Builder
	for i := 1; i < len(s)-1; i++ {
		if s[i] == '\\' && i+1 < len(s)-1 {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func TestParseCacheStatus(t *testing.T) {
	t.Parallel()
	got := parseCacheStatus(`origin; fwd=uri-miss, firstrender; hit; ttl=600; detail="a, b; c"`)
	if len(got) != 2 || got[0].name != "origin" || got[1].name != "firstrender" {
		t.Fatalf("members = %+v, want origin then firstrender", got)
	}
	if p := got[1].params; p["hit"] != "?1" || p["ttl"] != "600" || p["detail"] != "a, b; c" {
		t.Errorf("firstrender params = %v", p)
	}
}
