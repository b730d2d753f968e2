package httpcache

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"time"
)

// AnnotationSplice marks a record whose body must be personalized before
// it is served: its value is the [Verdict].Splice data the Inspector
// returned (for the LiveView session splice, the token spans and the
// session cookie's attributes), which the [Config].Splicer reads back. A
// record carrying it is never served as stored: without a Splicer, or
// when the Splicer cannot read it, the lookup is a miss
// (detail=splice-unconfigured, splice-invalid).
const AnnotationSplice = "httpcache.splice"

// Splicer personalizes stored pages on their way out (issue 14: the
// per-visitor CSRF token and session cookie of a Phoenix app, spliced into
// a first render stored once). The proxy calls it on [Config].SplicePaths
// only; httpcache/liveview implements it. Implementations must be safe for
// concurrent use.
//
// On splice paths the proxy
//
//   - lets a response carrying Set-Cookie reach the [Inspector], which
//     may return Verdict.Splice and must remove the Set-Cookie from the
//     stored copy (else the response is refused, detail=set-cookie);
//   - forwards a cacheable GET (miss or revalidation) without the cookie
//     named by CookieName, so the origin renders the page every visitor
//     may share, and answers that visitor with their own spliced copy; if
//     the origin's answer cannot be spliced, it asks the origin again with
//     the cookie, uncached;
//   - serves every hit of a spliced record through SplicePage.Splice.
type Splicer interface {
	// CookieName is the session cookie the splice reads and writes. On
	// splice paths it is removed from requests forwarded to fill the
	// cache, and it does not make a request bypass the cache.
	CookieName() string
	// Load checks the splice data an Inspector returned (Verdict.Splice,
	// later the AnnotationSplice annotation) against the stored body and
	// returns the page to splice. It is called once per record loaded
	// (the result is kept with the in-memory entry), never per hit.
	// body must not be modified while the page is in use.
	Load(body []byte, data string) (SplicePage, error)
}

// SplicePage is a stored body with its splice points.
type SplicePage interface {
	// Splice returns one visitor's copy, given the request's Cookie
	// header lines (r.Header["Cookie"], possibly nil). An error means the
	// visitor cannot be served from the store: the proxy forwards the
	// request uncached (or answers 502 where it cannot).
	Splice(cookies []string) (*Spliced, error)
}

// Spliced is one visitor's copy of a spliced page.
type Spliced struct {
	// Body holds the segments to write in order; they alias the stored
	// body and must not be modified. Writing consumes it.
	Body net.Buffers
	// Len is the total length of Body (the Content-Length).
	Len int64
	// SetCookie is a Set-Cookie line to send with the page, or "".
	SetCookie string
}

// detailSpliced is the Cache-Status detail of a response spliced for
// its visitor.
const detailSpliced = "spliced"

// splicePath reports whether splicing applies to the normalized path.
func (p *Proxy) splicePath(path string) bool {
	if p.cfg.Splicer == nil {
		return false
	}
	for _, pre := range p.cfg.SplicePaths {
		if strings.HasPrefix(path, pre) {
			return true
		}
	}
	return false
}

// SessionCookie returns the name of the session cookie that, on the
// splice path path, neither makes a request bypass the cache nor reaches
// the origin on a fill, or "" when path is not a splice path. It is the
// hook a cookie bypass policy consults.
func (p *Proxy) SessionCookie(path string) string {
	if !p.splicePath(path) {
		return ""
	}
	return p.cfg.Splicer.CookieName()
}

// hasCookie reports whether the Cookie header lines carry a cookie called
// name: pairs split on ';', names trimmed of white space on both sides, as
// the cookie policy (privacy.go) reads them. That is looser than Plug,
// which does not read a name with white space in it: removing such a pair
// from a fill loses nothing the origin would have read.
func hasCookie(lines []string, name string) bool {
	for _, line := range lines {
		for kv := range strings.SplitSeq(line, ";") {
			k, _, _ := strings.Cut(kv, "=")
			if textproto.TrimString(k) == name {
				return true
			}
		}
	}
	return false
}

// removeCookie drops every cookie called name from h's Cookie lines,
// keeping the others; it reports whether one was removed.
func removeCookie(h http.Header, name string) bool {
	lines := h["Cookie"]
	if !hasCookie(lines, name) {
		return false
	}
	var keep []string
	for _, line := range lines {
		for kv := range strings.SplitSeq(line, ";") {
			k, _, _ := strings.Cut(kv, "=")
			if textproto.TrimString(k) == name || strings.TrimSpace(kv) == "" {
				continue
			}
			keep = append(keep, strings.TrimSpace(kv))
		}
	}
	if len(keep) == 0 {
		delete(h, "Cookie")
	} else {
		h["Cookie"] = []string{strings.Join(keep, "; ")}
	}
	return true
}

// setSplice makes e a spliced entry served through page.
func (e *entry) setSplice(page SplicePage) {
	e.splice = page
	e.privCC = []string{privateCacheControl(e.rec.Header["Cache-Control"])}
}

// privateHeader turns the header of a page spliced for one visitor into
// what that visitor may get: Cache-Control private (the page holds their
// token: RFC 9111 §5.2.2.7), no validator that claims the bytes are the
// same for everyone (a strong ETag; a spliced page is never answered
// with 304 either), and sp's Set-Cookie and length. Slices shared with
// the stored header are replaced, never modified.
//
// cc is the private Cache-Control (entry.privCC), or nil to compute it
// from h.
func privateHeader(h http.Header, sp *Spliced, cc []string) {
	if cc == nil {
		cc = []string{privateCacheControl(h["Cache-Control"])}
	}
	h["Cache-Control"] = cc
	delete(h, "Etag")
	if sp != nil {
		if sp.SetCookie != "" {
			h["Set-Cookie"] = []string{sp.SetCookie}
		} else {
			delete(h, "Set-Cookie")
		}
		h["Content-Length"] = []string{strconv.FormatInt(sp.Len, 10)}
	}
}

// privateCacheControl rewrites a shared response's Cache-Control for its
// one visitor: the shared-cache directives (public, s-maxage,
// proxy-revalidate, a private field list) are dropped, private comes
// first, the rest stays; without max-age, no-cache or no-store, max-age=0
// is added (Plug's own default is "max-age=0, private, must-revalidate"),
// so a browser does not keep a token its session may outlive.
func privateCacheControl(values []string) string {
	out := []string{"private"}
	fresh := false
	for _, v := range values {
		for _, d := range splitDirectives(v) {
			name, _, _ := strings.Cut(d, "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "public", "private", "s-maxage", "proxy-revalidate":
				continue
			case "max-age", "no-cache", "no-store":
				fresh = true
			}
			out = append(out, d)
		}
	}
	if !fresh {
		out = append(out, "max-age=0")
	}
	return strings.Join(out, ", ")
}

// splitDirectives splits a Cache-Control value on commas outside quoted
// strings, trimming each directive and dropping empty ones (and a last
// one whose quoted string never ends).
func splitDirectives(v string) []string {
	var out []string
	start, quoted := 0, false
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '\\' && quoted:
			i++
		case c == '"':
			quoted = !quoted
		case c == ',' && !quoted:
			if d := strings.TrimSpace(v[start:i]); d != "" {
				out = append(out, d)
			}
			start = i + 1
		}
	}
	if d := strings.TrimSpace(v[start:]); d != "" && !quoted {
		out = append(out, d) // an unterminated quoted string is no directive
	}
	return out
}

func splicedDetail(d string) string {
	if d == "" {
		return detailSpliced
	}
	return d + " " + detailSpliced
}

// errSpliceRefetch makes the ReverseProxy's error handler write nothing:
// forward then asks the origin again, with the visitor's session cookie.
var errSpliceRefetch = errors.New("httpcache: the anonymous render cannot be spliced for this visitor")

// spliceFor makes ex's visitor's copy of a spliced entry.
func (p *Proxy) spliceFor(ex *exchange, e *entry) (*Spliced, error) {
	sp, err := e.splice.Splice(ex.in.Header["Cookie"])
	if err != nil {
		p.log.Warn("httpcache: cannot splice a stored page for this visitor", "key", e.rec.Key, "err", err)
		if p.met != nil {
			p.met.spliceFailed.Inc()
		}
	} else if p.met != nil {
		p.met.spliced.Inc()
	}
	return sp, err
}

// serveSpliced answers r from a spliced entry with its visitor's own
// copy, written without copying the stored body. It reports false, having
// written nothing, when the page cannot be spliced for this visitor.
func (p *Proxy) serveSpliced(w http.ResponseWriter, r *http.Request, ex *exchange, e *entry, result Result, cs cacheStatus, now time.Time) bool {
	sp, err := p.spliceFor(ex, e)
	if err != nil {
		return false
	}
	h := w.Header()
	for k, v := range e.rec.Header {
		h[k] = v
	}
	h["Age"] = []string{strconv.FormatInt(int64(e.pol.age(e.rec.ResponseTime, now)/time.Second), 10)}
	cs.ttl, cs.hasTTL = ttlOf(e, now), true
	cs.detail = splicedDetail(cs.detail)
	h["Cache-Status"] = []string{cs.String()}
	privateHeader(h, sp, e.privCC)
	stripTargeted(h) // CDN-Cache-Control and the like are for caches
	ex.result, ex.cs = result, cs
	w.WriteHeader(e.rec.Status)
	if r.Method == http.MethodHead {
		return true
	}
	n, _ := sp.Body.WriteTo(w)
	if p.met != nil && !ex.background {
		p.met.bytes.Add(float64(n))
	}
	return true
}

// splicedResponse turns resp (the origin's answer to a fill forwarded
// without ex's visitor's session cookie) into that visitor's spliced copy
// of the entry it filled, or, when there is no such entry, reports
// errSpliceRefetch so that forward asks again with the cookie. It gives
// up the fill's store write only in that case, and only if its body was
// still to be copied.
func (p *Proxy) splicedResponse(resp *http.Response, ex *exchange) error {
	f := ex.fill
	var e *entry
	if f != nil && f.job != nil && f.job.inspected {
		e = f.job.e
	}
	if e == nil || e.splice == nil {
		if f != nil && f.job != nil && !f.job.inspected {
			f.abandon()
		}
		ex.refetch = true
		return errSpliceRefetch
	}
	sp, err := p.spliceFor(ex, e)
	if err != nil {
		ex.refetch = true
		return errSpliceRefetch // the entry is stored all the same
	}
	resp.Body.Close()
	h := make(http.Header, len(e.rec.Header)+4)
	for k, v := range e.rec.Header {
		h[k] = v
	}
	privateHeader(h, sp, e.privCC)
	stripTargeted(h) // CDN-Cache-Control and the like are for caches
	resp.StatusCode = e.rec.Status
	resp.Status = strconv.Itoa(e.rec.Status) + " " + http.StatusText(e.rec.Status)
	resp.Header = h
	body := sp.Body
	resp.Body = readCloser{&body}
	resp.ContentLength = sp.Len
	resp.Uncompressed = false
	ex.cs.detail = splicedDetail(ex.cs.detail)
	return nil
}

type readCloser struct{ *net.Buffers }

func (readCloser) Close() error { return nil }

// replaceWithSpliced is replaceWithEntry for a spliced entry: resp
// becomes ex's visitor's copy (or a 502 when there is none).
func (p *Proxy) replaceWithSpliced(resp *http.Response, ex *exchange, e *entry, now time.Time) {
	h := make(http.Header, len(e.rec.Header)+4)
	sp, err := p.spliceFor(ex, e)
	if err != nil {
		ex.cs.detail, ex.cs.stored, ex.cs.hasTTL = "splice-failed", false, false
		ex.result = ResultError
		msg := "502 bad gateway: the stored page cannot be personalized for this session\n"
		h["Content-Type"] = []string{"text/plain; charset=utf-8"}
		h["Content-Length"] = []string{strconv.Itoa(len(msg))}
		h["Cache-Control"] = []string{"no-store"}
		h["Cache-Status"] = []string{ex.cs.String()}
		resp.StatusCode, resp.Status = http.StatusBadGateway, "502 Bad Gateway"
		resp.Header, resp.Body, resp.ContentLength = h, io.NopCloser(strings.NewReader(msg)), int64(len(msg))
		resp.Uncompressed = false
		return
	}
	for k, v := range e.rec.Header {
		h[k] = v
	}
	h["Age"] = []string{strconv.FormatInt(int64(e.pol.age(e.rec.ResponseTime, now)/time.Second), 10)}
	ex.cs.ttl, ex.cs.hasTTL = ttlOf(e, now), true
	ex.cs.detail = splicedDetail(ex.cs.detail)
	h["Cache-Status"] = []string{ex.cs.String()}
	privateHeader(h, sp, e.privCC)
	stripTargeted(h) // CDN-Cache-Control and the like are for caches
	resp.StatusCode = e.rec.Status
	resp.Status = strconv.Itoa(e.rec.Status) + " " + http.StatusText(e.rec.Status)
	resp.Header = h
	body := sp.Body
	resp.ContentLength = sp.Len
	if ex.in.Method == http.MethodHead {
		body = nil
	}
	resp.Body = readCloser{&body}
	resp.Uncompressed = false
	if p.met != nil && !ex.background {
		p.met.bytes.Add(float64(sp.Len))
	}
}

// SplicePaths returns the path prefixes where the Splicer applies (nil
// without one). The caller must not modify the slice.
func (p *Proxy) SplicePaths() []string {
	if p.cfg.Splicer == nil {
		return nil
	}
	return p.cfg.SplicePaths
}
