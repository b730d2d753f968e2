package plugsession

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/firstrender/firstrender/httpcache/liveview/erlterm"
)

// phxPage renders a first render the way a phx.new app does, with the
// masked token tok in the meta tag, a delete link and a form.
func phxPage(tok string) []byte {
	return []byte(`<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="csrf-token" content="` + tok + `">
    <title>Home</title>
    <script defer phx-track-static type="text/javascript" src="/assets/app.js"></script>
  </head>
  <body>
    <div id="phx-F5CHYFwg3b47IQJC" data-phx-main data-phx-session="SFMyNTY.abc.def" data-phx-static="SFMyNTY.ghi.jkl">
      <a href="/users/log_out" data-method="delete" data-to="/users/log_out" data-csrf="` + tok + `" rel="nofollow">Log out</a>
      <form action="/search" method="post"><input name="_csrf_token" type="hidden" hidden value="` + tok + `"><input name="q"></form>
    </div>
  </body>
</html>
`)
}

func testSplicer(t testing.TB, v *vectors, mod func(*SplicerConfig)) *Splicer {
	t.Helper()
	_, _, attrs, err := ParseSetCookie(v.SetCookies[1].SetCookie)
	if err != nil {
		t.Fatal(err)
	}
	cfg := SplicerConfig{
		Session:    Config{SecretKeyBase: v.SecretKeyBase, SigningSalt: v.SigningSalt},
		CookieName: "_my_app_key",
		Cookie:     attrs,
		Now:        func() time.Time { return time.Date(2026, 11, 25, 13, 5, 9, 0, time.UTC) },
	}
	if mod != nil {
		mod(&cfg)
	}
	s, err := NewSplicer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestFindTokens(t *testing.T) {
	v := loadVectors(t)
	tok := v.CSRFMask[0].Masked
	other := v.CSRFMask[1].Masked
	body := phxPage(tok)
	spans, err := FindTokens(body, FindOptions{SessionToken: v.CSRFMask[0].Token})
	if err != nil {
		t.Fatal(err)
	}
	kinds := []SpanKind{InMeta, InDataCSRF, InFormInput}
	if len(spans) != 3 {
		t.Fatalf("FindTokens found %d spans, want 3: %v", len(spans), spans)
	}
	for i, s := range spans {
		if string(body[s.Start:s.End]) != tok || s.Kind != kinds[i] {
			t.Errorf("span %d = %q (%s), want the token in %s", i, body[s.Start:s.End], s.Kind, kinds[i])
		}
	}

	rows := []struct {
		name string
		body string
		opt  FindOptions
		want error
	}{
		{"no token at all", `<html><head><title>x</title></head></html>`, FindOptions{}, ErrNoToken},
		{"a second, different token", strings.Replace(string(body), `value="`+tok, `value="`+other, 1), FindOptions{}, ErrInconsistent},
		{"expected token is not the page's", string(body), FindOptions{Token: other}, ErrInconsistent},
		{"token not bound to the session", string(body), FindOptions{SessionToken: v.CSRFMask[1].Token}, ErrInconsistent},
		{"token also in a script", strings.Replace(string(body), "</body>", "<script>window.t = \""+tok+"\"</script></body>", 1), FindOptions{}, ErrUnaccounted},
		{"token in a comment", strings.Replace(string(body), "</body>", "<!-- "+tok+" --></body>", 1), FindOptions{}, ErrUnaccounted},
		{"token in another attribute", strings.Replace(string(body), `rel="nofollow"`, `data-token="`+tok+`"`, 1), FindOptions{}, ErrUnaccounted},
		{"meta inside a script is not markup", strings.Replace(string(body), "</body>", "<script>document.write('<meta name=\"csrf-token\" content=\""+tok+"\">')</script></body>", 1), FindOptions{}, ErrUnaccounted},
		{"session token in the page", strings.Replace(string(body), "</body>", v.CSRFMask[0].Token+"</body>", 1), FindOptions{SessionToken: v.CSRFMask[0].Token}, ErrUnaccounted},
		{"escaped token", strings.Replace(string(body), `value="`+tok[:5], `value="`+tok[:4]+fmt.Sprintf("&#%d;", tok[4]), 1), FindOptions{}, ErrEscaped},
		{"per-host token in a form", strings.Replace(string(body), `value="`+tok, `value="`+v.CSRFHost[0].Token, 1), FindOptions{}, ErrHostToken},
		{"malformed token", string(phxPage("not-a-token")), FindOptions{}, ErrMalformedToken},
		{"meta without content", `<meta name="csrf-token">`, FindOptions{}, ErrMalformedToken},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			_, err := FindTokens([]byte(r.body), r.opt)
			var fe *FindError
			if !errors.Is(err, r.want) || !errors.As(err, &fe) {
				t.Errorf("FindTokens err = %v, want a *FindError wrapping %v", err, r.want)
			}
		})
	}

	t.Run("attribute order, case and quoting do not matter", func(t *testing.T) {
		b := []byte(`<META CONTENT='` + tok + `' NAME=CSRF-TOKEN><INPUT value=` + tok + ` name=_csrf_token type=hidden>`)
		spans, err := FindTokens(b, FindOptions{})
		if err != nil || len(spans) != 2 {
			t.Fatalf("FindTokens = %v, %v; want 2 spans", spans, err)
		}
	})
}

func TestSplicer_Prepare(t *testing.T) {
	v := loadVectors(t)
	s := testSplicer(t, v, nil)
	body := phxPage(v.CSRFMask[0].Masked)
	origin := v.SetCookies[1].SetCookie // session {"_csrf_token" => token 0}, SameSite=Lax
	p, err := s.Prepare(body, []string{origin})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Page.Spans()) != 3 || p.Cookie.SameSite != "Lax" || !p.Cookie.HTTPOnly || p.Cookie.Path != "/" {
		t.Errorf("Prepare = %d spans, cookie %+v", len(p.Page.Spans()), p.Cookie)
	}
	userCookie := "_my_app_key=" + v.Sessions[2].Signed + "; path=/; HttpOnly"
	rows := []struct {
		name    string
		cookies []string
		want    error
	}{
		{"no session cookie", nil, ErrNotSpliceable},
		{"another cookie too", []string{origin, "tracking=1; path=/"}, ErrNotSpliceable},
		{"the session holds data", []string{userCookie}, ErrNotSpliceable},
		{"wrong secret", []string{"_my_app_key=" + mustSign(t, v.OtherSKB, v.SigningSalt, v.Sessions[0].Term) + "; path=/"}, ErrInvalid},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			if _, err := s.Prepare(body, r.cookies); !errors.Is(err, r.want) {
				t.Errorf("Prepare err = %v, want %v", err, r.want)
			}
		})
	}
	t.Run("page token of another session", func(t *testing.T) {
		if _, err := s.Prepare(phxPage(v.CSRFMask[1].Masked), []string{origin}); !errors.Is(err, ErrInconsistent) {
			t.Errorf("Prepare err = %v, want ErrInconsistent", err)
		}
	})
}

func mustSign(t testing.TB, skb, salt, termHex string) string {
	t.Helper()
	key, err := DeriveKey([]byte(skb), []byte(salt), KeyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Sign(unhex(t, termHex), key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// spliced writes r and checks the body is the page with r's token in every
// span and nothing else changed.
func spliced(t *testing.T, p *Page, body []byte, r *Result) {
	t.Helper()
	var buf bytes.Buffer
	n, err := r.WriteTo(&buf)
	if err != nil || n != r.Len() || int64(buf.Len()) != int64(len(body)) {
		t.Fatalf("WriteTo = %d, %v; Len %d, page %d bytes", n, err, r.Len(), len(body))
	}
	want := append([]byte(nil), body...)
	for _, s := range p.Spans() {
		copy(want[s.Start:s.End], r.Token())
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("spliced body differs from the page with the token replaced")
	}
	if got := bytes.Join(r.Segments(), nil); !bytes.Equal(got, want) {
		t.Fatalf("Segments differ from WriteTo")
	}
}

func TestSplicer_Splice(t *testing.T) {
	v := loadVectors(t)
	s := testSplicer(t, v, nil)
	body := phxPage(v.CSRFMask[0].Masked)
	p, err := s.Prepare(body, []string{v.SetCookies[1].SetCookie})
	if err != nil {
		t.Fatal(err)
	}
	page := p.Page

	t.Run("new visitor gets a new session and its token", func(t *testing.T) {
		r, err := s.Splice(page, nil)
		if err != nil {
			t.Fatal(err)
		}
		spliced(t, page, body, r)
		if r.Session != SessionCreated || r.SetCookie == "" || r.Discarded != nil {
			t.Fatalf("Splice = %v, Set-Cookie %q, discarded %v", r.Session, r.SetCookie, r.Discarded)
		}
		name, value, attrs, err := ParseSetCookie(r.SetCookie)
		if err != nil || name != "_my_app_key" || attrs.SameSite != "Lax" || !attrs.HTTPOnly {
			t.Fatalf("Set-Cookie %q: %v", r.SetCookie, err)
		}
		if !strings.HasSuffix(r.SetCookie, "; path=/; HttpOnly; SameSite=Lax") {
			t.Errorf("Set-Cookie %q does not end like the origin's", r.SetCookie)
		}
		m, err := s.Codec().Decode(value)
		if err != nil || len(m) != 1 {
			t.Fatalf("new session = %s, %v; want only a token", erlterm.Format(m), err)
		}
		tok, ok := SessionToken(m)
		if !ok || !ValidMasked(tok, r.Token()) {
			t.Fatalf("spliced token %q is not a masking of the session's %q", r.Token(), tok)
		}
		if r.Token() == v.CSRFMask[0].Masked || ValidMasked(v.CSRFMask[0].Token, r.Token()) {
			t.Fatal("the new visitor got the origin visitor's token")
		}
	})

	t.Run("visitor with a token keeps the session", func(t *testing.T) {
		r, err := s.Splice(page, []string{"other=1; _my_app_key=" + v.Sessions[2].Signed})
		if err != nil {
			t.Fatal(err)
		}
		spliced(t, page, body, r)
		if r.Session != SessionKept || r.SetCookie != "" {
			t.Fatalf("Splice = %v, Set-Cookie %q; want kept, none", r.Session, r.SetCookie)
		}
		if !ValidMasked(v.CSRFMask[0].Token, r.Token()) {
			t.Fatal("token is not a masking of the visitor's session token")
		}
		r2, _ := s.Splice(page, []string{"_my_app_key=" + v.Sessions[2].Signed})
		if r2.Token() == r.Token() {
			t.Error("two responses carry the same mask")
		}
	})

	t.Run("valid session without a token gets one added", func(t *testing.T) {
		r, err := s.Splice(page, []string{"_my_app_key=" + v.Sessions[3].Signed})
		if err != nil {
			t.Fatal(err)
		}
		spliced(t, page, body, r)
		if r.Session != SessionTokenAdded || r.SetCookie == "" {
			t.Fatalf("Splice = %v, Set-Cookie %q", r.Session, r.SetCookie)
		}
		_, value, _, _ := ParseSetCookie(r.SetCookie)
		m, err := s.Codec().Decode(value)
		if err != nil {
			t.Fatal(err)
		}
		old, _ := s.Codec().Decode(v.Sessions[3].Signed)
		tok, ok := SessionToken(m)
		if !ok || !ValidMasked(tok, r.Token()) || !erlterm.Equal(m, PutToken(old, tok)) {
			t.Fatalf("session = %s; want %s plus the spliced token", erlterm.Format(m), erlterm.Format(old))
		}
	})

	hostile := []struct {
		name   string
		cookie string
	}{
		{"tampered", "_my_app_key=" + flip(v.Sessions[0].Signed, 20)},
		{"tampered signature", "_my_app_key=" + flip(v.Sessions[0].Signed, len(v.Sessions[0].Signed)-3)},
		{"truncated", "_my_app_key=" + v.Sessions[0].Signed[:len(v.Sessions[0].Signed)-5]},
		{"wrong salt", "_my_app_key=" + mustSign(t, v.SecretKeyBase, "another salt", v.Sessions[0].Term)},
		{"another app's", "_my_app_key=" + mustSign(t, v.OtherSKB, v.SigningSalt, v.Sessions[0].Term)},
		{"huge", "_my_app_key=" + strings.Repeat("A", 10000)},
		{"garbage term", "_my_app_key=" + mustSign(t, v.SecretKeyBase, v.SigningSalt, "8301")},
		{"a fun in the session", "_my_app_key=" + mustSignTerm(t, v, erlterm.Map{{Key: erlterm.Binary("f"), Value: erlterm.Export{Module: "erlang", Function: "halt", Arity: 0}}})},
		{"an encrypted cookie for a signed store", "_my_app_key=" + v.Sessions[0].Encrypted},
	}
	for _, h := range hostile {
		t.Run(h.name+" cookie gets a new session", func(t *testing.T) {
			r, err := s.Splice(page, []string{h.cookie})
			if err != nil {
				t.Fatal(err)
			}
			if r.Session != SessionCreated || r.Discarded == nil || r.SetCookie == "" {
				t.Fatalf("Splice = %v, discarded %v, Set-Cookie %q; want a new session", r.Session, r.Discarded, r.SetCookie)
			}
			spliced(t, page, body, r)
		})
	}
	t.Run("atom keys: no binary _csrf_token, one is added", func(t *testing.T) {
		r, err := s.Splice(page, []string{"_my_app_key=" + mustSignTerm(t, v, erlterm.Map{{Key: erlterm.Atom("_csrf_token"), Value: erlterm.Binary(v.CSRFMask[0].Token)}})})
		if err != nil || r.Session != SessionTokenAdded {
			t.Fatalf("Splice = %v, %v; want token added", r, err)
		}
	})
	for _, term := range []erlterm.Term{erlterm.Tuple{erlterm.Atom("ok"), erlterm.Binary("x")}, erlterm.List{erlterm.Int(1)}, erlterm.Binary(v.CSRFMask[0].Token)} {
		t.Run("non-map session "+erlterm.Format(term)+" is an error", func(t *testing.T) {
			if _, err := s.Splice(page, []string{"_my_app_key=" + mustSignTerm(t, v, term)}); !errors.Is(err, ErrNotMap) {
				t.Errorf("Splice err = %v, want ErrNotMap", err)
			}
		})
	}
	t.Run("a session too big to grow is an error", func(t *testing.T) {
		big := erlterm.Map{{Key: erlterm.Binary("blob"), Value: erlterm.Binary(bytes.Repeat([]byte("x"), 2950))}}
		if _, err := s.Splice(page, []string{"_my_app_key=" + mustSignTerm(t, v, big)}); !errors.Is(err, ErrTooLarge) {
			t.Errorf("Splice err = %v, want ErrTooLarge", err)
		}
	})
}

func mustSignTerm(t testing.TB, v *vectors, term erlterm.Term) string {
	t.Helper()
	b, err := erlterm.Encode(term)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := DeriveKey([]byte(v.SecretKeyBase), []byte(v.SigningSalt), KeyOptions{})
	s, _ := Sign(b, key)
	return s
}

func TestSplicer_Encrypted(t *testing.T) {
	v := loadVectors(t)
	for _, enc := range []Encryption{XChaCha20Poly1305, A128GCM} {
		s := testSplicer(t, v, func(c *SplicerConfig) {
			c.Session.EncryptionSalt = v.EncryptionSalt
			c.Session.Encryption = enc
		})
		origin := "_my_app_key=" + v.Sessions[0].Encrypted + "; path=/; HttpOnly"
		if enc == A128GCM {
			origin = "_my_app_key=" + v.LegacySession.Encrypted + "; path=/; HttpOnly"
		}
		body := phxPage(v.CSRFMask[0].Masked)
		p, err := s.Prepare(body, []string{origin})
		if err != nil {
			t.Fatalf("%d: Prepare: %v", enc, err)
		}
		if p.Encryption != enc {
			t.Errorf("Prepare found format %d, want %d", p.Encryption, enc)
		}
		r, err := s.Splice(p.Page, []string{"_my_app_key=" + v.Sessions[2].Encrypted})
		if err != nil || r.Session != SessionKept {
			t.Fatalf("Splice(encrypted user session) = %v, %v", r, err)
		}
		r, err = s.Splice(p.Page, nil)
		if err != nil || r.Session != SessionCreated {
			t.Fatalf("Splice(nothing) = %v, %v", r, err)
		}
		_, value, _, _ := ParseSetCookie(r.SetCookie)
		wantPrefix := map[Encryption]string{XChaCha20Poly1305: "XCP.", A128GCM: "QTEyOEdDTQ."}[enc]
		if !strings.HasPrefix(value, wantPrefix) {
			t.Errorf("new encrypted cookie %q, want prefix %q", value, wantPrefix)
		}
		m, err := s.Codec().Decode(value)
		if tok, ok := SessionToken(m); err != nil || !ok || !ValidMasked(tok, r.Token()) {
			t.Errorf("new encrypted session %s, %v does not carry the spliced token", erlterm.Format(m), err)
		}
	}
	t.Run("an XCP store refuses a plug_crypto 1.x origin", func(t *testing.T) {
		s := testSplicer(t, v, func(c *SplicerConfig) { c.Session.EncryptionSalt = v.EncryptionSalt })
		_, err := s.Prepare(phxPage(v.CSRFMask[0].Masked), []string{"_my_app_key=" + v.LegacySession.Encrypted + "; path=/"})
		if !errors.Is(err, ErrNotSpliceable) {
			t.Errorf("Prepare err = %v, want ErrNotSpliceable", err)
		}
	})
}

func TestMaskedTokenSizeIsConstant(t *testing.T) {
	// Content-Length of a spliced page relies on it.
	for i := 0; i < 2000; i++ {
		tok, err := GenerateToken(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		m, err := MaskNew(tok, rand.Reader)
		if err != nil || len(tok) != TokenSize || len(m) != MaskedTokenSize || !ValidMasked(tok, m) {
			t.Fatalf("token %q masked %q: %v", tok, m, err)
		}
	}
}

func TestNewSplicer_Config(t *testing.T) {
	v := loadVectors(t)
	rows := []struct {
		name string
		mod  func(*SplicerConfig)
	}{
		{"short secret", func(c *SplicerConfig) { c.Session.SecretKeyBase = "short" }},
		{"no signing salt", func(c *SplicerConfig) { c.Session.SigningSalt = "" }},
		{"no cookie name", func(c *SplicerConfig) { c.CookieName = "" }},
		{"bad digest", func(c *SplicerConfig) { c.Session.Key.Digest = "md5" }},
		{"XCP needs 32-byte keys", func(c *SplicerConfig) { c.Session.EncryptionSalt = "x"; c.Session.Key.Length = 64 }},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			_, _, attrs, _ := ParseSetCookie(v.SetCookies[1].SetCookie)
			cfg := SplicerConfig{Session: Config{SecretKeyBase: v.SecretKeyBase, SigningSalt: v.SigningSalt}, CookieName: "_k", Cookie: attrs}
			r.mod(&cfg)
			_, err := NewSplicer(cfg)
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("NewSplicer err = %v, want ErrConfig", err)
			}
			if strings.Contains(err.Error(), v.SecretKeyBase) {
				t.Fatal("the error shows the secret")
			}
		})
	}
}

func TestRequestCookie(t *testing.T) {
	rows := []struct {
		headers []string
		want    string
		ok      bool
	}{
		{[]string{"a=1; _k=v1"}, "v1", true},
		{[]string{"_k=v1; _k=v2"}, "v2", true},
		{[]string{"_k=v1", "_k=v3"}, "v3", true},
		{[]string{" \t_k=v "}, "v", true},
		{[]string{"_k"}, "", false},
		{[]string{"x _k=v"}, "", false},
		{[]string{"_k=a\tb"}, "", false},
		{nil, "", false},
	}
	for _, r := range rows {
		got, ok := RequestCookie(r.headers, "_k")
		if got != r.want || ok != r.ok {
			t.Errorf("RequestCookie(%q) = %q, %v; want %q, %v", r.headers, got, ok, r.want, r.ok)
		}
	}
}

// flip changes the base64url character at i to another one.
func flip(s string, i int) string {
	c := byte('A')
	if s[i] == 'A' {
		c = 'B'
	}
	return s[:i] + string(c) + s[i+1:]
}

var fixedNow = time.Date(2026, 11, 25, 13, 5, 9, 0, time.UTC)

// TestWriteElixirCheck writes, when PLUGSESSION_CHECK names a file, the
// session cookies and masked tokens this package makes for new visitors,
// visitors given a token and kept sessions, signed and encrypted in both
// formats, for `elixir testdata/plugvectors.exs check FILE` to verify with
// Plug's code (see the script). Without the variable it is skipped.
func TestWriteElixirCheck(t *testing.T) {
	path := os.Getenv("PLUGSESSION_CHECK")
	if path == "" {
		t.Skip("PLUGSESSION_CHECK not set")
	}
	v := loadVectors(t)
	var out strings.Builder
	for _, c := range []struct {
		kind string
		mod  func(*SplicerConfig)
		user string
	}{
		{"signed", nil, v.Sessions[3].Signed},
		{"encrypted", func(c *SplicerConfig) { c.Session.EncryptionSalt = v.EncryptionSalt }, v.Sessions[3].Encrypted},
		{"encrypted", func(c *SplicerConfig) {
			c.Session.EncryptionSalt = v.EncryptionSalt
			c.Session.Encryption = A128GCM
		}, v.Sessions[3].Encrypted},
	} {
		s := testSplicer(t, v, c.mod)
		page, err := NewPage(phxPage(v.CSRFMask[0].Masked), mustFind(t, phxPage(v.CSRFMask[0].Masked)))
		if err != nil {
			t.Fatal(err)
		}
		for _, cookies := range [][]string{nil, {"_my_app_key=" + c.user}} {
			r, err := s.Splice(page, cookies)
			if err != nil {
				t.Fatal(err)
			}
			_, value, _, _ := ParseSetCookie(r.SetCookie)
			fmt.Fprintf(&out, "%s %s %s\n", c.kind, value, r.Token())
			// The kept case: the cookie just made, sent back.
			r2, err := s.Splice(page, []string{"_my_app_key=" + value})
			if err != nil || r2.Session != SessionKept {
				t.Fatalf("second visit: %v, %v", r2, err)
			}
			fmt.Fprintf(&out, "%s %s %s\n", c.kind, value, r2.Token())
		}
	}
	if err := os.WriteFile(path, []byte(out.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustFind(t testing.TB, body []byte) []Span {
	t.Helper()
	s, err := FindTokens(body, FindOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}
