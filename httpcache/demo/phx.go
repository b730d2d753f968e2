package demo

// The phx.new mode ([Config].PhxNew): the demo's pages and socket behave
// like an unmodified `mix phx.new` application's for the session and the
// CSRF token, which is what firstrender's session splice (issue 14) is
// for:
//
//   - plug :fetch_session / Plug.Session (store :cookie, key
//     DefaultSessionCookie, signing_salt DefaultSessionSigningSalt, signed
//     with the demo's secret_key_base): a cookie that does not verify or
//     decode is an empty session;
//   - the root layout's <meta name="csrf-token"
//     content={get_csrf_token()}> and a form with its hidden
//     _csrf_token input: get_csrf_token/0 puts a fresh token into a
//     session that has none, and the response then sets the cookie
//     (path=/; HttpOnly; SameSite=Lax, Plug's defaults for phx.new);
//   - plug :protect_from_forgery on POST /contact: the _csrf_token param
//     (or x-csrf-token header) must be a masking of the session's token,
//     else 403 (Plug.CSRFProtection.InvalidCSRFTokenError);
//   - socket "/live", connect_info: [session: @session_options]: the
//     socket's session is loaded only when the handshake carries a
//     _csrf_token param valid for the session in the cookie
//     (Phoenix.Socket.Transport.connect_session/4); without it a join is
//     refused with reason "stale", as LiveView does ("LiveView session was
//     misconfigured or the user token is outdated").

import (
	"crypto/rand"
	"html"
	"io"
	"net/http"
	"net/url"

	"github.com/firstrender/firstrender/httpcache/liveview/erlterm"
	"github.com/firstrender/firstrender/httpcache/liveview/plugsession"
)

// Defaults of the phx.new mode's Plug.Session options.
const (
	// DefaultSessionCookie is the session cookie's name (Plug.Session :key).
	DefaultSessionCookie = "_firstrender_demo_key"
	// DefaultSessionSigningSalt is its :signing_salt.
	DefaultSessionSigningSalt = "firstrender-demo-session"
)

// phxSession is the Plug.Session cookie store of the phx.new mode.
type phxSession struct {
	codec *plugsession.Codec
	name  string
}

func newPhxSession(secretKeyBase, salt, name string) *phxSession {
	c, err := plugsession.NewCodec(plugsession.Config{SecretKeyBase: secretKeyBase, SigningSalt: salt})
	if err != nil {
		panic("demo: session store: " + err.Error()) // the demo's own secret and salt always work
	}
	return &phxSession{codec: c, name: name}
}

// load is fetch_session: the session map of the request's cookie, or nil
// (an empty session) when there is none or it does not load.
func (s *phxSession) load(cookies []string) erlterm.Map {
	v, ok := plugsession.RequestCookie(cookies, s.name)
	if !ok {
		return nil
	}
	m, err := s.codec.Decode(v)
	if err != nil {
		return nil
	}
	return m
}

// csrfToken is get_csrf_token/0: a fresh masking of the session's token;
// a session without one gets one, and the session to write back is
// returned (nil when unchanged).
func (s *phxSession) csrfToken(sess erlterm.Map) (masked string, changed erlterm.Map) {
	tok, ok := plugsession.SessionToken(sess)
	if !ok {
		tok, _ = plugsession.GenerateToken(rand.Reader)
		sess = plugsession.PutToken(sess, tok)
		changed = sess
	}
	masked, _ = plugsession.MaskNew(tok, rand.Reader)
	return masked, changed
}

// setCookie writes the session cookie as Plug.Session does for phx.new's
// @session_options (store: :cookie, same_site: "Lax").
func (s *phxSession) setCookie(w http.ResponseWriter, sess erlterm.Map) {
	v, err := s.codec.Encode(sess)
	if err != nil {
		return
	}
	w.Header().Add("Set-Cookie", s.name+"="+v+"; path=/; HttpOnly; SameSite=Lax")
}

// contactForm is the phx.new mode's form (Phoenix.Component.form/1 renders
// the hidden _csrf_token input).
func contactForm(masked string) string {
	return `
<form action="/contact" method="post" id="contact"><input name="_csrf_token" type="hidden" hidden value="` + html.EscapeString(masked) + `">
<input name="message" value="hello"><button type="submit">Send</button></form>`
}

// contact is POST /contact behind protect_from_forgery.
func (o *origin) contact(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "text/html; charset=utf-8")
	sess := o.session.load(r.Header["Cookie"])
	state, _ := plugsession.SessionToken(sess)
	b, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	form, _ := url.ParseQuery(string(b))
	given := form.Get("_csrf_token")
	if given == "" {
		given = r.Header.Get("X-Csrf-Token")
	}
	if state == "" || !plugsession.ValidMasked(state, given) {
		o.csrfRefused.Add(1)
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `<!DOCTYPE html><title>Forbidden</title><p id="result">invalid CSRF (Cross Site Request Forgery) token</p>`+"\n")
		return
	}
	o.csrfAccepted.Add(1)
	io.WriteString(w, `<!DOCTYPE html><title>Thanks</title><p id="result">accepted: `+html.EscapeString(form.Get("message"))+`</p>`+"\n")
}

// connectSession is connect_info's session for a socket handshake, as
// Phoenix.Socket.Transport loads it with connect_info: [session: ...]:
// the cookie's session when the handshake's _csrf_token param is valid
// for it, else nil.
func (s *phxSession) connectSession(r *http.Request) erlterm.Map {
	masked := r.URL.Query().Get("_csrf_token")
	if masked == "" {
		return nil
	}
	sess := s.load(r.Header["Cookie"])
	state, ok := plugsession.SessionToken(sess)
	if !ok || !plugsession.ValidMasked(state, masked) {
		return nil
	}
	return sess
}
