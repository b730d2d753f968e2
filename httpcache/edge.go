package httpcache

import (
	"net/http"
	"strconv"
	"strings"
)

// Requests refused before anything else looks at them (Cache-Status
// detail=).
const (
	reasonHeaderTooLarge = "header-too-large" // 431: a value over MaxHeaderValue
	reasonTooManyHeaders = "too-many-headers" // 431: more field lines than MaxHeaders
	reasonConnect        = "connect"          // 405: CONNECT would open a tunnel through the proxy
	reasonTrace          = "trace"            // 405: TRACE reflects the request, credentials included (XST)
	reasonFragment       = "fragment"         // 400: a raw '#' in the request-target
	reasonMaxForwards    = "max-forwards"     // 200: OPTIONS with Max-Forwards 0, answered here (RFC 9110 §7.6.2)
)

// DefaultMaxHeaderValue and DefaultMaxHeaders are the defaults of
// [Config].MaxHeaderValue and MaxHeaders: Cowboy's (max_header_value_length
// 4096, max_headers 100), at or below the limits of Phoenix's servers, so
// a request the origin would refuse with an error is refused here first.
const (
	DefaultMaxHeaderValue = 4096
	DefaultMaxHeaders     = 100
)

// allowedMethods is the Allow field of a 405 from the proxy itself.
const allowedMethods = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"

// refuseAtEdge answers the requests no origin should see, and reports
// whether it did: header fields beyond the origin's limits (431: an
// origin that refuses them would answer an error a cache could store
// under the clean URL), CONNECT (a tunnel) and TRACE (405), and a raw '#'
// in the request-target (400: a fragment is never sent, RFC 9112 §3.2,
// and proxies disagree on where such a target ends).
func (p *Proxy) refuseAtEdge(w http.ResponseWriter, r *http.Request, ex *exchange) bool {
	if n, long := p.headerLimits(r); n != "" {
		reason := reasonTooManyHeaders
		msg := "request header fields too large: more than " + strconv.Itoa(p.cfg.MaxHeaders) + " field lines"
		if long {
			reason = reasonHeaderTooLarge
			msg = "request header fields too large: " + n + " is longer than " + strconv.Itoa(p.cfg.MaxHeaderValue) + " bytes"
		}
		w.Header().Set("Connection", "close")
		p.replyError(w, ex, http.StatusRequestHeaderFieldsTooLarge, cacheStatus{fwd: fwdBypass, detail: reason}, msg)
		return true
	}
	switch r.Method {
	case http.MethodConnect, http.MethodTrace:
		reason := reasonConnect
		if r.Method == http.MethodTrace {
			reason = reasonTrace
		}
		w.Header().Set("Allow", allowedMethods)
		p.replyError(w, ex, http.StatusMethodNotAllowed, cacheStatus{fwd: fwdMethod, detail: reason}, "method not allowed: "+r.Method+" is not served by this proxy")
		return true
	}
	if r.Method == http.MethodOptions {
		if n, ok := maxForwards(r.Header); ok && n == 0 {
			// RFC 9110 §7.6.2: an intermediary receiving OPTIONS with
			// Max-Forwards 0 must not forward it, and answers as the
			// final recipient: what this proxy allows.
			ex.cs = cacheStatus{fwd: fwdMethod, detail: reasonMaxForwards}
			h := w.Header()
			h.Set("Allow", allowedMethods)
			h.Set("Cache-Status", ex.cs.String())
			h.Set("Content-Length", "0")
			w.WriteHeader(http.StatusOK)
			return true
		}
	}
	if r.URL.User != nil {
		// RFC 9110 §4.2.4: userinfo in an http(s) target is an error
		// (an absolute-form "http://user@host/"; net/http keeps it out
		// of Host, where the key's check would have seen it).
		w.Header().Set("Connection", "close")
		p.replyError(w, ex, http.StatusBadRequest, cacheStatus{fwd: fwdBypass, detail: "bad-request"}, "bad request: userinfo in the request-target")
		return true
	}
	if strings.IndexByte(r.RequestURI, '#') >= 0 || strings.IndexByte(r.URL.RawPath, '#') >= 0 {
		w.Header().Set("Connection", "close")
		p.replyError(w, ex, http.StatusBadRequest, cacheStatus{fwd: fwdBypass, detail: reasonFragment}, "bad request: '#' in the request-target")
		return true
	}
	return false
}

// headerLimits returns the name of the first field over the limits ("" if
// none) and whether it is a value that is too long (else the count is).
func (p *Proxy) headerLimits(r *http.Request) (string, bool) {
	maxV, maxN := p.cfg.MaxHeaderValue, p.cfg.MaxHeaders
	n := 0
	if r.Host != "" {
		n++ // net/http keeps Host out of the header; origins count it
	}
	for k, vs := range r.Header {
		n += len(vs)
		if maxV > 0 {
			for _, v := range vs {
				if len(v) > maxV {
					return k, true
				}
			}
		}
	}
	if maxN > 0 && n > maxN {
		return "*", false
	}
	return "", false
}
