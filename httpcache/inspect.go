package httpcache

import (
	"net/http"
	"time"
)

// Inspector examines a complete GET response before it is stored. The
// liveview package plugs its first-render lint in here.
//
// Inspect is called once per response that the proxy would otherwise
// store, possibly concurrently for different requests. When the body's
// Content-Length is known and at most [Config].InspectBuffer, it is called
// on the client's path, after the whole body arrived and before the
// response's headers are written, so that the response's own
// Cache-Status reports the verdict; keep it fast (the liveview lint takes
// about 20 µs for a 20 KB page). Otherwise it is called in a background
// goroutine once the body has streamed to the client. A panic is
// recovered and counts as a refusal ("inspector-panic").
//
// r is the client's request (its body already consumed; do not read it).
// res is what will be stored. res.Header is the stored copy's own: the
// inspector may modify it in place. res.Body's bytes are shared with the
// response the requesting client receives (the body is read once, see
// fill.inspectNow) and must not be modified: to store another body
// (strip or blank), assign res.Body a new slice, which changes only the
// stored copy. Neither may be kept after Inspect returns.
type Inspector interface {
	Inspect(r *http.Request, res *Response) Verdict
}

// InspectorFunc adapts a function to the [Inspector] interface.
type InspectorFunc func(r *http.Request, res *Response) Verdict

// Inspect calls f(r, res).
func (f InspectorFunc) Inspect(r *http.Request, res *Response) Verdict { return f(r, res) }

// Response is a complete response as the proxy would store it: status,
// headers without hop-by-hop fields, and the whole body.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Verdict is an [Inspector]'s decision about a response.
type Verdict struct {
	// Refuse, when non-empty, keeps the response out of the store; it is
	// a short reason that appears in Cache-Status detail= (on the
	// response itself when it was inspected before its headers went out,
	// and on later requests for the URL, which go to the origin for
	// HitForPassTTL) and in the log.
	Refuse string
	// NotAfter, when non-zero, is the instant after which the stored
	// entry is never served, fresh or stale. It is stored as the
	// annotation httpcache.not-after and caps Cache-Status ttl=.
	NotAfter time.Time
	// Annotations are stored on the record (merged over the proxy's own;
	// the proxy's httpcache.* keys win).
	Annotations map[string]string
	// Splice, when non-empty, says the stored copy must be personalized
	// for each visitor: it is the data [Config].Splicer.Load reads, stored
	// as the httpcache.splice annotation. Only honoured on
	// [Config].SplicePaths with a Splicer; elsewhere the response is
	// refused (detail=splice-unconfigured).
	Splice string
}
