package httpcache

import (
	"bytes"
	"context"
	"io"
	"maps"
	"net/http"
	"strconv"
	"time"

	"github.com/firstrender/firstrender/httpcache/hop"
)

// revalidateInBackground refreshes a stale entry being served under
// stale-while-revalidate. The revalidation is a background exchange sent
// through the same origin path as a client's (forward), and it leads the
// collapsed flight of the entry's variant, so there is one at a time and
// concurrent requests that must wait for a fresh copy wait on it.
func (p *Proxy) revalidateInBackground(ex *exchange, e *entry) {
	f, leader := p.flights.join(e.rec.Key + "\x00" + e.rec.Variant)
	if !leader {
		return // a fetch of this variant is already under way
	}
	in := ex.in.Clone(context.Background())
	in.Method = http.MethodGet // only a GET refreshes an entry, even for a HEAD served stale
	bex := &exchange{
		in: in, n: ex.n, key: ex.key, rq: ex.rq,
		mode: modeRevalidate, entry: e, fill: &fill{p: p, flight: f}, background: true,
		cs: cacheStatus{fwd: fwdStale}, result: ResultRevalidated,
	}
	if !p.goBackground(func() { p.forward(backgroundWriter{}, in, bex) }) {
		p.flights.end(f) // closing
	}
}

// backgroundWriter is the ResponseWriter of a background revalidation:
// nobody reads its response; the fill keeps what it stores.
type backgroundWriter struct{}

func (backgroundWriter) Header() http.Header         { return http.Header{} }
func (backgroundWriter) WriteHeader(int)             {}
func (backgroundWriter) Write(b []byte) (int, error) { return len(b), nil }

// revalidated handles the origin's answer to a conditional request for a
// stored entry: a 304 freshens the entry and serves it, a 5xx within
// stale-if-error serves it stale. It reports whether resp was replaced;
// otherwise the answer is judged like a miss's (fill.decide).
func (p *Proxy) revalidated(resp *http.Response, ex *exchange, respTime time.Time) bool {
	e := ex.entry
	switch {
	case resp.StatusCode == http.StatusNotModified:
		// RFC 9111 §4.3.4: update the stored headers from the 304.
		p.freshened(resp, ex, respTime)
		return true
	case resp.StatusCode >= 500 && p.staleIfErrorOK(e, &ex.rq, respTime):
		ex.cs.detail = "stale-if-error"
		ex.result = ResultStale
		p.replaceWithEntry(resp, ex, e, respTime)
		return true
	}
	return false
}

// freshened updates ex's stored entry with the header fields of resp (a
// 304, or a 200 to HEAD that matches it) and turns resp into the
// refreshed entry's response. ex.fill makes the store change.
func (p *Proxy) freshened(resp *http.Response, ex *exchange, respTime time.Time) {
	ne, reason := p.freshen(ex, resp.Header, respTime)
	if reason != "" {
		// Not stored any more: for this client only.
		ex.fill.release(nil)
		ex.cs.detail = reason
		p.met.refuse(reason)
		p.pass.remember(ex.key, reason, respTime.Add(p.cfg.HitForPassTTL))
		p.replaceWithEntry(resp, ex, ne, respTime)
		return
	}
	ex.fill.release(ne)
	ex.cs.stored = true
	ex.fill.checkStoreHealth(ex)
	p.replaceWithEntry(resp, ex, ne, respTime)
}

// staleIfErrorOK reports whether the stored entry e may answer a request
// with directives rq stale because the origin failed: within the
// response's stale-if-error window (or Config.StaleIfError), or within
// the request's own (RFC 5861 §4: its scope is that request). The
// request cannot lift what forbids serving stale (RFC 9111 §4.2.4:
// must-revalidate, proxy-revalidate, s-maxage, no-cache), nor make a
// stored error status (StoreErrors) or an entry past not-after answer.
func (p *Proxy) staleIfErrorOK(e *entry, rq *reqDirectives, now time.Time) bool {
	if e == nil {
		return false
	}
	window := e.pol.sie
	if rq.sie > 0 && !e.pol.mustReval && !e.pol.noCache && e.rec.Status < 400 {
		window = max(window, secs(rq.sie))
	}
	if window <= 0 {
		return false
	}
	if !e.notAfter.IsZero() && !now.Before(e.notAfter) {
		return false
	}
	staleBy := -e.softCap(e.pol.lifetime-e.pol.age(e.rec.ResponseTime, now), now)
	return staleBy <= window
}

// replaceWithEntry turns resp into the stored entry's response (not a
// hit: this response was forwarded).
func (p *Proxy) replaceWithEntry(resp *http.Response, ex *exchange, e *entry, now time.Time) {
	resp.Body.Close()
	if e.splice != nil {
		p.replaceWithSpliced(resp, ex, e, now)
		return
	}
	h := make(http.Header)
	status, body, _ := p.entryResponse(h, ex.in, e, &ex.cs, now)
	resp.StatusCode = status
	resp.Status = strconv.Itoa(status) + " " + http.StatusText(status)
	resp.Header = h
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Uncompressed = false
	if p.met != nil && !ex.background {
		p.met.bytes.Add(float64(len(body)))
	}
}

// headChanged reports whether a 200 to HEAD describes a representation
// other than the stored one (by ETag, Last-Modified or Content-Length).
func headChanged(e *entry, h http.Header) bool {
	sh := http.Header(e.rec.Header)
	for _, k := range []string{"Etag", "Last-Modified"} {
		if v := h.Get(k); v != "" && v != sh.Get(k) {
			return true
		}
	}
	if cl := h.Get("Content-Length"); cl != "" && cl != strconv.Itoa(len(e.rec.Body)) {
		return true
	}
	return false
}

// headProves reports whether a 200 to HEAD confirms the stored
// representation by a validator: the stored ETag matched by its ETag,
// or the stored Last-Modified by its Last-Modified.
func headProves(e *entry, h http.Header) bool {
	sh := http.Header(e.rec.Header)
	if et, stored := h.Get("Etag"), sh.Get("Etag"); et != "" && stored != "" {
		return weakMatch(et, stored)
	}
	lm, slm := h.Get("Last-Modified"), sh.Get("Last-Modified")
	return lm != "" && lm == slm
}

// sameValidator reports whether a 304 may update the stored entry (RFC
// 9111 §4.3.4, selecting the stored response to update): by its ETag
// when it has one (the stored response has none, or they match), else
// by its Last-Modified when both have one (the same date), else yes.
func sameValidator(e *entry, h304 http.Header) bool {
	sh := http.Header(e.rec.Header)
	if et := h304.Get("Etag"); et != "" {
		stored := sh.Get("Etag")
		return stored == "" || weakMatch(et, stored)
	}
	lm, slm := h304.Get("Last-Modified"), sh.Get("Last-Modified")
	if lm == "" || slm == "" || lm == slm {
		return true
	}
	a, okA := parseHTTPDate(lm, e.rec.ResponseTime)
	b, okB := parseHTTPDate(slm, e.rec.ResponseTime)
	return okA && okB && a.Equal(b)
}

// refetch replaces resp (a 304 that cannot be used) with the answer to
// the same request sent without validators. It is the one origin request
// made inside the ReverseProxy's ModifyResponse, and records the same
// origin metrics.
func (p *Proxy) refetch(resp *http.Response) error {
	resp.Body.Close()
	out := resp.Request.Clone(resp.Request.Context())
	for _, k := range conditionalHeaders {
		delete(out.Header, k)
	}
	wall := time.Now()
	nr, err := p.cfg.Transport.RoundTrip(out)
	if err != nil {
		p.fig.originDone(0, time.Since(wall))
	} else {
		p.fig.originDone(nr.StatusCode, time.Since(wall))
	}
	if p.met != nil {
		code := 0
		if err == nil {
			code = nr.StatusCode
		}
		p.met.origin(code, time.Since(wall))
	}
	if err != nil {
		return err
	}
	hop.Remove(nr.Header)
	nr.Request = resp.Request
	*resp = *nr
	return nil
}

// notUpdated are fields a 304 must not change in a stored response
// (RFC 9111 §3.2): Content-Length; the fields the stored response's
// integrity depends on, which §3.2 lets a cache omit: Content-Encoding
// (the stored bytes are in that coding), Content-Type (the stored body
// was inspected, and is served, as that type) and Content-Range (the
// stored response is complete); the fields never stored (proxyFields,
// Age, Cache-Status); and Set-Cookie, which is never stored from a 304.
var notUpdated = map[string]bool{
	"Content-Length":            true,
	"Content-Encoding":          true,
	"Content-Type":              true,
	"Content-Range":             true,
	"Set-Cookie":                true,
	"Cache-Status":              true,
	"Age":                       true,
	"Proxy-Authenticate":        true,
	"Proxy-Authentication-Info": true,
	"Proxy-Authorization":       true,
}

// freshen applies a 304's (or a matching HEAD 200's, §4.3.5) header
// fields to ex's stored entry (RFC 9111 §4.3.4) and has ex's fill store the result when it finishes. When the
// updated headers make the response one a shared cache must not store
// (private, no-store, Vary: *), the fill deletes the entry instead and
// the reason is returned: the refreshed entry then answers only the
// request that revalidated it. A reason owed to the request alone
// (requestOnly) leaves the stored entry as it was.
func (p *Proxy) freshen(ex *exchange, h304 http.Header, respTime time.Time) (*entry, string) {
	e := ex.entry
	nh := http.Header(e.rec.Header).Clone()
	h := h304.Clone()
	hop.Remove(h)
	for k, v := range h {
		if !notUpdated[k] {
			nh[k] = v
		}
	}
	withAge := nh.Clone()
	if a, ok := h["Age"]; ok {
		withAge["Age"] = a
	}
	d := p.parser.response(nh)
	for _, f := range d.noCacheFields {
		delete(nh, f) // qualified no-cache: not stored from the 304 either
	}
	pol := computePolicy(e.rec.Status, withAge, d, ex.call.reqTime, respTime, p.fc)
	rec := *e.rec
	rec.Header = nh
	rec.RequestTime, rec.ResponseTime, rec.StoredTime = ex.call.reqTime, respTime, time.Time{}
	rec.Annotations = maps.Clone(e.rec.Annotations)
	if rec.Annotations == nil {
		rec.Annotations = map[string]string{}
	}
	rec.Annotations[AnnotationPolicy] = pol.encode()
	delete(rec.Annotations, annSoftPurged) // revalidated: fresh again
	ne := &entry{rec: &rec, pol: pol, vary: e.vary, notAfter: e.notAfter}
	if e.splice != nil {
		ne.setSplice(e.splice) // same body, same splice points
	}
	rec.Expires = p.expiresHint(ne, nh)
	// Judged as the stored GET response it is, also when a HEAD
	// freshens it.
	if reason := storable(http.MethodGet, ex.in.Header, ex.rq, rec.Status, nh, d); reason != "" {
		if !requestOnly(reason) {
			ex.fill.remove = e
		} // else for this client alone; the stored entry stays as it was
		return ne, reason
	}
	ex.fill.put = &rec
	return ne, ""
}
