package e2e

import (
	"net/http"
	"testing"

	"github.com/firstrender/firstrender/httpcache"
	"github.com/firstrender/firstrender/httpcache/httpcachetest"
)

// cacheStatus is the proxy's own Cache-Status member, parsed by
// httpcachetest (parameters compared by value, never by substring).
type cacheStatus struct{ httpcachetest.Member }

// has reports whether the bare parameter p ("hit", "stored") is set.
func (c cacheStatus) has(p string) bool { v, ok := c.Get(p); return ok && v == "?1" }

// param returns the value of parameter p ("" when absent).
func (c cacheStatus) param(p string) string { v, _ := c.Get(p); return v }

// proxyStatus returns the proxy's own member of h's Cache-Status (the last
// one named httpcache.CacheName), failing t when there is none.
func proxyStatus(t testing.TB, h http.Header) cacheStatus {
	t.Helper()
	m, err := httpcachetest.Find(h, httpcache.CacheName)
	if err != nil {
		t.Fatalf("Cache-Status %q: %v", h.Values("Cache-Status"), err)
	}
	return cacheStatus{m}
}
