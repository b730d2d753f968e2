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
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/firstrender/firstrender/httpcache/liveview/erlterm"
	"github.com/firstrender/firstrender/httpcache/liveview/phxtoken"
)

// DefaultSecretKeyBase is the secret_key_base the demo signs its tokens with
// when Config.SecretKeyBase is empty. It is published here, so it protects
// nothing: it only makes the tokens verifiable (firstrender's
// --lv-secret-key-base accepts it).
const DefaultSecretKeyBase = "firstrender-demo-secret-key-base-this-is-public-do-not-use-it-anywhere-0123456789"

// DefaultSigningSalt is the LiveView signing salt used when
// Config.SigningSalt is empty.
const DefaultSigningSalt = "firstrender-demo-lv"

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

	// PhxNew makes the demo behave like an unmodified phx.new application
	// for the session and CSRF token (phx.go): GET / loads the session
	// cookie, puts a CSRF token into a session without one (and then sets
	// the cookie), shows it in the csrf-token meta tag and a form posting
	// to /contact (checked like protect_from_forgery), and the live socket
	// loads the cookie session only with a valid _csrf_token param,
	// refusing joins without it.
	PhxNew bool
	// SessionCookie and SessionSigningSalt are the PhxNew session's
	// Plug.Session :key and :signing_salt (signed with SecretKeyBase). If
	// empty, DefaultSessionCookie and DefaultSessionSigningSalt.
	SessionCookie, SessionSigningSalt string
	// NodeModules and Tick configure the live socket (LiveConfig).
	NodeModules string
	Tick        time.Duration
}

func (c *Config) setDefaults() {
	if c.SessionCookie == "" {
		c.SessionCookie = DefaultSessionCookie
	}
	if c.SessionSigningSalt == "" {
		c.SessionSigningSalt = DefaultSessionSigningSalt
	}
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
	signer  *phxtoken.Signer
	renders atomic.Int64 // first renders of / served
	liveVsn int64        // live_session version, fixed per process
	mux     *http.ServeMux

	session                   *phxSession // PhxNew only
	csrfAccepted, csrfRefused atomic.Int64
}

// New returns the demo origin as an http.Handler. It is safe for concurrent
// use.
func New(cfg Config) http.Handler {
	cfg.setDefaults()
	o := &origin{cfg: cfg, liveVsn: cfg.Now().UnixNano()}
	signer, err := phxtoken.NewSigner(cfg.SecretKeyBase, cfg.SigningSalt)
	if err != nil {
		panic("demo: " + err.Error()) // unreachable: setDefaults fills the secret
	}
	o.signer = signer
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", o.home)
	mux.HandleFunc("POST /{$}", o.post)
	mux.HandleFunc("GET /account", o.account)
	if cfg.PhxNew {
		o.session = newPhxSession(cfg.SecretKeyBase, cfg.SessionSigningSalt, cfg.SessionCookie)
		mux.HandleFunc("POST /contact", o.contact)
	}
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
	lc := LiveConfig{SecretKeyBase: o.cfg.SecretKeyBase, SigningSalt: o.cfg.SigningSalt, Now: o.cfg.Now, Logger: o.cfg.Logger,
		NodeModules: o.cfg.NodeModules, Tick: o.cfg.Tick}
	if o.session != nil {
		lc.session = o.session
	}
	h := LiveHandler(lc)
	mux.Handle("/live/websocket", h)
	mux.Handle("GET /assets/", h)
}

// page is what one first render shows.
type page struct {
	Title, CSRF         string
	ID, Session, Static string
	Body                string
	After               string // after the LiveView container (not replaced when it goes live)
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
	if o.session != nil {
		// phx.new: fetch_session, then the layout's get_csrf_token().
		masked, changed := o.session.csrfToken(o.session.load(r.Header["Cookie"]))
		if changed != nil {
			o.session.setCookie(w, changed)
		}
		p.CSRF = masked
		p.Title = "firstrender demo: a phx.new page (session cookie and CSRF token)"
		p.After = contactForm(masked) + "\n"
	}
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
%s%s</body>
</html>
`, csrf, html.EscapeString(p.Title), p.Session, p.Static, p.ID, p.Body, p.RenderedAt.Format(time.RFC3339), p.Render, p.After, LiveScripts)
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

// sessionToken signs LiveView's root data-phx-session data
// (phxtoken.SessionData); session nil means an empty, public session.
func (o *origin) sessionToken(id string, now time.Time, session map[string]string) string {
	var sess erlterm.Map
	keys := make([]string, 0, len(session))
	for k := range session {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		sess = append(sess, erlterm.MapPair{Key: erlterm.Binary(k), Value: erlterm.Binary(session[k])})
	}
	return o.sign(phxtoken.SessionData(phxtoken.Session{
		ID:             id,
		View:           "FirstrenderDemoWeb.PageLive",
		Router:         "FirstrenderDemoWeb.Router",
		LiveSessionVsn: o.liveVsn,
		Session:        sess,
	}), now)
}

// staticToken signs data-phx-static data (phxtoken.StaticData).
func (o *origin) staticToken(id string, now time.Time) string {
	return o.sign(phxtoken.StaticData(id), now)
}

// sign produces what Phoenix.Token.sign does for data signed at now with
// the default max age: "SFMyNTY.<term_to_binary({data, ms, 86400})>.<HMAC>".
func (o *origin) sign(data erlterm.Term, now time.Time) string {
	tok, err := o.signer.Sign(data, now, phxtoken.DefaultTokenMaxAge) // as a real LiveView page's tokens; LiveView verifies them with 14 days
	if err != nil {
		// Only a term the encoder cannot write fails; ours are fixed shapes.
		panic("demo: signing a token: " + err.Error())
	}
	return tok
}
