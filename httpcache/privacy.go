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

// forwardable returns the GET or HEAD r as it will be forwarded when it
// goes through the cache, and "" (r itself when nothing changes; else a
// shallow copy with its own header; r is not modified): method-override
// fields removed, cookies allowed by the cookie rules removed,
// Accept-Encoding normalized (encoding.go). When the request is per-user
// (Authorization, or a cookie the rules do not allow) it returns the
// request to forward uncached (method overrides removed, nothing else
// changed) and the reason. Every cache decision (key, variant, bypass,
// privacy) is then taken on the returned request.
func (p *Proxy) forwardable(r *http.Request, path string) (*http.Request, string) {
	h := r.Header
	var out http.Header // copy-on-write of h
	edit := func() http.Header {
		if out == nil {
			out = h.Clone()
		}
		return out
	}
	for _, k := range methodOverrideHeaders {
		if _, ok := h[k]; ok {
			delete(edit(), k)
		}
	}
	reason := ""
	if _, ok := h["Authorization"]; ok {
		reason = reasonRequestAuthorization
	} else if cookies, ok := h["Cookie"]; ok {
		if keep, ok := p.cookiesAllowed(path, cookies); !ok {
			reason = reasonRequestCookie
		} else if keep == "" {
			delete(edit(), "Cookie")
		} else if len(cookies) != 1 || cookies[0] != keep {
			edit()["Cookie"] = []string{keep}
		}
	}
	if reason == "" {
		if ae, change := normalizeAcceptEncoding(h["Accept-Encoding"]); change {
			if ae == "" {
				delete(edit(), "Accept-Encoding")
			} else {
				edit()["Accept-Encoding"] = []string{ae}
			}
		}
	}
	if out == nil {
		return r, reason
	}
	r2 := r.WithContext(r.Context())
	r2.Header = out
	return r2, reason
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
