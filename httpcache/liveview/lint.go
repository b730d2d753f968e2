package liveview

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/firstrender/firstrender/httpcache"
	"github.com/firstrender/firstrender/httpcache/liveview/erlterm"
	"github.com/firstrender/firstrender/httpcache/liveview/phxtoken"
)

// Annotation keys the [Linter] sets on a stored record; the third,
// [phxtoken.AnnotationTokens] ("liveview.tokens"), is declared in phxtoken
// because the live-socket join guard reads it too. docs/annotations.md
// lists the whole namespace.
const (
	// AnnotationFindings holds the findings as a JSON array of [Finding]
	// (read back with [DecodeFindings]). Present whenever the page had a
	// finding or a token; "[]" when it had tokens but no finding.
	AnnotationFindings = "liveview.findings"
	// AnnotationExpires holds the earliest effective token expiry (RFC 3339,
	// UTC, whole seconds), before the safety margin is taken off. Absent
	// when no token's expiry could be read.
	AnnotationExpires = "liveview.expires"
)

// Kind names a kind of finding. Each kind has its own [Action] in
// [Config.Policy].
type Kind string

// The kinds of findings; docs/liveview.md explains each one.
const (
	// KindCSRFMeta: a <meta name="csrf-token"> with a non-empty content.
	// Strip blanks the content attribute.
	KindCSRFMeta Kind = "csrf-meta"
	// KindSetCookie: the response has Set-Cookie. Strip drops the header.
	KindSetCookie Kind = "set-cookie"
	// KindVaryCookie: the response varies on Cookie. Strip removes Cookie
	// from Vary (the page is then shared across cookies).
	KindVaryCookie Kind = "vary-cookie"
	// KindUserSession: a data-phx-session token carries a non-empty user
	// session map. Cannot be stripped (the token is signed).
	KindUserSession Kind = "user-session"
	// KindTokenExpiring: a token expires (minus the margin) before the
	// page could be served at all. Cannot be stripped.
	KindTokenExpiring Kind = "token-expiring"
	// KindBadToken: a data-phx-session/data-phx-static value or an
	// SFMyNTY.-prefixed value does not parse; its expiry is unknown.
	KindBadToken Kind = "bad-token"
	// KindEncryptedToken: an encrypted Phoenix token; its expiry is unknown.
	KindEncryptedToken Kind = "encrypted-token"
	// KindBadSignature: a token does not verify with [Config.Signer].
	KindBadSignature Kind = "bad-signature"
	// KindEncodedBody: an HTML body with a Content-Encoding the linter
	// cannot read (anything but gzip, or gzip that does not decompress
	// within 32 MiB), so its tokens cannot be seen.
	KindEncodedBody Kind = "encoded-body"
	// KindSplice: with [Config].Splice, a first render whose only
	// per-visitor parts look like the CSRF token and a fresh session
	// cookie, but which cannot be spliced (the message says why: a wrong
	// secret or salt, another cookie, a token where no splice reaches it).
	// Always refused.
	KindSplice Kind = "splice"
)

// Kinds lists every kind, in documentation order.
var Kinds = []Kind{KindCSRFMeta, KindSetCookie, KindVaryCookie, KindUserSession, KindTokenExpiring, KindBadToken, KindEncryptedToken, KindBadSignature, KindEncodedBody, KindSplice}

var strippable = map[Kind]bool{KindCSRFMeta: true, KindSetCookie: true, KindVaryCookie: true}

// Severity ranks a finding.
type Severity string

const (
	// SeverityInfo: harmless to cache, worth knowing.
	SeverityInfo Severity = "info"
	// SeverityWarning: caching works but costs something (hit ratio).
	SeverityWarning Severity = "warning"
	// SeverityError: caching it as is serves broken or private pages.
	SeverityError Severity = "error"
)

var severities = map[Kind]Severity{
	KindCSRFMeta: SeverityError, KindSetCookie: SeverityError, KindVaryCookie: SeverityWarning,
	KindUserSession: SeverityError, KindTokenExpiring: SeverityError, KindBadToken: SeverityError,
	KindEncryptedToken: SeverityWarning, KindBadSignature: SeverityError, KindEncodedBody: SeverityWarning,
	KindSplice: SeverityError,
}

// Action is what the linter does about a finding.
type Action int

const (
	// Refuse keeps the response out of the store.
	Refuse Action = iota + 1
	// Strip stores the response with the offending part removed: the CSRF
	// meta content blanked, Set-Cookie dropped, Cookie taken out of Vary.
	Strip
	// Allow stores the response as it is; the finding is still recorded.
	Allow
	// Splice is recorded on the csrf-meta and set-cookie findings of a
	// page stored for splicing ([Config].Splice): the token is spliced
	// per visitor, the Set-Cookie made per visitor. It is not a policy.
	Splice
)

// String returns "refuse", "strip" or "allow".
func (a Action) String() string {
	switch a {
	case Refuse:
		return "refuse"
	case Strip:
		return "strip"
	case Allow:
		return "allow"
	case Splice:
		return "splice"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// MarshalText implements [encoding.TextMarshaler].
func (a Action) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText implements [encoding.TextUnmarshaler] with [ParseAction].
func (a *Action) UnmarshalText(b []byte) error {
	v, err := ParseAction(string(b))
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// ParseAction parses "refuse", "strip" or "allow" (for flags), and
// "splice" (as recorded in findings; not a policy).
func ParseAction(s string) (Action, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "splice":
		return Splice, nil
	case "refuse":
		return Refuse, nil
	case "strip":
		return Strip, nil
	case "allow":
		return Allow, nil
	}
	return 0, fmt.Errorf("liveview: unknown action %q (want refuse, strip or allow)", s)
}

// DefaultPolicy returns the default action per kind: the safe choice.
// Everything that would hand one visitor's data to others, or serve a page
// that cannot go live, is refused; Vary: Cookie is allowed because the
// proxy honours Vary (every cookie gets its own entry).
func DefaultPolicy() map[Kind]Action {
	p := make(map[Kind]Action, len(Kinds))
	for _, k := range Kinds {
		p[k] = Refuse
	}
	p[KindVaryCookie] = Allow
	return p
}

// Defaults of [Config].
const (
	DefaultMargin = 5 * time.Minute
)

// Config configures a [Linter]. The zero value is usable.
type Config struct {
	// Policy maps a kind to its action. Kinds missing from the map get
	// their [DefaultPolicy] action. Strip is valid only for csrf-meta,
	// set-cookie and vary-cookie.
	Policy map[Kind]Action
	// LiveViewMaxAge is the max age the application's LiveView verifies
	// data-phx-session and data-phx-static tokens with; it overrides the
	// max age embedded in those tokens. If zero, phxtoken.DefaultLiveViewMaxAge
	// (14 days, phoenix_live_view's @max_session_age). Negative: use the
	// embedded max age (86400 s unless the app signs with another).
	LiveViewMaxAge time.Duration
	// TokenMaxAge is the verifier max age for other Phoenix tokens in the
	// page (any other SFMyNTY.-prefixed attribute). If zero, the embedded
	// max age applies.
	TokenMaxAge time.Duration
	// Margin is taken off the earliest token expiry to give Verdict.NotAfter:
	// the page stops being served this long before its first token
	// expires, so a visitor who loads it has time to join. If zero,
	// DefaultMargin (5 minutes); negative means no margin.
	Margin time.Duration
	// Signer, if set, verifies every token's signature (secret_key_base +
	// LiveView signing salt); a mismatch is a bad-signature finding. If
	// nil, signatures are not checked.
	Signer *phxtoken.Signer
	// Now returns the current time, for token-expiring. If nil, time.Now.
	Now func() time.Time
	// Splice, if set, stores first renders whose only per-visitor parts
	// are the CSRF token and a fresh session cookie for splicing
	// (Verdict.Splice; give the same Splicer to the proxy as
	// httpcache.Config.Splicer). If nil, such pages follow the csrf-meta
	// and set-cookie policies.
	Splice *Splicer
}

// Linter lints LiveView first renders; it implements httpcache.Inspector.
// It is safe for concurrent use.
type Linter struct {
	policy         map[Kind]Action
	liveViewMaxAge time.Duration
	tokenMaxAge    time.Duration
	margin         time.Duration
	signer         *phxtoken.Signer
	splicer        *Splicer
	now            func() time.Time
	decoder        erlterm.Decoder
}

var _ httpcache.Inspector = (*Linter)(nil)

// New validates cfg and returns a Linter. It fails on an unknown kind or
// action in Policy, or Strip for a kind that cannot be stripped.
func New(cfg Config) (*Linter, error) {
	l := &Linter{policy: DefaultPolicy(), signer: cfg.Signer, splicer: cfg.Splice, now: cfg.Now}
	for k, a := range cfg.Policy {
		if _, ok := severities[k]; !ok {
			return nil, fmt.Errorf("liveview: policy for unknown finding kind %q", k)
		}
		if k == KindSplice && a != Refuse {
			return nil, fmt.Errorf("liveview: policy %s=%s: a page that cannot be spliced is always refused", k, a)
		}
		switch a {
		case Refuse, Allow:
		case Strip:
			if !strippable[k] {
				return nil, fmt.Errorf("liveview: policy %s=strip: %s cannot be stripped (use refuse or allow)", k, k)
			}
		case Splice:
			return nil, fmt.Errorf("liveview: policy %s=splice: splice is not a policy; configure Config.Splice", k)
		default:
			return nil, fmt.Errorf("liveview: policy for %s: invalid action %d", k, int(a))
		}
		l.policy[k] = a
	}
	switch {
	case cfg.LiveViewMaxAge == 0:
		l.liveViewMaxAge = phxtoken.DefaultLiveViewMaxAge
	case cfg.LiveViewMaxAge > 0:
		l.liveViewMaxAge = cfg.LiveViewMaxAge
	}
	if cfg.TokenMaxAge > 0 {
		l.tokenMaxAge = cfg.TokenMaxAge
	}
	switch {
	case cfg.Margin == 0:
		l.margin = DefaultMargin
	case cfg.Margin > 0:
		l.margin = cfg.Margin
	}
	if l.now == nil {
		l.now = time.Now
	}
	return l, nil
}

// Policy returns the action for kind.
func (l *Linter) Policy(kind Kind) Action { return l.policy[kind] }

// Finding is one thing the linter noticed.
type Finding struct {
	Kind     Kind     `json:"kind"`
	Severity Severity `json:"severity"`
	Action   Action   `json:"action"`
	// Message is one line an operator understands.
	Message string `json:"message"`
}

// FoundToken is a Phoenix token found in a page.
type FoundToken struct {
	// Attr is the attribute that holds it ("data-phx-session"), or "" when
	// the token is not an attribute value.
	Attr string `json:"attr,omitempty"`
	// Offset is the token's byte offset in the body.
	Offset int `json:"offset"`
	// Hash is [phxtoken.TokenHash] of the token text.
	Hash string `json:"hash"`
	// Token is the parsed token; nil when Err is set.
	Token *phxtoken.Token `json:"-"`
	// Err is why the token did not parse.
	Err error `json:"-"`
	// Expires is the effective expiry (zero when unknown).
	Expires time.Time `json:"expires,omitzero"`
	// Signature is the outcome of the signature check.
	Signature phxtoken.SignatureStatus `json:"signature"`
}

// Report is the result of [Linter.Lint].
type Report struct {
	Findings []Finding
	Tokens   []FoundToken
	// Expires is the earliest effective token expiry (zero: no readable token).
	Expires time.Time
	// NotAfter is Expires minus the margin (zero when Expires is zero).
	NotAfter time.Time
	// csrf holds the spans of non-empty CSRF meta content values (in the
	// decoded body when gzipped is set).
	csrf [][2]int
	// gzipped is the decompressed body of a gzip-encoded response.
	gzipped []byte
}

// DecodeFindings reads back the liveview.findings annotation (as the admin
// API and the TUI show it). An empty annotation gives no findings.
func DecodeFindings(annotation string) ([]Finding, error) {
	if annotation == "" {
		return nil, nil
	}
	var fs []Finding
	if err := json.Unmarshal([]byte(annotation), &fs); err != nil {
		return nil, fmt.Errorf("liveview: %s annotation: %w", AnnotationFindings, err)
	}
	return fs, nil
}

// Refused returns the first finding whose action is Refuse.
func (r *Report) Refused() (Finding, bool) {
	for _, f := range r.Findings {
		if f.Action == Refuse {
			return f, true
		}
	}
	return Finding{}, false
}

// refusal is the finding the refusal is named after: the first refused
// one, or with a splicer the first refused one a splice could not have
// handled (the CSRF token and session cookie are then not the reason).
func (r *Report) refusal(splicing bool) (Finding, bool) {
	if splicing {
		for _, f := range r.Findings {
			if f.Action == Refuse && f.Kind != KindCSRFMeta && f.Kind != KindSetCookie {
				return f, true
			}
		}
	}
	return r.Refused()
}

// Inspect implements httpcache.Inspector: it lints res, applies the
// policy (stripping when the policy says so: the header in place, the
// body by replacing res.Body with a blanked copy), and returns the
// verdict with the liveview.* annotations and NotAfter.
func (l *Linter) Inspect(r *http.Request, res *httpcache.Response) httpcache.Verdict {
	rep := l.Lint(res.Header, res.Body)
	var v httpcache.Verdict
	if l.splicer != nil && spliceable(&rep) {
		l.splice(&rep, res, &v)
	}
	if f, ok := rep.refusal(l.splicer != nil); ok {
		v.Refuse = "liveview-" + string(f.Kind)
	} else {
		l.apply(&rep, res)
	}
	v.NotAfter = rep.NotAfter
	if len(rep.Findings) == 0 && len(rep.Tokens) == 0 {
		// Present though empty: the page was linted and holds no token,
		// so the join guard never maps a (made-up) join to it.
		v.Annotations = map[string]string{phxtoken.AnnotationTokens: ""}
		return v
	}
	v.Annotations = map[string]string{}
	findings := rep.Findings
	if findings == nil {
		findings = []Finding{}
	}
	js, _ := json.Marshal(findings)
	v.Annotations[AnnotationFindings] = string(js)
	if !rep.Expires.IsZero() {
		v.Annotations[AnnotationExpires] = rep.Expires.UTC().Format(time.RFC3339)
	}
	hs := make([]string, len(rep.Tokens))
	for i, t := range rep.Tokens {
		hs[i] = t.Hash
	}
	v.Annotations[phxtoken.AnnotationTokens] = strings.Join(hs, ",") // "" when none: see above
	return v
}

// apply performs the Strip actions of rep on res.
func (l *Linter) apply(rep *Report, res *httpcache.Response) {
	for _, f := range rep.Findings {
		if f.Action != Strip {
			continue
		}
		switch f.Kind {
		case KindSetCookie:
			res.Header.Del("Set-Cookie")
		case KindVaryCookie:
			var keep []string
			for _, v := range res.Header.Values("Vary") {
				for _, name := range strings.Split(v, ",") {
					name = strings.TrimSpace(name)
					if name != "" && !strings.EqualFold(name, "Cookie") {
						keep = append(keep, name)
					}
				}
			}
			res.Header.Del("Vary")
			if len(keep) > 0 {
				res.Header.Set("Vary", strings.Join(keep, ", "))
			}
		case KindCSRFMeta:
			if rep.gzipped != nil {
				res.Body = regzip(blank(rep.gzipped, rep.csrf))
			} else {
				res.Body = blank(res.Body, rep.csrf)
			}
			if res.Header.Get("Content-Length") != "" {
				res.Header.Set("Content-Length", fmt.Sprint(len(res.Body)))
			}
		}
	}
}

// maxDecodedBody bounds the decompressed size of a gzip-encoded page the
// linter reads (a gzip bomb must not exhaust memory).
const maxDecodedBody = 32 << 20

// gunzip decompresses a gzip body of at most limit bytes.
func gunzip(b []byte, limit int64) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	n, err := io.Copy(&out, io.LimitReader(zr, limit+1))
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, fmt.Errorf("decompresses to more than %d bytes", limit)
	}
	return out.Bytes(), nil
}

// regzip compresses a stripped page again for the stored copy.
func regzip(b []byte) []byte {
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Write(b)
	zw.Close()
	return out.Bytes()
}

// blank returns a copy of body with the byte spans removed.
func blank(body []byte, spans [][2]int) []byte {
	n := len(body)
	for _, s := range spans {
		n -= s[1] - s[0]
	}
	out := make([]byte, 0, n)
	prev := 0
	for _, s := range spans {
		out = append(out, body[prev:s[0]]...)
		prev = s[1]
	}
	return append(out, body[prev:]...)
}

// Lint examines a response without modifying it. The findings carry the
// configured action; Tokens lists every Phoenix token in the body. It is
// one pass per pattern over the body, each on the pattern's rarest byte
// (see pattern), with no per-byte allocation.
func (l *Linter) Lint(h http.Header, body []byte) Report {
	var rep Report
	add := func(k Kind, format string, args ...any) {
		rep.Findings = append(rep.Findings, Finding{Kind: k, Severity: severities[k], Action: l.policy[k], Message: fmt.Sprintf(format, args...)})
	}
	if n := len(h.Values("Set-Cookie")); n > 0 {
		names := cookieNames(h.Values("Set-Cookie"))
		add(KindSetCookie, "response sets %d cookie(s) (%s); stored, one visitor's cookie would be handed to every visitor", n, names)
	}
	for _, v := range h.Values("Vary") {
		if containsToken(v, "cookie") {
			add(KindVaryCookie, "response varies on Cookie: every distinct cookie gets its own cache entry, so few requests will hit")
			break
		}
	}
	html := isHTML(h.Get("Content-Type"))
	if enc := strings.TrimSpace(h.Get("Content-Encoding")); enc != "" && !strings.EqualFold(enc, "identity") {
		if !html {
			return rep
		}
		if !strings.EqualFold(enc, "gzip") && !strings.EqualFold(enc, "x-gzip") {
			add(KindEncodedBody, "HTML body is Content-Encoding: %s, so its Phoenix tokens and CSRF meta cannot be checked; have the origin send identity or gzip to firstrender", enc)
			return rep
		}
		plain, err := gunzip(body, maxDecodedBody)
		if err != nil {
			add(KindEncodedBody, "HTML body is Content-Encoding: gzip but cannot be read (%v), so its Phoenix tokens and CSRF meta cannot be checked", err)
			return rep
		}
		body = plain
		rep.gzipped = plain
	}
	if !html && patTokenPrefix.index(body) < 0 {
		return rep
	}
	l.scanTokens(&rep, body, add)
	l.scanCSRF(&rep, body, add)
	if !rep.Expires.IsZero() {
		rep.NotAfter = rep.Expires.Add(-l.margin)
		if now := l.now(); !rep.NotAfter.After(now) {
			add(KindTokenExpiring, "earliest Phoenix token expires at %s, within the %s margin of now: the page cannot go live", rep.Expires.UTC().Format(time.RFC3339), l.margin)
		}
	}
	return rep
}

func (l *Linter) scanTokens(rep *Report, body []byte, add func(Kind, string, ...any)) {
	seen := map[int]bool{}
	// Every SFMyNTY.-prefixed value, wherever it is.
	for pos := 0; ; {
		i := patTokenPrefix.index(body[pos:])
		if i < 0 {
			break
		}
		start := pos + i
		end := tokenEnd(body, start)
		pos = end
		if start > 0 && isTokenByte(body[start-1]) {
			continue // inside a longer word: not a token
		}
		seen[start] = true
		l.addToken(rep, attrBefore(body, start), start, string(body[start:end]), add)
	}
	// LiveView's own attributes, whatever their content (one pass for both).
	pat := patPhxS.s
	for pos := 0; ; {
		i := patPhxS.index(body[pos:])
		if i < 0 {
			break
		}
		rest := body[pos+i+len(pat):]
		pos += i + len(pat)
		var attr string
		switch {
		case bytes.HasPrefix(rest, []byte("ession=")):
			attr = "data-phx-session"
		case bytes.HasPrefix(rest, []byte("tatic=")):
			attr = "data-phx-static"
		default:
			continue
		}
		vs := pos + len(attr) - len(pat) + 1
		pos = vs
		if vs >= len(body) {
			break
		}
		q := body[vs]
		if q != '"' && q != '\'' {
			continue
		}
		ve := bytes.IndexByte(body[vs+1:], q)
		if ve < 0 {
			break
		}
		val := body[vs+1 : vs+1+ve]
		if len(val) == 0 || seen[vs+1] {
			continue // nested LiveViews carry "" here
		}
		seen[vs+1] = true
		l.addToken(rep, attr, vs+1, string(val), add)
	}
}

func (l *Linter) addToken(rep *Report, attr string, off int, text string, add func(Kind, string, ...any)) {
	ft := FoundToken{Attr: attr, Offset: off, Hash: phxtoken.TokenHash(text)}
	where := "a Phoenix token"
	if attr != "" {
		where = attr
	}
	tok, err := phxtoken.ParseTokenWith(text, &l.decoder)
	if err != nil {
		ft.Err = err
		add(KindBadToken, "%s at byte %d is not a readable Phoenix token (%v), so its expiry is unknown", where, off, shortErr(err))
		rep.Tokens = append(rep.Tokens, ft)
		return
	}
	ft.Token = tok
	if tok.Encrypted {
		add(KindEncryptedToken, "%s at byte %d is an encrypted Phoenix token (%s): its expiry cannot be read without the secret", where, off, tok.Protected)
		rep.Tokens = append(rep.Tokens, ft)
		return
	}
	if l.signer != nil {
		ft.Signature = l.signer.Verify(text)
		if ft.Signature == phxtoken.Invalid {
			add(KindBadSignature, "%s at byte %d does not verify with the configured secret_key_base and salt: LiveView would refuse the join", where, off)
		}
	}
	maxAge := l.tokenMaxAge
	if attr == "data-phx-session" || attr == "data-phx-static" {
		maxAge = l.liveViewMaxAge
	}
	ft.Expires = tok.ExpiresAfter(maxAge)
	if !ft.Expires.IsZero() && (rep.Expires.IsZero() || ft.Expires.Before(rep.Expires)) {
		rep.Expires = ft.Expires
	}
	if attr == "data-phx-session" {
		if sess, ok := phxtoken.UserSession(tok.Data); ok && len(sess) > 0 {
			add(KindUserSession, "data-phx-session at byte %d carries user session values (%s): this render belongs to one visitor", off, mapKeys(sess))
		}
	}
	rep.Tokens = append(rep.Tokens, ft)
}

func shortErr(err error) string {
	s := err.Error()
	s = strings.TrimPrefix(s, phxtoken.ErrMalformed.Error()+": ")
	s = strings.TrimPrefix(s, phxtoken.ErrNotToken.Error()+": ")
	if errors.Is(err, phxtoken.ErrNotToken) {
		return "not a token: " + s
	}
	return s
}

func mapKeys(m erlterm.Map) string {
	keys := make([]string, 0, len(m))
	for _, p := range m {
		keys = append(keys, brief(p.Key))
	}
	sort.Strings(keys)
	if len(keys) > 5 {
		keys = append(keys[:5], "…")
	}
	return strings.Join(keys, ", ")
}

// brief renders t for a finding message, at most 60 characters.
func brief(t erlterm.Term) string {
	s := erlterm.Format(t)
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}

func isTokenByte(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
}

func tokenEnd(b []byte, i int) int {
	for i < len(b) && isTokenByte(b[i]) {
		i++
	}
	return i
}

// attrBefore returns the attribute name whose value starts at off
// (name="VALUE, name='VALUE or name=VALUE), or "".
func attrBefore(b []byte, off int) string {
	i := off - 1
	if i >= 0 && (b[i] == '"' || b[i] == '\'') {
		i--
	}
	for i >= 0 && isSpace(b[i]) {
		i--
	}
	if i < 0 || b[i] != '=' {
		return ""
	}
	i--
	for i >= 0 && isSpace(b[i]) {
		i--
	}
	end := i + 1
	for i >= 0 && isAttrNameByte(b[i]) {
		i--
	}
	if i+1 == end || end-(i+1) > 64 {
		return ""
	}
	return strings.ToLower(string(b[i+1 : end]))
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' }

func isAttrNameByte(c byte) bool {
	return c > ' ' && c != '"' && c != '\'' && c != '>' && c != '/' && c != '=' && c != '<' && c < 0x7f
}

// scanCSRF finds <meta name="csrf-token" content="..."> tags.
func (l *Linter) scanCSRF(rep *Report, body []byte, add func(Kind, string, ...any)) {
	for pos := 0; ; {
		i := patCSRF.index(body[pos:])
		if i < 0 {
			return
		}
		hit := pos + i
		pos = hit + len(patCSRF.s)
		// The enclosing tag: back to '<' (within 1 KiB), forward to '>'.
		lt := bytes.LastIndexByte(body[max(0, hit-1024):hit], '<')
		if lt < 0 {
			continue
		}
		lt += max(0, hit-1024)
		if bytes.IndexByte(body[lt:hit], '>') >= 0 {
			continue // the hit is not inside this tag
		}
		gt := bytes.IndexByte(body[hit:], '>')
		if gt < 0 {
			return
		}
		gt += hit
		tag := body[lt:gt]
		if len(tag) < 5 || !bytes.EqualFold(tag[1:5], []byte("meta")) {
			continue
		}
		name, _, okName := attrValue(tag, "name")
		if !okName || !strings.EqualFold(string(name), "csrf-token") {
			continue
		}
		pos = gt
		content, span, ok := attrValue(tag, "content")
		if !ok || len(content) == 0 {
			continue
		}
		rep.csrf = append(rep.csrf, [2]int{lt + span[0], lt + span[1]})
		add(KindCSRFMeta, `page carries a per-session CSRF token in <meta name="csrf-token"> at byte %d; other visitors' cookies will not match it, so a LiveView socket that loads the session refuses their join`, lt)
	}
}

// attrValue returns the value of attribute name in one tag's bytes and its
// span within tag.
func attrValue(tag []byte, name string) ([]byte, [2]int, bool) {
	i := 1
	for i < len(tag) && !isSpace(tag[i]) {
		i++ // tag name
	}
	for i < len(tag) {
		for i < len(tag) && (isSpace(tag[i]) || tag[i] == '/') {
			i++
		}
		ns := i
		for i < len(tag) && isAttrNameByte(tag[i]) {
			i++
		}
		an := tag[ns:i]
		if len(an) == 0 {
			i++
			continue
		}
		for i < len(tag) && isSpace(tag[i]) {
			i++
		}
		if i >= len(tag) || tag[i] != '=' {
			continue // attribute without value
		}
		i++
		for i < len(tag) && isSpace(tag[i]) {
			i++
		}
		var vs, ve int
		if i < len(tag) && (tag[i] == '"' || tag[i] == '\'') {
			q := tag[i]
			vs = i + 1
			e := bytes.IndexByte(tag[vs:], q)
			if e < 0 {
				ve = len(tag)
			} else {
				ve = vs + e
			}
			i = ve + 1
		} else {
			vs = i
			for i < len(tag) && !isSpace(tag[i]) {
				i++
			}
			ve = i
		}
		if bytes.EqualFold(an, []byte(name)) {
			return tag[vs:ve], [2]int{vs, ve}, true
		}
	}
	return nil, [2]int{}, false
}

func isHTML(ct string) bool {
	if ct == "" {
		return true // sniffable; lint it
	}
	ct = strings.ToLower(ct)
	return strings.Contains(ct, "html")
}

// containsToken reports whether the comma-separated header value v
// contains tok (case-insensitive).
func containsToken(v, tok string) bool {
	for p := range strings.SplitSeq(v, ",") {
		if strings.EqualFold(strings.TrimSpace(p), tok) {
			return true
		}
	}
	return false
}

func cookieNames(vs []string) string {
	names := make([]string, 0, len(vs))
	for _, v := range vs {
		n, _, _ := strings.Cut(v, "=")
		names = append(names, strings.TrimSpace(n))
	}
	return strings.Join(names, ", ")
}
