package httpcache

import (
	"strconv"
	"strings"
	"time"
)

// CacheName is this cache's identifier in Cache-Status (RFC 9211).
const CacheName = "firstrender"

// Forward reasons of RFC 9211 §2.2 used by the proxy.
const (
	fwdBypass  = "bypass"   // configured not to use the cache for this request
	fwdMethod  = "method"   // the request method is not cacheable
	fwdURIMiss = "uri-miss" // nothing stored for the URL
	fwdVary    = "vary-miss"
	fwdMiss    = "miss" // stored but unusable (disabled, past not-after)
	fwdRequest = "request"
	fwdStale   = "stale"
)

// Cache-Status detail= values for a storable response whose store
// decision is not known when its headers go out (RFC 9211 §2.8: an
// implementation-specific token). Neither "stored" nor ttl= is sent with
// them; the outcome shows on later requests, in the log and in metrics.
const (
	// detailPendingInspection: the Inspector runs once the whole body
	// has streamed (body longer than InspectBuffer, or of unknown length).
	detailPendingInspection = "pending-inspection"
	// detailPendingSize: no Inspector, but a body of unknown length may
	// still outgrow MaxObjectSize or MaxBuffered.
	detailPendingSize = "pending-size"
)

// cacheStatus is one Cache-Status list member for this cache.
type cacheStatus struct {
	hit       bool
	fwd       string
	fwdStatus int
	stored    bool
	collapsed bool
	ttl       time.Duration
	hasTTL    bool
	detail    string
}

// String renders the member, e.g. `firstrender; fwd=uri-miss;
// fwd-status=200; stored; ttl=60` or `firstrender; hit; ttl=42`.
func (s cacheStatus) String() string {
	b := make([]byte, 0, 64)
	b = append(b, CacheName...)
	if s.hit {
		b = append(b, "; hit"...)
	}
	if s.fwd != "" {
		b = append(b, "; fwd="...)
		b = append(b, s.fwd...)
		if s.fwdStatus != 0 {
			b = append(b, "; fwd-status="...)
			b = strconv.AppendInt(b, int64(s.fwdStatus), 10)
		}
	}
	if s.stored {
		b = append(b, "; stored"...)
	}
	if s.collapsed {
		b = append(b, "; collapsed"...)
	}
	if s.hasTTL {
		b = append(b, "; ttl="...)
		b = strconv.AppendInt(b, int64(s.ttl.Round(time.Second)/time.Second), 10)
	}
	if s.detail != "" {
		b = append(b, "; detail="...)
		b = appendSFStringOrToken(b, s.detail)
	}
	return string(b)
}

// appendSFStringOrToken appends v as a Structured Fields token when it is
// one (RFC 8941 §3.3.4), otherwise as an sf-string with non-printable
// bytes dropped.
func appendSFStringOrToken(b []byte, v string) []byte {
	if isSFToken(v) {
		return append(b, v...)
	}
	b = append(b, '"')
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c >= 0x20 && c < 0x7f:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

func isSFToken(v string) bool {
	if v == "" {
		return false
	}
	c := v[0]
	if !(c == '*' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
		return false
	}
	for i := 1; i < len(v); i++ {
		c := v[i]
		if c == ':' || c == '/' {
			continue
		}
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return true
}
