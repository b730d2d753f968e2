package httpcache

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
)

// MaxKeyLen is the longest primary key NormalizeKey returns verbatim.
// A longer normalized URL is shortened to its first MaxKeyLen/2 bytes
// followed by "#sha256=" and the hex SHA-256 of the whole normalized URL.
// '#' never occurs in a normalized URL (a fragment is dropped and a literal
// '#' is percent-encoded), so hashed keys cannot collide with plain ones,
// and they still start with scheme://host/path for prefix purges.
const MaxKeyLen = 1024

// DefaultIgnoreParams is the query-parameter ignore list used when
// [Config].IgnoreParams is nil. A trailing '*' matches any suffix.
var DefaultIgnoreParams = []string{"utm_*", "fbclid", "gclid"}

// KeyError reports why a URL cannot be normalized into a cache key.
type KeyError struct {
	URL    string // the input, possibly shortened
	Reason string
}

// Error names the URL (shortened) and the reason.
func (e *KeyError) Error() string {
	u := e.URL
	if len(u) > 80 {
		u = u[:80] + "..."
	}
	return fmt.Sprintf("httpcache: key %q: %s", u, e.Reason)
}

// nurl is the one normalized form of a request URL. The cache key and the
// URL forwarded to the origin are both built from it.
type nurl struct {
	scheme string // "http" or "https"
	host   string // lowercase, default port removed
	path   string // escaped, normalized, starts with '/'
	query  string // escaped, normalized, sorted, ignored params removed; no '?'
}

// key returns the primary cache key: scheme://host/path[?query], hashed
// past MaxKeyLen.
func (n *nurl) key() string {
	l := len(n.scheme) + 3 + len(n.host) + len(n.path)
	if n.query != "" {
		l += 1 + len(n.query)
	}
	var b strings.Builder
	b.Grow(l)
	b.WriteString(n.scheme)
	b.WriteString("://")
	b.WriteString(n.host)
	b.WriteString(n.path)
	if n.query != "" {
		b.WriteByte('?')
		b.WriteString(n.query)
	}
	return shortenKey(b.String())
}

func shortenKey(k string) string {
	if len(k) <= MaxKeyLen {
		return k
	}
	sum := sha256.Sum256([]byte(k))
	cut := MaxKeyLen / 2
	// Do not cut inside a percent-escape; purely cosmetic, the hash decides.
	for cut > 0 && (k[cut-1] == '%' || (cut > 1 && k[cut-2] == '%')) {
		cut--
	}
	return k[:cut] + "#sha256=" + hex.EncodeToString(sum[:])
}

// ignoreList matches query parameter names (normalized) against exact names
// and "prefix*" patterns.
type ignoreList struct {
	exact    []string
	prefixes []string
}

func newIgnoreList(patterns []string) (*ignoreList, error) {
	il := &ignoreList{}
	for _, p := range patterns {
		switch {
		case p == "" || p == "*":
			return nil, fmt.Errorf("httpcache: ignore pattern %q would match every parameter or none", p)
		case strings.Count(p, "*") > 1 || (strings.Contains(p, "*") && !strings.HasSuffix(p, "*")):
			return nil, fmt.Errorf("httpcache: ignore pattern %q: '*' is only allowed at the end", p)
		case strings.HasSuffix(p, "*"):
			il.prefixes = append(il.prefixes, p[:len(p)-1])
		default:
			il.exact = append(il.exact, p)
		}
	}
	return il, nil
}

func (il *ignoreList) match(name string) bool {
	if il == nil {
		return false
	}
	for _, e := range il.exact {
		if name == e {
			return true
		}
	}
	for _, p := range il.prefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// NormalizeKey returns the primary cache key of an absolute http or https
// URL. It is pure and safe for concurrent use. ignore lists query
// parameter names to drop (exact, or a prefix ending in '*'); nil means no
// parameter is ignored (the proxy passes [DefaultIgnoreParams] unless
// configured otherwise).
//
// The key is scheme://host/path?query where the scheme and host are
// lowercased, a default port and a trailing dot of the host are removed,
// percent-encoding is normalized per RFC 3986 §6.2.2 (unreserved
// characters decoded, hex digits uppercased, other characters that may not
// appear raw encoded; "%2F" stays encoded), dot segments are removed
// (RFC 3986 §5.2.4), the fragment is dropped, and query parameters are
// sorted stably by name. Keys longer than [MaxKeyLen] are shortened with a
// hash (see MaxKeyLen), never truncated. Errors are *[KeyError].
func NormalizeKey(rawURL string, ignore []string) (string, error) {
	il, err := newIgnoreList(ignore)
	if err != nil {
		return "", err
	}
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return "", &KeyError{rawURL, "not an absolute URL"}
	}
	if i := strings.IndexByte(rest, '#'); i >= 0 {
		rest = rest[:i]
	}
	hostEnd := strings.IndexAny(rest, "/?")
	host, pathq := rest, ""
	if hostEnd >= 0 {
		host, pathq = rest[:hostEnd], rest[hostEnd:]
	}
	path, query, _ := strings.Cut(pathq, "?")
	n, err := normalize(scheme, host, path, query, il)
	if err != nil {
		if ke, ok := err.(*KeyError); ok {
			ke.URL = rawURL
		}
		return "", err
	}
	return n.key(), nil
}

// normalize builds the normalized form from the parts of a request.
// rawPath is the escaped path (r.URL.EscapedPath()), rawQuery r.URL.RawQuery.
func normalize(scheme, host, rawPath, rawQuery string, il *ignoreList) (nurl, error) {
	var n nurl
	switch {
	case strings.EqualFold(scheme, "http"):
		n.scheme = "http"
	case strings.EqualFold(scheme, "https"):
		n.scheme = "https"
	default:
		return n, &KeyError{Reason: fmt.Sprintf("scheme %q is not http or https", scheme)}
	}
	h, err := normalizeHost(n.scheme, host)
	if err != nil {
		return n, err
	}
	n.host = h
	p, err := normalizePath(rawPath)
	if err != nil {
		return n, err
	}
	n.path = p
	q, err := normalizeQuery(rawQuery, il)
	if err != nil {
		return n, err
	}
	n.query = q
	return n, nil
}

var errBadHost = errors.New("bad host")

func normalizeHost(scheme, host string) (string, error) {
	if host == "" {
		return "", &KeyError{Reason: "empty host"}
	}
	if strings.Contains(host, "@") {
		return "", &KeyError{Reason: "userinfo is not allowed in a cache key"}
	}
	name, port := host, ""
	if strings.HasPrefix(host, "[") {
		end := strings.IndexByte(host, ']')
		if end < 0 {
			return "", &KeyError{Reason: "unterminated IPv6 literal in host"}
		}
		name, port = host[:end+1], host[end+1:]
		if port != "" && port[0] != ':' {
			return "", &KeyError{Reason: "junk after IPv6 literal in host"}
		}
	} else if i := strings.LastIndexByte(host, ':'); i >= 0 {
		name, port = host[:i], host[i:]
	}
	if port != "" {
		port = port[1:]
		if port == "" {
			// "host:" means the default port (RFC 3986 §6.2.3).
		} else {
			for i := 0; i < len(port); i++ {
				if port[i] < '0' || port[i] > '9' {
					return "", &KeyError{Reason: fmt.Sprintf("port %q is not a number", port)}
				}
			}
			port = strings.TrimLeft(port, "0")
			if port == "" || len(port) > 5 {
				return "", &KeyError{Reason: "port out of range"}
			}
			if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
				port = ""
			}
		}
	}
	name = strings.TrimSuffix(name, ".")
	if name == "" {
		return "", &KeyError{Reason: "empty host"}
	}
	if name[0] != '[' && (name[0] == '.' || strings.HasSuffix(name, ".") || strings.Contains(name, "..")) {
		return "", &KeyError{Reason: "empty label in host"}
	}
	if isLowerHost(name) && (port == "" && len(name) == len(host) ||
		port != "" && len(host) == len(name)+1+len(port) && host[:len(name)] == name && host[len(name)+1:] == port) {
		return host, nil // already normalized: no allocation
	}
	b := make([]byte, 0, len(name)+1+len(port))
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '.', c == '_':
		case (c == '[' || c == ']' || c == ':') && name[0] == '[':
		default:
			return "", &KeyError{Reason: fmt.Sprintf("invalid byte %q in host", c)}
		}
		b = append(b, c)
	}
	if port != "" {
		b = append(b, ':')
		b = append(b, port...)
	}
	return string(b), nil
}

func isLowerHost(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

// hostname returns h without a port.
func hostname(h string) string {
	if strings.HasPrefix(h, "[") {
		if i := strings.IndexByte(h, ']'); i >= 0 {
			return h[:i+1]
		}
		return h
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 {
		return h[:i]
	}
	return h
}

const upperhex = "0123456789ABCDEF"

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

func isSubDelim(c byte) bool {
	switch c {
	case '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=':
		return true
	}
	return false
}

// pathRaw reports whether c may appear unescaped in a normalized path
// (pchar or '/').
func pathRaw(c byte) bool {
	return isUnreserved(c) || isSubDelim(c) || c == ':' || c == '@' || c == '/'
}

// queryRaw reports whether c may appear unescaped in a normalized query
// component. '&' and '=' separate parameters, so inside a name or value
// they stay encoded; everything else from RFC 3986's query set is kept.
func queryRaw(c byte) bool {
	if c == '&' || c == '=' {
		return false
	}
	return isUnreserved(c) || isSubDelim(c) || c == ':' || c == '@' || c == '/' || c == '?'
}

// percentEscape decodes the hex digits of the percent-escape at s[i]
// (which is '%'), or says why it is not one.
func percentEscape(s string, i int) (hi, lo byte, err error) {
	if i+2 >= len(s) {
		return 0, 0, &KeyError{Reason: "truncated percent-escape"}
	}
	hi, ok1 := unhex(s[i+1])
	lo, ok2 := unhex(s[i+2])
	if !ok1 || !ok2 {
		return 0, 0, &KeyError{Reason: fmt.Sprintf("invalid percent-escape %q", s[i:i+3])}
	}
	return hi, lo, nil
}

// normEscape normalizes the percent-encoding of s: escapes of unreserved
// characters are decoded, other escapes get uppercase hex, and bytes that
// must not appear raw (per raw) are encoded. It returns s itself when
// nothing changes (no allocation).
func normEscape(s string, raw func(byte) bool) (string, error) {
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if c == '%' {
			hi, lo, err := percentEscape(s, i)
			if err != nil {
				return "", err
			}
			d := hi<<4 | lo
			if isUnreserved(d) || s[i+1] != upperhex[hi] || s[i+2] != upperhex[lo] {
				break
			}
			i += 2
			continue
		}
		if !raw(c) {
			break
		}
	}
	if i == len(s) {
		return s, nil
	}
	b := make([]byte, 0, len(s)+8)
	b = append(b, s[:i]...)
	for ; i < len(s); i++ {
		c := s[i]
		if c == '%' {
			hi, lo, err := percentEscape(s, i)
			if err != nil {
				return "", err
			}
			d := hi<<4 | lo
			if isUnreserved(d) {
				b = append(b, d)
			} else {
				b = append(b, '%', upperhex[hi], upperhex[lo])
			}
			i += 2
			continue
		}
		if raw(c) {
			b = append(b, c)
		} else {
			b = append(b, '%', upperhex[c>>4], upperhex[c&15])
		}
	}
	return string(b), nil
}

func normalizePath(p string) (string, error) {
	if p == "" {
		return "/", nil
	}
	if p[0] != '/' {
		if p == "*" {
			return "", &KeyError{Reason: "asterisk-form request target"}
		}
		p = "/" + p
	}
	e, err := normEscape(p, pathRaw)
	if err != nil {
		return "", err
	}
	return removeDotSegments(e), nil
}

// removeDotSegments implements RFC 3986 §5.2.4 on an absolute path. It
// returns p unchanged (no allocation) when there is nothing to remove.
func removeDotSegments(p string) string {
	if !strings.Contains(p, "/.") {
		return p
	}
	segs := strings.Split(p[1:], "/")
	out := make([]string, 0, len(segs))
	for i, s := range segs {
		last := i == len(segs)-1
		switch s {
		case ".":
			if last {
				out = append(out, "")
			}
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			if last {
				out = append(out, "")
			}
		default:
			out = append(out, s)
		}
	}
	return "/" + strings.Join(out, "/")
}

type qparam struct{ name, pair string }

func normalizeQuery(q string, il *ignoreList) (string, error) {
	if q == "" {
		return "", nil
	}
	var params []qparam
	sorted := true
	for q != "" {
		var part string
		part, q, _ = strings.Cut(q, "&")
		if part == "" {
			continue
		}
		name, val, hasVal := strings.Cut(part, "=")
		nn, err := normEscape(name, queryRaw)
		if err != nil {
			return "", err
		}
		if il.match(nn) {
			continue
		}
		pair := nn
		if hasVal {
			nv, err := normEscape(val, queryRaw)
			if err != nil {
				return "", err
			}
			pair = nn + "=" + nv
		}
		if len(params) > 0 && params[len(params)-1].name > nn {
			sorted = false
		}
		params = append(params, qparam{nn, pair})
	}
	if !sorted {
		sort.SliceStable(params, func(i, j int) bool { return params[i].name < params[j].name })
	}
	switch len(params) {
	case 0:
		return "", nil
	case 1:
		return params[0].pair, nil
	}
	n := len(params) - 1
	for _, p := range params {
		n += len(p.pair)
	}
	var b strings.Builder
	b.Grow(n)
	for i, p := range params {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.pair)
	}
	return b.String(), nil
}

// caseInsensitiveVary lists request headers whose values compare
// case-insensitively, so variants differing only in case share an entry.
var caseInsensitiveVary = map[string]bool{
	"Accept":          true,
	"Accept-Encoding": true,
	"Accept-Charset":  true,
	"Accept-Language": true,
}

// parseVary returns the canonical, sorted, de-duplicated header names of a
// response's Vary fields, and star=true when it contains "*".
func parseVary(h http.Header) (names []string, star bool) {
	for _, v := range h.Values("Vary") {
		for f := range strings.SplitSeq(v, ",") {
			f = strings.TrimSpace(f)
			if f == "" {
				continue
			}
			if f == "*" {
				return nil, true
			}
			names = append(names, http.CanonicalHeaderKey(f))
		}
	}
	slices.Sort(names)
	return slices.Compact(names), false
}

// varyStar reports whether h's Vary lists "*" (parseVary's star),
// without building the list of names.
func varyStar(h http.Header) bool {
	for _, v := range h.Values("Vary") {
		for f := range strings.SplitSeq(v, ",") {
			if strings.TrimSpace(f) == "*" {
				return true
			}
		}
	}
	return false
}

// variantKey computes the variant of a request under the given Vary names
// (canonical, sorted): "" when there are none; otherwise name=value pairs,
// values normalized (whitespace collapsed, lowercased where the header is
// case-insensitive) and query-escaped so the key is unambiguous.
func variantKey(names []string, reqHeader http.Header) string {
	if len(names) == 0 {
		return ""
	}
	var b strings.Builder
	for i, n := range names {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(n)
		b.WriteByte('=')
		v := normalizeVaryValue(reqHeader[n], caseInsensitiveVary[n])
		escapeVariant(&b, v)
	}
	k := b.String()
	if len(k) > 512 {
		sum := sha256.Sum256([]byte(k))
		return "sha256=" + hex.EncodeToString(sum[:])
	}
	return k
}

// maxUnshortenedKey is the longest key used as is (shortenKey).
const maxUnshortenedKey = MaxKeyLen

// appendVariantKey appends variantKey(names, reqHeader) to dst, without
// allocating for ASCII values (the hit path); anything else takes
// variantKey itself.
func appendVariantKey(dst []byte, names []string, reqHeader http.Header) []byte {
	dst, _ = appendVariantKeyFields(dst, names, variantFields{h: reqHeader})
	return dst
}

// variantFields are the request fields a variant is keyed on: h's, but
// Accept-Encoding is ae when override is set (the value the fwdPlan
// normalizes it to, not applied to h: see fwdPlan).
type variantFields struct {
	h        http.Header
	ae       []string
	override bool
}

func (v variantFields) get(name string) []string {
	if v.override && name == "Accept-Encoding" {
		return v.ae
	}
	return v.h[name]
}

// appendVariantKeyFields is appendVariantKey over v. With an override
// it reports false instead of taking variantKey (which reads a header)
// for values it cannot append itself: the caller then applies the plan
// and keys the applied request.
func appendVariantKeyFields(dst []byte, names []string, vf variantFields) ([]byte, bool) {
	start := len(dst)
	for i, n := range names {
		if i > 0 {
			dst = append(dst, '&')
		}
		dst = append(dst, n...)
		dst = append(dst, '=')
		fold := caseInsensitiveVary[n]
		first := true
		for _, v := range vf.get(n) {
			for j := 0; j < len(v); j++ {
				if v[j] >= 0x80 { // strings.Fields splits on Unicode spaces too
					return slowVariant(dst[:start], names, vf)
				}
			}
			for m := range strings.SplitSeq(v, ",") {
				inMember := false
				for f := range strings.FieldsSeq(m) {
					switch {
					case inMember:
						dst = append(dst, ' ')
					case !first:
						dst = append(dst, ',')
					}
					first, inMember = false, true
					for j := 0; j < len(f); j++ {
						c := f[j]
						if fold && 'A' <= c && c <= 'Z' {
							c += 'a' - 'A'
						}
						if isUnreserved(c) || c == ',' || c == ' ' || c == ';' || c == '/' || c == '*' {
							dst = append(dst, c)
						} else {
							dst = append(dst, '%', upperhex[c>>4], upperhex[c&15])
						}
					}
				}
			}
		}
	}
	if len(dst)-start > 512 {
		return slowVariant(dst[:start], names, vf)
	}
	return dst, true
}

// slowVariant appends variantKey of v's header, or reports false when v
// overrides a field of it.
func slowVariant(dst []byte, names []string, v variantFields) ([]byte, bool) {
	if v.override {
		return dst, false
	}
	return append(dst, variantKey(names, v.h)...), true
}

// normalizeVaryValue joins all field lines with ",", trims whitespace
// around list members and collapses runs of inner whitespace.
func normalizeVaryValue(vals []string, fold bool) string {
	if len(vals) == 0 {
		return ""
	}
	var b strings.Builder
	first := true
	for _, v := range vals {
		for m := range strings.SplitSeq(v, ",") {
			m = strings.Join(strings.Fields(m), " ")
			if m == "" {
				continue
			}
			if !first {
				b.WriteByte(',')
			}
			first = false
			if fold {
				m = strings.ToLower(m)
			}
			b.WriteString(m)
		}
	}
	return b.String()
}

func escapeVariant(b *strings.Builder, v string) {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if isUnreserved(c) || c == ',' || c == ' ' || c == ';' || c == '/' || c == '*' {
			b.WriteByte(c)
		} else {
			b.WriteByte('%')
			b.WriteByte(upperhex[c>>4])
			b.WriteByte(upperhex[c&15])
		}
	}
}
