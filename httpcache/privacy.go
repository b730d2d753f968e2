package httpcache

import (
	"net/http"
	"net/textproto"
	"strings"
)

// Reasons a GET or HEAD bypasses the cache because of what it carries
// (Cache-Status detail=).
const (
	// reasonRequestAuthorization: the request carries Authorization; it
	// is never looked up nor stored, whatever the response says (stricter
	// than RFC 9111 §3.5: a shared cache cannot know the response does
	// not depend on who asked).
	reasonRequestAuthorization = "authorization"
	// reasonRequestCookie: the request carries a cookie that is not
	// declared irrelevant (Config.IgnoreCookies, Config.SessionCookies
	// under Config.PublicPrefixes, Config.AllowCookie).
	reasonRequestCookie = "cookie"
)

// methodOverrideHeaders are request fields frameworks read as the real
// method of a request (Rails' Rack::MethodOverride reads X-Http-Method-Override,
// Laravel and Symfony X-Http-Method-Override, Express's method-override
// X-Http-Method-Override / X-Http-Method / X-Method-Override). On a GET or
// HEAD they let a client make the origin answer another method's response
// (405, or a DELETE's) under the GET's key: they are removed from every
// GET and HEAD before it is forwarded (and so never key, bypass or
// reach the origin). Other methods are never stored and keep them.
var methodOverrideHeaders = []string{"X-Http-Method-Override", "X-Http-Method", "X-Method-Override"}

// cookieRules decides which request cookies a response cannot depend on
// (Config.IgnoreCookies, Config.PublicPrefixes with Config.SessionCookies,
// Config.AllowCookie).
type cookieRules struct {
	ignore   *ignoreList // everywhere
	session  *ignoreList // under public
	public   []string
	allowFun func(path, name string) bool
}

// allowed reports whether cookie name on a request for path (normalized,
// escaped) may be removed so that the request is served from the cache.
func (c *cookieRules) allowed(path, name string) bool {
	if c.ignore.match(name) {
		return true
	}
	if c.session != nil && underPrefix(path, c.public) && c.session.match(name) {
		return true
	}
	return c.allowFun != nil && c.allowFun(path, name)
}

func underPrefix(path string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// fwdPlan is how a GET or HEAD is changed to be forwarded when it goes
// through the cache (planForward decides it on the header, apply carries
// it out): method-override fields removed, cookies allowed by the cookie
// rules removed, Accept-Encoding normalized (encoding.go). For a
// per-user request (Authorization, or a cookie the rules do not allow)
// only the method overrides go, and planForward says why it is
// forwarded uncached. Every cache decision (key, variant, bypass,
// privacy) is taken on the request as forwarded: on the applied request,
// or, for a plain hit from memory with a plan that changes only
// Accept-Encoding, on variantFields (serveCacheable). The zero plan
// changes nothing.
type fwdPlan struct {
	overrides bool   // drop the method-override fields (some are present)
	cookie    edit   // the Cookie field
	cookieV   string // with editSet
	ae        edit   // the Accept-Encoding field
	aeV       string // with editSet
}

// edit is what a plan does to one field.
type edit uint8

const (
	editKeep edit = iota
	editDelete
	editSet
)

// planForward decides the plan for a request with header h to path, and
// returns the reason it is forwarded uncached ("" if it is not).
func (p *Proxy) planForward(h http.Header, path string) (fwdPlan, string) {
	var pl fwdPlan
	for _, k := range methodOverrideHeaders {
		if _, ok := h[k]; ok {
			pl.overrides = true
		}
	}
	reason := ""
	if _, ok := h["Authorization"]; ok {
		reason = reasonRequestAuthorization
	} else if cookies, ok := h["Cookie"]; ok {
		if keep, ok := p.cookiesAllowed(path, cookies); !ok {
			reason = reasonRequestCookie
		} else if keep == "" {
			pl.cookie = editDelete
		} else if len(cookies) != 1 || cookies[0] != keep {
			pl.cookie, pl.cookieV = editSet, keep
		}
	}
	if reason == "" {
		if ae, change := normalizeAcceptEncoding(h["Accept-Encoding"]); change {
			if ae == "" {
				pl.ae = editDelete
			} else {
				pl.ae, pl.aeV = editSet, ae
			}
		}
	}
	return pl, reason
}

// onlyAcceptEncoding reports whether the plan changes nothing but
// Accept-Encoding (or nothing at all): the request's other fields are
// then what the origin would see.
func (pl fwdPlan) onlyAcceptEncoding() bool { return !pl.overrides && pl.cookie == editKeep }

// variantFields returns the fields of h a variant is keyed on as the
// origin will see them after the plan, without applying it (for a plan
// that changes only Accept-Encoding).
func (pl fwdPlan) variantFields(h http.Header) variantFields {
	switch pl.ae {
	case editDelete:
		return variantFields{h: h, override: true}
	case editSet:
		return variantFields{h: h, override: true, ae: acceptEncodingValue(pl.aeV)}
	}
	return variantFields{h: h}
}

// gzipOnly is the normalized Accept-Encoding of every client that takes
// gzip, shared read-only.
var gzipOnly = []string{"gzip"}

func acceptEncodingValue(v string) []string {
	if v == "gzip" {
		return gzipOnly
	}
	return []string{v}
}

// apply returns r with the plan carried out: r itself when it changes
// nothing, else a shallow copy with its own header (r is not modified).
func (pl fwdPlan) apply(r *http.Request) *http.Request {
	if pl == (fwdPlan{}) {
		return r
	}
	out := r.Header.Clone()
	if pl.overrides {
		for _, k := range methodOverrideHeaders {
			delete(out, k)
		}
	}
	switch pl.cookie {
	case editDelete:
		delete(out, "Cookie")
	case editSet:
		out["Cookie"] = []string{pl.cookieV}
	}
	switch pl.ae {
	case editDelete:
		delete(out, "Accept-Encoding")
	case editSet:
		out["Accept-Encoding"] = []string{pl.aeV}
	}
	r2 := r.WithContext(r.Context())
	r2.Header = out
	return r2
}

// cookiesAllowed reports whether every cookie in the Cookie field lines
// is allowed on path, and returns the Cookie value to keep: the splice
// session cookie on a splice path ([Proxy.SessionCookie]), which the
// splice reads from the request and rewrite removes from fills; "" for
// none. An empty field, or one with only empty pairs, carries no cookie.
// A pair without '=' is a cookie named by the whole pair (as browsers
// send document.cookie = "x").
func (p *Proxy) cookiesAllowed(path string, lines []string) (string, bool) {
	splice := p.SessionCookie(path)
	var keep []string
	for _, line := range lines {
		for pair := range strings.SplitSeq(line, ";") {
			pair = textproto.TrimString(pair)
			if pair == "" {
				continue
			}
			name, _, _ := strings.Cut(pair, "=")
			name = textproto.TrimString(name)
			switch {
			case splice != "" && name == splice:
				keep = append(keep, pair)
			case !p.cookies.allowed(path, name):
				return "", false
			}
		}
	}
	return strings.Join(keep, "; "), true
}
