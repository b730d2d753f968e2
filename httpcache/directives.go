package httpcache

import (
	"net/http"
	"slices"
	"strings"

	"github.com/pquerna/cachecontrol/cacheobject"
)

// respDirectives is the part of a response's Cache-Control the proxy acts
// on. It is produced by a directiveParser so the parser library stays
// behind one small seam.
type respDirectives struct {
	maxAge, sMaxAge int64 // seconds; -1 = absent
	swr, sie        int64 // stale-while-revalidate / stale-if-error; -1 = absent
	noStore         bool
	noCache         bool     // unqualified no-cache: validate before every use
	noCacheFields   []string // qualified no-cache="a, b" (canonical names): stored without them, no validation needed (RFC 9111 §5.2.2.4)
	private         bool     // qualified or not: never stored by this shared cache
	public          bool
	mustRevalidate  bool
	proxyRevalidate bool
	mustUnderstand  bool
	immutable       bool
	invalid         bool // unparsable: RFC 9111 §4.2.1 encourages treating as stale; we do not store
	targeted        bool // from a targeted field (targeted.go): Expires is ignored
	invalidReason   string
}

type reqDirectives struct {
	maxAge, maxStale, minFresh int64 // -1 = absent
	maxStaleAny                bool  // max-stale without a value
	sie                        int64 // stale-if-error (RFC 5861 §4); 0 = absent
	noCache, noStore           bool
	onlyIfCached               bool
}

// directiveParser parses Cache-Control field values. The production
// implementation wraps github.com/pquerna/cachecontrol/cacheobject.
type directiveParser interface {
	response(h http.Header) respDirectives
	request(h http.Header) reqDirectives
}

type cacheobjectParser struct{}

// joinField joins all field lines of name (RFC 9110 §5.3: a list field's
// lines combine with commas).
func joinField(h http.Header, name string) string {
	v := h[name]
	switch len(v) {
	case 0:
		return ""
	case 1:
		return v[0]
	}
	return strings.Join(v, ", ")
}

func (cacheobjectParser) response(h http.Header) respDirectives {
	if len(h["Firstrender-Cache-Control"])+len(h["Cdn-Cache-Control"])+len(h["Surrogate-Control"]) > 0 {
		if d, ok := targetedDirectives(h); ok {
			return d
		}
	}
	return parseResponseCC(joinField(h, "Cache-Control"))
}

func parseResponseCC(v string) respDirectives {
	d := respDirectives{maxAge: -1, sMaxAge: -1, swr: -1, sie: -1}
	if v == "" {
		return d
	}
	cd, err := cacheobject.ParseResponseCacheControl(firstDirectives(v))
	if err != nil {
		d.invalid = true
		d.invalidReason = "invalid-cache-control"
		return d
	}
	d.maxAge = int64(cd.MaxAge)
	d.sMaxAge = int64(cd.SMaxAge)
	d.swr = int64(cd.StaleWhileRevalidate)
	d.sie = int64(cd.StaleIfError)
	d.noStore = cd.NoStore
	// RFC 9111 §5.2.2.4: with field names, no-cache lets the response be
	// reused without validation as long as those fields are not sent
	// (they are left out of the stored copy); without, every use
	// needs validation.
	// An empty list (no-cache="") names no field: taken as unqualified.
	for f := range cd.NoCache {
		if f != "" {
			d.noCacheFields = append(d.noCacheFields, f) // canonical (cacheobject)
		}
	}
	slices.Sort(d.noCacheFields) // deterministic
	d.noCache = cd.NoCachePresent && len(d.noCacheFields) == 0
	if d.noCache {
		d.noCacheFields = nil
	}
	d.private = cd.PrivatePresent
	d.public = cd.Public
	d.mustRevalidate = cd.MustRevalidate
	d.proxyRevalidate = cd.ProxyRevalidate
	d.immutable = cd.Immutable
	// Gap in cacheobject: must-understand (RFC 9111 §5.2.2.3) lands in
	// Extensions.
	for _, e := range cd.Extensions {
		name, _, _ := strings.Cut(e, "=")
		if name == "must-understand" {
			d.mustUnderstand = true
		}
	}
	return d
}

func (cacheobjectParser) request(h http.Header) reqDirectives {
	d := parseRequestCC(joinField(h, "Cache-Control"))
	// RFC 9111 §5.4: Pragma: no-cache only counts when Cache-Control is absent.
	if _, ok := h["Cache-Control"]; !ok {
		for _, p := range h["Pragma"] {
			for t := range strings.SplitSeq(p, ",") {
				if strings.EqualFold(strings.TrimSpace(t), "no-cache") {
					d.noCache = true
				}
			}
		}
	}
	return d
}

func parseRequestCC(v string) reqDirectives {
	d := reqDirectives{maxAge: -1, maxStale: -1, minFresh: -1}
	if v == "" {
		return d
	}
	cd, err := cacheobject.ParseRequestCacheControl(firstDirectives(v))
	if err != nil {
		// A request we cannot understand is answered conservatively:
		// validate with the origin.
		d.noCache = true
		return d
	}
	d.maxAge = int64(cd.MaxAge)
	d.minFresh = int64(cd.MinFresh)
	d.maxStale = int64(cd.MaxStale)
	d.maxStaleAny = cd.MaxStaleSet && cd.MaxStale < 0
	d.noCache = cd.NoCache
	d.noStore = cd.NoStore
	d.onlyIfCached = cd.OnlyIfCached
	d.sie = max(int64(cd.StaleIfError), 0)
	return d
}

// firstDirectives returns the Cache-Control value v without the repeats
// of a directive after its first occurrence: RFC 9111 §4.2.1 says to use
// the first (max-age=1800, max-age=1 is fresh for 1800 s), and cacheobject
// keeps the last. Directive names compare case-insensitively; commas in
// quoted strings do not split. v itself is returned, without allocating,
// when no directive repeats. It is linear in len(v): a request's field can
// be a hundred lines of MaxHeaderValue joined, so names are checked
// against a set once there are more than a few.
func firstDirectives(v string) string {
	if strings.IndexByte(v, ',') < 0 {
		return v
	}
	var (
		buf     [16]string      // the names seen, while they are few
		names   = buf[:0]       //
		seen    map[string]bool // lowercased names, once there are more
		out     strings.Builder // v without the repeats, once one is found
		dropped bool
	)
	repeat := func(n string) bool {
		if n == "" {
			return false
		}
		if seen == nil {
			for _, p := range names {
				if strings.EqualFold(p, n) {
					return true
				}
			}
			if len(names) < cap(buf) {
				names = append(names, n)
				return false
			}
			seen = make(map[string]bool, 4*cap(buf))
			for _, p := range names {
				seen[strings.ToLower(p)] = true
			}
		}
		l := strings.ToLower(n)
		if seen[l] {
			return true
		}
		seen[l] = true
		return false
	}
	member := func(start, end int) {
		n, _, _ := strings.Cut(v[start:end], "=")
		switch dup := repeat(strings.TrimSpace(n)); {
		case dup && !dropped:
			dropped = true
			out.WriteString(v[:start])
		case !dup && dropped:
			out.WriteString(v[start:end])
			out.WriteByte(',')
		}
	}
	start, quoted := 0, false
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case quoted && c == '\\':
			i++ // quoted-pair
		case c == '"':
			quoted = !quoted
		case c == ',' && !quoted:
			member(start, i)
			start = i + 1
		}
	}
	member(start, len(v))
	if !dropped {
		return v
	}
	return strings.TrimSuffix(out.String(), ",")
}

// heuristicallyCacheable reports status codes that RFC 9110 §15.1 defines
// as heuristically cacheable. 206 is left out: this cache stores only
// complete responses. 308 (RFC 9110 §15.4.9) is a gap in cacheobject.
func heuristicallyCacheable(code int) bool {
	switch code {
	case 200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501:
		return true
	}
	return false
}

// understoodStatus reports status codes whose caching requirements this
// cache implements, for must-understand (RFC 9111 §5.2.2.3).
func understoodStatus(code int) bool {
	switch code {
	case 200, 203, 204, 300, 301, 302, 303, 307, 308, 404, 405, 410, 414, 501:
		return true
	}
	return false
}

// Reasons for not storing a response; they appear in Cache-Status detail=.
const (
	reasonMethod         = "method"
	reasonRequestNoStore = "request-no-store"
	reasonNoStore        = "no-store"
	reasonPrivate        = "private"
	reasonAuthorization  = "authorization"
	reasonSetCookie      = "set-cookie"
	reasonStatus         = "status"
	reasonErrorStatus    = "error-status" // 4xx/5xx: not stored unless Config.StoreErrors opts it in
	reasonMustUnderstand = "must-understand"
	reasonVaryStar       = "vary-star"
	reasonTooLarge       = "too-large"
	reasonMaxBuffered    = "max-buffered"
	reasonInspectorPanic = "inspector-panic"
	reasonNoFreshness    = "no-freshness"
	reasonPartial        = "partial"
	reasonUpgrade        = "upgrade"
	reasonHost           = "host-not-cached"
	reasonSocketPath     = "socket-path"
	reasonRequestBody    = "request-body"
)

// storable decides whether a shared cache may store resp for req
// (RFC 9111 §3). It returns "" when it may, or a short reason. The
// Set-Cookie rule is applied by the caller, since it depends on policy.
func storable(method string, reqH http.Header, rq reqDirectives, status int, respH http.Header, d respDirectives) string {
	if method != http.MethodGet {
		return reasonMethod
	}
	if rq.noStore {
		return reasonRequestNoStore
	}
	if d.invalid {
		return d.invalidReason
	}
	if status < 200 || status == http.StatusNotModified {
		return reasonStatus
	}
	// Only a 206 is partial. Content-Range has no meaning on other
	// statuses (RFC 9110 §14.4), and Range is never forwarded on a
	// request that may fill an entry (conditionalHeaders), so a 200
	// carrying it is the complete representation and is stored with it
	// (cache-tests headers-store-Content-Range).
	if status == http.StatusPartialContent {
		return reasonPartial
	}
	// RFC 9111 §5.2.2.3: with must-understand, store only status codes we
	// understand, and then no-store is ignored.
	if d.mustUnderstand {
		if !understoodStatus(status) {
			return reasonMustUnderstand
		}
	} else if d.noStore {
		return reasonNoStore
	}
	if d.private {
		return reasonPrivate
	}
	// Stricter than RFC 9111 §3.5 (which allows public, s-maxage and
	// must-revalidate): the proxy never lets such a request reach here
	// (privacy.go), and this rule keeps it so for every caller.
	if _, ok := reqH["Authorization"]; ok {
		return reasonAuthorization
	}
	if varyStar(respH) {
		return reasonVaryStar
	}
	// RFC 9111 §3, last bullet: explicit freshness, public, or a
	// heuristically cacheable status.
	if d.public || d.maxAge >= 0 || d.sMaxAge >= 0 || (len(respH["Expires"]) > 0 && !d.targeted) || heuristicallyCacheable(status) {
		return ""
	}
	return reasonStatus
}
