package plugsession

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// RequestCookie returns the value of the cookie called name in a request's
// Cookie header lines, read the way Plug.Conn.fetch_cookies/2 and
// Plug.Conn.Cookies.decode/1 read them: pairs split on ';', leading spaces
// and tabs dropped, a key without whitespace, a value without control
// characters other than spaces (trailing spaces dropped), no unquoting or
// percent-decoding, and the last pair of that name winning, across lines.
func RequestCookie(headers []string, name string) (value string, ok bool) {
	for _, h := range headers {
		for len(h) > 0 {
			var kv string
			kv, h, _ = strings.Cut(h, ";")
			k, v, good := decodeCookieKV(kv)
			if good && k == name {
				value, ok = v, true
			}
		}
	}
	return value, ok
}

func decodeCookieKV(kv string) (k, v string, ok bool) {
	kv = strings.TrimLeft(kv, " \t")
	eq := strings.IndexByte(kv, '=')
	if eq <= 0 {
		return "", "", false
	}
	k = kv[:eq]
	if strings.ContainsAny(k, " \t\r\n\v\f") {
		return "", "", false
	}
	v = kv[eq+1:]
	if strings.ContainsAny(v, "\t\r\n\v\f") {
		return "", "", false
	}
	return k, strings.TrimRight(v, " "), true
}

// CookieAttrs are the attributes of the session cookie as the origin set
// them (Plug.Session's :path, :domain, :max_age, :secure, :http_only,
// :same_site, :extra options). The zero value is not what Plug writes by
// default; use [ParseSetCookie] on the origin's header.
type CookieAttrs struct {
	Path        string // "" and !HasPath: no path attribute
	HasPath     bool
	Domain      string // "": none
	MaxAge      int    // seconds, when HasMaxAge
	HasMaxAge   bool
	Secure      bool
	HTTPOnly    bool
	SameSite    string // as written, e.g. "Lax"; "": none
	Partitioned bool
	// Extra holds the other attributes verbatim, in order (Plug's :extra).
	Extra []string
}

// ErrSetCookie is wrapped by errors about a Set-Cookie line that cannot be
// parsed or replayed.
var ErrSetCookie = errors.New("plugsession: unusable Set-Cookie")

// ParseSetCookie splits a Set-Cookie line (as Plug.Conn.Cookies.encode/2
// writes it, or any RFC 6265 §4.1 line) into the cookie's name, its value
// and its attributes. An Expires attribute is dropped when Max-Age is
// present (it is recomputed per response, as Plug does); an Expires without
// Max-Age is refused, since an absolute date stored once would go stale.
// Errors wrap [ErrSetCookie].
func ParseSetCookie(line string) (name, value string, attrs CookieAttrs, err error) {
	parts := strings.Split(line, ";")
	nv := strings.TrimSpace(parts[0])
	eq := strings.IndexByte(nv, '=')
	if eq <= 0 {
		return "", "", attrs, fmt.Errorf("%w: no name=value", ErrSetCookie)
	}
	name, value = strings.TrimSpace(nv[:eq]), strings.TrimSpace(nv[eq+1:])
	if strings.ContainsAny(line, "\r\n\x00") {
		return "", "", attrs, fmt.Errorf("%w: control characters", ErrSetCookie)
	}
	hasExpires := false
	for _, p := range parts[1:] {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		k, v, _ := strings.Cut(p, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch strings.ToLower(k) {
		case "path":
			attrs.Path, attrs.HasPath = v, true
		case "domain":
			attrs.Domain = v
		case "max-age":
			n, perr := strconv.Atoi(v)
			if perr != nil {
				return "", "", attrs, fmt.Errorf("%w: max-age %q", ErrSetCookie, v)
			}
			attrs.MaxAge, attrs.HasMaxAge = n, true
		case "expires":
			hasExpires = true
		case "secure":
			attrs.Secure = true
		case "httponly":
			attrs.HTTPOnly = true
		case "samesite":
			attrs.SameSite = v
		case "partitioned":
			attrs.Partitioned = true
		default:
			attrs.Extra = append(attrs.Extra, p)
		}
	}
	if hasExpires && !attrs.HasMaxAge {
		return "", "", attrs, fmt.Errorf("%w: expires without max-age cannot be replayed", ErrSetCookie)
	}
	return name, value, attrs, nil
}

// Format returns the Set-Cookie line for name=value with a's attributes,
// in the order and spelling of Plug.Conn.Cookies.encode/2: path, domain,
// expires and max-age (expires computed from now, as Plug does from
// :calendar.universal_time/0), secure, HttpOnly, SameSite, Partitioned,
// extra.
func (a CookieAttrs) Format(name, value string, now time.Time) string {
	var b strings.Builder
	b.Grow(len(name) + len(value) + 128)
	b.WriteString(name)
	b.WriteByte('=')
	b.WriteString(value)
	if a.HasPath {
		b.WriteString("; path=")
		b.WriteString(a.Path)
	}
	if a.Domain != "" {
		b.WriteString("; domain=")
		b.WriteString(a.Domain)
	}
	if a.HasMaxAge {
		b.WriteString("; expires=")
		b.WriteString(now.UTC().Add(time.Duration(a.MaxAge) * time.Second).Format("Mon, 02 Jan 2006 15:04:05 GMT"))
		b.WriteString("; max-age=")
		b.WriteString(strconv.Itoa(a.MaxAge))
	}
	if a.Secure {
		b.WriteString("; secure")
	}
	if a.HTTPOnly {
		b.WriteString("; HttpOnly")
	}
	if a.SameSite != "" {
		b.WriteString("; SameSite=")
		b.WriteString(a.SameSite)
	}
	if a.Partitioned {
		b.WriteString("; Partitioned")
	}
	for _, e := range a.Extra {
		b.WriteString("; ")
		b.WriteString(e)
	}
	return b.String()
}
