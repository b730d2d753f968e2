package plugsession

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/firstrender/firstrender/httpcache/liveview/erlterm"
)

// Page is a stored first render and the spans where its CSRF token is. It
// is immutable and safe for concurrent use; it does not copy the body, which
// must not be modified while the Page is in use.
type Page struct {
	body  []byte
	spans []Span
}

// NewPage checks spans against body (sorted, not overlapping, inside the
// body, each [MaskedTokenSize] bytes and all holding the same text) and
// returns the Page. Use it for spans recorded by [FindTokens] when the page
// was stored. Errors are [*FindError]s wrapping [ErrInconsistent] or
// [ErrNoToken].
func NewPage(body []byte, spans []Span) (*Page, error) {
	if len(spans) == 0 {
		return nil, findErr(ErrNoToken, -1, "no spans")
	}
	prev := 0
	for _, s := range spans {
		if s.Start < prev || s.End-s.Start != MaskedTokenSize || s.End > len(body) {
			return nil, findErr(ErrInconsistent, s.Start, "span [%d,%d) is out of order, overlapping, outside the %d-byte body or not %d bytes", s.Start, s.End, len(body), MaskedTokenSize)
		}
		if string(body[s.Start:s.End]) != string(body[spans[0].Start:spans[0].End]) {
			return nil, findErr(ErrInconsistent, s.Start, "spans hold different texts")
		}
		prev = s.End
	}
	return &Page{body: body, spans: spans}, nil
}

// Len is the length of the page, spliced or not: every masked token has
// [MaskedTokenSize] bytes.
func (p *Page) Len() int { return len(p.body) }

// Spans returns the page's spans; the caller must not modify them.
func (p *Page) Spans() []Span { return p.spans }

// SessionState says what a [Splicer] did with the visitor's session.
type SessionState uint8

const (
	// SessionKept: the visitor's cookie verified and its session had a
	// token; no Set-Cookie is sent.
	SessionKept SessionState = iota + 1
	// SessionTokenAdded: the visitor's session verified but had no valid
	// token; it is sent back with one added.
	SessionTokenAdded
	// SessionCreated: the visitor had no usable session cookie (none, or one
	// Plug would read as empty); a new session holding only a token is sent.
	SessionCreated
)

func (s SessionState) String() string {
	switch s {
	case SessionKept:
		return "kept"
	case SessionTokenAdded:
		return "token added"
	case SessionCreated:
		return "created"
	}
	return "unknown"
}

// SplicerConfig configures a [Splicer].
type SplicerConfig struct {
	// Session describes the origin's cookie store and secret.
	Session Config
	// CookieName is the session cookie's name (Plug.Session's :key, e.g.
	// "_my_app_key"). Required.
	CookieName string
	// Cookie holds the attributes the origin set on the session cookie
	// ([ParseSetCookie] of its Set-Cookie); they are replayed unchanged.
	Cookie CookieAttrs
	// Now gives the time Expires is computed from. If nil, time.Now.
	Now func() time.Time
}

// Splicer makes the per-visitor parts of a spliced page: the masked token
// and, when the visitor needs one, the session cookie, exactly as
// Plug.CSRFProtection and Plug.Session.COOKIE would have made them. It is
// safe for concurrent use.
type Splicer struct {
	codec  *Codec
	name   string
	cookie CookieAttrs
	now    func() time.Time
}

// NewSplicer validates cfg and derives the session keys. Errors wrap
// [ErrConfig].
func NewSplicer(cfg SplicerConfig) (*Splicer, error) {
	if cfg.CookieName == "" || strings.ContainsAny(cfg.CookieName, "=; \t\r\n,") {
		return nil, wrapConfig(fmt.Sprintf("session cookie name %q is empty or not a cookie name", cfg.CookieName))
	}
	c, err := NewCodec(cfg.Session)
	if err != nil {
		return nil, err
	}
	s := &Splicer{codec: c, name: cfg.CookieName, cookie: cfg.Cookie, now: cfg.Now}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// WithCookie returns a Splicer like s that writes its Set-Cookie lines
// with attrs (the attributes the origin set on a particular page's
// cookie, [Prepared].Cookie) instead of the configured ones. It shares
// s's keys; deriving nothing, it is cheap enough to call once per stored
// page loaded.
func (s *Splicer) WithCookie(attrs CookieAttrs) *Splicer {
	c := *s
	c.cookie = attrs
	return &c
}

// CookieName returns the session cookie's name.
func (s *Splicer) CookieName() string { return s.name }

// Codec returns the splicer's session codec.
func (s *Splicer) Codec() *Codec { return s.codec }

// Result is one visitor's spliced page. Write it with [Result.WriteTo]; it
// references the [Page]'s body without copying it.
type Result struct {
	page  *Page
	token [MaskedTokenSize]byte
	// SetCookie is the Set-Cookie line to send, or "" when the visitor's
	// session already holds a token (SessionKept).
	SetCookie string
	// Session says which of the three cases applied.
	Session SessionState
	// Discarded is why the visitor's session cookie was not used (it was
	// invalid, too large or undecodable, all of which Plug reads as an
	// empty session), or nil.
	Discarded error
}

// Token returns the masked token spliced in.
func (r *Result) Token() string { return string(r.token[:]) }

// Len returns the body length to send as Content-Length: the stored page's.
func (r *Result) Len() int64 { return int64(len(r.page.body)) }

// Segments returns the body as slices to write in order (prefix, token,
// middle, token, …, suffix). They alias the page and the result; the
// caller must not modify them.
func (r *Result) Segments() [][]byte {
	segs := make([][]byte, 0, 2*len(r.page.spans)+1)
	at := 0
	for _, sp := range r.page.spans {
		segs = append(segs, r.page.body[at:sp.Start], r.token[:])
		at = sp.End
	}
	return append(segs, r.page.body[at:])
}

// WriteTo writes the spliced body to w, the stored bytes straight from the
// page, implementing [io.WriterTo].
func (r *Result) WriteTo(w io.Writer) (int64, error) {
	var n int64
	at := 0
	for _, sp := range r.page.spans {
		m, err := w.Write(r.page.body[at:sp.Start])
		n += int64(m)
		if err != nil {
			return n, err
		}
		m, err = w.Write(r.token[:])
		n += int64(m)
		if err != nil {
			return n, err
		}
		at = sp.End
	}
	m, err := w.Write(r.page.body[at:])
	return n + int64(m), err
}

var _ io.WriterTo = (*Result)(nil)

// Splice makes page's per-visitor parts for a request whose Cookie header
// lines are cookieHeaders (r.Header["Cookie"]):
//
//   - a session cookie that verifies and holds a 24-byte "_csrf_token":
//     that token, freshly masked; no Set-Cookie (SessionKept);
//   - one that verifies to a map without a usable token: a fresh token
//     added to it, the session re-sealed into a Set-Cookie
//     (SessionTokenAdded);
//   - no cookie, or one Plug would read as an empty session (bad
//     signature, other secret or salt, too large, undecodable): a new
//     session holding only a fresh token (SessionCreated), Result.Discarded
//     telling why.
//
// It returns an error, and the caller must forward the request uncached,
// when the session verifies but is not a map ([ErrNotMap]: the origin
// cannot serve it either), when the new Set-Cookie would exceed 4096 bytes
// ([ErrTooLarge], Plug's CookieOverflowError), or when random fails.
func (s *Splicer) Splice(page *Page, cookieHeaders []string) (*Result, error) {
	r := &Result{page: page, Session: SessionCreated}
	var sess erlterm.Map
	if v, ok := RequestCookie(cookieHeaders, s.name); ok {
		m, err := s.codec.Decode(v)
		switch {
		case err == nil:
			if tok, ok := SessionToken(m); ok {
				if err := s.mask(r, tok); err != nil {
					return nil, err
				}
				r.Session = SessionKept
				return r, nil
			}
			sess, r.Session = m, SessionTokenAdded
		case errors.Is(err, ErrNotMap):
			return nil, err
		default:
			r.Discarded = err
		}
	}
	tok, err := GenerateToken(s.codec.random)
	if err != nil {
		return nil, err
	}
	value, err := s.codec.Encode(PutToken(sess, tok))
	if err != nil {
		return nil, err
	}
	line := s.cookie.Format(s.name, value, s.now())
	if len(line) > DefaultMaxCookieSize {
		return nil, fmt.Errorf("%w: the session cookie would be %d bytes, Plug's limit is %d", ErrTooLarge, len(line), DefaultMaxCookieSize)
	}
	if err := s.mask(r, tok); err != nil {
		return nil, err
	}
	r.SetCookie = line
	return r, nil
}

func (s *Splicer) mask(r *Result, unmasked string) error {
	mask, err := GenerateToken(s.codec.random)
	if err != nil {
		return err
	}
	return maskInto(&r.token, unmasked, mask)
}

// Prepared is what [Splicer.Prepare] learnt from an origin's first render.
type Prepared struct {
	Page *Page
	// Cookie holds the attributes of the origin's session cookie, to
	// configure the serving Splicer with.
	Cookie CookieAttrs
	// Encryption is the format of the origin's cookie when encrypted.
	Encryption Encryption
}

// ErrNotSpliceable is wrapped by [Splicer.Prepare] errors about the
// response's cookies and session.
var ErrNotSpliceable = errors.New("plugsession: first render cannot be spliced")

// Prepare checks a first render the origin made for a request without a
// session cookie, before it is stored: its Set-Cookie lines must be exactly
// one, the configured session cookie, which must verify (or decrypt) with
// the configured secret and salts (else the error wraps [ErrInvalid] too: a
// wrong secret shows on the first request) and hold a session with nothing
// but a 24-byte "_csrf_token"; and the body's token occurrences, found by
// [FindTokens], must all be a masking of that token. An encrypted origin
// cookie in the plug_crypto 1.x format requires Session.Encryption A128GCM
// (the origin could not read an XCP cookie). Errors wrap
// [ErrNotSpliceable] or are [*FindError]s.
func (s *Splicer) Prepare(body []byte, setCookies []string) (*Prepared, error) {
	var value string
	var attrs CookieAttrs
	found := false
	for _, line := range setCookies {
		name, v, a, err := ParseSetCookie(line)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrNotSpliceable, err)
		}
		if name != s.name {
			return nil, fmt.Errorf("%w: the response sets cookie %q besides the session", ErrNotSpliceable, name)
		}
		if found {
			return nil, fmt.Errorf("%w: the response sets the session cookie twice", ErrNotSpliceable)
		}
		value, attrs, found = v, a, true
	}
	if !found {
		return nil, fmt.Errorf("%w: the response sets no %q session cookie (is the cookie name right?)", ErrNotSpliceable, s.name)
	}
	m, err := s.codec.Decode(value)
	if err != nil {
		return nil, fmt.Errorf("%w: the origin's session cookie does not load with the configured secret_key_base and salts: %w", ErrNotSpliceable, err)
	}
	tok, ok := SessionToken(m)
	if !ok || len(m) != 1 {
		return nil, fmt.Errorf("%w: the origin's new session holds %d entries, want only a %q", ErrNotSpliceable, len(m), SessionKey)
	}
	spans, err := FindTokens(body, FindOptions{SessionToken: tok})
	if err != nil {
		return nil, err
	}
	p, err := NewPage(body, spans)
	if err != nil {
		return nil, err
	}
	enc := s.codec.enc
	if s.codec.Encrypted() {
		enc = XChaCha20Poly1305
		if strings.HasPrefix(value, a128Prefix) {
			enc = A128GCM
		}
		if enc == A128GCM && s.codec.enc != A128GCM {
			return nil, fmt.Errorf("%w: the origin writes plug_crypto 1.x (A128GCM) cookies; configure Encryption A128GCM", ErrNotSpliceable)
		}
	}
	return &Prepared{Page: p, Cookie: attrs, Encryption: enc}, nil
}
