package liveview

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/firstrender/firstrender/httpcache"
	"github.com/firstrender/firstrender/httpcache/liveview/erlterm"
	"github.com/firstrender/firstrender/httpcache/liveview/phxtoken"
)

// seedSignedAt is when the seed's session/static tokens were signed.
var seedSignedAt = time.UnixMilli(1699299863630).UTC()

func readPage(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtures, "first_render.html"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const testSecret = "test-secret-key-base-0123456789-0123456789-0123456789-0123456789"

// pageWith returns the fixture page with its data-phx-session token
// replaced by a freshly signed one carrying session, and its static token
// by a fresh one, both signed at signedAt with maxAge.
func pageWith(t testing.TB, session erlterm.Map, signedAt time.Time, maxAge time.Duration) string {
	t.Helper()
	s, err := phxtoken.NewSigner(testSecret, "lv salt")
	if err != nil {
		t.Fatal(err)
	}
	sess, err := s.Sign(phxtoken.SessionData(phxtoken.Session{ID: "phx-F5UgOQKJJCK_shjD", View: "ShopWeb.ProductLive.Index", Router: "ShopWeb.Router", Session: session}), signedAt, maxAge)
	if err != nil {
		t.Fatal(err)
	}
	static, err := s.Sign(phxtoken.StaticData("phx-F5UgOQKJJCK_shjD"), signedAt, maxAge)
	if err != nil {
		t.Fatal(err)
	}
	page := readPage(t)
	page = strings.Replace(page, readToken(t, "session_atom_ext"), sess, 1)
	return strings.Replace(page, readToken(t, "static_atom_ext"), static, 1)
}

func newLinter(t testing.TB, cfg Config) *Linter {
	t.Helper()
	l, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	return l
}

func kinds(fs []Finding) string {
	var ks []string
	for _, f := range fs {
		ks = append(ks, string(f.Kind)+"="+f.Action.String())
	}
	return strings.Join(ks, ",")
}

func htmlHeader(kv ...string) http.Header {
	h := http.Header{"Content-Type": {"text/html; charset=utf-8"}}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func TestLint_SeedPage(t *testing.T) {
	t.Parallel()
	now := seedSignedAt.Add(time.Hour)
	l := newLinter(t, Config{Now: func() time.Time { return now }})
	res := &httpcache.Response{Status: 200, Header: htmlHeader(), Body: []byte(readPage(t))}
	v := l.Inspect(nil, res)
	if v.Refuse != "liveview-csrf-meta" {
		t.Errorf("Refuse = %q, want liveview-csrf-meta", v.Refuse)
	}
	wantExp := seedSignedAt.Add(phxtoken.DefaultLiveViewMaxAge)
	if !v.NotAfter.Equal(wantExp.Add(-DefaultMargin)) {
		t.Errorf("NotAfter = %v, want %v", v.NotAfter, wantExp.Add(-DefaultMargin))
	}
	if got, want := v.Annotations[AnnotationExpires], wantExp.Format(time.RFC3339); got != want {
		t.Errorf("%s = %q, want %q", AnnotationExpires, got, want)
	}
	wantTokens := phxtoken.TokenHash(readToken(t, "session_atom_ext")) + "," + phxtoken.TokenHash(readToken(t, "static_atom_ext"))
	if got := v.Annotations[phxtoken.AnnotationTokens]; got != wantTokens {
		t.Errorf("%s = %q, want %q", phxtoken.AnnotationTokens, got, wantTokens)
	}
	var fs []Finding
	if err := json.Unmarshal([]byte(v.Annotations[AnnotationFindings]), &fs); err != nil {
		t.Fatalf("findings annotation %q: %v", v.Annotations[AnnotationFindings], err)
	}
	if len(fs) != 1 || fs[0].Kind != KindCSRFMeta || fs[0].Severity != SeverityError || !strings.Contains(fs[0].Message, "csrf-token") {
		t.Errorf("findings = %+v, want one csrf-meta error", fs)
	}
}

func TestLint_Policies(t *testing.T) {
	t.Parallel()
	signed := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	now := signed.Add(time.Minute)
	page := pageWith(t, nil, signed, 86400*time.Second)
	noCSRF := strings.Replace(page, `<meta name="csrf-token" content="bWUDLRwDMXs-HgcyPQ0DGiMbJnUvVzoYNL2FEBGLu31v0iwgbFZiVkWt">`, "", 1)
	tests := []struct {
		name       string
		policy     map[Kind]Action
		header     http.Header
		body       string
		wantKinds  string
		wantRefuse string
		check      func(t *testing.T, res *httpcache.Response)
	}{
		{
			name: "csrf meta is refused by default", header: htmlHeader(), body: page,
			wantKinds: "csrf-meta=refuse", wantRefuse: "liveview-csrf-meta",
		},
		{
			name: "csrf meta strip blanks the content", policy: map[Kind]Action{KindCSRFMeta: Strip}, header: htmlHeader(), body: page,
			wantKinds: "csrf-meta=strip",
			check: func(t *testing.T, res *httpcache.Response) {
				if !strings.Contains(string(res.Body), `<meta name="csrf-token" content="">`) {
					t.Errorf("stored body has no blank csrf meta")
				}
				if got, want := len(res.Body), len(page)-len("bWUDLRwDMXs-HgcyPQ0DGiMbJnUvVzoYNL2FEBGLu31v0iwgbFZiVkWt"); got != want {
					t.Errorf("stored body length = %d, want %d", got, want)
				}
			},
		},
		{
			name: "csrf meta allow keeps the body", policy: map[Kind]Action{KindCSRFMeta: Allow}, header: htmlHeader(), body: page,
			wantKinds: "csrf-meta=allow",
			check: func(t *testing.T, res *httpcache.Response) {
				if string(res.Body) != page {
					t.Errorf("body changed under allow")
				}
			},
		},
		{
			name: "set-cookie is refused by default", header: htmlHeader("Set-Cookie", "_shop_key=abc; path=/"), body: noCSRF,
			wantKinds: "set-cookie=refuse", wantRefuse: "liveview-set-cookie",
		},
		{
			name: "set-cookie strip drops the header", policy: map[Kind]Action{KindSetCookie: Strip}, header: htmlHeader("Set-Cookie", "_shop_key=abc; path=/", "Set-Cookie", "b=1"), body: noCSRF,
			wantKinds: "set-cookie=strip",
			check: func(t *testing.T, res *httpcache.Response) {
				if got := res.Header.Values("Set-Cookie"); len(got) != 0 {
					t.Errorf("Set-Cookie = %q after strip, want none", got)
				}
			},
		},
		{
			name: "vary cookie is allowed by default", header: htmlHeader("Vary", "Accept-Encoding, Cookie"), body: noCSRF,
			wantKinds: "vary-cookie=allow",
			check: func(t *testing.T, res *httpcache.Response) {
				if got := res.Header.Get("Vary"); got != "Accept-Encoding, Cookie" {
					t.Errorf("Vary = %q, want unchanged", got)
				}
			},
		},
		{
			name: "vary cookie strip keeps the other names", policy: map[Kind]Action{KindVaryCookie: Strip}, header: htmlHeader("Vary", "Accept-Encoding, cookie"), body: noCSRF,
			wantKinds: "vary-cookie=strip",
			check: func(t *testing.T, res *httpcache.Response) {
				if got := res.Header.Get("Vary"); got != "Accept-Encoding" {
					t.Errorf("Vary = %q, want Accept-Encoding", got)
				}
			},
		},
		{
			name: "user session in data-phx-session is refused", header: htmlHeader(),
			body:      strings.Replace(pageWith(t, erlterm.Map{{Key: erlterm.Binary("user_id"), Value: erlterm.Int(42)}}, signed, 86400*time.Second), `content="bWUDLRwDMXs-HgcyPQ0DGiMbJnUvVzoYNL2FEBGLu31v0iwgbFZiVkWt"`, `content=""`, 1),
			wantKinds: "user-session=refuse", wantRefuse: "liveview-user-session",
		},
		{
			name: "user session allowed is only recorded", policy: map[Kind]Action{KindUserSession: Allow}, header: htmlHeader(),
			body:      strings.Replace(pageWith(t, erlterm.Map{{Key: erlterm.Binary("user_id"), Value: erlterm.Int(42)}}, signed, 86400*time.Second), `content="bWUDLRwDMXs-HgcyPQ0DGiMbJnUvVzoYNL2FEBGLu31v0iwgbFZiVkWt"`, `content=""`, 1),
			wantKinds: "user-session=allow",
		},
		{
			name: "unreadable data-phx-session is a bad token", header: htmlHeader(),
			body:      `<div data-phx-session="SFMyNTY.garbage!.sig" data-phx-static=""></div>`,
			wantKinds: "bad-token=refuse", wantRefuse: "liveview-bad-token",
		},
		{
			name: "encrypted token is reported", header: htmlHeader(),
			body:      `<div data-phx-static="QTI1NkdDTQ.a2V5.aXY.Y2lwaGVy.dGFn"></div>`,
			wantKinds: "encrypted-token=refuse", wantRefuse: "liveview-encrypted-token",
		},
		{
			name: "nested LiveView with empty session attribute is fine", header: htmlHeader(),
			body:      `<div data-phx-session="" data-phx-parent-id="phx-1"></div>`,
			wantKinds: "",
		},
		{
			name: "corrupt gzip HTML cannot be linted", header: htmlHeader("Content-Encoding", "gzip"), body: "\x1f\x8b...",
			wantKinds: "encoded-body=refuse", wantRefuse: "liveview-encoded-body",
		},
		{
			name: "brotli HTML cannot be linted", header: htmlHeader("Content-Encoding", "br"), body: "...",
			wantKinds: "encoded-body=refuse", wantRefuse: "liveview-encoded-body",
		},
		{
			name: "gzip HTML is linted decompressed", header: htmlHeader("Content-Encoding", "gzip"), body: gz(page),
			wantKinds: "csrf-meta=refuse", wantRefuse: "liveview-csrf-meta",
		},
		{
			name: "gzip HTML csrf strip stores a re-compressed blanked page", policy: map[Kind]Action{KindCSRFMeta: Strip}, header: htmlHeader("Content-Encoding", "gzip"), body: gz(page),
			wantKinds: "csrf-meta=strip",
			check: func(t *testing.T, res *httpcache.Response) {
				plain, err := gunzip(res.Body, 1<<20)
				if err != nil {
					t.Fatalf("stored body does not gunzip: %v", err)
				}
				if !strings.Contains(string(plain), `<meta name="csrf-token" content="">`) || len(plain) != len(page)-56 {
					t.Errorf("stored body (%d bytes decoded) is not the blanked page (%d bytes)", len(plain), len(page)-56)
				}
			},
		},
		{
			name: "non-HTML without tokens is ignored", header: http.Header{"Content-Type": {"application/json"}}, body: `{"csrf-token": "x"}`,
			wantKinds: "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLinter(t, Config{Policy: tt.policy, Now: func() time.Time { return now }})
			res := &httpcache.Response{Status: 200, Header: tt.header.Clone(), Body: []byte(tt.body)}
			v := l.Inspect(nil, res)
			var fs []Finding
			if a := v.Annotations[AnnotationFindings]; a != "" {
				if err := json.Unmarshal([]byte(a), &fs); err != nil {
					t.Fatalf("findings annotation: %v", err)
				}
			}
			if got := kinds(fs); got != tt.wantKinds {
				t.Errorf("findings = %s, want %s", got, tt.wantKinds)
			}
			if v.Refuse != tt.wantRefuse {
				t.Errorf("Refuse = %q, want %q", v.Refuse, tt.wantRefuse)
			}
			for _, f := range fs {
				if f.Message == "" || strings.Contains(f.Message, "\n") {
					t.Errorf("finding %s message %q, want one non-empty line", f.Kind, f.Message)
				}
			}
			if tt.check != nil {
				tt.check(t, res)
			}
		})
	}
}

func TestLint_Expiry(t *testing.T) {
	t.Parallel()
	signed := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	page := `<div data-phx-session="` + mustSign(t, phxtoken.StaticData("a"), signed, 86400*time.Second) +
		`" data-phx-static=""></div><span data-user-token="` + mustSign(t, erlterm.Int(7), signed, 3600*time.Second) + `"></span>`
	tests := []struct {
		name     string
		cfg      Config
		now      time.Time
		expires  time.Time
		notAfter time.Time
		kinds    string
	}{
		{"LiveView max age applies to data-phx-session; embedded to others", Config{}, signed, signed.Add(time.Hour), signed.Add(55 * time.Minute), ""},
		{"TokenMaxAge overrides the embedded max age of other tokens", Config{TokenMaxAge: 48 * time.Hour}, signed, signed.Add(48 * time.Hour), signed.Add(48*time.Hour - 5*time.Minute), ""},
		{"negative LiveViewMaxAge uses the embedded max age", Config{LiveViewMaxAge: -1, TokenMaxAge: 48 * time.Hour}, signed, signed.Add(24 * time.Hour), signed.Add(24*time.Hour - 5*time.Minute), ""},
		{"custom margin", Config{Margin: time.Minute}, signed, signed.Add(time.Hour), signed.Add(59 * time.Minute), ""},
		{"token expiring within the margin is refused", Config{}, signed.Add(56 * time.Minute), signed.Add(time.Hour), signed.Add(55 * time.Minute), "token-expiring=refuse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Now = func() time.Time { return tt.now }
			rep := newLinter(t, tt.cfg).Lint(htmlHeader(), []byte(page))
			if !rep.Expires.Equal(tt.expires) || !rep.NotAfter.Equal(tt.notAfter) {
				t.Errorf("Expires, NotAfter = %v, %v, want %v, %v", rep.Expires, rep.NotAfter, tt.expires, tt.notAfter)
			}
			if got := kinds(rep.Findings); got != tt.kinds {
				t.Errorf("findings = %s, want %s", got, tt.kinds)
			}
			if len(rep.Tokens) != 2 || rep.Tokens[0].Attr != "data-phx-session" || rep.Tokens[1].Attr != "data-user-token" {
				t.Errorf("tokens = %+v, want data-phx-session and data-user-token", rep.Tokens)
			}
		})
	}
}

func mustSign(t testing.TB, data erlterm.Term, at time.Time, maxAge time.Duration) string {
	t.Helper()
	tok, err := phxtoken.Sign(testSecret, "lv salt", data, at, maxAge)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestLint_Signature(t *testing.T) {
	t.Parallel()
	signed := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	good, _ := phxtoken.NewSigner(testSecret, "lv salt")
	bad, _ := phxtoken.NewSigner(testSecret, "other salt")
	page := pageWith(t, nil, signed, 86400*time.Second)
	for _, tt := range []struct {
		name   string
		signer *phxtoken.Signer
		kinds  string
	}{
		{"matching secret", good, "csrf-meta=allow"},
		{"other salt", bad, "bad-signature=refuse,bad-signature=refuse,csrf-meta=allow"},
		{"no secret configured", nil, "csrf-meta=allow"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := newLinter(t, Config{Signer: tt.signer, Policy: map[Kind]Action{KindCSRFMeta: Allow}, Now: func() time.Time { return signed }})
			rep := l.Lint(htmlHeader(), []byte(page))
			// Findings are in scan order: tokens first, then CSRF; sort for comparison.
			got := kinds(rep.Findings)
			if tt.name == "other salt" {
				got = strings.Join(sortedSplit(got), ",")
			}
			if got != tt.kinds {
				t.Errorf("findings = %s, want %s", got, tt.kinds)
			}
		})
	}
}

func sortedSplit(s string) []string {
	p := strings.Split(s, ",")
	for i := range p {
		for j := i + 1; j < len(p); j++ {
			if p[j] < p[i] {
				p[i], p[j] = p[j], p[i]
			}
		}
	}
	return p
}

func TestNew_Validation(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"strip a signed session", Config{Policy: map[Kind]Action{KindUserSession: Strip}}, "cannot be stripped"},
		{"unknown kind", Config{Policy: map[Kind]Action{"nope": Allow}}, "unknown finding kind"},
		{"invalid action", Config{Policy: map[Kind]Action{KindCSRFMeta: 9}}, "invalid action"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New = %v, want error containing %q", err, tt.want)
			}
		})
	}
	for _, s := range []string{"refuse", "Strip", " allow "} {
		if _, err := ParseAction(s); err != nil {
			t.Errorf("ParseAction(%q): %v", s, err)
		}
	}
	if _, err := ParseAction("drop"); err == nil {
		t.Error("ParseAction(drop) = nil error, want error")
	}
}

func gz(s string) string {
	return string(regzip([]byte(s)))
}

func TestGunzip_Bomb(t *testing.T) {
	t.Parallel()
	bomb := regzip(make([]byte, 2<<20))
	if _, err := gunzip(bomb, 1<<20); err == nil || !strings.Contains(err.Error(), "more than 1048576 bytes") {
		t.Errorf("gunzip(2 MiB of zeros, limit 1 MiB) = %v, want a size error", err)
	}
}

// TestLint_NoTokensAnnotated checks that a linted page without tokens or
// findings still says so (liveview.tokens present, empty), so the join
// guard never maps a made-up join to it by URL.
func TestLint_NoTokensAnnotated(t *testing.T) {
	t.Parallel()
	l := newLinter(t, Config{})
	for _, tt := range []struct {
		name string
		h    http.Header
		body string
	}{
		{"plain html page", htmlHeader(), "<html><body><p>hello</p></body></html>"},
		{"stylesheet", http.Header{"Content-Type": {"text/css"}}, "body{}"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := l.Inspect(nil, &httpcache.Response{Status: 200, Header: tt.h, Body: []byte(tt.body)})
			got, ok := v.Annotations[phxtoken.AnnotationTokens]
			if !ok || got != "" {
				t.Errorf("Inspect: %s = %q (present %v), want present and empty", phxtoken.AnnotationTokens, got, ok)
			}
		})
	}
}

const fixtures = "../../fixtures/liveview"

// readToken reads a recorded seed token (fixtures/liveview/seed).
func readToken(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtures, "seed", name+".token"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}
