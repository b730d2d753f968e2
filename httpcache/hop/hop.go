// Package hop holds the rules for the fields that belong to one
// connection rather than to the message (RFC 9110 §7.6.1), and for the
// forwarding fields a proxy sets for the origin: which hop-by-hop fields
// go, which fields a Connection header nominates, when a request asks to
// switch protocols, and what X-Forwarded-* says. The caching proxy
// (package httpcache) and the live socket broker (httpcache/livesocket)
// both forward requests by these rules. It also guards the message
// framing of the public listener and of origin connections
// ([GuardListener], [GuardConn]), and lets a handler send a response
// that is complete in memory in one write on a guarded connection
// ([CorkWrites]). It imports only the standard library.
package hop

import (
	"net"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
)

// hopHeaders are the hop-by-hop fields of RFC 9110 §7.6.1 plus the
// de-facto ones net/http/httputil also removes. They are never forwarded
// by the proxy (except a validated Upgrade, see UpgradeType) and never
// stored.
var hopHeaders = []string{
	"Connection",
	"Proxy-Connection",
	"Keep-Alive",
	"Proxy-Authenticate",
	"Proxy-Authorization",
	"Te",
	"Trailer",
	"Transfer-Encoding",
	"Upgrade",
}

// Remove deletes the hop-by-hop fields of h, including every field named
// in Connection (RFC 9110 §7.6.1), in place. A nil h is left alone.
func Remove(h http.Header) {
	for _, v := range h["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			if f = textproto.TrimString(f); f != "" {
				h.Del(f)
			}
		}
	}
	for _, k := range hopHeaders {
		delete(h, k)
	}
}

// WithoutNominated returns r, or a shallow copy of r whose header lacks
// the fields named in Connection, when it carries any. Those fields never
// reach the origin (Remove), so a variant selected by them would
// store a response rendered without them for every client that sends
// them. r is not modified; the copy shares r's context and body.
func WithoutNominated(r *http.Request) *http.Request {
	nominated := false
	for _, v := range r.Header["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			if f = textproto.TrimString(f); f != "" && len(r.Header[http.CanonicalHeaderKey(f)]) > 0 {
				nominated = true
			}
		}
	}
	if !nominated {
		return r
	}
	r2 := r.WithContext(r.Context())
	r2.Header = r.Header.Clone()
	Remove(r2.Header)
	return r2
}

// UpgradeType returns the protocol a request asks to switch to: the
// Upgrade field's value, only when Connection lists the "upgrade" token.
// "Connection: keep-alive, Upgrade" without an Upgrade field, or an
// Upgrade field that Connection does not name, is not an upgrade.
func UpgradeType(h http.Header) string {
	if !HasToken(h, "Connection", "upgrade") {
		return ""
	}
	return strings.TrimSpace(h.Get("Upgrade"))
}

// HasToken reports whether a comma-separated list field of h contains
// token (case-insensitive, RFC 9110 §5.6.1).
func HasToken(h http.Header, name, token string) bool {
	for _, v := range h[name] {
		for f := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(textproto.TrimString(f), token) {
				return true
			}
		}
	}
	return false
}

// untrustedForwarding are request fields that proxies set to describe the
// client's connection, and that applications honour (Plug.RewriteOn's
// x_forwarded_port, Rack's X-Forwarded-Ssl and -Scheme, Spring's
// X-Forwarded-Prefix, IIS's X-Original-URL). From a client they are
// forged; SetForwarded drops them unless forwarding is trusted.
var untrustedForwarding = []string{
	"X-Forwarded-Port",
	"X-Forwarded-Prefix",
	"X-Forwarded-Server",
	"X-Forwarded-Ssl",
	"X-Forwarded-Scheme",
	"X-Real-Ip",
	"X-Original-Url",
	"X-Rewrite-Url",
	"Front-End-Https",
}

// SetForwarded sets X-Forwarded-For, X-Forwarded-Host and
// X-Forwarded-Proto in out, the header of a request being sent to the
// origin on behalf of in.
//
// With trust false the client's own forwarding headers are ignored: the
// fields say what this connection is (peer IP, in.Host, "https" when
// in.TLS is set, else "http"). With trust true (behind a proxy that
// overwrites them) the client's X-Forwarded-For is kept and the peer IP
// appended, and its X-Forwarded-Host and X-Forwarded-Proto replace the
// connection's values when present. X-Forwarded-For is left unset when
// in.RemoteAddr is not host:port and nothing trusted precedes it.
//
// Without trust it also deletes from out the other forwarding fields a
// client could make up (untrustedForwarding): the cache key does not hold
// them, yet frameworks build absolute URLs and redirects from them, so
// one client's value would be stored for everyone. Forwarded (RFC 7239)
// is always deleted; the X-Forwarded-* fields replace it.
//
// It only writes out; in is not modified. It is safe for concurrent use
// on distinct out headers.
func SetForwarded(out http.Header, in *http.Request, trust bool) {
	ip, _, err := net.SplitHostPort(in.RemoteAddr)
	if err != nil {
		ip = ""
	}
	xff, host, proto := ip, in.Host, "http"
	if in.TLS != nil {
		proto = "https"
	}
	if trust {
		if prior := strings.Join(in.Header.Values("X-Forwarded-For"), ", "); prior != "" {
			xff = prior
			if ip != "" {
				xff += ", " + ip
			}
		}
		if v := in.Header.Get("X-Forwarded-Host"); v != "" {
			host = v
		}
		if v := in.Header.Get("X-Forwarded-Proto"); v != "" {
			proto = v
		}
	}
	out.Del("Forwarded")
	if !trust {
		for _, k := range untrustedForwarding {
			delete(out, k)
		}
	}
	if xff != "" {
		out.Set("X-Forwarded-For", xff)
	} else {
		out.Del("X-Forwarded-For")
	}
	out.Set("X-Forwarded-Host", host)
	out.Set("X-Forwarded-Proto", proto)
}

// AppendVia appends the member "major.minor pseudonym" to h's Via field
// (RFC 9110 §7.6.3): a proxy or gateway adds itself to every message it
// forwards, after the members already there, with the version of the
// protocol it received the message in. The pseudonym stands in for a
// host name, so no internal name or port leaks. The field lines already
// in h are joined into one; their slices are not modified. An empty
// pseudonym leaves h alone.
func AppendVia(h http.Header, major, minor int, pseudonym string) {
	if pseudonym == "" {
		return
	}
	m := viaVersion(major, minor) + " " + pseudonym
	if prior := h["Via"]; len(prior) > 0 {
		m = strings.Join(prior, ", ") + ", " + m
	}
	h["Via"] = []string{m}
}

// viaVersion is a received-protocol's version: "1.1", "1.0", "2.0".
func viaVersion(major, minor int) string {
	switch {
	case major == 1 && minor == 1:
		return "1.1"
	case major == 1 && minor == 0:
		return "1.0"
	case major == 2 && minor == 0:
		return "2.0"
	}
	return strconv.Itoa(major) + "." + strconv.Itoa(minor)
}

// IsToken reports whether s is an RFC 9110 token (§5.6.2): one or more
// tchars, as field names, method names and a Via pseudonym are.
func IsToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !IsTchar(s[i]) {
			return false
		}
	}
	return true
}

// IsTchar reports whether c may appear in a token: a letter, a digit or
// one of !#$%&'*+-.^_`|~ (RFC 9110 §5.6.2).
func IsTchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
