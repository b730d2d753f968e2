package liveview

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/firstrender/firstrender/httpcache"
	"github.com/firstrender/firstrender/httpcache/liveview/plugsession"
)

// SpliceConfig configures a [Splicer]: the Phoenix application's
// Plug.Session cookie store (its @session_options) and secret_key_base.
type SpliceConfig struct {
	// Session is the endpoint's secret_key_base and the session store's
	// signing_salt and (for an encrypted cookie) encryption_salt. See
	// plugsession.Config; SecretKeyBase (at least 64 bytes) and
	// SigningSalt are required.
	Session plugsession.Config
	// CookieName is the session cookie's name (Plug.Session's :key, e.g.
	// "_my_app_key"). Required.
	CookieName string
	// Logger receives the reason a first render could not be spliced (a
	// wrong secret shows there on the first request). If nil,
	// slog.Default().
	Logger *slog.Logger
}

// Splicer gives every visitor of a stored Phoenix first render their own
// CSRF token and session cookie, exactly as Plug.CSRFProtection and
// Plug.Session would have made them (issue 14; docs/liveview.md, "Session
// splice"). Set it as [Config].Splice, so the [Linter] records the splice
// points when it stores a page, and as httpcache.Config.Splicer, so the
// proxy splices every hit; it implements [httpcache.Splicer]. It holds keys
// derived from secret_key_base: it can forge any session of the
// application. It is safe for concurrent use.
type Splicer struct {
	ps  *plugsession.Splicer
	fp  string
	log *slog.Logger
}

var _ httpcache.Splicer = (*Splicer)(nil)

// NewSplicer validates cfg and derives the session keys (two PBKDF2
// derivations, once). Errors wrap plugsession.ErrConfig and never include
// the secret.
func NewSplicer(cfg SpliceConfig) (*Splicer, error) {
	ps, err := plugsession.NewSplicer(plugsession.SplicerConfig{Session: cfg.Session, CookieName: cfg.CookieName})
	if err != nil {
		return nil, fmt.Errorf("liveview: session splice: %w", err)
	}
	s := &Splicer{ps: ps, fp: ps.Codec().Fingerprint(), log: cfg.Logger}
	if s.log == nil {
		s.log = slog.Default()
	}
	return s, nil
}

// WithLogger returns a Splicer like s (the same keys) that logs to l.
func (s *Splicer) WithLogger(l *slog.Logger) *Splicer {
	c := *s
	if l != nil {
		c.log = l
	}
	return &c
}

// CookieName implements [httpcache.Splicer].
func (s *Splicer) CookieName() string { return s.ps.CookieName() }

// Encrypted reports whether the session cookie is encrypted (an
// encryption salt is configured) rather than only signed.
func (s *Splicer) Encrypted() bool { return s.ps.Codec().Encrypted() }

// spliceData is the httpcache.splice annotation of a spliced page
// (docs/annotations.md).
type spliceData struct {
	V      int                     `json:"v"`
	Key    string                  `json:"key"`   // plugsession.Codec.Fingerprint
	Spans  [][3]int                `json:"spans"` // start, end, plugsession.SpanKind
	Cookie plugsession.CookieAttrs `json:"cookie"`
}

// ErrSpliceKey is wrapped by [Splicer.Load] when a page was prepared with
// other keys (secret_key_base, salts) than the splicer's: its cookies
// would not load in the application.
var ErrSpliceKey = errors.New("liveview: the page was prepared for splicing with another secret_key_base or salts")

// Load implements [httpcache.Splicer]: it reads the splice data the
// [Linter] stored with a page and checks it against the body.
func (s *Splicer) Load(body []byte, data string) (httpcache.SplicePage, error) {
	var d spliceData
	if err := json.Unmarshal([]byte(data), &d); err != nil {
		return nil, fmt.Errorf("liveview: splice data: %w", err)
	}
	if d.V != 1 {
		return nil, fmt.Errorf("liveview: splice data version %d, want 1", d.V)
	}
	if d.Key != s.fp {
		return nil, ErrSpliceKey
	}
	spans := make([]plugsession.Span, len(d.Spans))
	for i, sp := range d.Spans {
		spans[i] = plugsession.Span{Start: sp[0], End: sp[1], Kind: plugsession.SpanKind(sp[2])}
	}
	page, err := plugsession.NewPage(body, spans)
	if err != nil {
		return nil, fmt.Errorf("liveview: splice data: %w", err)
	}
	return &splicePage{page: page, s: s.ps.WithCookie(d.Cookie)}, nil
}

type splicePage struct {
	page *plugsession.Page
	s    *plugsession.Splicer
}

// Splice implements [httpcache.SplicePage].
func (p *splicePage) Splice(cookies []string) (*httpcache.Spliced, error) {
	res, err := p.s.Splice(p.page, cookies)
	if err != nil {
		return nil, err
	}
	return &httpcache.Spliced{Body: res.Segments(), Len: res.Len(), SetCookie: res.SetCookie}, nil
}

// prepare checks a first render for splicing (plugsession.Splicer.Prepare
// on the decoded body and the response's Set-Cookie lines) and returns
// the annotation data.
func (s *Splicer) prepare(h http.Header, body []byte) (string, error) {
	pr, err := s.ps.Prepare(body, h.Values("Set-Cookie"))
	if err != nil {
		return "", err
	}
	d := spliceData{V: 1, Key: s.fp, Cookie: pr.Cookie}
	for _, sp := range pr.Page.Spans() {
		d.Spans = append(d.Spans, [3]int{sp.Start, sp.End, int(sp.Kind)})
	}
	b, err := json.Marshal(d)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// spliceable reports whether rep's refusals are only what a splice
// handles: the CSRF token and the fresh session's Set-Cookie (which must
// be there: without a new session there is nothing to splice).
func spliceable(rep *Report) bool {
	cookie := false
	for _, f := range rep.Findings {
		switch f.Kind {
		case KindSetCookie:
			cookie = true
		case KindCSRFMeta:
		default:
			if f.Action == Refuse {
				return false
			}
		}
	}
	return cookie
}

// splice tries to store res for splicing. On success the CSRF and
// Set-Cookie findings say "splice", the stored copy loses its Set-Cookie
// (and a gzip encoding: it is stored decoded, so the token can be
// spliced) and v carries the splice data. Otherwise a splice finding,
// refused, says why first.
func (l *Linter) splice(rep *Report, res *httpcache.Response, v *httpcache.Verdict) {
	body := res.Body
	if rep.gzipped != nil {
		body = rep.gzipped
	}
	data, err := l.splicer.prepare(res.Header, body)
	if err != nil {
		msg := fmt.Sprintf("the CSRF token and session cookie cannot be spliced: %v", err)
		if errors.Is(err, plugsession.ErrInvalid) {
			msg += " (check --lv-secret-key-base and the session salts against the app's config)"
		}
		l.splicer.log.Warn("liveview: first render not spliceable, not stored", "reason", msg)
		rep.Findings = append([]Finding{{Kind: KindSplice, Severity: SeverityError, Action: Refuse, Message: msg}}, rep.Findings...)
		return
	}
	for i := range rep.Findings {
		if k := rep.Findings[i].Kind; k == KindCSRFMeta || k == KindSetCookie {
			rep.Findings[i].Action = Splice
		}
	}
	res.Header.Del("Set-Cookie")
	if rep.gzipped != nil {
		res.Body = rep.gzipped
		res.Header.Del("Content-Encoding")
		if res.Header.Get("Content-Length") != "" {
			res.Header.Set("Content-Length", fmt.Sprint(len(res.Body)))
		}
	}
	v.Splice = data
}
