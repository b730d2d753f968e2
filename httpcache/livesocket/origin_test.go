package livesocket

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func mustPolicy(t testing.TB, cfg OriginConfig) *OriginPolicy {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	p, err := NewOriginPolicy(cfg)
	if err != nil {
		t.Fatalf("NewOriginPolicy(%+v): %v", cfg, err)
	}
	return p
}

func reqWithOrigin(origins ...string) *http.Request {
	r := httptest.NewRequest("GET", "/live/websocket", nil)
	for _, o := range origins {
		r.Header.Add("Origin", o)
	}
	return r
}

func TestOriginPolicy_Check(t *testing.T) {
	t.Parallel()
	list := OriginConfig{Allowed: []string{
		"//example.com",
		"https://secure.test",
		"//*.wild.test",
		"https://port.test:8443",
		"http://plain.test",
		"//[::1]:4000",
	}}
	publicTrue := OriginConfig{PublicURL: "https://Example.com"}
	tests := []struct {
		name   string
		cfg    OriginConfig
		origin []string // nil = no header
		reason string   // "" = allowed
	}{
		{"listed host, any scheme", list, []string{"https://example.com"}, ""},
		{"listed host, other scheme", list, []string{"http://example.com"}, ""},
		{"listed host, any port", list, []string{"http://example.com:8080"}, ""},
		{"upper case origin is compared case-insensitively", list, []string{"HTTPS://EXAMPLE.COM"}, ""},
		{"scheme pins the default port", list, []string{"https://secure.test"}, ""},
		{"scheme pins the default port, explicit 443", list, []string{"https://secure.test:443"}, ""},
		{"scheme mismatch", list, []string{"http://secure.test"}, ReasonOriginDenied},
		{"port mismatch with scheme-only entry", list, []string{"https://secure.test:8443"}, ReasonOriginDenied},
		{"explicit port matches", list, []string{"https://port.test:8443"}, ""},
		{"explicit port mismatch", list, []string{"https://port.test:9443"}, ReasonOriginDenied},
		{"explicit port, default port sent", list, []string{"https://port.test"}, ReasonOriginDenied},
		{"http entry pins 80", list, []string{"http://plain.test:8080"}, ReasonOriginDenied},
		{"wildcard matches bare domain", list, []string{"https://wild.test"}, ""},
		{"wildcard matches subdomain", list, []string{"https://a.wild.test"}, ""},
		{"wildcard matches deep subdomain", list, []string{"https://a.b.wild.test"}, ""},
		{"wildcard needs a dot boundary (GHSA-p8f7-22gq-m7j9)", list, []string{"https://evilwild.test"}, ReasonOriginDenied},
		{"wildcard does not match suffix-appended host", list, []string{"https://wild.test.evil.test"}, ReasonOriginDenied},
		{"suffix-appended host is refused", list, []string{"https://example.com.evil.test"}, ReasonOriginDenied},
		{"prefix-appended host is refused", list, []string{"https://evilexample.com"}, ReasonOriginDenied},
		{"subdomain of non-wildcard entry is refused", list, []string{"https://a.example.com"}, ReasonOriginDenied},
		{"ipv6 literal with port", list, []string{"http://[::1]:4000"}, ""},
		{"ipv6 literal, other port", list, []string{"http://[::1]:4001"}, ReasonOriginDenied},
		{"null origin is refused", list, []string{"null"}, ReasonNullOrigin},
		{"NULL origin is refused", list, []string{"NULL"}, ReasonNullOrigin},
		{"no origin is refused by default", list, nil, ReasonNoOrigin},
		{"two origin headers are refused", list, []string{"https://example.com", "https://example.com"}, ReasonManyOrigins},
		{"trailing dot is malformed", list, []string{"https://example.com."}, ReasonBadOrigin},
		{"userinfo is malformed", list, []string{"https://user@example.com"}, ReasonBadOrigin},
		{"userinfo hiding another host is malformed", list, []string{"https://example.com@evil.test"}, ReasonBadOrigin},
		{"path is malformed", list, []string{"https://example.com/"}, ReasonBadOrigin},
		{"no scheme is malformed", list, []string{"example.com"}, ReasonBadOrigin},
		{"empty origin is malformed", list, []string{""}, ReasonBadOrigin},
		{"bad port is malformed", list, []string{"https://example.com:99999"}, ReasonBadOrigin},
		{"empty port is malformed", list, []string{"https://example.com:"}, ReasonBadOrigin},
		{"wildcard in request is malformed", list, []string{"https://*.wild.test"}, ReasonBadOrigin},
		{"percent-encoded host is malformed", list, []string{"https://example%2ecom"}, ReasonBadOrigin},
		{"backslash is malformed", list, []string{"https://evil.test\\example.com"}, ReasonBadOrigin},
		{"true: public host", publicTrue, []string{"https://example.com"}, ""},
		{"true: public origin with its default port spelled out", publicTrue, []string{"https://example.com:443"}, ""},
		{"true: public host, other port", publicTrue, []string{"https://example.com:4000"}, ReasonOriginDenied},
		{"true: public host, other scheme", publicTrue, []string{"http://example.com"}, ReasonOriginDenied},
		{"true: public host, ws scheme", publicTrue, []string{"ws://example.com"}, ReasonOriginDenied},
		{"true: public host, wss scheme", publicTrue, []string{"wss://example.com"}, ReasonOriginDenied},
		{"true: public host, http on 443", publicTrue, []string{"http://example.com:443"}, ReasonOriginDenied},
		{"true: localhost is not the public origin", publicTrue, []string{"http://localhost:8080"}, ReasonOriginDenied},
		{"true: loopback public URL allows its aliases", OriginConfig{PublicURL: "http://localhost:4000"}, []string{"http://127.0.0.1:4000"}, ""},
		{"true: loopback public URL, ipv6 alias", OriginConfig{PublicURL: "http://localhost:4000"}, []string{"http://[::1]:4000"}, ""},
		{"true: loopback public URL, other port", OriginConfig{PublicURL: "http://localhost:4000"}, []string{"http://localhost:4001"}, ReasonOriginDenied},
		{"true: loopback public URL, other scheme", OriginConfig{PublicURL: "http://localhost:4000"}, []string{"https://localhost:4000"}, ReasonOriginDenied},
		{"true: other host", publicTrue, []string{"https://other.test"}, ReasonOriginDenied},
		{"true: subdomain of public host", publicTrue, []string{"https://www.example.com"}, ReasonOriginDenied},
		{"true without public URL: localhost only", OriginConfig{}, []string{"http://localhost:1"}, ""},
		{"true without public URL: not ws", OriginConfig{}, []string{"ws://localhost:1"}, ReasonOriginDenied},
		{"true without public URL: other", OriginConfig{}, []string{"https://example.com"}, ReasonOriginDenied},
		{"check off: any origin", OriginConfig{CheckOff: true}, []string{"https://evil.test"}, ""},
		{"check off: null still refused", OriginConfig{CheckOff: true}, []string{"null"}, ReasonNullOrigin},
		{"check off: no origin still refused", OriginConfig{CheckOff: true}, nil, ReasonNoOrigin},
		{"allow missing: no origin allowed", OriginConfig{AllowMissing: true}, nil, ""},
		{"allow missing: null still refused", OriginConfig{AllowMissing: true}, []string{"null"}, ReasonNullOrigin},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustPolicy(t, tt.cfg)
			err := p.Check(reqWithOrigin(tt.origin...))
			got := ""
			if err != nil {
				var oe *OriginError
				if !errors.As(err, &oe) {
					t.Fatalf("Check(%q) = %v, want *OriginError", tt.origin, err)
				}
				got = oe.Reason
			}
			if got != tt.reason {
				t.Errorf("Check(Origin %q) reason = %q (err %v), want %q", tt.origin, got, err, tt.reason)
			}
		})
	}
}

func TestNewOriginPolicy_BadEntryNamesItself(t *testing.T) {
	t.Parallel()
	bad := []string{
		"example.com",         // no //
		"https:/example.com",  // one slash
		"//",                  // no host
		"//example.com/path",  // path
		"//user@example.com",  // userinfo
		"//example.com:0",     // port 0
		"//example.com:http",  // non-numeric port
		"//ex*ample.com",      // star inside
		"//*.",                // empty wildcard
		"//a..b",              // empty label
		"ht tp://example.com", // bad scheme
		"//[::1",              // unterminated
	}
	for _, entry := range bad {
		t.Run(entry, func(t *testing.T) {
			_, err := NewOriginPolicy(OriginConfig{Allowed: []string{"//ok.test", entry}, Logger: quietLogger()})
			if err == nil {
				t.Fatalf("NewOriginPolicy(%q) = nil error, want an error naming it", entry)
			}
			if !strings.Contains(err.Error(), `"`+entry+`"`) && !strings.Contains(err.Error(), entry) {
				t.Errorf("NewOriginPolicy(%q) error %q does not name the entry", entry, err)
			}
		})
	}
	if _, err := NewOriginPolicy(OriginConfig{Allowed: []string{}, Logger: quietLogger()}); err == nil {
		t.Error("empty list: got nil error, want one")
	}
	if _, err := NewOriginPolicy(OriginConfig{CheckOff: true, Allowed: []string{"//a.test"}, Logger: quietLogger()}); err == nil {
		t.Error("CheckOff with a list: got nil error, want one")
	}
	if _, err := NewOriginPolicy(OriginConfig{PublicURL: "ftp://x", Logger: quietLogger()}); err == nil {
		t.Error("bad public URL: got nil error, want one")
	}
}

func TestNewOriginPolicy_CheckOffWarns(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	if _, err := NewOriginPolicy(OriginConfig{CheckOff: true, AllowMissing: true, Logger: slog.New(slog.NewTextHandler(&buf, nil))}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "origin check is OFF") {
		t.Errorf("log = %q, want a warning that the origin check is off", out)
	}
	if !strings.Contains(out, "without an Origin header") {
		t.Errorf("log = %q, want the missing-Origin opt-in logged", out)
	}
}

func TestParseCheckOrigin(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		in       []string
		allowOff bool
		wantList []string
		wantOff  bool
		wantErr  bool
	}{
		{"nil is true", nil, false, nil, false, false},
		{"true", []string{"true"}, false, nil, false, false},
		{"false needs opt-in", []string{"false"}, false, nil, false, true},
		{"false with opt-in", []string{"false"}, true, nil, true, false},
		{"list, comma separated", []string{"//a.test, https://b.test"}, false, []string{"//a.test", "https://b.test"}, false, false},
		{"true mixed with list", []string{"true", "//a.test"}, false, nil, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := ParseCheckOrigin(tt.in, tt.allowOff)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseCheckOrigin(%q, %v) error = %v, want error %v", tt.in, tt.allowOff, err, tt.wantErr)
			}
			if strings.Join(cfg.Allowed, "|") != strings.Join(tt.wantList, "|") || cfg.CheckOff != tt.wantOff {
				t.Errorf("ParseCheckOrigin(%q) = %+v, want list %q off %v", tt.in, cfg, tt.wantList, tt.wantOff)
			}
		})
	}
}

func TestOriginPolicy_Handler(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	p := mustPolicy(t, OriginConfig{Allowed: []string{"//ok.test"}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	var refused []string
	p.onRefuse = func(r string) { refused = append(refused, r) }
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(299) })
	h := p.Handler(next)

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, reqWithOrigin("https://ok.test"))
	if rec.Code != 299 {
		t.Errorf("allowed origin: status = %d, want 299 (next)", rec.Code)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, reqWithOrigin("https://evil.test"))
	if rec.Code != http.StatusForbidden {
		t.Errorf("refused origin: status = %d, want 403", rec.Code)
	}
	if body := rec.Body.String(); len(body) == 0 || len(body) > 200 {
		t.Errorf("refused origin: body = %q, want a short text", body)
	}
	if !strings.Contains(logs.String(), "https://evil.test") {
		t.Errorf("log = %q, want the offending origin", logs.String())
	}
	if len(refused) != 1 || refused[0] != ReasonOriginDenied {
		t.Errorf("refusals counted = %q, want [%q]", refused, ReasonOriginDenied)
	}
}

func FuzzParseOrigin(f *testing.F) {
	for _, s := range []string{"https://example.com", "http://[::1]:4000", "null", "https://a@b", "https://example.com.", "HTTPS://X:1", "//x", "https://x:"} {
		f.Add(s)
	}
	p, _ := NewOriginPolicy(OriginConfig{Allowed: []string{"//*.example.com", "https://x.test:8443"}, Logger: quietLogger()})
	f.Fuzz(func(t *testing.T, s string) {
		o, ok := parseOrigin(s)
		if ok {
			if o.host == "" || strings.ContainsAny(o.host, "@/?# ") || o.host != strings.ToLower(o.host) {
				t.Fatalf("parseOrigin(%q) = %+v: bad host accepted", s, o)
			}
		}
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Origin", s)
		if err := p.Check(r); err == nil && !ok {
			t.Fatalf("Check allowed unparsable origin %q", s)
		}
	})
}

func FuzzParseRule(f *testing.F) {
	for _, s := range []string{"//example.com", "https://example.com", "//*.example.com", "https://example.com:8443", "x", "//[::1]:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := parseRule(s)
		if err == nil && (r.host == "" || strings.Contains(r.host, "*")) {
			t.Fatalf("parseRule(%q) = %+v: bad host accepted", s, r)
		}
	})
}
