package e2e

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/firstrender/firstrender/httpcache/demo"
	"github.com/firstrender/firstrender/httpcache/liveview"
	"github.com/firstrender/firstrender/httpcache/liveview/plugsession"
	"github.com/firstrender/firstrender/httpcache/server"
)

// spliceStack is the demo origin in phx.new mode behind a whole
// firstrender (httpcache/server) with the session splice configured.
type spliceStack struct {
	srv     *server.Server
	base    string // the public URL the browser loads
	renders atomic.Int64
	codec   *plugsession.Codec
}

func newSpliceStack(t *testing.T, nodeModules string) *spliceStack {
	t.Helper()
	s := &spliceStack{}
	app := demo.New(demo.Config{PhxNew: true, NodeModules: nodeModules, Tick: 200 * time.Millisecond})
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" && r.Method == http.MethodGet {
			s.renders.Add(1)
		}
		app.ServeHTTP(w, r)
	}))
	t.Cleanup(origin.Close)
	session := plugsession.Config{SecretKeyBase: demo.DefaultSecretKeyBase, SigningSalt: demo.DefaultSessionSigningSalt}
	var err error
	if s.codec, err = plugsession.NewCodec(session); err != nil {
		t.Fatal(err)
	}
	splicer, err := liveview.NewSplicer(liveview.SpliceConfig{Session: session, CookieName: demo.DefaultSessionCookie, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.base = "http://" + ln.Addr().String()
	up, _ := url.Parse(origin.URL)
	pub, _ := url.Parse(s.base)
	s.srv, err = server.New(server.Config{
		PublicListener:  ln,
		Listen:          ln.Addr().String(),
		NoAdmin:         true,
		Upstream:        up,
		PublicURL:       pub,
		DB:              filepath.Join(t.TempDir(), "splice.db"),
		Logger:          quiet(),
		ShutdownTimeout: 5 * time.Second,
		LiveView:        liveview.Config{Splice: splicer},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.srv.Run(ctx) }()
	select {
	case <-s.srv.Ready():
	case err := <-done:
		t.Fatalf("server.Run: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Error("server did not shut down in 15s")
		}
	})
	return s
}

func (s *spliceStack) stored(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.srv.Proxy().Wait(ctx); err != nil {
		t.Fatal(err)
	}
}

// sessionCookie returns the tab's session cookie value (HttpOnly, so read
// through DevTools, not document.cookie).
func (tb *tab) sessionCookie(t *testing.T, base string) string {
	t.Helper()
	var r struct {
		Cookies []struct {
			Name, Value string
			HTTPOnly    bool `json:"httpOnly"`
		} `json:"cookies"`
	}
	if err := tb.b.call(tb.session, "Network.getCookies", map[string]any{"urls": []string{base + "/"}}, &r); err != nil {
		t.Fatal(err)
	}
	for _, c := range r.Cookies {
		if c.Name == demo.DefaultSessionCookie {
			if !c.HTTPOnly {
				t.Errorf("session cookie is not HttpOnly as the origin set it")
			}
			return c.Value
		}
	}
	return ""
}

// pageToken returns the csrf-token meta of the tab's page.
func (tb *tab) pageToken(t *testing.T) string {
	t.Helper()
	var v string
	if err := tb.eval(`(document.querySelector("meta[name='csrf-token']") || {content: ""}).content`, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// checkBound asserts the tab's page token is a masking of the token in
// the tab's own session cookie.
func (s *spliceStack) checkBound(t *testing.T, who string, tb *tab, cookie string) {
	t.Helper()
	sess, err := s.codec.Decode(cookie)
	if err != nil {
		t.Fatalf("%s: the app cannot load its session cookie: %v", who, err)
	}
	state, ok := plugsession.SessionToken(sess)
	if !ok || !plugsession.ValidMasked(state, tb.pageToken(t)) {
		t.Fatalf("%s: page token is not bound to its own session cookie", who)
	}
}

func connected(v string) bool { p := parseState(v); return p.Connected && p.Live }

// TestBrowser_SessionSplice: an unmodified-phx.new-like origin (session
// cookie, CSRF meta bound to it, a socket that loads the cookie session
// and refuses joins without it, a form checked like protect_from_forgery)
// is cached once, and every browser gets its own session and token from
// the store and goes live.
func TestBrowser_SessionSplice(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped in -short")
	}
	nm := npmModules(t)
	browser := startChromium(t)
	s := newSpliceStack(t, nm)

	// A: the first visitor; the origin renders and sets A's session.
	a := browser.newTab(t, s.base+"/")
	stA := parseState(a.waitFor(t, "LiveView connects in browser A", "("+stateJS+")", connected))
	if stA.Client != "phoenix_live_view" {
		t.Errorf("browser A used client %q, want the real phoenix_live_view npm client", stA.Client)
	}
	cookieA := a.sessionCookie(t, s.base)
	if cookieA == "" {
		t.Fatal("browser A has no session cookie")
	}
	s.checkBound(t, "A", a, cookieA)
	s.stored(t)
	if got := s.renders.Load(); got != 1 {
		t.Fatalf("origin rendered / %d times for A, want 1", got)
	}

	// B: a fresh browser context, served from the store with a session
	// of its own; its socket loads that session and the join succeeds.
	b := browser.newTab(t, s.base+"/")
	b.waitFor(t, "LiveView connects in browser B from the stored page", "("+stateJS+")", connected)
	if got := s.renders.Load(); got != 1 {
		t.Errorf("origin rendered / %d times after B, want 1 (B served from the store)", got)
	}
	cookieB := b.sessionCookie(t, s.base)
	switch {
	case cookieB == "":
		t.Fatal("browser B has no session cookie")
	case cookieB == cookieA:
		t.Fatal("browser B holds A's session cookie")
	}
	s.checkBound(t, "B", b, cookieB)
	if b.pageToken(t) == a.pageToken(t) {
		t.Error("B's page token is A's")
	}

	// B posts the page's form with its token: protect_from_forgery passes.
	if err := b.eval(`(document.getElementById("contact").submit(), true)`, new(bool)); err != nil {
		t.Fatal(err)
	}
	res := b.waitFor(t, "B's form post is answered", `String((document.getElementById("result") || {}).textContent || "")`, func(v string) bool { return v != "" })
	if !strings.HasPrefix(res, "accepted") {
		t.Errorf("B's form post: %q, want accepted by the origin's CSRF check", res)
	}

	// A comes back with its session: the stored page spliced with A's own
	// token, no new session; A goes live again.
	// (Navigated, not reloaded: a reload sends Cache-Control: max-age=0,
	// which makes any cache ask the origin. utm_source is not in the key.)
	if err := a.b.call(a.session, "Page.navigate", map[string]any{"url": s.base + "/?utm_source=return"}, nil); err != nil {
		t.Fatal(err)
	}
	a.waitFor(t, "browser A shows the page it navigated to", `location.search + " " + document.readyState`, func(v string) bool { return v == "?utm_source=return complete" })
	a.waitFor(t, "LiveView connects in browser A again", "("+stateJS+")", connected)
	if got := a.sessionCookie(t, s.base); got != cookieA {
		t.Errorf("A's session cookie changed on a hit: a visitor with a session must keep it")
	}
	s.checkBound(t, "A (reloaded)", a, cookieA)
	if got := s.renders.Load(); got != 1 {
		t.Errorf("origin rendered / %d times after A came back, want 1", got)
	}

	// What the browsers got, seen from a plain client (its own
	// Accept-Encoding variant: a miss, then a hit): a spliced hit.
	var resp *http.Response
	for range 2 {
		r, err := http.Get(s.base + "/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
		s.stored(t)
		resp = r
	}
	m := proxyStatus(t, resp.Header)
	if !m.has("hit") || m.param("detail") != "spliced" {
		t.Errorf("Cache-Status %s, want a hit with detail=spliced", m)
	}
	if cc := resp.Header.Get("Cache-Control"); !strings.HasPrefix(cc, "private") {
		t.Errorf("Cache-Control %q, want private", cc)
	}
}
