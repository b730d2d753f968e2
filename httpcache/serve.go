package httpcache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/firstrender/firstrender/httpcache/hop"
)

// mode is what an exchange asks of the origin.
type mode int

// String names the mode in the debug log.
func (m mode) String() string {
	switch m {
	case modePass:
		return "pass"
	case modeInvalidate:
		return "invalidate"
	case modeMiss:
		return "miss"
	case modeRevalidate:
		return "revalidate"
	}
	return "mode(" + strconv.Itoa(int(m)) + ")"
}

const (
	modePass       mode = iota // forward; never store
	modeInvalidate             // unsafe method: forward, then invalidate the URL (RFC 9111 §4.4)
	modeMiss                   // forward; store if storable
	modeRevalidate             // conditional request for a stored entry; refresh or replace it
)

// exchange is one request's way through the proxy, from ServeHTTP (or a
// background revalidation) through the ReverseProxy hooks, which find it
// in the request context. Its outcome is result and cs: each is set where
// the step that decides it runs (serve.go classifies, hit.go answers from
// the store, collapse.go from a flight, origin.go and fill.go from the
// origin's answer).
type exchange struct {
	in         *http.Request // as forwarded: h2c and Connection-nominated fields removed, fwdPlan applied (not on a plain hit from memory: nothing is forwarded)
	client     *http.Request // as the client sent it (cookies included): for features that read what in lacks
	n          nurl          // the normalized target; key and origin URL come from it
	key        string        // primary key; "" until the request is found cacheable
	rq         reqDirectives // the request's Cache-Control
	mode       mode
	entry      *entry // the stored entry revalidated (modeRevalidate) or a HEAD's (modePass)
	fill       *fill  // the fetch that may fill the store (modeMiss, modeRevalidate); nil otherwise
	background bool   // a background revalidation: no client reads the body
	cs         cacheStatus
	// sentCS is the Cache-Status value sent outside the handler's header
	// map (serveEncoded); "" when the map holds it.
	sentCS string
	result Result
	call   originCall
	// personal: the visitor's session cookie was kept from the origin on
	// a fill (splice paths), so the answer must be their spliced copy;
	// refetch: it could not be, ask again with the cookie, uncached.
	personal, refetch bool
	// reusable: answered by servePlainHit, nothing else refers to the
	// exchange; ServeHTTP reuses it once it returns (exchanges).
	reusable bool
	// start is when ServeHTTP began (wall clock): the duration metric's
	// start, and the memory tier's access time and a hit's "now" (nowAt).
	start time.Time
}

// originCall is the state of an exchange's origin request.
type originCall struct {
	reqTime  time.Time // sent, Config.Now clock (freshness)
	wall     time.Time // sent, wall clock (latency metric)
	since    uint64    // the purge log's sequence when it was sent (purgeLog.admit)
	cancel   context.CancelFunc
	hdrTimer *time.Timer // OriginTimeout for the response headers
	timedOut atomic.Bool
	// bodyFailed: reading the client's request body failed (clientBody)
	bodyFailed atomic.Bool
}

type exKey struct{}

func exchangeOf(r *http.Request) *exchange { return r.Context().Value(exKey{}).(*exchange) }

// ServeHTTP serves r from the cache when it can, and otherwise forwards
// it to the origin, storing what RFC 9111 lets a shared cache store.
// Every response carries Cache-Status, with this cache's member last
// (RFC 9211 §2); responses from the store carry Age. When r's context
// carries an [Outcome] (see [WithOutcome]), it is filled in before
// ServeHTTP returns.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ex := exchanges.Get().(*exchange)
	*ex = exchange{in: r, client: r, result: ResultPass, start: start}
	defer p.finish(r, ex, start)
	if p.refuseAtEdge(w, r, ex) {
		return
	}
	scheme, host := p.requestOrigin(r)
	n, err := normalize(scheme, host, r.URL.EscapedPath(), r.URL.RawQuery, p.ignore)
	if err != nil {
		reason := err.Error()
		if ke, ok := errors.AsType[*KeyError](err); ok {
			reason = ke.Reason
		}
		p.replyError(w, ex, http.StatusBadRequest, cacheStatus{fwd: fwdBypass, detail: "bad-request"}, "bad request: "+reason)
		return
	}
	ex.n = n
	if hop.UpgradeType(r.Header) != "" && (hop.HasToken(r.Header, "Upgrade", "h2c") || !r.ProtoAtLeast(1, 1)) {
		// An h2c upgrade (deprecated, RFC 9113 §3.1) would hand the client
		// a raw HTTP/2 connection to the origin, past the host policy and
		// the cache ("h2c smuggling"): drop it like any hop-by-hop field
		// (RFC 9110 §7.8 lets a proxy ignore Upgrade) and serve a plain
		// request. So is any Upgrade in an HTTP/1.0 request (§7.8: a
		// server MUST ignore it). Other upgrades (WebSocket) are
		// tunnelled.
		r = r.WithContext(r.Context())
		r.Header = r.Header.Clone()
		hop.Remove(r.Header)
		ex.in = r
	}
	switch {
	case hop.UpgradeType(r.Header) != "":
		ex.cs = cacheStatus{fwd: fwdBypass, detail: reasonUpgrade}
	case p.bypassPath(ex.n.path):
		ex.cs = cacheStatus{fwd: fwdBypass, detail: reasonSocketPath}
	case !p.hostCached(&ex.n):
		if p.cfg.OtherHosts == RefuseHost {
			p.replyError(w, ex, http.StatusMisdirectedRequest, cacheStatus{fwd: fwdBypass, detail: reasonHost}, "misdirected request: host not served here")
			return
		}
		ex.cs = cacheStatus{fwd: fwdBypass, detail: reasonHost}
	case (r.Method == http.MethodGet || r.Method == http.MethodHead) && r.ContentLength != 0:
		// A GET with a body ("fat GET"): some applications read it as
		// parameters, and the key does not hold it. Forward, never store.
		ex.cs = cacheStatus{fwd: fwdBypass, detail: reasonRequestBody}
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		// Key the variant and judge Authorization and cookies on what the
		// origin will see: fields named in Connection never reach it;
		// method overrides and allowed cookies are removed, and
		// Accept-Encoding normalized (privacy.go, encoding.go).
		r = hop.WithoutNominated(r)
		plan, reason := p.planForward(r.Header, ex.n.path)
		if reason != "" {
			ex.in = plan.apply(r)
			ex.cs = cacheStatus{fwd: fwdBypass, detail: reason}
			break
		}
		ex.in = r // serveCacheable applies the plan, unless memory answers
		p.serveCacheable(w, r, ex, plan)
		return
	default:
		ex.cs = cacheStatus{fwd: fwdMethod}
		if !safeMethod(r.Method) {
			ex.mode = modeInvalidate
		}
	}
	p.forward(w, ex.in, ex)
}

// safeMethod reports whether method is known to be safe (RFC 9110
// §9.2.1, and the methods the IANA registry marks safe). RFC 9111 §4.4
// has a cache invalidate after unsafe methods "including methods whose
// safety is unknown", so every other method (M-SEARCH, PURGE, an
// extension) invalidates the target URI on a non-error answer.
func safeMethod(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace,
		"PROPFIND", "REPORT", "SEARCH", "QUERY":
		return true
	}
	return false
}

// requestOrigin is the scheme and host a request is keyed on: its own,
// or with TrustForwarded the client's X-Forwarded-Proto / -Host.
// [Proxy.RequestKey] uses it too, so purges normalize like requests.
func (p *Proxy) requestOrigin(r *http.Request) (scheme, host string) {
	scheme = "http"
	if r.TLS != nil {
		scheme = "https"
	}
	host = r.Host
	if p.cfg.TrustForwarded {
		if fp := strings.ToLower(strings.TrimSpace(r.Header.Get("X-Forwarded-Proto"))); fp == "http" || fp == "https" {
			scheme = fp
		}
		// The origin renders for X-Forwarded-Host (hop.SetForwarded): key
		// on it too, or every public host behind a proxy that sends its
		// own name as Host would share one entry.
		if fh, _, _ := strings.Cut(r.Header.Get("X-Forwarded-Host"), ","); strings.TrimSpace(fh) != "" {
			host = strings.TrimSpace(fh)
		}
	}
	return scheme, host
}

// exchanges holds exchanges of plain hits from memory for reuse: such an
// exchange is referenced by nothing once ServeHTTP returns, while any
// other may be held by a fill, a flight or a background revalidation,
// and is left to the garbage collector.
var exchanges = sync.Pool{New: func() any { return new(exchange) }}

// finish observes ex and, when it was a plain hit from memory
// (ex.reusable), returns it to exchanges.
func (p *Proxy) finish(r *http.Request, ex *exchange, start time.Time) {
	p.observe(r, ex, start)
	if ex.reusable {
		*ex = exchange{}
		exchanges.Put(ex)
	}
}

// observe records a served request in the metrics and in the request's
// Outcome, if it carries one.
func (p *Proxy) observe(r *http.Request, ex *exchange, start time.Time) {
	ri := resultIndex(ex.result)
	p.fig.observe(ri)
	if p.met != nil {
		p.met.observe(ri, time.Since(start))
	}
	key := ex.key
	if key == "" && ex.n.host != "" {
		key = ex.n.key()
	}
	if p.log.Enabled(r.Context(), slog.LevelDebug) {
		// The decision, step by step, for --log-level debug.
		p.log.LogAttrs(r.Context(), slog.LevelDebug, "httpcache: decision",
			slog.String("key", key), slog.String("mode", ex.mode.String()), slog.String("lookup", ex.cs.fwd),
			slog.Bool("hit", ex.cs.hit), slog.Bool("collapsed", ex.cs.collapsed), slog.Int("origin_status", ex.cs.fwdStatus),
			slog.Bool("stored", ex.stored()), slog.Duration("ttl", ex.cs.ttl),
			slog.String("detail", ex.cs.detail), slog.String("result", string(ex.result)))
	}
	o := OutcomeFrom(r.Context())
	if o == nil {
		return
	}
	*o = Outcome{Result: ex.result, Detail: ex.cs.detail, Key: key, Stored: ex.stored(), CacheStatus: ex.sentCS}
}

// hasSessionCookie reports whether ex's request carries the splice
// session cookie on a splice path.
func (p *Proxy) hasSessionCookie(ex *exchange) bool {
	name := p.SessionCookie(ex.n.path)
	return name != "" && hasCookie(ex.in.Header["Cookie"], name)
}

func (p *Proxy) bypassPath(path string) bool {
	// Empty segments are dropped as Plug routes them: "/live//longpoll"
	// is the long-poll transport too.
	for strings.Contains(path, "//") {
		path = strings.ReplaceAll(path, "//", "/")
	}
	for _, b := range p.cfg.BypassPrefixes {
		if strings.HasPrefix(path, b) {
			return true
		}
	}
	return false
}

// replyError answers with an error of the proxy's own: the outcome is
// ResultError with cs.
func (p *Proxy) replyError(w http.ResponseWriter, ex *exchange, code int, cs cacheStatus, msg string) {
	ex.result, ex.cs = ResultError, cs
	w.Header().Set("Cache-Status", cs.String())
	plainError(w, code, msg)
}

func plainError(w http.ResponseWriter, code int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Content-Length")
	w.WriteHeader(code)
	fmt.Fprintf(w, "%d %s\n", code, msg)
}

// serveCacheable handles GET and HEAD for a cached host: lookup, then an
// answer from the store (hit.go), from another request's fetch
// (collapse.go), or from the origin (origin.go), which may fill the store.
// r is the request before plan (fwdPlan) is applied; every
// decision is taken on the request as forwarded, and a plain hit from
// memory (nothing forwarded, fields the plan does not touch) answers
// without applying the plan: a browser's Accept-Encoding, normalized to
// gzip, would otherwise cost a copy of the request and its header.
func (p *Proxy) serveCacheable(w http.ResponseWriter, r *http.Request, ex *exchange, plan fwdPlan) {
	ctx := r.Context()
	ex.rq = p.parser.request(r.Header) // Cache-Control, Pragma: not in a plan
	if headerValue(r.Header, "If-Match") != "" || headerValue(r.Header, "If-Unmodified-Since") != "" {
		// Preconditions for state-changing semantics: let the origin decide.
		r = plan.apply(r)
		ex.in = r
		ex.key = ex.n.key()
		ex.cs = cacheStatus{fwd: fwdBypass, detail: "precondition"}
		p.forward(w, r, ex)
		return
	}
	if g := p.cfg.HitGate; g != nil {
		if why := g(); why != "" {
			r = plan.apply(r)
			ex.in = r
			ex.key = ex.n.key()
			ex.cs = cacheStatus{fwd: fwdBypass, detail: why}
			p.forward(w, r, ex)
			return
		}
	}
	// The memory tier first, without building the key string: an entry
	// found there carries it.
	var (
		hot   *entry
		pre   *earlyRead // the first attempt's store read, made before the plan
		keyed bool       // ex.key is set
		known varyKnown  // the key string and Vary names, if the Vary memory knows them (lookupHot)
	)
	early := plan.onlyAcceptEncoding()
	if early {
		// The variant from the fields as forwarded, the plan not applied.
		vf := plan.variantFields(r.Header)
		hot = p.lookupHot(&ex.n, vf, ex.start, &known)
		if hot != nil && p.servePlainHit(w, r, ex, hot) {
			return
		}
		if hot == nil && plan != (fwdPlan{}) {
			// Not in memory: the store, still without applying the plan
			// (which copies the request and its header), nor building
			// the key string when the Vary memory holds it.
			ex.key, keyed = known.key, true
			if ex.key == "" {
				ex.key = ex.n.key()
			}
			pre = &earlyRead{}
			var ok bool
			if pre.e, pre.fwd, pre.detail, ok = p.lookupEarly(ctx, known, vf, &pre.rb); !ok {
				pre = nil
			} else if pre.e != nil && p.servePlainHit(w, r, ex, pre.e) {
				pre.rb.recycle(r) // if it holds the body: written, nothing refers to it
				return
			}
		}
	}
	r = plan.apply(r)
	ex.in = r
	if !early {
		hot = p.lookupHot(&ex.n, variantFields{h: r.Header}, ex.start, &known)
	}
	switch {
	case hot != nil:
		ex.key = hot.rec.Key
	case keyed:
	case known.key != "":
		ex.key = known.key // no string to build
	default:
		ex.key = ex.n.key()
	}
	for attempt := 0; ; attempt++ {
		var (
			e           *entry
			fwd, detail string
			rb          readBuf // the pooled buffer of a body read from the store (bodypool.go)
		)
		switch {
		case attempt == 0 && hot != nil:
			e = hot
		case attempt == 0 && pre != nil:
			e, fwd, detail, rb = pre.e, pre.fwd, pre.detail, pre.rb
		default:
			e, fwd, detail = p.lookup(ctx, ex.key, r.Header, &rb)
		}
		if rb.owned() {
			// e, if any, was read from the store for this request alone,
			// its body in rb. A plain fresh hit writes it in the handler
			// and keeps nothing: the buffer can be reused. Anything else
			// (stale-while-revalidate, a revalidation, a flight) may keep
			// the entry, so its buffer is left to the GC.
			switch {
			case e == nil:
				rb.recycle(r) // nothing refers to it
			case p.servePlainHit(w, r, ex, e):
				rb.recycle(r)
				return
			default:
				rb.disown()
			}
		}
		if e != nil {
			if p.serveStored(w, r, ex, e) {
				return
			}
			// serveStored chose to revalidate. Concurrent revalidations
			// of a stale entry are collapsed like misses (not those the
			// client's own Cache-Control asked for).
			if ex.mode == modeRevalidate && ex.cs.fwd == fwdStale && attempt < 2 {
				f, leader := p.flights.join(ex.key + "\x00" + e.rec.Variant)
				if leader {
					ex.fill.flight = f
					p.forward(w, r, ex)
					return
				}
				if p.await(w, r, ex, f) {
					return
				}
				ex.entry, ex.mode, ex.fill = nil, modePass, nil
				continue
			}
			p.forward(w, r, ex)
			return
		}
		ex.cs = cacheStatus{fwd: fwd, detail: detail}
		if ex.rq.onlyIfCached {
			if ex.cs.detail == "" {
				ex.cs.detail = "only-if-cached"
			}
			p.replyError(w, ex, http.StatusGatewayTimeout, ex.cs, "gateway timeout: only-if-cached and not in cache")
			return
		}
		ex.result = ResultMiss
		if r.Method == http.MethodHead {
			// Only a GET fills an entry; a HEAD miss just passes through.
			p.forward(w, r, ex)
			return
		}
		ex.mode, ex.fill = modeMiss, &fill{p: p}
		if reason, ok := p.pass.check(ex.key, p.now()); ok || attempt >= 2 {
			if ok && ex.cs.detail == "" {
				ex.cs.detail = reason
			}
			if ok && p.met != nil {
				p.met.hitForPass.Inc()
			}
			p.log.LogAttrs(ctx, slog.LevelDebug, "httpcache: step", slog.String("key", ex.key), slog.String("step", "hit-for-pass"),
				slog.Bool("remembered", ok), slog.String("reason", reason), slog.Int("attempt", attempt))
			if ok && p.hasSessionCookie(ex) {
				// Not storable lately: this visitor's own page, with their
				// session, and nothing stored from it.
				ex.mode, ex.fill = modePass, nil
			}
			p.forward(w, r, ex)
			return
		}
		fk := ex.key
		if names, ok := p.vary.get(ex.key); ok {
			fk += "\x00" + variantKey(names, r.Header)
		}
		f, leader := p.flights.join(fk)
		if leader {
			// Double-check: the previous flight may have stored it just now.
			if e, _, _ := p.lookup(ctx, ex.key, r.Header, nil); e != nil {
				p.flights.end(f)
				ex.mode, ex.fill = modePass, nil
				if p.serveStored(w, r, ex, e) {
					return
				}
				p.forward(w, r, ex)
				return
			}
			ex.fill.flight = f
			p.forward(w, r, ex)
			return
		}
		if p.await(w, r, ex, f) {
			return
		}
		// The leader's response was not usable for us: try again (once
		// more through collapsing, then directly).
	}
}

// earlyRead is a store read serveCacheable made before applying the
// request's plan (lookupEarly), kept for its first attempt when the
// entry was not a plain hit, or was not found.
type earlyRead struct {
	e           *entry
	fwd, detail string
	rb          readBuf
}
