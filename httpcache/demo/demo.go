// Package demo is the built-in origin that firstrender serves when it is
// started without --upstream: a tiny stand-in for a Phoenix LiveView app, so
// that one command shows a cache miss, a hit, a refused per-user page and a
// live socket.
//
// # Pages
//
//   - GET / is a public LiveView first render: a product page whose
//     <div data-phx-main> carries data-phx-session and data-phx-static
//     attributes holding real Phoenix tokens (Plug.Crypto.MessageVerifier
//     form, HMAC-SHA256, key derived from [Config.SecretKeyBase] and
//     [Config.SigningSalt] like Phoenix.Token does), signed at request time.
//     It sets no cookie and says Cache-Control: public, s-maxage=60.
//   - GET /account is a per-user page: it sets a session cookie, carries a
//     <meta name="csrf-token"> and a data-phx-session whose session map holds
//     a user id. It (wrongly, on purpose) also says public, s-maxage=60, as
//     a misconfigured application would: firstrender must refuse to store it
//     and say why in Cache-Status.
//   - POST / answers 303 See Other to /, so a form post shows invalidation.
//   - The live socket (/live/websocket, the Phoenix channel protocol) is in
//     live.go.
//
// The secret the demo signs with is public (see [DefaultSecretKeyBase]); the
// tokens are real in format only.
package demo

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"html"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// DefaultSecretKeyBase is the secret_key_base the demo signs its tokens with
// when Config.SecretKeyBase is empty. It is published here, so it protects
// nothing: it only makes the tokens verifiable (firstrender's
// --lv-secret-key-base accepts it).
const DefaultSecretKeyBase = "firstrender-demo-secret-key-base-this-is-public-do-not-use-it-anywhere-0123456789"

// DefaultSigningSalt is the LiveView signing salt used when
// Config.SigningSalt is empty.
const DefaultSigningSalt = "firstrender-demo-lv"

// TokenMaxAge is the max age embedded in the demo's tokens, in seconds: 86400,
// Plug.Crypto's default, as in the tokens of a real LiveView page. (LiveView
// itself verifies data-phx-session with its own, longer max age.)
const TokenMaxAge = 86400

// Config configures the demo origin. The zero value is ready to use.
type Config struct {
	// SecretKeyBase signs the Phoenix tokens. If empty, DefaultSecretKeyBase.
	SecretKeyBase string
	// SigningSalt is the LiveView signing salt. If empty, DefaultSigningSalt.
	SigningSalt string
	// SMaxAge is the s-maxage of the public page. If zero, 60 seconds.
	SMaxAge time.Duration
	// Now returns the current time (token signed-at, rendered-at). If nil,
	// time.Now.
	Now func() time.Time
	// Logger receives debug lines. If nil, nothing is logged.
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.SecretKeyBase == "" {
		c.SecretKeyBase = DefaultSecretKeyBase
	}
	if c.SigningSalt == "" {
		c.SigningSalt = DefaultSigningSalt
	}
	if c.SMaxAge <= 0 {
		c.SMaxAge = 60 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// origin is the demo application.
type origin struct {
	cfg     Config
	key     []byte       // derived HMAC key
	renders atomic.Int64 // first renders of / served
	liveVsn int64        // live_session version, fixed per process
	mux     *http.ServeMux
}

// New returns the demo origin as an http.Handler. It is safe for concurrent
// use.
func New(cfg Config) http.Handler {
	cfg.setDefaults()
	o := &origin{cfg: cfg, liveVsn: cfg.Now().UnixNano()}
	o.key = DeriveKey(cfg.SecretKeyBase, cfg.SigningSalt)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", o.home)
	mux.HandleFunc("POST /{$}", o.post)
	mux.HandleFunc("GET /account", o.account)
	o.mux = mux
	o.mountLive(mux)
	return o
}

func (o *origin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.mux.ServeHTTP(w, r)
}

// mountLive mounts the live socket (live.go) at /live/websocket and its
// client assets at /assets/.
func (o *origin) mountLive(mux *http.ServeMux) {
	h := LiveHandler(LiveConfig{SecretKeyBase: o.cfg.SecretKeyBase, SigningSalt: o.cfg.SigningSalt, Now: o.cfg.Now, Logger: o.cfg.Logger})
	mux.Handle("/live/websocket", h)
	mux.Handle("GET /assets/", h)
}

// page is what one first render shows.
type page struct {
	Title, CSRF         string
	ID, Session, Static string
	Body                string
	RenderedAt          time.Time
	Render              int64
}

func (o *origin) home(w http.ResponseWriter, r *http.Request) {
	now := o.cfg.Now()
	n := o.renders.Add(1)
	id := phxID()
	p := page{
		Title:      "firstrender demo: a public LiveView page",
		ID:         id,
		Session:    o.sessionToken(id, now, nil),
		Static:     o.staticToken(id, now),
		RenderedAt: now.UTC(),
		Render:     n,
		Body: `<h1>Firstrender Widget</h1>
<p>This first render is public: no cookie, no CSRF token, an empty LiveView session.
firstrender stores it and serves it to every later visitor; the page then goes live over
the Origin-checked socket at /live/websocket.</p>
<aside id="price" class="price">Price: <span id="price-value">` + strconv.FormatFloat(price(now), 'f', 2, 64) + `</span> EUR (live)</aside>`,
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "public, s-maxage="+strconv.Itoa(int(o.cfg.SMaxAge/time.Second)))
	h.Set("Vary", "Accept-Encoding")
	h.Set("Last-Modified", now.UTC().Format(http.TimeFormat))
	o.cfg.Logger.Debug("demo: rendered /", "render", n, "id", id)
	o.write(w, r, p)
}

func (o *origin) account(w http.ResponseWriter, r *http.Request) {
	now := o.cfg.Now()
	user := "visitor-" + randString(6)
	if c, err := r.Cookie(sessionCookie); err == nil && len(c.Value) <= 64 {
		user = c.Value
	}
	id := phxID()
	p := page{
		Title:      "firstrender demo: your account (per-user)",
		CSRF:       randString(24),
		ID:         id,
		Session:    o.sessionToken(id, now, map[string]string{"user_id": user}),
		Static:     o.staticToken(id, now),
		RenderedAt: now.UTC(),
		Body: `<h1>Your account</h1>
<p>Signed in as <b>` + html.EscapeString(user) + `</b>. This page belongs to one visitor: it sets a
session cookie, carries a CSRF token and a LiveView session holding the user id. The demo
application marks it public anyway (a common mistake); firstrender refuses to store it and
says why in the Cache-Status header.</p>`,
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	// Deliberately cacheable by the headers alone: the safety net is
	// firstrender's Set-Cookie rule and its LiveView lint.
	h.Set("Cache-Control", "public, s-maxage=60")
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: user, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	o.write(w, r, p)
}

// sessionCookie is the demo's session cookie name, in Phoenix's style.
const sessionCookie = "_demo_key"

func (o *origin) post(w http.ResponseWriter, r *http.Request) {
	// Read (bounded) and drop the form; the point is the unsafe method.
	io.Copy(io.Discard, io.LimitReader(r.Body, 64<<10))
	w.Header().Set("Location", "/")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusSeeOther)
	io.WriteString(w, "saved; see /\n")
}

func (o *origin) write(w http.ResponseWriter, r *http.Request, p page) {
	csrf := ""
	if p.CSRF != "" {
		csrf = `<meta name="csrf-token" content="` + html.EscapeString(p.CSRF) + `">` + "\n"
	}
	body := fmt.Sprintf(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
%s<title>%s</title>
</head>
<body>
<div data-phx-main data-phx-session="%s" data-phx-static="%s" id="%s">
%s
<p class="rendered">Rendered at %s (render #%d of /).</p>
</div>
</body>
</html>
`, csrf, html.EscapeString(p.Title), p.Session, p.Static, p.ID, p.Body, p.RenderedAt.Format(time.RFC3339), p.Render)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	if r.Method == http.MethodHead {
		return
	}
	io.WriteString(w, body)
}

// price is the ticking value in the aside: deterministic in time.
func price(t time.Time) float64 {
	s := t.Unix()
	return 100 + float64((s*7919)%1000)/100
}

// phxID returns an id in LiveView's form: "phx-" and 16 base64url characters.
func phxID() string { return "phx-" + randString(16) }

func randString(n int) string {
	b := make([]byte, (n*6+7)/8)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)[:n]
}

// ---- Phoenix tokens

// sessionToken signs LiveView's data-phx-session term:
// {5, %{id:, session:, view:, root_view:, router:, parent_pid: nil, root_pid: nil, live_session: {:default, vsn}}}.
func (o *origin) sessionToken(id string, now time.Time, session map[string]string) string {
	var sess term = emptyMap{}
	if len(session) > 0 {
		m := binMap{}
		for k, v := range session {
			m = append(m, [2]string{k, v})
		}
		sess = m
	}
	data := tuple{smallInt(5), atomMap{
		{"id", bin(id)},
		{"live_session", tuple{atom("default"), bigInt(o.liveVsn)}},
		{"parent_pid", atom("nil")},
		{"root_pid", atom("nil")},
		{"root_view", atom("Elixir.FirstrenderDemoWeb.PageLive")},
		{"router", atom("Elixir.FirstrenderDemoWeb.Router")},
		{"session", sess},
		{"view", atom("Elixir.FirstrenderDemoWeb.PageLive")},
	}}
	return o.sign(data, now)
}

// staticToken signs data-phx-static: {5, %{id:, flash: %{}, assign_new: []}}.
func (o *origin) staticToken(id string, now time.Time) string {
	data := tuple{smallInt(5), atomMap{
		{"assign_new", nilList{}},
		{"flash", emptyMap{}},
		{"id", bin(id)},
	}}
	return o.sign(data, now)
}

// sign produces Phoenix.Token.sign's output for data signed at now:
// "SFMyNTY." + base64url(term_to_binary({data, signed_at_ms, 86400})) + "." +
// base64url(HMAC-SHA256(key, first two parts)).
func (o *origin) sign(data term, now time.Time) string {
	payload := []byte{131}
	payload = tuple{data, bigInt(now.UnixMilli()), bigInt(TokenMaxAge)}.encode(payload)
	return SignPayload(o.key, payload)
}

// DeriveKey derives the HMAC key the way Plug.Crypto.KeyGenerator does for
// Phoenix.Token: PBKDF2-HMAC-SHA256, 1000 iterations, 32 bytes.
func DeriveKey(secretKeyBase, salt string) []byte {
	k, err := pbkdf2.Key(sha256.New, secretKeyBase, []byte(salt), 1000, 32)
	if err != nil {
		panic("demo: pbkdf2: " + err.Error()) // only for FIPS-mode key limits
	}
	return k
}

// SignPayload returns Plug.Crypto.MessageVerifier's HS256 form of payload
// (an encoded Erlang term) under key.
func SignPayload(key, payload []byte) string {
	const protected = "SFMyNTY" // base64url("HS256")
	plain := protected + "." + base64.RawURLEncoding.EncodeToString(payload)
	mac := hmac.New(sha256.New, key)
	io.WriteString(mac, plain)
	return plain + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// ---- just enough of the Erlang external term format to write the tokens

type term interface{ encode([]byte) []byte }

type (
	smallInt uint8
	bigInt   int64
	atom     string
	bin      string
	tuple    []term
	atomMap  []struct {
		k string
		v term
	}
	binMap   [][2]string
	emptyMap struct{}
	nilList  struct{}
)

func (i smallInt) encode(b []byte) []byte { return append(b, 97, byte(i)) } // SMALL_INTEGER_EXT

func (i bigInt) encode(b []byte) []byte {
	switch {
	case i >= 0 && i < 256:
		return append(b, 97, byte(i))
	case i >= -1<<31 && i < 1<<31:
		b = append(b, 98) // INTEGER_EXT
		return binary.BigEndian.AppendUint32(b, uint32(int32(i)))
	}
	// SMALL_BIG_EXT: n, sign, little-endian digits.
	v := big.NewInt(int64(i))
	sign := byte(0)
	if v.Sign() < 0 {
		sign = 1
		v.Neg(v)
	}
	be := v.Bytes()
	b = append(b, 110, byte(len(be)), sign)
	for j := len(be) - 1; j >= 0; j-- {
		b = append(b, be[j])
	}
	return b
}

func (a atom) encode(b []byte) []byte { // SMALL_ATOM_UTF8_EXT
	return append(append(b, 119, byte(len(a))), a...)
}

func (s bin) encode(b []byte) []byte { // BINARY_EXT
	b = append(b, 109)
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

func (t tuple) encode(b []byte) []byte { // SMALL_TUPLE_EXT
	b = append(b, 104, byte(len(t)))
	for _, e := range t {
		b = e.encode(b)
	}
	return b
}

func (m atomMap) encode(b []byte) []byte { // MAP_EXT with atom keys
	b = append(b, 116)
	b = binary.BigEndian.AppendUint32(b, uint32(len(m)))
	for _, kv := range m {
		b = atom(kv.k).encode(b)
		b = kv.v.encode(b)
	}
	return b
}

func (m binMap) encode(b []byte) []byte { // MAP_EXT with string keys and values
	b = append(b, 116)
	b = binary.BigEndian.AppendUint32(b, uint32(len(m)))
	for _, kv := range m {
		b = bin(kv[0]).encode(b)
		b = bin(kv[1]).encode(b)
	}
	return b
}

func (emptyMap) encode(b []byte) []byte { return append(b, 116, 0, 0, 0, 0) }
func (nilList) encode(b []byte) []byte  { return append(b, 106) } // NIL_EXT
