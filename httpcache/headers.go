package httpcache

import (
	"net/http"

	"github.com/firstrender/firstrender/httpcache/hop"
)

// storedHeader returns a copy of a response header fit to store: no
// hop-by-hop fields, no fields named in Connection, no fields specific
// to a proxy on the way (proxyFields), no Age (the proxy computes Age
// itself) and no upstream Cache-Status.
func storedHeader(h http.Header) http.Header {
	out := h.Clone()
	hop.Remove(out)
	for _, k := range proxyFields {
		delete(out, k)
	}
	delete(out, "Age")
	delete(out, "Cache-Status")
	return out
}

// proxyFields are the fields specific to the proxy a cache forwards
// through, which RFC 9111 §3.1 forbids storing: "effectively, this is
// limited to Proxy-Authenticate, Proxy-Authentication-Info, and
// Proxy-Authorization" (the first and last are hop-by-hop as well).
var proxyFields = []string{"Proxy-Authenticate", "Proxy-Authentication-Info", "Proxy-Authorization"}
