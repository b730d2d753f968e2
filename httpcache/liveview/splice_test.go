package liveview

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/firstrender/firstrender/httpcache"
	"github.com/firstrender/firstrender/httpcache/httpcachetest"
	"github.com/firstrender/firstrender/httpcache/liveview/erlterm"
	"github.com/firstrender/firstrender/httpcache/liveview/phxtoken"
	"github.com/firstrender/firstrender/httpcache/liveview/plugsession"
)

const (
	testSKB         = "splice-test-secret-key-base-0123456789abcdef0123456789abcdef0123456789abcdef"
	testSessionSalt = "splice-signing-salt"
	testCookie      = "_my_app_key"
)

func testSessionConfig() plugsession.Config {
	return plugsession.Config{SecretKeyBase: testSKB, SigningSalt: testSessionSalt}
}

// phxApp is an origin that behaves like a phx.new app for the session and
// CSRF token: Plug.Session loads the cookie (an invalid one is an empty
// session), get_csrf_token/0 puts a fresh token in a session without one
// and the response then sets the cookie; every occurrence of the token in
// the page is a fresh masking of the session's token.
type phxApp struct {
	t       testing.TB
	codec   *plugsession.Codec
	page    func(masked string) string // nil: phxTestPage
	gzip    bool
	headers func(h http.Header) // extra response header changes
}

func newPhxApp(t testing.TB, cfg plugsession.Config) *phxApp {
	c, err := plugsession.NewCodec(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &phxApp{t: t, codec: c}
}

func phxTestPage(masked string) string {
	return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="csrf-token" content="` + masked + `">
<title>Products</title>
</head>
<body>
<div id="phx-F5CHYFwg3b47IQJC" data-phx-main>
<a href="/log_out" data-method="delete" data-to="/log_out" data-csrf="` + masked + `" rel="nofollow">Log out</a>
<form action="/search" method="post"><input name="_csrf_token" type="hidden" hidden value="` + masked + `"><input name="q"></form>
</div>
</body>
</html>
`
}

func (a *phxApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var sess erlterm.Map
	tok := ""
	if v, ok := plugsession.RequestCookie(r.Header["Cookie"], testCookie); ok {
		if m, err := a.codec.Decode(v); err == nil {
			sess = m
			tok, _ = plugsession.SessionToken(m)
		}
	}
	h := w.Header()
	if tok == "" {
		tok, _ = plugsession.GenerateToken(rand.Reader)
		sess = plugsession.PutToken(sess, tok)
		v, err := a.codec.Encode(sess)
		if err != nil {
			a.t.Error(err)
		}
		h.Add("Set-Cookie", testCookie+"="+v+"; path=/; HttpOnly; SameSite=Lax")
	}
	masked, _ := plugsession.MaskNew(tok, rand.Reader)
	page := phxTestPage
	if a.page != nil {
		page = a.page
	}
	body := []byte(page(masked))
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "public, s-maxage=600, max-age=0")
	h.Set("Etag", `"render-1"`)
	if a.gzip {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write(body)
		zw.Close()
		body = b.Bytes()
		h.Set("Content-Encoding", "gzip")
		h.Set("Vary", "Accept-Encoding")
	}
	if a.headers != nil {
		a.headers(h)
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.Write(body)
}

// session decodes a Set-Cookie line of the app's cookie.
func (a *phxApp) session(t testing.TB, setCookie string) (value string, m erlterm.Map) {
	t.Helper()
	name, v, _, err := plugsession.ParseSetCookie(setCookie)
	if err != nil || name != testCookie {
		t.Fatalf("Set-Cookie %q: name %q, err %v", setCookie, name, err)
	}
	m, err = a.codec.Decode(v)
	if err != nil {
		t.Fatalf("the app cannot load the session cookie %q: %v", setCookie, err)
	}
	return v, m
}

type spliceRig struct {
	*httpcachetest.Rig[*httpcache.Proxy]
	app *phxApp
	sp  *Splicer
}

func newSpliceRig(t *testing.T, app *phxApp, sc SpliceConfig, mod func(*httpcache.Config)) *spliceRig {
	t.Helper()
	sc.Logger = slog.New(slog.DiscardHandler)
	sp, err := NewSplicer(sc)
	if err != nil {
		t.Fatal(err)
	}
	rig := httpcachetest.New(t, app.ServeHTTP, func(env httpcachetest.Env) (*httpcache.Proxy, error) {
		lint, err := New(Config{Splice: sp, Now: env.Clock.Now})
		if err != nil {
			return nil, err
		}
		cfg := httpcache.Config{Upstream: env.Upstream, Store: env.Store, Inspector: lint, Splicer: sp, Now: env.Clock.Now, Logger: env.Logger}
		// The pages do not depend on the theme cookie: it is removed
		// before forwarding (any other cookie but the session one would
		// make a request per-user and bypass the cache).
		cfg.IgnoreCookies = []string{"theme"}
		if mod != nil {
			mod(&cfg)
		}
		return httpcache.New(cfg)
	})
	return &spliceRig{Rig: rig, app: app, sp: sp}
}

func defaultSplice() SpliceConfig {
	return SpliceConfig{Session: testSessionConfig(), CookieName: testCookie}
}

var maskedRE = regexp.MustCompile(`(?:content|data-csrf|value)="([A-Za-z0-9_-]{56})"`)

// tokens returns every masked token in a page (meta, data-csrf, input).
func tokens(t testing.TB, body string) []string {
	t.Helper()
	var out []string
	for _, m := range maskedRE.FindAllStringSubmatch(body, -1) {
		out = append(out, m[1])
	}
	if len(out) != 3 {
		t.Fatalf("page has %d masked tokens, want 3:\n%s", len(out), body)
	}
	return out
}

// checkSpliced asserts what every spliced response must be: its tokens
// all the same masking of state, the rest of the page the stored page's,
// the length right, private, no strong validator, detail=spliced.
func checkSpliced(t *testing.T, res httpcachetest.Result, state string) {
	t.Helper()
	toks := tokens(t, res.Body)
	for i, tk := range toks {
		if !plugsession.ValidMasked(state, tk) {
			t.Errorf("token %d %q is not a masking of the session's token %q", i, tk, state)
		}
		if tk != toks[0] {
			t.Errorf("token %d %q differs from the meta token %q", i, tk, toks[0])
		}
	}
	if want := phxTestPage(toks[0]); res.Body != want {
		t.Errorf("spliced page differs from the page with the token spliced in:\n got %q\nwant %q", res.Body, want)
	}
	if cl := res.Header.Get("Content-Length"); cl != strconv.Itoa(len(res.Body)) {
		t.Errorf("Content-Length %q, body %d bytes", cl, len(res.Body))
	}
	if et := res.Header.Get("Etag"); et != "" {
		t.Errorf("spliced page has ETag %q, want none", et)
	}
	cc := res.Header.Get("Cache-Control")
	if !strings.HasPrefix(cc, "private") || strings.Contains(cc, "public") || strings.Contains(cc, "s-maxage") {
		t.Errorf("Cache-Control %q, want private without shared-cache directives", cc)
	}
	if d, _ := res.CacheStatus(t, httpcache.CacheName).Get("detail"); d != "spliced" {
		t.Errorf("Cache-Status %v: detail %q, want spliced", res.Header["Cache-Status"], d)
	}
}

func sessionCookie(value string) string { return testCookie + "=" + value }

func TestSplice_HitPerVisitor(t *testing.T) {
	app := newPhxApp(t, testSessionConfig())
	r := newSpliceRig(t, app, defaultSplice(), nil)

	// A: no cookie; the origin makes a new session, firstrender stores
	// the page for splicing and passes A the origin's own answer.
	a := r.Get("/products")
	ms := a.CacheStatus(t, httpcache.CacheName)
	if err := ms.Match("fwd=uri-miss; stored"); err != nil {
		t.Fatal(err)
	}
	aVal, aSess := app.session(t, a.Header.Get("Set-Cookie"))
	aTok, _ := plugsession.SessionToken(aSess)
	if cc := a.Header.Get("Cache-Control"); !strings.HasPrefix(cc, "private") {
		t.Errorf("miss Cache-Control %q, want private (the page holds A's token)", cc)
	}
	aFirst := tokens(t, a.Body)[0]
	if !plugsession.ValidMasked(aTok, aFirst) {
		t.Fatalf("origin's own page token is not A's")
	}

	// B: a fresh visitor, served from the store with a new session of
	// its own, in the exact Plug.Session format.
	b := r.Get("/products")
	if got := r.Origin.Count(); got != 1 {
		t.Fatalf("origin requests = %d after B, want 1 (B from the store)", got)
	}
	if !b.CacheStatus(t, httpcache.CacheName).Has("hit") {
		t.Fatalf("B: Cache-Status %v, want a hit", b.Header["Cache-Status"])
	}
	bVal, bSess := app.session(t, b.Header.Get("Set-Cookie"))
	if bVal == aVal {
		t.Fatal("B got A's session cookie")
	}
	bTok, ok := plugsession.SessionToken(bSess)
	if !ok || len(bSess) != 1 || bTok == aTok {
		t.Fatalf("B's session %v: want only a _csrf_token of its own (A's is %q)", bSess, aTok)
	}
	checkSpliced(t, b, bTok)
	if !strings.HasSuffix(b.Header.Get("Set-Cookie"), "; path=/; HttpOnly; SameSite=Lax") {
		t.Errorf("B's Set-Cookie %q does not keep the origin's attributes", b.Header.Get("Set-Cookie"))
	}
	for _, tk := range tokens(t, b.Body) {
		if plugsession.ValidMasked(aTok, tk) {
			t.Fatal("B's page holds a token of A's session")
		}
	}

	// A again, with its cookie: its own token, masked afresh; no cookie.
	a2 := r.Get("/products", "Cookie", "theme=dark; "+sessionCookie(aVal))
	if sc := a2.Header.Values("Set-Cookie"); len(sc) != 0 {
		t.Errorf("A with a valid session got Set-Cookie %q, want none", sc)
	}
	checkSpliced(t, a2, aTok)
	if tokens(t, a2.Body)[0] == aFirst {
		t.Error("A's token was not masked afresh")
	}

	// C: a valid session without a token (say, the app's own data):
	// a token is added, the rest kept.
	cVal, err := app.codec.Encode(erlterm.Map{{Key: erlterm.Binary("user_id"), Value: erlterm.Int(42)}})
	if err != nil {
		t.Fatal(err)
	}
	c := r.Get("/products", "Cookie", sessionCookie(cVal))
	_, cSess := app.session(t, c.Header.Get("Set-Cookie"))
	cTok, ok := plugsession.SessionToken(cSess)
	if !ok || len(cSess) != 2 || erlterm.Format(cSess[1].Value) != "42" {
		t.Fatalf("C's session %s, want user_id kept and a token added", erlterm.Format(cSess))
	}
	checkSpliced(t, c, cTok)

	// D: a tampered cookie is an empty session for Plug: a new one.
	d := r.Get("/products", "Cookie", sessionCookie(aVal[:len(aVal)-2]+"xx"))
	dVal, dSess := app.session(t, d.Header.Get("Set-Cookie"))
	dTok, _ := plugsession.SessionToken(dSess)
	if dVal == aVal || dTok == aTok || len(dSess) != 1 {
		t.Fatalf("D (tampered A cookie) session %s, want a new one", erlterm.Format(dSess))
	}
	checkSpliced(t, d, dTok)

	// HEAD: the headers of a spliced page, no body.
	h := r.Do(http.MethodHead, "/products")
	if h.Body != "" || h.Header.Get("Set-Cookie") == "" || h.Header.Get("Etag") != "" {
		t.Errorf("HEAD: body %q, Set-Cookie %q, ETag %q", h.Body, h.Header.Get("Set-Cookie"), h.Header.Get("Etag"))
	}
	// A conditional request never gets a 304 of a page holding a token.
	cond := r.Get("/products", "If-None-Match", `"render-1"`, "Cookie", sessionCookie(aVal))
	if cond.Status != http.StatusOK {
		t.Errorf("If-None-Match on a spliced page: status %d, want 200", cond.Status)
	}
	if got := r.Origin.Count(); got != 1 {
		t.Errorf("origin requests = %d, want 1", got)
	}
}

// A miss from a visitor who carries the session cookie is forwarded
// without it (the origin renders the anonymous page) and answered with
// that visitor's own spliced copy.
func TestSplice_MissWithSessionCookie(t *testing.T) {
	app := newPhxApp(t, testSessionConfig())
	r := newSpliceRig(t, app, defaultSplice(), nil)
	tok, _ := plugsession.GenerateToken(rand.Reader)
	val, err := app.codec.Encode(plugsession.PutToken(nil, tok))
	if err != nil {
		t.Fatal(err)
	}
	res := r.Get("/products", "Cookie", "theme=dark; "+sessionCookie(val))
	if err := res.CacheStatus(t, httpcache.CacheName).Match("fwd=uri-miss; stored; detail=spliced"); err != nil {
		t.Error(err)
	}
	last := r.Origin.LastRequest()
	if got := last.Header.Values("Cookie"); len(got) != 0 {
		t.Errorf("origin got Cookie %q, want none (the session cookie removed by the splice, theme by IgnoreCookies)", got)
	}
	if sc := res.Header.Values("Set-Cookie"); len(sc) != 0 {
		t.Errorf("visitor with a session got Set-Cookie %q (the anonymous session would replace theirs)", sc)
	}
	checkSpliced(t, res, tok)
	// Stored: the next visitor is a hit.
	if n := r.Get("/products"); !n.CacheStatus(t, httpcache.CacheName).Has("hit") || r.Origin.Count() != 1 {
		t.Errorf("second visitor: %v, origin %d requests", n.Header["Cache-Status"], r.Origin.Count())
	}
}

func TestSplice_Refused(t *testing.T) {
	tests := []struct {
		name   string
		splice SpliceConfig
		app    func(a *phxApp)
		detail string
	}{
		{"wrong secret_key_base", SpliceConfig{Session: plugsession.Config{SecretKeyBase: strings.Repeat("w", 64), SigningSalt: testSessionSalt}, CookieName: testCookie}, nil, "liveview-splice"},
		{"wrong signing salt", SpliceConfig{Session: plugsession.Config{SecretKeyBase: testSKB, SigningSalt: "other"}, CookieName: testCookie}, nil, "liveview-splice"},
		{"wrong cookie name", SpliceConfig{Session: testSessionConfig(), CookieName: "_other_key"}, nil, "liveview-splice"},
		{"another cookie besides the session", defaultSplice(), func(a *phxApp) {
			a.headers = func(h http.Header) { h.Add("Set-Cookie", "tracking=abc; path=/") }
		}, "liveview-splice"},
		{"token also in a script", defaultSplice(), func(a *phxApp) {
			a.page = func(m string) string {
				return strings.Replace(phxTestPage(m), "</body>", "<script>window.csrf = \""+m+"\";</script></body>", 1)
			}
		}, "liveview-splice"},
		{"unmasked session token in the page", defaultSplice(), func(a *phxApp) {
			a.page = func(m string) string {
				state, _ := plugsession.Unmask(m)
				return strings.Replace(phxTestPage(m), "<title>", "<!-- "+state+" --><title>", 1)
			}
		}, "liveview-splice"},
		{"user data in data-phx-session", defaultSplice(), func(a *phxApp) {
			a.page = func(m string) string {
				signer, _ := phxtoken.NewSigner(testSecret, "lv salt")
				s, _ := signer.Sign(phxtoken.SessionData(phxtoken.Session{ID: "phx-F5CHYFwg3b47IQJC", View: "ShopWeb.ProductLive.Index", Router: "ShopWeb.Router",
					Session: erlterm.Map{{Key: erlterm.Binary("user_id"), Value: erlterm.Int(7)}}}), time.Now(), 24*time.Hour)
				return strings.Replace(phxTestPage(m), "data-phx-main", `data-phx-main data-phx-session="`+s+`"`, 1)
			}
		}, "liveview-user-session"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := newPhxApp(t, testSessionConfig())
			if tt.app != nil {
				tt.app(app)
			}
			r := newSpliceRig(t, app, tt.splice, nil)
			a := r.Get("/products")
			if d, _ := a.CacheStatus(t, httpcache.CacheName).Get("detail"); d != tt.detail {
				t.Errorf("Cache-Status %v: detail %q, want %q", a.Header["Cache-Status"], d, tt.detail)
			}
			if a.Header.Get("Set-Cookie") == "" {
				t.Error("the visitor did not get the origin's own session")
			}
			// Nothing stored: B gets its own render from the origin.
			b := r.Get("/products")
			if r.Origin.Count() != 2 || b.CacheStatus(t, httpcache.CacheName).Has("hit") {
				t.Errorf("B: Cache-Status %v, origin %d requests; want forwarded", b.Header["Cache-Status"], r.Origin.Count())
			}
			if tokens(t, a.Body)[0] == tokens(t, b.Body)[0] {
				t.Error("B got A's token")
			}
			// A visitor with a session gets the origin's page for it
			// (forwarded with the cookie), never another's token.
			av, _ := app.session(t, a.Header.Get("Set-Cookie"))
			c := r.Get("/products", "Cookie", sessionCookie(av))
			if got := r.Origin.LastRequest().Header.Get("Cookie"); got != sessionCookie(av) {
				t.Errorf("origin got Cookie %q, want the visitor's session", got)
			}
			_, as := app.session(t, a.Header.Get("Set-Cookie"))
			atok, _ := plugsession.SessionToken(as)
			if tt.name != "wrong cookie name" && !plugsession.ValidMasked(atok, tokens(t, c.Body)[0]) {
				t.Error("the visitor with a session did not get its own token")
			}
		})
	}
}

func TestSplice_GzipStoredDecoded(t *testing.T) {
	app := newPhxApp(t, testSessionConfig())
	app.gzip = true
	r := newSpliceRig(t, app, defaultSplice(), nil)
	a := r.Get("/products", "Accept-Encoding", "gzip")
	if err := a.CacheStatus(t, httpcache.CacheName).Match("stored"); err != nil {
		t.Fatal(err)
	}
	if a.Header.Get("Content-Encoding") != "gzip" {
		t.Errorf("the filling visitor's answer lost its encoding: %v", a.Header)
	}
	b := r.Get("/products", "Accept-Encoding", "gzip")
	if ce := b.Header.Get("Content-Encoding"); ce != "" {
		t.Errorf("spliced page says Content-Encoding %q; it is stored and sent decoded", ce)
	}
	_, bs := app.session(t, b.Header.Get("Set-Cookie"))
	bt, _ := plugsession.SessionToken(bs)
	checkSpliced(t, b, bt)
}

// A page stored for splicing is never served by a proxy that cannot
// splice it: none configured, or one with other keys.
func TestSplice_StoredPageNeedsTheSplicer(t *testing.T) {
	app := newPhxApp(t, testSessionConfig())
	r := newSpliceRig(t, app, defaultSplice(), nil)
	r.Get("/products")
	metas, err := r.Store.Variants(context.Background(), r.Front.URL+"/products")
	if err != nil || len(metas) != 1 {
		t.Fatalf("stored variants %v, %v", metas, err)
	}
	if metas[0].Annotations[httpcache.AnnotationSplice] == "" {
		t.Fatalf("stored without %s: %v", httpcache.AnnotationSplice, metas[0].Annotations)
	}
	for _, tc := range []struct {
		name    string
		splicer httpcache.Splicer
		detail  string
	}{
		{"no splicer", nil, "splice-unconfigured"},
		{"other keys", mustSplicer(t, SpliceConfig{Session: plugsession.Config{SecretKeyBase: strings.Repeat("k", 64), SigningSalt: testSessionSalt}, CookieName: testCookie}), "splice-invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := httpcache.New(httpcache.Config{Upstream: mustURL(t, r.Origin.URL), Store: r.Store, Splicer: tc.splicer, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close(context.Background())
			before := r.Origin.Count()
			rec := httptest.NewRecorder()
			p.ServeHTTP(rec, httptest.NewRequest("GET", r.Front.URL+"/products", nil))
			if r.Origin.Count() != before+1 {
				t.Errorf("the stored page was served (origin not asked): %v", rec.Header()["Cache-Status"])
			}
			// fwd=miss: stored but unusable (the lookup's reason,
			// tc.detail, is then replaced by the fill's own).
			if got := rec.Header().Get("Cache-Status"); !strings.Contains(got, "fwd=miss") {
				t.Errorf("Cache-Status %q, want fwd=miss (%s)", got, tc.detail)
			}
		})
	}
}

func mustSplicer(t testing.TB, c SpliceConfig) *Splicer {
	t.Helper()
	c.Logger = slog.New(slog.DiscardHandler)
	s, err := NewSplicer(c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Revalidating a stale spliced page: a 304 refreshes it and the visitor
// gets their spliced copy; the revalidation is sent without the session.
func TestSplice_Revalidate304(t *testing.T) {
	app := newPhxApp(t, testSessionConfig())
	r := newSpliceRig(t, app, defaultSplice(), nil)
	r.Get("/products")
	r.Clock.Advance(700 * time.Second) // past s-maxage=600
	tok, _ := plugsession.GenerateToken(rand.Reader)
	val, _ := app.codec.Encode(plugsession.PutToken(nil, tok))
	app.headers = func(h http.Header) {} // same page
	res := r.Get("/products", "Cookie", sessionCookie(val))
	if got := r.Origin.LastRequest().Header.Get("Cookie"); got != "" {
		t.Errorf("revalidation sent Cookie %q, want none", got)
	}
	if r.Origin.Count() != 2 {
		t.Fatalf("origin requests %d, want 2", r.Origin.Count())
	}
	if res.Header.Get("Set-Cookie") != "" {
		t.Errorf("visitor with a session got Set-Cookie %q", res.Header.Get("Set-Cookie"))
	}
	checkSpliced(t, res, tok)
}

func TestSplicer_Config(t *testing.T) {
	for _, c := range []SpliceConfig{
		{Session: testSessionConfig()},
		{Session: plugsession.Config{SecretKeyBase: "short", SigningSalt: "s"}, CookieName: testCookie},
		{Session: plugsession.Config{SecretKeyBase: testSKB}, CookieName: testCookie},
	} {
		if _, err := NewSplicer(c); err == nil {
			t.Errorf("NewSplicer(%+v) succeeded", c.CookieName)
		} else if strings.Contains(err.Error(), testSKB) {
			t.Errorf("error %q shows the secret", err)
		}
	}
	if _, err := New(Config{Policy: map[Kind]Action{KindSplice: Allow}}); err == nil {
		t.Error("splice=allow accepted")
	}
	if _, err := New(Config{Policy: map[Kind]Action{KindCSRFMeta: Splice}}); err == nil {
		t.Error("csrf-meta=splice accepted as a policy")
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

// FuzzSpliceLoad feeds arbitrary splice data (the httpcache.splice
// annotation, read back from the store) and bodies to Splicer.Load.
// Properties: no panic; data that loads splices to a body of the stored
// length, in which every recorded span holds one and the same token.
func FuzzSpliceLoad(f *testing.F) {
	sp := mustSplicer(f, defaultSplice())
	body := phxTestPage(strings.Repeat("A", plugsession.MaskedTokenSize))
	spans, err := plugsession.FindTokens([]byte(body), plugsession.FindOptions{})
	if err != nil {
		f.Fatal(err)
	}
	d := spliceData{V: 1, Key: sp.fp}
	for _, s := range spans {
		d.Spans = append(d.Spans, [3]int{s.Start, s.End, int(s.Kind)})
	}
	good, _ := json.Marshal(d)
	f.Add(string(good), body)
	f.Add(`{"v":1,"key":"`+sp.fp+`","spans":[[0,56,1],[10,66,1]]}`, body)
	f.Add(`{"v":1,"key":"`+sp.fp+`","spans":[[-5,51,1]],"cookie":{"Path":"/\r\nX: y","HasPath":true}}`, body)
	f.Add(`{"v":2}`, "")
	f.Fuzz(func(t *testing.T, data, body string) {
		page, err := sp.Load([]byte(body), data)
		if err != nil {
			return
		}
		res, err := page.Splice(nil)
		if err != nil {
			t.Fatalf("a loaded page does not splice: %v", err)
		}
		var b bytes.Buffer
		bufs := res.Body
		if n, _ := bufs.WriteTo(&b); n != res.Len || int(n) != len(body) {
			t.Fatalf("spliced %d bytes, Len %d, body %d", n, res.Len, len(body))
		}
	})
}
