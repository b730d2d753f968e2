package httpcache

import (
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/firstrender/firstrender/httpcache/hop"
)

// serveStored answers from a stored entry if the request and the entry's
// freshness allow it (a hit, or stale under max-stale or
// stale-while-revalidate), and reports true. Otherwise it prepares ex for
// a revalidation with the origin (or answers 504 for only-if-cached,
// reporting true).
func (p *Proxy) serveStored(w http.ResponseWriter, r *http.Request, ex *exchange, e *entry) bool {
	now := p.now()
	age := e.pol.age(e.rec.ResponseTime, now)
	remaining := e.softCap(e.pol.lifetime-age, now) // a soft purge makes it stale
	fresh := remaining > 0 && !e.pol.noCache
	rq := ex.rq
	cs := cacheStatus{hit: true}
	fwd := requestFwd(&rq, age, remaining)
	switch {
	case fwd != "", fresh:
	default:
		staleBy := -remaining
		switch {
		case e.pol.noCache:
			fwd = fwdStale
		case !e.pol.mustReval && rq.maxStale >= 0 && staleBy <= secs(rq.maxStale),
			!e.pol.mustReval && rq.maxStaleAny:
			cs.detail = "max-stale"
		case e.pol.swr > 0 && staleBy <= e.pol.swr:
			cs.detail = "stale-while-revalidate"
			p.revalidateInBackground(ex, e)
		default:
			fwd = fwdStale
		}
	}
	if fwd == "" {
		result := ResultStale
		if fresh {
			result = ResultHit
		}
		if e.splice != nil {
			if p.serveSpliced(w, r, ex, e, result, cs, now) {
				return true
			}
			// This visitor cannot get a spliced copy: the origin answers
			// them, uncached.
			ex.cs = cacheStatus{fwd: fwdMiss, detail: "splice-failed"}
			ex.result, ex.mode, ex.fill = ResultPass, modePass, nil
			return false
		}
		p.serveEntry(w, r, ex, e, result, cs, now)
		return true
	}
	if rq.onlyIfCached {
		p.replyError(w, ex, http.StatusGatewayTimeout, cacheStatus{fwd: fwd, detail: "only-if-cached"}, "gateway timeout: only-if-cached and the stored response needs validation")
		return true
	}
	ex.cs = cacheStatus{fwd: fwd}
	ex.entry = e
	ex.result = ResultRevalidated
	if r.Method == http.MethodGet {
		ex.mode, ex.fill = modeRevalidate, &fill{p: p}
	} else {
		// A HEAD is forwarded as it is (only a GET refetches the
		// body); a 200 to it freshens or invalidates e (modifyResponse,
		// RFC 9111 §4.3.5).
		ex.mode, ex.fill = modePass, nil
	}
	return false
}

// requestFwd is the forward reason the request's own directives rq give
// for a stored entry of the given age and remaining freshness
// (fwdRequest), or "" when they let it be served.
func requestFwd(rq *reqDirectives, age, remaining time.Duration) string {
	switch {
	case rq.noCache,
		rq.maxAge >= 0 && age > secs(rq.maxAge),
		rq.minFresh >= 0 && remaining < secs(rq.minFresh):
		return fwdRequest
	}
	return ""
}

// servePlainHit answers r from e, found in memory or read from the store
// for this request alone, if it is a plain fresh hit (what serveStored
// answers without the origin or a background revalidation, and without
// a splice), and reports whether it did. Otherwise it leaves ex as it
// was, for serveStored. When it answered, nothing it started refers to
// ex or e: the body was written (serveEntry) before it returned, so a
// store read's pooled buffer may be recycled (serveCacheable).
func (p *Proxy) servePlainHit(w http.ResponseWriter, r *http.Request, ex *exchange, e *entry) bool {
	if e.splice != nil {
		return false
	}
	now := p.nowAt(ex.start)
	age := e.pol.age(e.rec.ResponseTime, now)
	remaining := e.softCap(e.pol.lifetime-age, now)
	if remaining <= 0 || e.pol.noCache || requestFwd(&ex.rq, age, remaining) != "" {
		return false
	}
	ex.key = e.rec.Key
	p.serveEntry(w, r, ex, e, ResultHit, cacheStatus{hit: true}, now)
	ex.reusable = true // nothing was started that refers to ex
	return true
}

// serveEntry answers r from a stored entry: the outcome is result, with cs
// as sent (ttl= added).
func (p *Proxy) serveEntry(w http.ResponseWriter, r *http.Request, ex *exchange, e *entry, result Result, cs cacheStatus, now time.Time) {
	if e.splice != nil {
		if !p.serveSpliced(w, r, ex, e, result, cs, now) {
			cs.hit, cs.collapsed, cs.hasTTL, cs.detail = false, false, false, "splice-failed"
			p.replyError(w, ex, http.StatusBadGateway, cs, "bad gateway: the stored page cannot be personalized for this session")
		}
		return
	}
	ex.result = result
	// The whole response is in memory: header and body leave in one
	// write on a guarded connection, instead of net/http's two for a
	// body past its 4 KB buffer (hop.CorkWrites).
	cork := hop.CorkWrites(r.Context())
	if result == ResultHit && e.block != nil && cork.Active() && p.serveEncoded(w, r, ex, e, cs, now, cork) {
		return
	}
	h := w.Header()
	status, body, framed := p.entryResponse(h, r, e, &cs, now)
	ex.cs = cs
	w.WriteHeader(status)
	if cork.Active() && len(body) > netHTTPBuffer && framed {
		// The header alone first (held by the cork), so the body goes
		// from the entry straight into the writev: otherwise its first
		// 4 KB is copied into net/http's buffer, then into the cork.
		// net/http sniffs no Content-Type and computes no length here:
		// both are set.
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
	}
	if len(body) > 0 {
		n, _ := w.Write(body)
		if p.met != nil && !ex.background {
			p.met.bytes.Add(float64(n))
		}
	}
	if cork.Holding() {
		// net/http wrote its full buffer (held); what it still buffers
		// joins it. A response that fit its buffer is not flushed here:
		// it leaves in one write after the handler, as before.
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
	}
	cork.Release()
}

// serveEncoded answers r with a plain hit of e, whose fields are
// encoded (entry.block), on a corked connection: net/http's handler
// header holds only Content-Length (and nil Content-Type and Date, which
// keep net/http from adding its own), and the cork inserts Age,
// Cache-Status and e's block into the header section net/http writes.
// The response is the one entryResponse builds, field for field
// (TestServeEncoded_AsTheHeaderMap), without copying up to a dozen
// fields into net/http's map per hit, net/http cloning that map (past 8
// fields, a larger map and 7 allocations), sorting and encoding it: the
// hit's share of net/http's header work becomes a copy of one block.
// It reports false, having written nothing, for a response that is not
// a full 200 to a GET (a conditional one, a Range, a HEAD), a
// non-plain Cache-Status, or a handler header that already holds fields
// (entryResponse merges those).
func (p *Proxy) serveEncoded(w http.ResponseWriter, r *http.Request, ex *exchange, e *entry, cs cacheStatus, now time.Time, cork hop.Cork) bool {
	f, ok := w.(http.Flusher)
	h := w.Header()
	if !ok || len(h) > 0 || r.Method != http.MethodGet || cs != (cacheStatus{hit: true}) || hasRange(r) || notModified(r.Header, http.Header(e.rec.Header), e.rec.ResponseTime) {
		return false
	}
	ttl := ttlOf(e, now)
	ageV, csV := e.hitHeader(e.pol.age(e.rec.ResponseTime, now), ttl)
	b := cork.Fields()
	b = append(b, "Age: "...)
	b = append(b, ageV[0]...)
	b = append(b, "\r\nCache-Status: "...)
	b = append(b, csV[0]...)
	b = append(b, "\r\n"...)
	b = append(b, e.block...)
	cork.InsertFields(b)
	h["Content-Length"] = e.clen
	h["Content-Type"] = nil // in the block; nil: net/http sniffs none
	if e.hasDate {
		h["Date"] = nil // the stored one is in the block
	}
	ex.cs, ex.sentCS = cacheStatus{hit: true, ttl: ttl, hasTTL: true}, csV[0]
	w.WriteHeader(http.StatusOK)
	f.Flush() // the header section alone: the cork inserts the fields there
	n, _ := w.Write(e.rec.Body)
	if p.met != nil && !ex.background {
		p.met.bytes.Add(float64(n))
	}
	f.Flush() // a body within net/http's buffer joins the held header
	cork.Release()
	return true
}

// encodeBlock appends to dst (nil: a buffer of its own, sized) fields (in
// name order) as net/http's Header.Write writes them: an invalid name dropped, CR and LF in a value as spaces,
// values trimmed of ASCII space, one "Name: value\r\n" line per value.
// Age, Cache-Status and Content-Length are left out (each response sets
// its own). It returns nil when a field is one net/http frames the
// response by (Connection, Transfer-Encoding, Trailer): those go through
// its map.
func encodeBlock(dst []byte, fields []headerField) []byte {
	n := 0
	for _, f := range fields {
		switch f.name {
		case "Connection", "Transfer-Encoding", "Trailer":
			return nil
		}
		for _, v := range f.values {
			n += len(f.name) + len(v) + 4
		}
	}
	b := dst
	if b == nil || cap(b) < n {
		b = make([]byte, 0, n)
	}
	for _, f := range fields {
		switch f.name {
		case "Age", "Cache-Status", "Content-Length":
			continue
		}
		if !hop.IsToken(f.name) {
			continue // net/http drops it
		}
		for _, v := range f.values {
			b = append(b, f.name...)
			b = append(b, ": "...)
			b = appendFieldValue(b, v)
			b = append(b, "\r\n"...)
		}
	}
	return b
}

// fieldNewlines is net/http's own replacer for header values.
var fieldNewlines = strings.NewReplacer("\n", " ", "\r", " ")

// appendFieldValue appends v as net/http's Header.Write writes a value:
// CR and LF replaced by spaces, then trimmed of ASCII space, in the same
// two steps. It runs once per entry (encodeBlock), not per hit.
func appendFieldValue(b []byte, v string) []byte {
	return append(b, textproto.TrimString(fieldNewlines.Replace(v))...)
}

// entryResponse writes into h the header of the response a stored entry
// gives r (its stored fields, Age, Content-Length and Cache-Status cs,
// whose ttl= it sets) and returns its status (304 when r's own
// conditional matches), body (nil for a 304 or a HEAD; shared with the
// entry, read-only) and whether h has both Content-Length and
// Content-Type (net/http then computes and sniffs nothing).
func (p *Proxy) entryResponse(h http.Header, r *http.Request, e *entry, cs *cacheStatus, now time.Time) (int, []byte, bool) {
	// The fields that target this cache are left out as they are copied
	// (prepared entries hold none; a delete per name from a map of 9
	// fields costs a probe each); whatever h already held is stripped
	// after.
	strip := len(h) > 0
	if e.hdr != nil {
		for _, f := range e.hdr {
			h[f.name] = f.values
		}
	} else {
		for k, v := range e.rec.Header {
			if !isTargetedField(k) {
				h[k] = v
			}
		}
	}
	if strip {
		stripTargeted(h)
	}
	age := e.pol.age(e.rec.ResponseTime, now)
	cs.ttl, cs.hasTTL = ttlOf(e, now), true
	if e.hdr != nil && *cs == (cacheStatus{hit: true, ttl: cs.ttl, hasTTL: true}) {
		// The plain hit: Age and Cache-Status prepared once per second.
		h["Age"], h["Cache-Status"] = e.hitHeader(age, cs.ttl)
	} else {
		// RFC 9111 §1.2.2: an age too large to represent is sent as 2147483648.
		h["Age"] = []string{strconv.FormatInt(min(int64(age/time.Second), 1<<31), 10)}
		h["Cache-Status"] = []string{cs.String()}
	}
	status := e.rec.Status
	// h is the entry's fields and ours unless it held some before: then
	// its own Content-Encoding and Content-Type are read.
	known := e.hdr != nil && !strip
	if status == http.StatusOK && notModified(r.Header, http.Header(e.rec.Header), e.rec.ResponseTime) {
		// RFC 9110 §15.4.5: the 304 carries the ETag and Vary the 200
		// would have had for this client: a gzip entry is served with
		// Vary: Accept-Encoding, and decoded with a weak ETag.
		if (known && e.gzip) || (!known && isGzip(h)) {
			if acceptsGzip(r.Header["Accept-Encoding"]) {
				addVaryAcceptEncoding(h)
			} else {
				decodedHeader(h)
			}
		}
		delete(h, "Content-Type")
		delete(h, "Content-Length")
		delete(h, "Content-Encoding")
		return http.StatusNotModified, nil, false
	}
	if (known && e.gzip) || (!known && isGzip(h)) || hasRange(r) {
		// Decoded for a client that does not accept gzip (encoding.go),
		// a part of it for a Range request (range.go).
		status, body := p.representation(h, r, e, status)
		return status, body, hasField(h, "Content-Length") && hasField(h, "Content-Type")
	}
	if e.clen == nil {
		h["Content-Length"] = []string{strconv.Itoa(len(e.rec.Body))}
	} else {
		h["Content-Length"] = e.clen
	}
	framed := (known && e.hasCT) || (!known && hasField(h, "Content-Type"))
	if r.Method == http.MethodHead {
		return status, nil, framed
	}
	return status, e.rec.Body, framed
}

// netHTTPBuffer is the size of net/http's connection write buffer: a
// write larger than it, with nothing buffered, goes to the connection
// without a copy.
const netHTTPBuffer = 4 << 10

// headerValue is h.Get(name) for a name already in canonical form (a
// constant such as "If-Match"): the first value, or "". Get would
// canonicalize name again on every call, a scan of it per request
// (16% of BenchmarkServeHTTP_Hit/hot's time for four such fields).
func headerValue(h http.Header, name string) string {
	if v := h[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func hasField(h http.Header, name string) bool {
	_, ok := h[name]
	return ok
}

// ttlOf returns the remaining freshness, capped by not-after.
func ttlOf(e *entry, now time.Time) time.Duration {
	ttl := e.softCap(e.pol.lifetime-e.pol.age(e.rec.ResponseTime, now), now)
	if !e.notAfter.IsZero() {
		if left := e.notAfter.Sub(now); left < ttl {
			ttl = left
		}
	}
	return ttl
}

// notModified evaluates the client's If-None-Match / If-Modified-Since
// against a stored response received at received (RFC 9110 §13.1.2,
// §13.1.3, §13.2.2). If-Modified-Since is compared with the stored
// Last-Modified, else its Date, else the time it was received (RFC 9111
// §4.3.2).
func notModified(reqH, respH http.Header, received time.Time) bool {
	if inm := reqH["If-None-Match"]; len(inm) > 0 {
		etag := respH.Get("Etag")
		if etag == "" {
			return false
		}
		for _, v := range inm {
			for t := range strings.SplitSeq(v, ",") {
				t = strings.TrimSpace(t)
				if t == "*" || weakMatch(t, etag) {
					return true
				}
			}
		}
		return false
	}
	ims := headerValue(reqH, "If-Modified-Since")
	if ims == "" {
		return false
	}
	// RFC 9110 §13.1.3: an If-Modified-Since that is not a valid
	// HTTP-date is ignored (parseHTTPDate: the grammar, not
	// time.Parse's looser reading).
	since, ok := parseHTTPDate(ims, time.Time{})
	if !ok {
		return false
	}
	var lm time.Time
	switch {
	case headerValue(respH, "Last-Modified") != "":
		lm, ok = parseHTTPDate(headerValue(respH, "Last-Modified"), time.Time{})
	case headerValue(respH, "Date") != "":
		lm, ok = parseHTTPDate(headerValue(respH, "Date"), time.Time{})
	default:
		lm, ok = received, !received.IsZero()
	}
	if !ok {
		return false
	}
	return !lm.After(since)
}

func weakMatch(a, b string) bool {
	return strings.TrimPrefix(a, "W/") == strings.TrimPrefix(b, "W/")
}
