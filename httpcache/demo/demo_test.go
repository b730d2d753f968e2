package demo

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"
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

// verify checks a token the way Plug.Crypto.MessageVerifier.verify does and
// returns its payload.
func verify(t *testing.T, tok string) []byte {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 || parts[0] != "SFMyNTY" {
		t.Fatalf("token %q: want SFMyNTY.payload.signature", tok)
	}
	mac := hmac.New(sha256.New, DeriveKey(DefaultSecretKeyBase, DefaultSigningSalt))
	mac.Write([]byte(parts[0] + "." + parts[1]))
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || !hmac.Equal(sig, mac.Sum(nil)) {
		t.Fatalf("token %q: signature does not verify under the demo secret", tok)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("token payload: %v", err)
	}
	return payload
}

func TestHome_PublicFirstRender(t *testing.T) {
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
		p := verify(t, tok)
		// {data, signed_at_ms, 86400}: ends in SMALL_BIG_EXT signed_at, INTEGER_EXT 86400.
		ms := fixedNow.UnixMilli()
		wantTail := []byte{110, 6, 0, byte(ms), byte(ms >> 8), byte(ms >> 16), byte(ms >> 24), byte(ms >> 32), byte(ms >> 40), 98, 0, 1, 0x51, 0x80}
		if !bytes.HasSuffix(p, wantTail) {
			t.Errorf("%s payload tail = %v, want signed_at %d ms and max_age 86400 (%v)", name, p[len(p)-len(wantTail):], ms, wantTail)
		}
		if !bytes.HasPrefix(p, []byte{131, 104, 3, 104, 2, 97, 5, 116}) {
			t.Errorf("%s payload head = %v, want {{5, %%{...}}, _, _}", name, p[:8])
		}
	}
	session := verify(t, tokens(t, body)["session"])
	if !bytes.Contains(session, []byte{119, 7, 's', 'e', 's', 's', 'i', 'o', 'n', 116, 0, 0, 0, 0}) {
		t.Errorf("public page session token lacks session: %%{} (empty map)")
	}
}

func TestHome_TokensSignedPerRequest(t *testing.T) {
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
	if !bytes.Contains(session, []byte("user_id")) {
		t.Errorf("GET /account session token lacks a user_id in its session map")
	}
}

func TestRoutes(t *testing.T) {
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

func TestTermEncoding(t *testing.T) {
	tests := []struct {
		name string
		in   term
		want []byte
	}{
		{"small int", bigInt(5), []byte{97, 5}},
		{"int", bigInt(86400), []byte{98, 0, 1, 0x51, 0x80}},
		{"negative int", bigInt(-1), []byte{98, 0xff, 0xff, 0xff, 0xff}},
		{"big", bigInt(1 << 40), []byte{110, 6, 0, 0, 0, 0, 0, 0, 1}},
		{"atom", atom("nil"), []byte{119, 3, 'n', 'i', 'l'}},
		{"binary", bin("ab"), []byte{109, 0, 0, 0, 2, 'a', 'b'}},
		{"tuple", tuple{smallInt(1), nilList{}}, []byte{104, 2, 97, 1, 106}},
		{"empty map", emptyMap{}, []byte{116, 0, 0, 0, 0}},
		{"string map", binMap{{"k", "v"}}, []byte{116, 0, 0, 0, 1, 109, 0, 0, 0, 1, 'k', 109, 0, 0, 0, 1, 'v'}},
	}
	for _, tt := range tests {
		if got := tt.in.encode(nil); !bytes.Equal(got, tt.want) {
			t.Errorf("%s: encode(%v) = %v, want %v", tt.name, tt.in, got, tt.want)
		}
	}
}
