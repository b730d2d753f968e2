package demo

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/firstrender/firstrender/httpcache/liveview/erlterm"
	"github.com/firstrender/firstrender/httpcache/liveview/phxtoken"
)

var fixedNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func newTestOrigin() http.Handler {
	return New(Config{Now: func() time.Time { return fixedNow }})
}

func get(t *testing.T, h http.Handler, method, path string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	res := rec.Result()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

var attrRE = regexp.MustCompile(`data-phx-(session|static)="([^"]*)"`)

// tokens returns the data-phx-session and data-phx-static values.
func tokens(t *testing.T, body string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, m := range attrRE.FindAllStringSubmatch(body, -1) {
		out[m[1]] = m[2]
	}
	if len(out) != 2 {
		t.Fatalf("page has tokens %v, want data-phx-session and data-phx-static", out)
	}
	return out
}

// verify checks a token's signature under the demo secret and parses it.
func verify(t *testing.T, tok string) *phxtoken.Token {
	t.Helper()
	signer, err := phxtoken.NewSigner(DefaultSecretKeyBase, DefaultSigningSalt)
	if err != nil {
		t.Fatal(err)
	}
	if got := signer.Verify(tok); got != phxtoken.Valid {
		t.Fatalf("token %q: signature %v under the demo secret, want valid", tok, got)
	}
	if !strings.HasPrefix(tok, "SFMyNTY.") {
		t.Fatalf("token %q: want the HS256 form SFMyNTY.payload.signature", tok)
	}
	pt, err := phxtoken.ParseToken(tok)
	if err != nil {
		t.Fatalf("ParseToken(%q): %v", tok, err)
	}
	return pt
}

func TestHome_PublicFirstRender(t *testing.T) {
	t.Parallel()
	res, body := get(t, newTestOrigin(), "GET", "/")
	if res.StatusCode != 200 {
		t.Fatalf("GET / status = %d, want 200", res.StatusCode)
	}
	checks := []struct{ name, got, want string }{
		{"Cache-Control", res.Header.Get("Cache-Control"), "public, s-maxage=60"},
		{"Set-Cookie", res.Header.Get("Set-Cookie"), ""},
		{"Content-Type", res.Header.Get("Content-Type"), "text/html; charset=utf-8"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("GET / %s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if strings.Contains(body, "csrf-token") {
		t.Errorf("GET / carries a CSRF meta tag; the public page must not")
	}
	if !regexp.MustCompile(`<div data-phx-main data-phx-session="SFMyNTY\.[^"]+" data-phx-static="SFMyNTY\.[^"]+" id="phx-[A-Za-z0-9_-]{16}">`).MatchString(body) {
		t.Errorf("GET / lacks a LiveView main div:\n%s", body)
	}
	for name, tok := range tokens(t, body) {
		pt := verify(t, tok)
		if !pt.SignedAt.Equal(fixedNow) || pt.MaxAge != phxtoken.DefaultTokenMaxAge {
			t.Errorf("%s token signed at %v with max age %v, want %v and %v", name, pt.SignedAt, pt.MaxAge, fixedNow, phxtoken.DefaultTokenMaxAge)
		}
	}
	session := verify(t, tokens(t, body)["session"])
	if m, ok := phxtoken.UserSession(session.Data); !ok || len(m) != 0 {
		t.Errorf("public page session = %v (ok %v), want an empty session map", m, ok)
	}
	if !strings.Contains(body, LiveScripts) {
		t.Errorf("GET / lacks the live scripts, so it cannot go live")
	}
}

func TestHome_TokensSignedPerRequest(t *testing.T) {
	t.Parallel()
	now := fixedNow
	h := New(Config{Now: func() time.Time { return now }})
	_, a := get(t, h, "GET", "/")
	now = now.Add(time.Minute)
	_, b := get(t, h, "GET", "/")
	if tokens(t, a)["session"] == tokens(t, b)["session"] {
		t.Errorf("two renders a minute apart carry the same session token")
	}
	if !strings.Contains(b, "render #2") {
		t.Errorf("second render does not say render #2")
	}
}

func TestAccount_PerUser(t *testing.T) {
	t.Parallel()
	res, body := get(t, newTestOrigin(), "GET", "/account")
	if res.StatusCode != 200 {
		t.Fatalf("GET /account status = %d, want 200", res.StatusCode)
	}
	if c := res.Header.Get("Set-Cookie"); !strings.HasPrefix(c, "_demo_key=visitor-") || !strings.Contains(c, "HttpOnly") {
		t.Errorf("GET /account Set-Cookie = %q, want an HttpOnly _demo_key session cookie", c)
	}
	if !regexp.MustCompile(`<meta name="csrf-token" content="[A-Za-z0-9_-]{24}">`).MatchString(body) {
		t.Errorf("GET /account lacks a CSRF meta tag")
	}
	if cc := res.Header.Get("Cache-Control"); cc != "public, s-maxage=60" {
		t.Errorf("GET /account Cache-Control = %q, want the misconfigured public, s-maxage=60", cc)
	}
	session := verify(t, tokens(t, body)["session"])
	m, _ := phxtoken.UserSession(session.Data)
	if v, ok := m.Get(erlterm.Binary("user_id")); !ok || !strings.HasPrefix(string(v.(erlterm.Binary)), "visitor-") {
		t.Errorf("GET /account session map = %v, want a user_id", m)
	}
}

func TestRoutes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		method, path string
		status       int
		location     string
	}{
		{"HEAD", "/", 200, ""},
		{"POST", "/", 303, "/"},
		{"GET", "/nope", 404, ""},
		{"DELETE", "/account", 405, ""},
	}
	for _, tt := range tests {
		res, body := get(t, newTestOrigin(), tt.method, tt.path)
		if res.StatusCode != tt.status {
			t.Errorf("%s %s status = %d, want %d", tt.method, tt.path, res.StatusCode, tt.status)
		}
		if got := res.Header.Get("Location"); got != tt.location {
			t.Errorf("%s %s Location = %q, want %q", tt.method, tt.path, got, tt.location)
		}
		if tt.method == "HEAD" && (body != "" || res.Header.Get("Content-Length") == "") {
			t.Errorf("HEAD / body = %d bytes, Content-Length %q; want empty body and a length", len(body), res.Header.Get("Content-Length"))
		}
	}
}
