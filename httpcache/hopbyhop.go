package httpcache

import (
	"net/http"
	"net/textproto"
	"strings"
)

// hopHeaders are the hop-by-hop fields of RFC 9110 §7.6.1 plus the
// de-facto ones net/http/httputil also removes. They are never forwarded
// by this proxy (except a validated Upgrade, see upgradeType) and never
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

// removeHopByHop deletes the hop-by-hop fields of h, including every
// field named in Connection (RFC 9110 §7.6.1), in place.
func removeHopByHop(h http.Header) {
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

// upgradeType returns the protocol a request asks to switch to: the
// Upgrade field's value, only when Connection lists the "upgrade" token.
// "Connection: keep-alive, Upgrade" without an Upgrade field, or an
// Upgrade field that Connection does not name, is not an upgrade.
func upgradeType(h http.Header) string {
	if !headerHasToken(h, "Connection", "upgrade") {
		return ""
	}
	return strings.TrimSpace(h.Get("Upgrade"))
}

// headerHasToken reports whether a comma-separated list field contains
// token (case-insensitive).
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h[name] {
		for f := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(textproto.TrimString(f), token) {
				return true
			}
		}
	}
	return false
}

// storedHeader returns a copy of a response header fit to store: no
// hop-by-hop fields, no fields named in Connection, no Age (the proxy
// computes Age itself) and no upstream Cache-Status.
func storedHeader(h http.Header) http.Header {
	out := h.Clone()
	removeHopByHop(out)
	delete(out, "Age")
	delete(out, "Cache-Status")
	return out
}
