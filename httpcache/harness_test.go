package httpcache

import (
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/firstrender/firstrender/httpcache/hop"
	"github.com/firstrender/firstrender/httpcache/httpcachetest"
)

// rig is a Proxy in front of an origin (httpcachetest.Rig).
type rig = httpcachetest.Rig[*Proxy]

// newRig starts a Proxy with a quiet logger and the rig's fake clock in
// front of an origin serving h; mod, when non-nil, adjusts the Config
// before New.
func newRig(t testing.TB, h http.HandlerFunc, mod func(*Config)) *rig {
	t.Helper()
	return httpcachetest.New(t, h, func(env httpcachetest.Env) (*Proxy, error) {
		cfg := Config{Upstream: env.Upstream, Store: env.Store, Now: env.Clock.Now, Logger: env.Logger}
		if mod != nil {
			mod(&cfg)
		}
		return New(cfg)
	})
}

// cs returns the proxy's own member of res's Cache-Status, failing t when
// there is none.
func cs(t testing.TB, res httpcachetest.Result) httpcachetest.Member {
	t.Helper()
	return res.CacheStatus(t, CacheName)
}

// csOf is cs for a bare header.
func csOf(t testing.TB, h http.Header) httpcachetest.Member {
	t.Helper()
	m, err := httpcachetest.Find(h, CacheName)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// match reports whether the member m matches every parameter of want and
// none of not (httpcachetest.Member.Match and Lacks).
func match(m httpcachetest.Member, want string, not ...string) bool {
	if m.Match(want) != nil {
		return false
	}
	for _, n := range not {
		if m.Lacks(n) != nil {
			return false
		}
	}
	return true
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// countTo returns a hook for Proxy.onWait that closes done on its n-th call.
func countTo(n int64) (hook func(), done <-chan struct{}) {
	ch := make(chan struct{})
	var c atomic.Int64
	return func() {
		if c.Add(1) == n {
			close(ch)
		}
	}, ch
}

// within waits for ch or fails the test after d.
func within(t testing.TB, ch <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(d):
		t.Fatalf("timed out after %v waiting for %s", d, what)
	}
}

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// guardedServer serves h on a loopback listener as the server runs the
// proxy (hop.GuardListener, hop.ConnContext: hits are corked) until the
// test ends, and returns its address.
func guardedServer(t testing.TB, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, ConnContext: hop.ConnContext, Handler: h}
	go srv.Serve(hop.GuardListener(ln))
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}
