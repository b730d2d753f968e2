package httpcache

import (
	"github.com/firstrender/firstrender/httpcache/hop"

	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/firstrender/firstrender/store"
)

// Proxy is a caching reverse proxy: an RFC 9111 shared cache in front of
// one origin, storing in a [store.Store]. It is an http.Handler and safe
// for concurrent use. Create it with [New]; call [Proxy.Close] before
// closing the store.
type Proxy struct {
	cfg     Config
	st      *store.Store
	rp      *httputil.ReverseProxy
	parser  directiveParser
	ignore  *ignoreList
	hosts   []hostMatch
	fc      freshnessConfig
	log     *slog.Logger
	now     func() time.Time
	met     *metrics
	flights flightGroup
	pass    passMemory
	vary    varyMemory
	hot     hotCache

	buffered atomic.Int64 // bytes held by streaming copies (Config.MaxBuffered)

	revalMu sync.Mutex
	reval   map[string]bool // background revalidations in progress

	// onWait, when set (tests only, before serving), is called each time
	// a request starts waiting on another request's fetch.
	onWait func()

	bgMu   sync.Mutex
	bgN    int           // background goroutines running
	bgIdle chan struct{} // closed whenever bgN is 0
	closed bool
}

var _ http.Handler = (*Proxy)(nil)

type hostMatch struct {
	name    string // normalized host name, no port
	anyPort bool
	http    string // normalized "name[:port]" for http
	https   string
}

// New validates cfg, fills its defaults and returns a Proxy. Errors name
// the offending field.
func New(cfg Config) (*Proxy, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	p := &Proxy{
		cfg:    cfg,
		st:     cfg.Store,
		parser: cacheobjectParser{},
		log:    cfg.Logger,
		now:    cfg.Now,
		reval:  make(map[string]bool),
		fc: freshnessConfig{
			heuristicFraction: cfg.HeuristicFraction,
			heuristicMax:      cfg.HeuristicMax,
			defaultSWR:        cfg.StaleWhileRevalidate,
			defaultSIE:        cfg.StaleIfError,
		},
	}
	p.ignore, _ = newIgnoreList(cfg.IgnoreParams)
	p.hot.max = cfg.MemoryCacheSize
	for _, h := range cfg.Hosts {
		hm := hostMatch{}
		hn, _ := normalizeHost("http", h)
		hm.name = hostname(hn)
		hm.anyPort = hostname(strings.ToLower(h)) == strings.ToLower(h)
		hm.http = hn
		hm.https, _ = normalizeHost("https", h)
		p.hosts = append(p.hosts, hm)
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite:        p.rewrite,
		Transport:      cfg.Transport,
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.errorHandler,
		// Flush every write: bodies stream to the client as they arrive
		// (the copy kept for storing does not delay them).
		FlushInterval: -1,
		ErrorLog:      slog.NewLogLogger(p.log.Handler(), slog.LevelWarn),
	}
	if cfg.Registerer != nil {
		m, err := newMetrics(cfg.Registerer, cfg.Store)
		if err != nil {
			return nil, fmt.Errorf("httpcache: metrics: %w", err)
		}
		p.met = m
	}
	return p, nil
}

// Close waits for background work (store writes, revalidations) to
// finish or ctx to end, and stops new background work: responses served
// after Close are not stored (their Cache-Status says detail=closing).
// It does not close the store. It returns ctx's error if ctx ends first.
func (p *Proxy) Close(ctx context.Context) error {
	p.bgMu.Lock()
	p.closed = true
	p.bgMu.Unlock()
	if err := p.Wait(ctx); err != nil {
		return fmt.Errorf("httpcache: close: %w", err)
	}
	return nil
}

// Wait returns once no background work (store writes beside responses,
// background revalidations) is running, or with ctx's error when ctx ends
// first. Under steady load there may be no such moment, so bound ctx.
// Tests use it to make "stored" observable: a response's store write
// starts before its handler returns.
func (p *Proxy) Wait(ctx context.Context) error {
	p.bgMu.Lock()
	if p.bgN == 0 {
		p.bgMu.Unlock()
		return nil
	}
	idle := p.bgIdle
	p.bgMu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// goBackground runs f in a goroutine that Wait and Close wait for. It
// reports false (and does not run f) after Close.
func (p *Proxy) goBackground(f func()) bool {
	if !p.reserve() {
		return false
	}
	p.runReserved(f)
	return true
}

// reserve counts one piece of background work that will start later
// (a response being stored once its body is complete), so Wait and Close
// wait for it from the moment its headers go out. Every successful
// reserve is followed by runReserved or unreserve. It reports false after
// Close.
func (p *Proxy) reserve() bool {
	p.bgMu.Lock()
	defer p.bgMu.Unlock()
	if p.closed {
		return false
	}
	if p.bgN == 0 {
		p.bgIdle = make(chan struct{})
	}
	p.bgN++
	return true
}

func (p *Proxy) unreserve() {
	p.bgMu.Lock()
	if p.bgN--; p.bgN == 0 {
		close(p.bgIdle)
	}
	p.bgMu.Unlock()
}

// runReserved runs f in a goroutine under an earlier reservation.
func (p *Proxy) runReserved(f func()) {
	go func() {
		defer p.unreserve()
		defer func() {
			// A panic here (an Inspector's, say) must not take the server
			// down; the response simply is not stored.
			if v := recover(); v != nil {
				p.log.Error("httpcache: background work panicked", "panic", v)
			}
		}()
		f()
	}()
}

func (p *Proxy) isClosed() bool {
	p.bgMu.Lock()
	defer p.bgMu.Unlock()
	return p.closed
}

func (p *Proxy) hostCached(n *nurl) bool {
	name := hostname(n.host)
	for i := range p.hosts {
		h := &p.hosts[i]
		if h.name != name {
			continue
		}
		if h.anyPort {
			return true
		}
		if (n.scheme == "http" && h.http == n.host) || (n.scheme == "https" && h.https == n.host) {
			return true
		}
	}
	return false
}

type mode int

const (
	modePass       mode = iota // forward; never store
	modeMiss                   // forward; store if storable
	modeRevalidate             // conditional request for a stored entry
)

// exchange is the per-request state shared by ServeHTTP and the
// ReverseProxy hooks (carried in the request context).
type exchange struct {
	in      *http.Request
	n       nurl
	key     string
	vary    []string // Vary names known at lookup (nil = unknown)
	rq      reqDirectives
	mode    mode
	entry   *entry // stored entry being revalidated / for stale-if-error
	flight  *flight
	filling bool // a background fill owns the flight
	// job is a storable response being streamed (holding a background
	// reservation); complete is set with its body once it ended cleanly,
	// and the store write starts when the handler is done writing.
	job      *fillJob
	complete bool
	body     []byte
	prepaid  int64 // bytes of MaxBuffered reserved for job's body up front
	invalid  bool  // unsafe method: invalidate on success
	cs       cacheStatus
	result   Result    // metrics label, Outcome.Result
	reqTime  time.Time // origin request, Config.Now clock
	wall     time.Time // origin request, wall clock (latency metric)
	cancel   context.CancelFunc
	hdrTimer *time.Timer
	timedOut atomic.Bool
}

type exKey struct{}

// entry is a stored response as the hit path uses it.
type entry struct {
	rec      *store.Record
	pol      policy
	vary     []string
	notAfter time.Time
	clen     []string // Content-Length value, shared read-only (hot entries)
}

// ServeHTTP serves r from the cache when it can, and otherwise forwards
// it to the origin, storing what RFC 9111 lets a shared cache store.
// Every response carries Cache-Status; responses from the store carry
// Age.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ex := &exchange{in: r, result: ResultPass}
	defer func() {
		if p.met != nil {
			p.met.observe(ex.result, time.Since(start))
		}
		if o := OutcomeFrom(r.Context()); o != nil {
			key := ex.key
			if key == "" && ex.n.host != "" {
				key = ex.n.key()
			}
			*o = Outcome{Result: ex.result, Detail: ex.cs.detail, Key: key, Stored: ex.cs.stored}
		}
	}()
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	host := r.Host
	if p.cfg.TrustForwarded {
		if fp := strings.ToLower(strings.TrimSpace(r.Header.Get("X-Forwarded-Proto"))); fp == "http" || fp == "https" {
			scheme = fp
		}
		// The origin renders for X-Forwarded-Host (SetForwarded): key on
		// it too, or every public host behind a proxy that sends its own
		// name as Host would share one entry.
		if fh, _, _ := strings.Cut(r.Header.Get("X-Forwarded-Host"), ","); strings.TrimSpace(fh) != "" {
			host = strings.TrimSpace(fh)
		}
	}
	n, err := normalize(scheme, host, r.URL.EscapedPath(), r.URL.RawQuery, p.ignore)
	if err != nil {
		ex.result = ResultError
		var ke *KeyError
		reason := err.Error()
		if errors.As(err, &ke) {
			reason = ke.Reason
		}
		ex.cs = cacheStatus{fwd: fwdBypass, detail: "bad-request"}
		w.Header().Set("Cache-Status", ex.cs.String())
		plainError(w, http.StatusBadRequest, "bad request: "+reason)
		return
	}
	ex.n = n
	if hop.UpgradeType(r.Header) != "" && hop.HasToken(r.Header, "Upgrade", "h2c") {
		// An h2c upgrade (deprecated, RFC 9113 §3.1) would hand the client
		// a raw HTTP/2 connection to the origin, past the host policy and
		// the cache ("h2c smuggling"): drop it like any hop-by-hop field
		// (RFC 9110 §7.8 lets a proxy ignore Upgrade) and serve a plain
		// request. Other upgrades (WebSocket) are tunnelled.
		r = r.WithContext(r.Context())
		r.Header = r.Header.Clone()
		hop.Remove(r.Header)
		ex.in = r
	}
	cachedHost := p.hostCached(&ex.n)
	switch {
	case hop.UpgradeType(r.Header) != "":
		ex.cs = cacheStatus{fwd: fwdBypass, detail: reasonUpgrade}
	case p.bypassPath(ex.n.path):
		ex.cs = cacheStatus{fwd: fwdBypass, detail: reasonSocketPath}
	case !cachedHost:
		if p.cfg.OtherHosts == RefuseHost {
			ex.result = ResultError
			ex.cs = cacheStatus{fwd: fwdBypass, detail: reasonHost}
			w.Header().Set("Cache-Status", ex.cs.String())
			plainError(w, http.StatusMisdirectedRequest, "misdirected request: host not served here")
			return
		}
		ex.cs = cacheStatus{fwd: fwdBypass, detail: reasonHost}
	case (r.Method == http.MethodGet || r.Method == http.MethodHead) && r.ContentLength != 0:
		// A GET with a body ("fat GET"): some applications read it as
		// parameters, and the key does not hold it. Forward, never store.
		ex.cs = cacheStatus{fwd: fwdBypass, detail: reasonRequestBody}
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		// Key the variant and judge Authorization on what the origin will
		// see: fields named in Connection never reach it.
		r = hop.WithoutNominated(r)
		ex.in = r
		p.serveCacheable(w, r, ex)
		return
	default:
		ex.cs = cacheStatus{fwd: fwdMethod}
		switch r.Method {
		case http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch:
			ex.invalid = true
		}
	}
	p.forward(w, r, ex)
}

func (p *Proxy) bypassPath(path string) bool {
	for _, b := range p.cfg.BypassPrefixes {
		if strings.HasPrefix(path, b) {
			return true
		}
	}
	return false
}

func plainError(w http.ResponseWriter, code int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Content-Length")
	w.WriteHeader(code)
	fmt.Fprintf(w, "%d %s\n", code, msg)
}

// forward sends r to the origin through the ReverseProxy.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, ex *exchange) {
	defer func() {
		if ex.cancel != nil {
			ex.cancel()
		}
		if job := ex.job; job != nil {
			if ex.complete {
				body := ex.body
				p.runReserved(func() { p.fillSync(job, body) })
				ex.filling = true
			} else {
				p.unreserve()
			}
		}
		if ex.flight != nil && !ex.filling {
			p.flights.end(ex.flight)
		}
	}()
	ex.reqTime = p.now()
	ex.wall = time.Now()
	p.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), exKey{}, ex)))
}

// serveCacheable handles GET and HEAD for a cached host.
func (p *Proxy) serveCacheable(w http.ResponseWriter, r *http.Request, ex *exchange) {
	ctx := r.Context()
	ex.rq = p.parser.request(r.Header)
	ex.key = ex.n.key()
	if r.Header.Get("If-Match") != "" || r.Header.Get("If-Unmodified-Since") != "" {
		// Preconditions for state-changing semantics: let the origin decide.
		ex.cs = cacheStatus{fwd: fwdBypass, detail: "precondition"}
		p.forward(w, r, ex)
		return
	}
	for attempt := 0; ; attempt++ {
		e, fwd, detail := p.lookup(ctx, ex.key, r.Header)
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
					ex.flight = f
					p.forward(w, r, ex)
					return
				}
				if p.await(w, r, ex, f) {
					return
				}
				ex.entry, ex.mode = nil, modePass
				continue
			}
			p.forward(w, r, ex)
			return
		}
		ex.vary, _ = p.vary.get(ex.key)
		ex.cs = cacheStatus{fwd: fwd, detail: detail}
		if ex.rq.onlyIfCached {
			ex.result = ResultError
			if ex.cs.detail == "" {
				ex.cs.detail = "only-if-cached"
			}
			w.Header().Set("Cache-Status", ex.cs.String())
			plainError(w, http.StatusGatewayTimeout, "gateway timeout: only-if-cached and not in cache")
			return
		}
		if r.Method == http.MethodHead {
			// Only a GET fills an entry; a HEAD miss just passes through.
			ex.result = ResultMiss
			p.forward(w, r, ex)
			return
		}
		ex.mode = modeMiss
		ex.result = ResultMiss
		if reason, ok := p.pass.check(ex.key, p.now()); ok || attempt >= 2 {
			if ok && ex.cs.detail == "" {
				ex.cs.detail = reason
			}
			p.forward(w, r, ex)
			return
		}
		fk := ex.key
		if ex.vary != nil {
			fk += "\x00" + variantKey(ex.vary, r.Header)
		}
		f, leader := p.flights.join(fk)
		if leader {
			ex.flight = f
			// Double-check: the previous flight may have stored it just now.
			if e, _, _ := p.lookup(ctx, ex.key, r.Header); e != nil {
				p.flights.end(f)
				ex.flight = nil
				if p.serveStored(w, r, ex, e) {
					return
				}
				p.forward(w, r, ex)
				return
			}
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

// await waits for another request's fetch f and answers r from its
// result. It reports true when r has been answered (from the result, by
// going to the origin after too long a wait or too many waiters, or not at
// all because the client left), false when the result is not usable.
func (p *Proxy) await(w http.ResponseWriter, r *http.Request, ex *exchange, f *flight) bool {
	if f.waiters.Add(1) > int64(p.cfg.MaxWaiters) {
		p.forward(w, r, ex)
		return true
	}
	if p.onWait != nil {
		p.onWait()
	}
	t := time.NewTimer(p.cfg.CollapseWait)
	select {
	case <-f.ready:
		t.Stop()
	case <-t.C:
		p.forward(w, r, ex)
		return true
	case <-r.Context().Done():
		t.Stop()
		ex.result = ResultError
		return true
	}
	res := f.res
	if res == nil || variantKey(res.vary, r.Header) != res.rec.Variant {
		return false
	}
	now := p.now()
	if !p.usable(res, now) {
		return false
	}
	ex.result = ResultCollapsed
	p.writeEntry(w, r, res, cacheStatus{hit: true, collapsed: true}, now)
	return true
}

// usable reports whether a just-fetched entry may be served without
// validation to a collapsed waiter.
func (p *Proxy) usable(e *entry, now time.Time) bool {
	// RFC 9111 §4.2: only a fresh response is reused without validation.
	return !e.pol.noCache && ttlOf(e, now) > 0
}

// lookup finds the stored entry for the request's variant of key. On a
// miss it returns the Cache-Status forward reason and detail.
func (p *Proxy) lookup(ctx context.Context, key string, reqH http.Header) (*entry, string, string) {
	names, known := p.vary.get(key)
	if !known {
		metas, err := p.st.Variants(ctx, key)
		if err != nil {
			if !errors.Is(err, store.ErrNotFound) {
				p.log.Warn("httpcache: store variants", "key", key, "err", err)
			}
			return nil, fwdURIMiss, ""
		}
		var newest *store.Meta
		for i := range metas {
			if metas[i].Corrupt {
				continue
			}
			if newest == nil || metas[i].StoredTime.After(newest.StoredTime) {
				newest = &metas[i]
			}
		}
		if newest == nil {
			return nil, fwdURIMiss, ""
		}
		names = splitVaryAnnotation(newest.Annotations[AnnotationVary])
		p.vary.set(key, names)
	}
	variant := variantKey(names, reqH)
	hk := hotKey(key, variant)
	gen, wall := p.st.Generation(), time.Now()
	if e := p.hot.get(hk, gen, wall); e != nil {
		if !e.notAfter.IsZero() && !p.now().Before(e.notAfter) {
			return nil, fwdMiss, "not-after"
		}
		return e, "", ""
	}
	rec, err := p.st.Get(ctx, key, variant)
	if err != nil {
		var ce *store.CorruptError
		switch {
		case errors.Is(err, store.ErrNotFound):
		case errors.As(err, &ce):
			p.log.Warn("httpcache: corrupt record removed", "key", key, "variant", variant, "err", err)
			p.goBackground(func() { _ = p.st.Delete(context.Background(), key, variant) })
		default:
			p.log.Warn("httpcache: store get", "key", key, "err", err)
		}
		if len(names) > 0 {
			return nil, fwdVary, ""
		}
		return nil, fwdURIMiss, ""
	}
	if _, ok := rec.Annotations[AnnotationDisabled]; ok {
		return nil, fwdMiss, "disabled" // the reason is in the annotation
	}
	e := &entry{rec: rec, vary: names}
	if na := rec.Annotations[AnnotationNotAfter]; na != "" {
		t, err := time.Parse(time.RFC3339Nano, na)
		if err != nil {
			return nil, fwdMiss, "bad-not-after"
		}
		e.notAfter = t
		if !p.now().Before(t) {
			return nil, fwdMiss, "not-after"
		}
	}
	pol, ok := decodePolicy(rec.Annotations[AnnotationPolicy])
	if !ok {
		h := http.Header(rec.Header)
		pol = computePolicy(rec.Status, h, p.parser.response(h), rec.RequestTime, rec.ResponseTime, p.fc)
	}
	e.pol = pol
	e.clen = []string{strconv.Itoa(len(rec.Body))}
	p.hot.put(hk, e, gen, wall)
	return e, "", ""
}

func splitVaryAnnotation(s string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Split(s, ",")
}

// serveStored answers from a stored entry if the request and the entry's
// freshness allow it, and reports true. Otherwise it prepares ex for a
// revalidation (or a 504 for only-if-cached, reporting true).
func (p *Proxy) serveStored(w http.ResponseWriter, r *http.Request, ex *exchange, e *entry) bool {
	now := p.now()
	age := e.pol.age(e.rec.ResponseTime, now)
	remaining := e.pol.lifetime - age
	fresh := remaining > 0 && !e.pol.noCache
	rq := ex.rq
	cs := cacheStatus{hit: true}
	fwd := ""
	switch {
	case rq.noCache:
		fwd = fwdRequest
	case rq.maxAge >= 0 && age > secs(rq.maxAge):
		fwd = fwdRequest
	case rq.minFresh >= 0 && remaining < secs(rq.minFresh):
		fwd = fwdRequest
	case fresh:
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
		if fresh {
			ex.result = ResultHit
		} else {
			ex.result = ResultStale
		}
		p.writeEntry(w, r, e, cs, now)
		return true
	}
	if rq.onlyIfCached {
		ex.result = ResultError
		ex.cs = cacheStatus{fwd: fwd, detail: "only-if-cached"}
		w.Header().Set("Cache-Status", ex.cs.String())
		plainError(w, http.StatusGatewayTimeout, "gateway timeout: only-if-cached and the stored response needs validation")
		return true
	}
	ex.cs = cacheStatus{fwd: fwd}
	ex.entry = e
	ex.vary = e.vary
	ex.result = ResultRevalidated
	if r.Method == http.MethodGet {
		ex.mode = modeRevalidate
	} else {
		// A HEAD cannot refresh the entry; pass it through.
		ex.mode = modePass
	}
	return false
}

// ttlOf returns the remaining freshness, capped by not-after.
func ttlOf(e *entry, now time.Time) time.Duration {
	ttl := e.pol.lifetime - e.pol.age(e.rec.ResponseTime, now)
	if !e.notAfter.IsZero() {
		if left := e.notAfter.Sub(now); left < ttl {
			ttl = left
		}
	}
	return ttl
}

// writeEntry writes a stored response to w, honouring the client's own
// conditional request and HEAD.
func (p *Proxy) writeEntry(w http.ResponseWriter, r *http.Request, e *entry, cs cacheStatus, now time.Time) {
	h := w.Header()
	for k, v := range e.rec.Header {
		h[k] = v
	}
	age := e.pol.age(e.rec.ResponseTime, now)
	h["Age"] = []string{strconv.FormatInt(int64(age/time.Second), 10)}
	cs.ttl, cs.hasTTL = ttlOf(e, now), true
	h["Cache-Status"] = []string{cs.String()}
	status := e.rec.Status
	if status == http.StatusOK && notModified(r.Header, http.Header(e.rec.Header)) {
		delete(h, "Content-Type")
		delete(h, "Content-Length")
		delete(h, "Content-Encoding")
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if e.clen == nil {
		h["Content-Length"] = []string{strconv.Itoa(len(e.rec.Body))}
	} else {
		h["Content-Length"] = e.clen
	}
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		n, _ := w.Write(e.rec.Body)
		if p.met != nil {
			p.met.bytes.Add(float64(n))
		}
	}
}

// notModified evaluates the client's If-None-Match / If-Modified-Since
// against a stored response (RFC 9110 §13.1.2, §13.1.3, §13.2.2).
func notModified(reqH, respH http.Header) bool {
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
	ims := reqH.Get("If-Modified-Since")
	if ims == "" {
		return false
	}
	since, err := http.ParseTime(ims)
	if err != nil {
		return false
	}
	lm, err := http.ParseTime(respH.Get("Last-Modified"))
	if err != nil {
		return false
	}
	return !lm.After(since)
}

func weakMatch(a, b string) bool {
	return strings.TrimPrefix(a, "W/") == strings.TrimPrefix(b, "W/")
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

// setOriginHeaders adjusts the headers of a request for the origin.
func (p *Proxy) setOriginHeaders(in *http.Request, out http.Header, ex *exchange) {
	// Forwarding headers (ReverseProxy already removed the client's).
	hop.SetForwarded(out, in, p.cfg.TrustForwarded)
	// The origin renders for the host the key holds (with TrustForwarded,
	// the client's X-Forwarded-Host), not for another spelling of it
	// ("app.test.", upper case, "app.test:080").
	out.Set("X-Forwarded-Host", ex.n.host)

	switch ex.mode {
	case modeMiss:
		for _, k := range conditionalHeaders {
			delete(out, k)
		}
	case modeRevalidate:
		for _, k := range conditionalHeaders {
			delete(out, k)
		}
		sh := http.Header(ex.entry.rec.Header)
		if et := sh.Get("Etag"); et != "" {
			out.Set("If-None-Match", et)
		}
		if lm := sh.Get("Last-Modified"); lm != "" {
			out.Set("If-Modified-Since", lm)
		}
	}
}

func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	ex := pr.In.Context().Value(exKey{}).(*exchange)
	pr.Out.URL = p.originURL(&ex.n)
	pr.Out.Host = ""
	p.setOriginHeaders(pr.In, pr.Out.Header, ex)
	if hop.UpgradeType(pr.In.Header) != "" {
		return // a socket: no timeouts of ours
	}
	ctx, cancel := context.WithCancel(pr.Out.Context())
	ex.cancel = cancel
	ex.hdrTimer = time.AfterFunc(p.cfg.OriginTimeout, func() {
		ex.timedOut.Store(true)
		cancel()
	})
	pr.Out = pr.Out.WithContext(ctx)
}

func (p *Proxy) modifyResponse(resp *http.Response) error {
	ex := resp.Request.Context().Value(exKey{}).(*exchange)
	if ex.hdrTimer != nil && !ex.hdrTimer.Stop() && ex.timedOut.Load() {
		return errOriginTimeout
	}
	respTime := p.now()
	if p.met != nil {
		p.met.origin(resp.StatusCode, time.Since(ex.reqTimeWall()))
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		resp.Header.Set("Cache-Status", ex.cs.String())
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
	if ex.mode == modeRevalidate {
		if p.revalidated(resp, ex, respTime) {
			return nil
		}
	}
	if ex.in.Method == http.MethodHead && ex.entry != nil && resp.StatusCode == http.StatusOK && headChanged(ex.entry, resp.Header) {
		// RFC 9111 §4.3.5: a HEAD showing another representation
		// invalidates the stored GET response.
		e := ex.entry
		p.goBackground(func() { _ = p.st.Delete(context.Background(), e.rec.Key, e.rec.Variant) })
	}
	var job *fillJob
	if ex.mode == modeMiss || ex.mode == modeRevalidate {
		job = p.maybeStore(resp, ex, respTime)
	}
	if job != nil {
		if p.reserve() {
			ex.job = job
			if err := p.prepareFill(resp, ex); err != nil {
				return err
			}
			if ex.job == nil || job.inspected {
				job = nil // dropped, or the body is already read
			}
		} else {
			job = nil
			ex.cs.stored, ex.cs.hasTTL, ex.cs.detail = false, false, "closing"
		}
	}
	if ex.invalid && resp.StatusCode < 400 {
		p.invalidate(resp.Request.Context(), ex, resp)
	}
	p.wrapBody(resp, ex, job)
	prependCacheStatus(resp.Header, ex.cs)
	return nil
}

func (ex *exchange) reqTimeWall() time.Time { return ex.wall }

func prependCacheStatus(h http.Header, cs cacheStatus) {
	prior := h["Cache-Status"]
	v := cs.String()
	if len(prior) > 0 {
		v += ", " + strings.Join(prior, ", ")
	}
	h["Cache-Status"] = []string{v}
}

var errOriginTimeout = errors.New("httpcache: origin timed out")

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

// sameValidator reports whether a 304 may update the stored entry: it
// carries no ETag, or the stored response has none, or they match.
func sameValidator(e *entry, h304 http.Header) bool {
	et := h304.Get("Etag")
	stored := http.Header(e.rec.Header).Get("Etag")
	return et == "" || stored == "" || weakMatch(et, stored)
}

// refetch replaces resp (a 304 that cannot be used) with the answer to
// the same request sent without validators.
func (p *Proxy) refetch(resp *http.Response) error {
	resp.Body.Close()
	out := resp.Request.Clone(resp.Request.Context())
	for _, k := range conditionalHeaders {
		delete(out.Header, k)
	}
	nr, err := p.roundTrip(out)
	if err != nil {
		return err
	}
	hop.Remove(nr.Header)
	nr.Request = resp.Request
	*resp = *nr
	return nil
}

// revalidated handles the origin's answer to a conditional request for a
// stored entry: a 304 freshens the entry and serves it, a 5xx within
// stale-if-error serves it stale. It reports whether resp was replaced.
func (p *Proxy) revalidated(resp *http.Response, ex *exchange, respTime time.Time) bool {
	e := ex.entry
	switch {
	case resp.StatusCode == http.StatusNotModified:
		// RFC 9111 §4.3.4: update the stored headers from the 304.
		ne, reason := p.freshen(ex.in, ex.rq, e, resp.Header, ex.reqTime, respTime)
		if reason != "" {
			// Not stored any more: for this client only.
			if ex.flight != nil {
				ex.flight.release(nil)
			}
			ex.cs.detail = reason
			p.pass.remember(ex.key, reason, respTime.Add(p.cfg.HitForPassTTL))
			p.replaceWithEntry(resp, ex, ne, respTime)
			return true
		}
		if ex.flight != nil {
			ex.flight.release(ne)
		}
		ex.cs.stored = true
		p.replaceWithEntry(resp, ex, ne, respTime)
		return true
	case resp.StatusCode >= 500 && p.staleIfErrorOK(e, respTime):
		ex.cs.detail = "stale-if-error"
		ex.result = ResultStale
		p.replaceWithEntry(resp, ex, e, respTime)
		return true
	}
	return false
}

func (p *Proxy) staleIfErrorOK(e *entry, now time.Time) bool {
	if e == nil || e.pol.sie <= 0 {
		return false
	}
	if !e.notAfter.IsZero() && !now.Before(e.notAfter) {
		return false
	}
	staleBy := e.pol.age(e.rec.ResponseTime, now) - e.pol.lifetime
	return staleBy <= e.pol.sie
}

// replaceWithEntry turns resp into the stored entry's response.
func (p *Proxy) replaceWithEntry(resp *http.Response, ex *exchange, e *entry, now time.Time) {
	resp.Body.Close()
	rec := httptestRecorder{h: make(http.Header)}
	p.writeEntryTo(&rec, ex.in, e, ex.cs, now)
	resp.StatusCode = rec.code
	resp.Status = strconv.Itoa(rec.code) + " " + http.StatusText(rec.code)
	resp.Header = rec.h
	resp.Body = io.NopCloser(bytes.NewReader(rec.body))
	resp.ContentLength = int64(len(rec.body))
	resp.Uncompressed = false
}

// httptestRecorder collects what writeEntry writes (a minimal
// http.ResponseWriter).
type httptestRecorder struct {
	h    http.Header
	code int
	body []byte
}

func (r *httptestRecorder) Header() http.Header { return r.h }
func (r *httptestRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}
func (r *httptestRecorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	r.body = append(r.body, b...)
	return len(b), nil
}

func (p *Proxy) writeEntryTo(w http.ResponseWriter, r *http.Request, e *entry, cs cacheStatus, now time.Time) {
	// The hit flag is not set: this response was forwarded.
	p.writeEntry(w, r, e, cs, now)
}

// roundTrip sends out to the origin outside the ReverseProxy (refetches,
// background revalidations), recording the origin metrics.
func (p *Proxy) roundTrip(out *http.Request) (*http.Response, error) {
	wall := time.Now()
	resp, err := p.cfg.Transport.RoundTrip(out)
	if p.met != nil {
		code := 0
		if err == nil {
			code = resp.StatusCode
		}
		p.met.origin(code, time.Since(wall))
	}
	return resp, err
}

func (p *Proxy) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	ex := r.Context().Value(exKey{}).(*exchange)
	if ex.hdrTimer != nil {
		ex.hdrTimer.Stop()
	}
	now := p.now()
	if ex.in.Context().Err() != nil && !ex.timedOut.Load() {
		// The client went away; nobody to answer.
		ex.result = ResultError
		return
	}
	if p.met != nil {
		p.met.origin(0, time.Since(ex.reqTimeWall()))
	}
	if ex.entry != nil && ex.mode == modeRevalidate && p.staleIfErrorOK(ex.entry, now) {
		cs := ex.cs
		cs.detail = "stale-if-error"
		ex.result = ResultStale
		p.writeEntry(w, ex.in, ex.entry, cs, now)
		return
	}
	ex.result = ResultError
	cs := ex.cs
	if ex.timedOut.Load() || errors.Is(err, errOriginTimeout) || isTimeout(err) {
		cs.detail = "origin-timeout"
		w.Header().Set("Cache-Status", cs.String())
		plainError(w, http.StatusGatewayTimeout, "gateway timeout: origin did not answer in time")
		p.log.Warn("httpcache: origin timeout", "url", ex.n.key(), "err", err)
		return
	}
	if ex.entry != nil && ex.mode == modeRevalidate && ex.entry.pol.mustReval {
		// RFC 9111 §5.2.2.2: a stale must-revalidate response that cannot
		// be validated is answered with an error, preferably 504.
		cs.detail = "must-revalidate"
		w.Header().Set("Cache-Status", cs.String())
		plainError(w, http.StatusGatewayTimeout, "gateway timeout: stored response must be revalidated and the origin is unreachable")
		p.log.Warn("httpcache: origin error", "url", ex.n.key(), "err", err)
		return
	}
	cs.detail = "origin-unreachable"
	w.Header().Set("Cache-Status", cs.String())
	plainError(w, http.StatusBadGateway, "bad gateway: origin unreachable")
	p.log.Warn("httpcache: origin error", "url", ex.n.key(), "err", err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
