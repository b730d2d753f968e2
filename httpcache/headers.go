package httpcache

import (
	"net/http"

	"github.com/firstrender/firstrender/httpcache/hop"
)

// storedHeader returns a copy of a response header fit to store: no
// hop-by-hop fields, no fields named in Connection, no Age (the proxy
// computes Age itself) and no upstream Cache-Status.
func storedHeader(h http.Header) http.Header {
	out := h.Clone()
	hop.Remove(out)
	delete(out, "Age")
	delete(out, "Cache-Status")
	return out
}
