package httpcache

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/firstrender/firstrender/httpcache/hop"
)

// forward sends ex's request to the origin through the ReverseProxy: the
// one way to the origin, for clients and for background revalidations
// alike. Its hooks (rewrite, modifyResponse, errorHandler) find ex in the
// request context. When the handler is done writing, the exchange's fill
// is finished: the store write starts, or the reservation and the
// collapsed flight are given back.
//
// A fill sent without the visitor's session cookie (splice paths) whose
// answer cannot be spliced for them is asked again, once, with the
// cookie and uncached (splicedResponse); nothing was written before.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, ex *exchange) {
	p.forwardOnce(w, r, ex)
	if ex.refetch {
		ex.refetch, ex.personal = false, false
		ex.mode, ex.fill, ex.entry = modePass, nil, nil
		ex.call = originCall{}
		ex.cs = cacheStatus{fwd: ex.cs.fwd, detail: "not-spliceable"}
		ex.result = ResultPass
		p.forwardOnce(w, r, ex)
	}
}

func (p *Proxy) forwardOnce(w http.ResponseWriter, r *http.Request, ex *exchange) {
	iw := &interimWriter{ResponseWriter: w, http10: !r.ProtoAtLeast(1, 1), ctx: r.Context(), batch: r.ProtoMajor == 1}
	defer func() {
		if ex.call.cancel != nil {
			ex.call.cancel()
		}
		if ex.fill != nil {
			ex.fill.uncork(iw)
			ex.fill.finish()
		}
	}()
	ex.call.reqTime = p.now()
	ex.call.wall = time.Now()
	ex.call.since = p.purges.since() // purges from now on cover this fetch
	if ex.fill != nil {
		ex.fill.since = ex.call.since
	}
	in := r.WithContext(context.WithValue(r.Context(), exKey{}, ex))
	if in.Body != nil && in.Body != http.NoBody {
		in.Body = &clientBody{ReadCloser: in.Body, failed: &ex.call.bodyFailed}
	}
	p.rp.ServeHTTP(iw, in)
}

// originURL builds the URL forwarded to the origin from the normalized
// form (the same one the key is built from).
func (p *Proxy) originURL(n *nurl) *url.URL {
	up := p.cfg.Upstream
	u := &url.URL{Scheme: up.Scheme, Host: up.Host, RawQuery: n.query}
	rawPath := n.path
	if bp := strings.TrimSuffix(up.EscapedPath(), "/"); bp != "" {
		rawPath = bp + n.path
	}
	path, err := url.PathUnescape(rawPath)
	if err != nil {
		path = rawPath
	}
	u.Path = path
	if u.EscapedPath() != rawPath {
		u.RawPath = rawPath
	}
	return u
}

// conditionalHeaders are removed from cacheable GETs sent to the origin:
// the cache wants a complete response it can store, and answers the
// client's own conditionals itself.
var conditionalHeaders = []string{"If-None-Match", "If-Modified-Since", "If-Range", "Range"}

// rewrite is the ReverseProxy's Rewrite hook: origin URL, forwarding
// fields, the cache's own validators, and the OriginTimeout for the
// response headers.
func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	ex := exchangeOf(pr.In)
	out := pr.Out.Header
	pr.Out.URL = p.originURL(&ex.n)
	pr.Out.Host = ""
	// Forwarding fields (ReverseProxy already removed the client's).
	hop.SetForwarded(out, pr.In, p.cfg.TrustForwarded)
	// The origin renders for the host the key holds (with TrustForwarded,
	// the client's X-Forwarded-Host), not for another spelling of it
	// ("app.test.", upper case, "app.test:080").
	out.Set("X-Forwarded-Host", ex.n.host)
	// RFC 9110 §7.6.3: a gateway MUST send Via in each inbound request,
	// with the version it received the request in.
	hop.AppendVia(out, pr.In.ProtoMajor, pr.In.ProtoMinor, p.viaName())
	if pr.In.Method == http.MethodOptions {
		decrementMaxForwards(out)
	}
	if !pr.In.ProtoAtLeast(1, 1) {
		// RFC 9110 §10.1.1: a 100-continue expectation in an HTTP/1.0
		// request is ignored, so not passed on to ask the origin for a
		// 100 the client may not get.
		delete(out, "Expect")
	}
	if ex.mode == modeMiss || ex.mode == modeRevalidate {
		for _, k := range conditionalHeaders {
			delete(out, k)
		}
		if name := p.SessionCookie(ex.n.path); name != "" && removeCookie(out, name) {
			// The origin renders the anonymous page that every visitor
			// may share; this one gets their spliced copy of it.
			ex.personal = !ex.background
		}
	}
	if ex.mode == modeRevalidate {
		sh := http.Header(ex.entry.rec.Header)
		if et := sh.Get("Etag"); et != "" {
			out.Set("If-None-Match", et)
		}
		if lm := sh.Get("Last-Modified"); lm != "" {
			out.Set("If-Modified-Since", lm)
		}
	}
	if hop.UpgradeType(pr.In.Header) != "" {
		return // a socket: no timeouts of ours
	}
	ctx, cancel := context.WithCancel(pr.Out.Context())
	ex.call.cancel = cancel
	ex.call.hdrTimer = time.AfterFunc(p.cfg.OriginTimeout, func() {
		ex.call.timedOut.Store(true)
		cancel()
	})
	pr.Out = pr.Out.WithContext(ctx)
}

// modifyResponse is the ReverseProxy's ModifyResponse hook: it judges the
// origin's answer (revalidate.go for a conditional request, fill.go for a
// response that may be stored), invalidates after an unsafe method, wraps
// the body (tee.go) and appends this cache's Cache-Status member.
func (p *Proxy) modifyResponse(resp *http.Response) error {
	ex := exchangeOf(resp.Request)
	if ex.call.hdrTimer != nil && !ex.call.hdrTimer.Stop() && ex.call.timedOut.Load() {
		return errOriginTimeout
	}
	respTime := p.now()
	p.fig.originDone(resp.StatusCode, time.Since(ex.call.wall))
	if p.met != nil {
		p.met.origin(resp.StatusCode, time.Since(ex.call.wall))
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		appendCacheStatus(resp.Header, ex.cs)
		return nil
	}
	ex.cs.fwdStatus = resp.StatusCode
	if ex.mode == modeRevalidate && resp.StatusCode == http.StatusNotModified && !sameValidator(ex.entry, resp.Header) {
		// RFC 9111 §4.3.4: a 304 naming another representation cannot
		// update what we stored; ask again without conditions.
		if err := p.refetch(resp); err != nil {
			return err
		}
		ex.cs.fwdStatus = resp.StatusCode
		respTime = p.now()
	}
	// Proxy-Authenticate and Proxy-Authentication-Info apply only to
	// the next outbound client on the response chain (RFC 9110 §11.7.1,
	// §11.7.3), which is this proxy: not passed on, as not stored.
	for _, k := range proxyFields {
		delete(resp.Header, k)
	}
	p.forwardedHeader(resp, ex, respTime)
	if ex.mode == modeRevalidate {
		if p.revalidated(resp, ex, respTime) {
			return nil
		}
	}
	if ex.in.Method == http.MethodHead && ex.entry != nil && resp.StatusCode == http.StatusOK {
		// RFC 9111 §4.3.5: a 200 to HEAD for a stored GET response that
		// needed validation either shows another representation (by
		// ETag, Last-Modified or Content-Length), which invalidates the
		// stored one, or freshens it like a 304 (§3.2), and the client's
		// HEAD is answered from the refreshed entry.
		switch {
		case headChanged(ex.entry, resp.Header):
			e := ex.entry
			p.goBackground(func() { _ = p.st.Delete(context.Background(), e.rec.Key, e.rec.Variant) })
		case p.hasSessionCookie(ex):
			// The HEAD went to the origin with the visitor's splice
			// session cookie (only fills drop it): its fields may be
			// that visitor's and must not refresh the shared entry.
		case ex.entry.soft && !headProves(ex.entry, resp.Header):
			// A soft purge says the stored page is outdated: only a
			// validator the HEAD confirms (as a 304 would) lifts it,
			// not a HEAD that merely shows no difference.
		default:
			ex.fill = &fill{p: p, since: ex.call.since} // finished by forwardOnce
			ex.result = ResultRevalidated
			p.freshened(resp, ex, respTime)
			return nil
		}
	}
	if ex.fill != nil {
		if err := ex.fill.decide(resp, ex, respTime); err != nil {
			return err
		}
	}
	if ex.personal && ex.in.Method == http.MethodGet {
		if err := p.splicedResponse(resp, ex); err != nil {
			return err
		}
	} else if f := ex.fill; f != nil && f.job != nil && f.job.e != nil && f.job.e.splice != nil {
		// The origin's own fresh session and token for this visitor,
		// but what they get is theirs alone.
		privateHeader(resp.Header, nil, nil)
	}
	if ex.mode == modeInvalidate && resp.StatusCode < 400 {
		p.invalidate(resp.Request.Context(), ex, resp)
	}
	if ex.background && (ex.fill == nil || ex.fill.job == nil) {
		// Nobody reads this body and it is not stored: end the transfer.
		resp.Body.Close()
		resp.Body = http.NoBody
	}
	p.wrapBody(resp, ex)
	if !ex.personal {
		p.decodeForClient(resp, ex) // over the copy being stored, which stays encoded
	}
	stripTargeted(resp.Header)
	if !ex.in.ProtoAtLeast(1, 1) {
		// An HTTP/1.0 client gets no chunked coding, so no trailer
		// section (RFC 9112 §7.1.2): announce none. Trailers that arrive
		// anyway are dropped by net/http.
		resp.Trailer = nil
	}
	appendCacheStatus(resp.Header, ex.cs)
	if f := ex.fill; f != nil && resp.Body == &f.mb && !ex.background {
		// The whole response is in memory (inspectNow): header and body
		// leave in one write on a guarded connection instead of
		// ReverseProxy's header flush and body write (hop.CorkWrites;
		// forwardOnce releases it).
		f.cork = hop.CorkWrites(resp.Request.Context())
	}
	return nil
}

// forwardedHeader adds to the header of resp, an origin response
// received at respTime, what this gateway owes it before anything copies
// it (the stored copy, a 304's refresh of one, the client's): a Date if
// it has none (RFC 9110 §6.6.1: a recipient with a clock MUST append the
// time it was received when it caches or forwards the response), and
// this gateway's Via member (§7.6.3), with the version the origin
// answered in. The stored copy keeps both, so a hit carries the same
// Date and Via as the miss, and the hit path adds nothing per request; a
// 304 (or a HEAD's 200) refreshing it with a Via of its own has this
// member appended once, and one without any leaves the stored Via as it
// was (RFC 9111 §3.2 replaces only the fields the response carries).
func (p *Proxy) forwardedHeader(resp *http.Response, ex *exchange, respTime time.Time) {
	if _, ok := resp.Header["Date"]; !ok {
		resp.Header["Date"] = []string{respTime.UTC().Format(http.TimeFormat)}
	}
	if _, ok := resp.Header["Via"]; !ok && p.refreshes(resp, ex) {
		return
	}
	hop.AppendVia(resp.Header, resp.ProtoMajor, resp.ProtoMinor, p.viaName())
}

// refreshes reports whether resp only updates the stored response ex
// holds: a 304 to its revalidation, or a 200 to a HEAD showing the same
// representation (RFC 9111 §4.3.4, §4.3.5).
func (p *Proxy) refreshes(resp *http.Response, ex *exchange) bool {
	switch {
	case ex.mode == modeRevalidate && resp.StatusCode == http.StatusNotModified:
		return true
	case ex.in.Method == http.MethodHead && ex.entry != nil && resp.StatusCode == http.StatusOK:
		return !headChanged(ex.entry, resp.Header) && !p.hasSessionCookie(ex) && (!ex.entry.soft || headProves(ex.entry, resp.Header))
	}
	return false
}

// viaName is the pseudonym of this gateway's Via member, "" for none
// (Config.Via "-").
func (p *Proxy) viaName() string {
	if p.cfg.Via == "-" {
		return ""
	}
	return p.cfg.Via
}

// decrementMaxForwards lowers the Max-Forwards of an OPTIONS request
// being forwarded by one (RFC 9110 §7.6.2; a zero one never gets here,
// see refuseAtEdge). A value that is not a decimal number is left
// as it came.
func decrementMaxForwards(h http.Header) {
	if n, ok := maxForwards(h); ok && n > 0 {
		h["Max-Forwards"] = []string{strconv.FormatUint(n-1, 10)}
	}
}

// maxForwards returns the Max-Forwards of h (its first line) when it is a
// decimal number (RFC 9110 §7.6.2: 1*DIGIT).
func maxForwards(h http.Header) (uint64, bool) {
	v := headerValue(h, "Max-Forwards")
	v = strings.TrimSpace(v)
	if v == "" || strings.TrimLeft(v, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseUint(v, 10, 64)
	return n, err == nil
}

// appendCacheStatus appends this cache's member to the response's
// Cache-Status: RFC 9211 §2 lists caches in the order they handled the
// response, so the cache nearest the client (this one) comes last.
func appendCacheStatus(h http.Header, cs cacheStatus) {
	v := cs.String()
	if prior := h["Cache-Status"]; len(prior) > 0 {
		v = strings.Join(prior, ", ") + ", " + v
	}
	h["Cache-Status"] = []string{v}
}

var errOriginTimeout = errors.New("httpcache: origin timed out")

// errorHandler is the ReverseProxy's ErrorHandler: no usable answer came
// from the origin. It serves stale-if-error when allowed, and otherwise
// answers 504 (timeout, or a must-revalidate entry) or 502.
func (p *Proxy) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	ex := exchangeOf(r)
	if ex.call.hdrTimer != nil {
		ex.call.hdrTimer.Stop()
	}
	if errors.Is(err, errSpliceRefetch) {
		return // forward asks again; nothing is written
	}
	now := p.now()
	if ex.in.Context().Err() != nil && !ex.call.timedOut.Load() {
		// The client went away; nobody to answer.
		ex.result = ResultError
		return
	}
	p.fig.originDone(0, time.Since(ex.call.wall))
	if p.met != nil {
		p.met.origin(0, time.Since(ex.call.wall))
	}
	fault := classifyOriginErr(err, ex.call.timedOut.Load())
	if ex.fill != nil {
		// The requests collapsed onto this one get the same failure now,
		// instead of queueing for another origin timeout each.
		ex.fill.fail(fault)
	}
	if ex.call.bodyFailed.Load() {
		// The client's own body could not be read (a chunk line ending
		// in a bare LF, a body cut short): its fault, not the origin's.
		w.Header().Set("Connection", "close")
		p.replyError(w, ex, http.StatusBadRequest, cacheStatus{fwd: ex.cs.fwd, detail: "bad-request-body"}, "bad request: the request body is malformed or incomplete")
		return
	}
	revalidating := ex.entry != nil && ex.mode == modeRevalidate
	if revalidating && p.staleIfErrorOK(ex.entry, &ex.rq, now) {
		cs := ex.cs
		cs.detail = "stale-if-error"
		p.serveEntry(w, ex.in, ex, ex.entry, ResultStale, cs, now)
		return
	}
	p.replyOriginFault(w, ex, ex.cs, fault, revalidating && ex.entry.pol.mustReval)
	p.log.Warn("httpcache: origin error", "url", ex.n.key(), "background", ex.background, "fault", fault.detail(false), "err", err)
}

// originFault is what kind of failure left a request without an answer
// from the origin.
type originFault uint8

const (
	faultUnreachable originFault = iota // no connection, reset, closed early
	faultTimeout                        // no answer within OriginTimeout
	faultFraming                        // an answer whose framing cannot be read
)

// classifyOriginErr names the fault behind a round trip's error; timedOut
// is the proxy's own header timer having fired.
func classifyOriginErr(err error, timedOut bool) originFault {
	switch {
	case timedOut || errors.Is(err, errOriginTimeout) || isTimeout(err):
		return faultTimeout
	case errors.Is(err, hop.ErrFraming) || errors.Is(err, io.ErrUnexpectedEOF) || unsupportedTransferCoding(err):
		// Content-Length with Transfer-Encoding, conflicting lengths, a
		// malformed chunk, a body shorter than announced, a transfer
		// coding net/http cannot decode (RFC 9112 §6.1: the message
		// cannot be read): never stored.
		return faultFraming
	}
	return faultUnreachable
}

// unsupportedTransferCoding reports whether err is net/http's refusal of a
// response in a transfer coding it does not implement. Its error type is
// unexported, so the message is matched (TestFraming_OriginResponses fails
// if it changes).
func unsupportedTransferCoding(err error) bool {
	return err != nil && strings.Contains(err.Error(), "unsupported transfer encoding")
}

// detail is the fault's Cache-Status detail; mustReval: the stale entry
// being revalidated is must-revalidate (RFC 9111 §5.2.2.2).
func (f originFault) detail(mustReval bool) string {
	switch {
	case f == faultTimeout:
		return "origin-timeout"
	case mustReval:
		return "must-revalidate"
	case f == faultFraming:
		return "origin-framing"
	}
	return "origin-unreachable"
}

// replyOriginFault answers a request the origin left without a usable
// answer, the same for the request that asked and for those collapsed
// onto it: 504 for a timeout, or for a stale must-revalidate entry that
// cannot be validated (RFC 9111 §5.2.2.2: preferably 504); else 502.
func (p *Proxy) replyOriginFault(w http.ResponseWriter, ex *exchange, cs cacheStatus, fault originFault, mustReval bool) {
	cs.detail = fault.detail(mustReval)
	switch cs.detail {
	case "origin-timeout":
		p.replyError(w, ex, http.StatusGatewayTimeout, cs, "gateway timeout: origin did not answer in time")
	case "must-revalidate":
		p.replyError(w, ex, http.StatusGatewayTimeout, cs, "gateway timeout: stored response must be revalidated and the origin is unreachable")
	case "origin-framing":
		p.replyError(w, ex, http.StatusBadGateway, cs, "bad gateway: the origin's response framing is malformed")
	default:
		p.replyError(w, ex, http.StatusBadGateway, cs, "bad gateway: origin unreachable")
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// clientBody is the body of a client's request on its way to the origin;
// it notes when reading it failed (not at its end), so the error handler
// answers 400, not 502.
type clientBody struct {
	io.ReadCloser
	failed *atomic.Bool
}

func (b *clientBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		b.failed.Store(true)
	}
	return n, err
}

// interimWriter removes hop-by-hop fields, and those named in Connection,
// from the 1xx responses ReverseProxy relays (it copies an interim
// response's header as it came, RFC 9110 §7.6.1 says they go too), and
// relays none to an HTTP/1.0 client (§15.2: a server MUST NOT send it a
// 1xx; ReverseProxy clears the header it copied either way). Final
// responses are cleaned by ReverseProxy itself.
type interimWriter struct {
	http.ResponseWriter
	http10 bool // the client spoke HTTP/1.0
	// batch: each Write of the body leaves in one syscall on a guarded
	// HTTP/1 connection (hop.CorkWrite); ctx is the request's, which
	// names the connection.
	batch bool
	ctx   context.Context
}

// Write writes p and flushes it: ReverseProxy flushes every write
// (FlushInterval -1), and net/http sends a write past its 4 KB buffer in
// two syscalls, the buffer (with the header section, the first time)
// and the rest, each waking the client on loopback. Corked for the call
// (hop.CorkWrite), they leave in one writev; nothing is held past the
// call, so a streamed body reaches the client as it arrives. Under a
// fill's cork (a whole response in memory) the write joins that batch.
func (w *interimWriter) Write(p []byte) (int, error) {
	if !w.batch {
		return w.ResponseWriter.Write(p)
	}
	k := hop.CorkWrite(w.ctx)
	if !k.Active() {
		// No guarded connection, or a fill's cork holds the whole
		// response until forwardOnce ends: the same for every write.
		w.batch = false
		return w.ResponseWriter.Write(p)
	}
	n, err := w.ResponseWriter.Write(p)
	w.Flush()
	if rerr := k.Release(); err == nil && rerr != nil {
		err = rerr
	}
	return n, err
}

func (w *interimWriter) WriteHeader(code int) {
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		if w.http10 {
			return
		}
		hop.Remove(w.ResponseWriter.Header())
	}
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the writer underneath
// (Flush, Hijack for upgrades, deadlines).
func (w *interimWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush forwards to the writer underneath when it can flush.
func (w *interimWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
