package httpcache

import (
	"github.com/firstrender/firstrender/httpcache/hop"

	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/firstrender/firstrender/store"
)

// fillJob is a response on its way into the store.
type fillJob struct {
	req      *http.Request
	key      string
	variant  string
	vary     []string
	status   int
	header   http.Header // the copy to store
	pol      policy
	reqTime  time.Time
	respTime time.Time
	flight   *flight

	// inspected is set when the Inspector already ran on the complete
	// body before the response's headers went out (see inspectNow):
	// res and verdict are then the stored copy and the decision, and e
	// the entry built from them (nil when refused).
	inspected bool
	res       *Response
	verdict   Verdict
	e         *entry
}

// decideStore applies RFC 9111 §3 and the proxy's policies to a response
// for req. It returns a job (nil if not storable) and the reason.
func (p *Proxy) decideStore(req *http.Request, path, key string, rq reqDirectives, status int, h http.Header, contentLength int64, reqTime, respTime time.Time) (*fillJob, string) {
	d := p.parser.response(h)
	reason := storable(req.Method, req.Header, rq, status, h, d)
	stripCookie := false
	if reason == "" && len(h["Set-Cookie"]) > 0 {
		if p.stripSetCookie(path) {
			stripCookie = true
		} else {
			reason = reasonSetCookie
		}
	}
	if reason == "" && contentLength > p.cfg.MaxObjectSize {
		reason = reasonTooLarge
	}
	if reason == "" && p.isClosed() {
		reason = "closing"
	}
	pol := computePolicy(status, h, d, reqTime, respTime, p.fc)
	if reason == "" {
		useful := hasValidator(h) || (!pol.noCache && (pol.lifetime > pol.initialAge || pol.swr > 0 || pol.sie > 0))
		if !useful {
			reason = reasonNoFreshness
		}
	}
	if reason != "" {
		return nil, reason
	}
	sh := storedHeader(h)
	if stripCookie {
		delete(sh, "Set-Cookie")
	}
	names, _ := parseVary(h)
	return &fillJob{
		req:      req,
		key:      key,
		variant:  variantKey(names, req.Header),
		vary:     names,
		status:   status,
		header:   sh,
		pol:      pol,
		reqTime:  reqTime,
		respTime: respTime,
	}, ""
}

func (p *Proxy) stripSetCookie(path string) bool {
	for _, pre := range p.cfg.StripSetCookie {
		if strings.HasPrefix(path, pre) {
			return true
		}
	}
	return false
}

// maybeStore decides whether the forwarded response resp can be stored
// and records the outcome in ex.cs.
func (p *Proxy) maybeStore(resp *http.Response, ex *exchange, respTime time.Time) *fillJob {
	job, reason := p.decideStore(ex.in, ex.n.path, ex.key, ex.rq, resp.StatusCode, resp.Header, resp.ContentLength, ex.reqTime, respTime)
	if job == nil {
		ex.cs.detail = reason
		p.pass.remember(ex.key, reason, p.now().Add(p.cfg.HitForPassTTL))
		if ex.flight != nil {
			ex.flight.release(nil) // waiters need not wait for the body
		}
		if ex.mode == modeRevalidate && resp.StatusCode < 500 && !requestOnly(reason) {
			// The origin's new answer supersedes the stored one.
			e := ex.entry
			p.goBackground(func() {
				_ = p.st.Delete(context.Background(), e.rec.Key, e.rec.Variant)
			})
		}
		return nil
	}
	job.flight = ex.flight
	ex.cs.stored = true
	ex.cs.ttl, ex.cs.hasTTL = job.pol.lifetime-job.pol.initialAge, true
	return job
}

// requestOnly reports whether a refusal to store is owed to the request
// alone (its no-store or Authorization) or to a transient state (closing),
// not to the origin's answer. Such a refusal answers that client without
// touching what is stored for others: otherwise any visitor could purge
// entries with request headers.
func requestOnly(reason string) bool {
	return reason == reasonRequestNoStore || reason == reasonAuthorization || reason == "closing"
}

// dropJob gives up storing job before the response's headers go out
// (not as hit-for-pass: the reason is transient).
func (p *Proxy) dropJob(ex *exchange, reason string) {
	ex.job = nil
	p.unreserve()
	ex.cs.stored, ex.cs.hasTTL, ex.cs.detail = false, false, reason
	if ex.flight != nil {
		ex.flight.release(nil)
	}
}

// holdBuffer reserves n bytes of Config.MaxBuffered for a body of known
// length about to be copied, so the decision cannot change mid-transfer.
func (p *Proxy) holdBuffer(n int64) bool {
	if p.buffered.Add(n) > p.cfg.MaxBuffered {
		p.buffered.Add(-n)
		return false
	}
	return true
}

// prepareFill settles, before the response's headers go out, how the
// storable response in ex.job is filled, and what its Cache-Status says:
//
//   - with an Inspector and a Content-Length within InspectBuffer, the
//     body is read now and inspected (inspectNow), so Cache-Status is
//     exact: stored with ttl= capped by Verdict.NotAfter, or
//     detail=<refusal>;
//   - otherwise the body streams to the client while a copy is kept. A
//     known length is reserved in MaxBuffered up front; then, without an
//     Inspector, only an aborted transfer can keep the response out of
//     the store, and the client would not get it complete either, so
//     "stored; ttl=" stands. With an Inspector still to run, or an
//     unknown length (the body may outgrow MaxObjectSize or
//     MaxBuffered), the outcome is not known yet: neither stored nor
//     ttl= is claimed, and detail= says what is pending (or, while the
//     URL is hit-for-pass, keeps the last refusal's reason).
//
// It returns an error (for the ReverseProxy's ErrorHandler) only when the
// body could not be read for inspection.
func (p *Proxy) prepareFill(resp *http.Response, ex *exchange) error {
	job := ex.job
	cl := resp.ContentLength
	if cl >= 0 {
		if !p.holdBuffer(cl) {
			p.dropJob(ex, reasonMaxBuffered)
			return nil
		}
		if p.cfg.Inspector != nil && cl <= p.cfg.InspectBuffer {
			return p.inspectNow(resp, ex, job)
		}
		ex.prepaid = cl
	}
	pending := ""
	switch {
	case p.cfg.Inspector != nil:
		pending = detailPendingInspection
	case cl < 0:
		pending = detailPendingSize
	}
	if pending != "" {
		ex.cs.stored, ex.cs.hasTTL = false, false
		if ex.cs.detail == "" {
			// While the URL is hit-for-pass, detail= keeps the last
			// refusal's reason, the likeliest outcome.
			ex.cs.detail = pending
		}
	}
	return nil
}

// inspectNow reads the whole body of a storable response (its length,
// cl, is already reserved in MaxBuffered), runs the Inspector on a copy
// and records the exact outcome in ex.cs. The client gets the origin's
// body unchanged; the store write still happens after the response
// (forward starts it).
func (p *Proxy) inspectNow(resp *http.Response, ex *exchange, job *fillJob) error {
	cl := resp.ContentLength
	t := p.newTeeBody(resp, ex)
	body, err := readExactly(t, cl)
	t.finish(err == nil)
	p.buffered.Add(-cl)
	if err != nil {
		if p.met != nil {
			p.met.aborted.Inc()
		}
		ex.cs.stored, ex.cs.hasTTL = false, false
		if ex.timedOut.Load() {
			return errOriginTimeout
		}
		return fmt.Errorf("httpcache: reading the origin's body for inspection: %w", err)
	}
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))

	// The Inspector may change its copy in place; the client's is body.
	res, v := p.inspect(job, bytes.Clone(body))
	job.inspected, job.res, job.verdict = true, res, v
	ex.complete, ex.body = true, nil
	if v.Refuse != "" {
		p.refused(job, v.Refuse)
		if job.flight != nil {
			job.flight.release(nil)
		}
		ex.cs.stored, ex.cs.hasTTL, ex.cs.detail = false, false, v.Refuse
		return nil
	}
	job.e = p.newEntry(job, res, v)
	if job.flight != nil {
		job.flight.release(job.e)
	}
	ex.cs.ttl = ttlOf(job.e, p.now())
	return nil
}

// readExactly reads exactly n bytes and then EOF from r.
func readExactly(r io.Reader, n int64) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	var one [1]byte
	for {
		m, err := r.Read(one[:])
		if m > 0 {
			return nil, errors.New("body longer than its Content-Length")
		}
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// newTeeBody wraps resp's body to count origin bytes and abort the
// transfer (cancelling ex's origin request) when the origin stalls longer
// than OriginIdleTimeout between reads. It keeps nothing: callers set max,
// budget and the rest when the body is to be stored.
func (p *Proxy) newTeeBody(resp *http.Response, ex *exchange) *teeBody {
	t := &teeBody{rc: resp.Body, max: -1, idle: p.cfg.OriginIdleTimeout, expect: resp.ContentLength}
	if p.met != nil {
		t.counted = p.met.originBytes
	}
	if ex.cancel != nil {
		t.timer = time.AfterFunc(p.cfg.OriginIdleTimeout, func() {
			ex.timedOut.Store(true)
			ex.cancel()
		})
	}
	return t
}

// wrapBody makes resp.Body enforce the origin idle timeout and, when job
// is non-nil, buffer the body for storing while it streams to the
// client.
func (p *Proxy) wrapBody(resp *http.Response, ex *exchange, job *fillJob) {
	if resp.Body == nil || resp.Body == http.NoBody && job == nil {
		return
	}
	t := p.newTeeBody(resp, ex)
	if job != nil {
		t.max = p.cfg.MaxObjectSize
		t.budget, t.limit = &p.buffered, p.cfg.MaxBuffered
		if ex.prepaid > 0 {
			t.held, t.prepaid = ex.prepaid, true
		}
		if resp.ContentLength > 0 {
			t.buf = make([]byte, 0, resp.ContentLength)
		}
		t.onComplete = func(body []byte) {
			// Started when the handler is done writing (see forward), so
			// the store write does not compete with the client's response.
			ex.complete, ex.body = true, body
		}
		t.onAbort = func() {
			if p.met != nil {
				p.met.aborted.Inc()
			}
		}
	}
	resp.Body = t
}

// teeBody passes an origin body through while keeping a copy of it (up
// to max bytes; max < 0 keeps nothing). onComplete runs once, with the
// copy, when the body ended cleanly (EOF with the announced length);
// a read error, an early Close or an overflow discard the copy.
type teeBody struct {
	rc         io.ReadCloser
	buf        []byte
	max        int64
	expect     int64
	n          int64
	idle       time.Duration
	timer      *time.Timer
	over       bool
	finished   bool
	onComplete func([]byte)
	onAbort    func()
	counted    interface{ Add(float64) } // bytes relayed, added at the end
	budget     *atomic.Int64             // bytes buffered by all transfers (Config.MaxBuffered)
	limit      int64
	held       int64 // this transfer's share of budget
	prepaid    bool  // held was reserved up front for the whole (known) length
}

func (t *teeBody) release() {
	if t.budget != nil && t.held > 0 {
		t.budget.Add(-t.held)
		t.held = 0
	}
}

func (t *teeBody) Read(b []byte) (int, error) {
	if t.timer != nil {
		t.timer.Reset(t.idle)
	}
	n, err := t.rc.Read(b)
	t.n += int64(n)
	if t.max >= 0 && !t.over && n > 0 {
		over := int64(len(t.buf)+n) > t.max
		if !over && t.budget != nil && !t.prepaid && t.budget.Add(int64(n)) > t.limit {
			t.budget.Add(-int64(n))
			over = true
		}
		if over {
			t.over = true
			t.buf = nil
			t.release()
		} else {
			if !t.prepaid {
				t.held += int64(n)
			}
			t.buf = append(t.buf, b[:n]...)
		}
	}
	if err == io.EOF {
		t.finish(t.expect < 0 || t.n == t.expect)
	} else if err != nil {
		t.finish(false)
	}
	return n, err
}

func (t *teeBody) finish(complete bool) {
	if t.finished {
		return
	}
	t.finished = true
	t.release()
	if t.counted != nil {
		t.counted.Add(float64(t.n))
	}
	if t.timer != nil {
		t.timer.Stop()
	}
	if t.max < 0 {
		return
	}
	if complete && !t.over && t.onComplete != nil {
		t.onComplete(t.buf)
	} else if t.onAbort != nil {
		t.onAbort()
	}
	t.buf = nil
}

func (t *teeBody) Close() error {
	t.finish(false)
	return t.rc.Close()
}

// fillSync inspects (unless inspectNow did) and stores a complete
// response. It ends job.flight.
func (p *Proxy) fillSync(job *fillJob, body []byte) {
	if job.flight != nil {
		defer p.flights.end(job.flight)
	}
	res, v, e := job.res, job.verdict, job.e
	if !job.inspected {
		res, v = p.inspect(job, body)
		if v.Refuse != "" {
			p.refused(job, v.Refuse)
		}
	}
	if v.Refuse != "" {
		// An older copy must not outlive the origin's new answer.
		if err := p.st.Delete(context.Background(), job.key, job.variant); err != nil && !errors.Is(err, store.ErrNotFound) {
			p.log.Warn("httpcache: store delete", "key", job.key, "err", err)
		}
		return
	}
	if e == nil {
		e = p.newEntry(job, res, v)
	}
	if job.flight != nil {
		job.flight.release(e)
	}
	if prev, ok := p.vary.get(job.key); ok && !slices.Equal(prev, job.vary) {
		// The Vary of the resource changed: older variants are unusable.
		_, _ = p.st.DeleteKey(context.Background(), job.key)
	}
	if err := p.st.Put(context.Background(), e.rec); err != nil {
		p.log.Warn("httpcache: store put", "key", job.key, "err", err)
		return
	}
	p.vary.set(job.key, job.vary)
	p.pass.forget(job.key)
}

// inspect runs the Inspector (if any) on the stored copy of a complete
// response and returns that copy with the verdict. A verdict whose
// NotAfter has already passed becomes a refusal ("not-after-passed"); an
// Inspector that panics refuses ("inspector-panic") without taking the
// server down.
func (p *Proxy) inspect(job *fillJob, body []byte) (res *Response, v Verdict) {
	res = &Response{Status: job.status, Header: job.header, Body: body}
	if p.cfg.Inspector != nil {
		func() {
			defer func() {
				if x := recover(); x != nil {
					p.log.Error("httpcache: inspector panicked", "key", job.key, "panic", x)
					v = Verdict{Refuse: reasonInspectorPanic}
				}
			}()
			v = p.cfg.Inspector.Inspect(job.req, res)
		}()
	}
	if v.Refuse == "" && !v.NotAfter.IsZero() && !v.NotAfter.After(p.now()) {
		v.Refuse = "not-after-passed" // would never be served
	}
	return res, v
}

// refused records an Inspector refusal: hit-for-pass, log, metrics.
func (p *Proxy) refused(job *fillJob, reason string) {
	p.pass.remember(job.key, reason, p.now().Add(p.cfg.HitForPassTTL))
	p.log.Info("httpcache: inspector refused response", "key", job.key, "reason", reason)
	if p.met != nil {
		p.met.refused.Inc()
	}
}

// newEntry builds the record for a response about to be stored. It is
// keyed by the Vary of the stored copy: an Inspector that changed it (the
// liveview lint's vary-cookie strip) changes the variants, so what is
// keyed on and the Vary served agree.
func (p *Proxy) newEntry(job *fillJob, res *Response, v Verdict) *entry {
	if names, _ := parseVary(res.Header); !slices.Equal(names, job.vary) {
		job.vary, job.variant = names, variantKey(names, job.req.Header)
	}
	ann := make(map[string]string, len(v.Annotations)+3)
	maps.Copy(ann, v.Annotations)
	ann[AnnotationPolicy] = job.pol.encode()
	ann[AnnotationVary] = strings.Join(job.vary, ",")
	delete(ann, AnnotationDisabled)
	delete(ann, AnnotationNotAfter)
	if !v.NotAfter.IsZero() {
		ann[AnnotationNotAfter] = v.NotAfter.UTC().Format(time.RFC3339Nano)
	}
	var tags []string
	for _, sk := range res.Header.Values("Surrogate-Key") {
		for t := range strings.FieldsSeq(sk) {
			if !strings.ContainsRune(t, 0) {
				tags = append(tags, t)
			}
		}
	}
	rec := &store.Record{
		Key:          job.key,
		Variant:      job.variant,
		Status:       res.Status,
		Header:       res.Header,
		Body:         res.Body,
		RequestTime:  job.reqTime,
		ResponseTime: job.respTime,
		Tags:         tags,
		Annotations:  ann,
	}
	e := &entry{rec: rec, pol: job.pol, vary: job.vary}
	if !v.NotAfter.IsZero() {
		e.notAfter = v.NotAfter.UTC()
	}
	rec.Expires = p.expiresHint(e, res.Header)
	return e
}

// expiresHint is the instant after which the entry is of no use: stale
// beyond every window in which it could still be served or revalidated.
func (p *Proxy) expiresHint(e *entry, h http.Header) time.Time {
	fresh := max(e.pol.lifetime-e.pol.initialAge, 0)
	extra := max(e.pol.swr, e.pol.sie)
	if hasValidator(h) {
		extra = max(extra, p.cfg.KeepStale)
	}
	exp := e.rec.ResponseTime.Add(fresh + extra)
	if !e.notAfter.IsZero() && e.notAfter.Before(exp) {
		exp = e.notAfter
	}
	return exp
}

// notUpdated are fields a 304 must not change in a stored response
// (RFC 9111 §3.2), plus Set-Cookie, which is never stored from a 304.
var notUpdated = map[string]bool{
	"Content-Length":   true,
	"Content-Encoding": true,
	"Content-Type":     true,
	"Content-Range":    true,
	"Set-Cookie":       true,
	"Cache-Status":     true,
	"Age":              true,
}

// freshen applies a 304's header fields to a stored entry (RFC 9111
// §4.3.4) and stores the result beside the response. When the updated
// headers make the response one a shared cache must not store (private,
// no-store, Vary: *), the entry is deleted instead and the reason
// returned: the refreshed entry then answers only the request that
// revalidated it. A reason owed to the request alone (requestOnly) leaves
// the stored entry as it was.
func (p *Proxy) freshen(in *http.Request, rq reqDirectives, e *entry, h304 http.Header, reqTime, respTime time.Time) (*entry, string) {
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
	pol := computePolicy(e.rec.Status, withAge, d, reqTime, respTime, p.fc)
	rec := *e.rec
	rec.Header = nh
	rec.RequestTime, rec.ResponseTime, rec.StoredTime = reqTime, respTime, time.Time{}
	rec.Annotations = maps.Clone(e.rec.Annotations)
	if rec.Annotations == nil {
		rec.Annotations = map[string]string{}
	}
	rec.Annotations[AnnotationPolicy] = pol.encode()
	ne := &entry{rec: &rec, pol: pol, vary: e.vary, notAfter: e.notAfter}
	rec.Expires = p.expiresHint(ne, nh)
	if reason := storable(in.Method, in.Header, rq, rec.Status, nh, d); reason != "" {
		if requestOnly(reason) {
			return ne, reason // for this client; the stored entry stays as it was
		}
		p.goBackground(func() {
			if err := p.st.Delete(context.Background(), rec.Key, rec.Variant); err != nil && !errors.Is(err, store.ErrNotFound) {
				p.log.Warn("httpcache: store delete (304 refresh)", "key", rec.Key, "err", err)
			}
		})
		return ne, reason
	}
	p.goBackground(func() {
		if err := p.st.Put(context.Background(), &rec); err != nil {
			p.log.Warn("httpcache: store put (304 refresh)", "key", rec.Key, "err", err)
		}
	})
	return ne, ""
}

// invalidate removes the stored responses for the target URL of an
// unsafe request and for same-origin Location / Content-Location
// (RFC 9111 §4.4). It returns after the deletes committed.
func (p *Proxy) invalidate(ctx context.Context, ex *exchange, resp *http.Response) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	keys := []string{ex.n.key()}
	base := &url.URL{Scheme: ex.n.scheme, Host: ex.n.host, Path: "/"}
	if bp, err := url.Parse(ex.n.scheme + "://" + ex.n.host + ex.n.path); err == nil {
		base = bp
	}
	for _, name := range []string{"Location", "Content-Location"} {
		v := resp.Header.Get(name)
		if v == "" {
			continue
		}
		u, err := base.Parse(v)
		if err != nil {
			continue
		}
		nu, err := normalize(u.Scheme, u.Host, u.EscapedPath(), u.RawQuery, p.ignore)
		if err != nil || nu.scheme != ex.n.scheme || nu.host != ex.n.host {
			continue // RFC 9111 §4.4: only same-origin URIs
		}
		keys = append(keys, nu.key())
	}
	for _, k := range keys {
		p.vary.forget(k)
		p.pass.forget(k)
		if _, err := p.st.DeleteKey(ctx, k); err != nil && !errors.Is(err, store.ErrNotFound) {
			p.log.Warn("httpcache: invalidate", "key", k, "err", err)
		}
	}
	if p.met != nil {
		p.met.invalidations.Add(float64(len(keys)))
	}
}

// revalidateInBackground refreshes a stale entry being served under
// stale-while-revalidate, once per entry at a time.
func (p *Proxy) revalidateInBackground(ex *exchange, e *entry) {
	id := e.rec.Key + "\x00" + e.rec.Variant
	p.revalMu.Lock()
	if p.reval[id] {
		p.revalMu.Unlock()
		return
	}
	p.reval[id] = true
	p.revalMu.Unlock()
	in := ex.in.Clone(context.Background())
	in.Method = http.MethodGet // what backgroundFetch sends, even for a HEAD served stale
	bex := &exchange{in: in, n: ex.n, key: ex.key, rq: ex.rq, mode: modeRevalidate, entry: e}
	started := p.goBackground(func() {
		defer func() {
			p.revalMu.Lock()
			delete(p.reval, id)
			p.revalMu.Unlock()
		}()
		p.backgroundFetch(bex)
	})
	if !started {
		p.revalMu.Lock()
		delete(p.reval, id)
		p.revalMu.Unlock()
	}
}

func (p *Proxy) backgroundFetch(ex *exchange) {
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.OriginTimeout+p.cfg.OriginIdleTimeout)
	defer cancel()
	out, err := http.NewRequestWithContext(ctx, http.MethodGet, p.originURL(&ex.n).String(), nil)
	if err != nil {
		return
	}
	out.Header = ex.in.Header.Clone()
	hop.Remove(out.Header)
	p.setOriginHeaders(ex.in, out.Header, ex) // replaces the client's forwarding fields
	reqTime := p.now()
	resp, err := p.roundTrip(out)
	if err != nil {
		p.log.Warn("httpcache: background revalidation", "key", ex.key, "err", err)
		return
	}
	defer resp.Body.Close()
	hop.Remove(resp.Header)
	respTime := p.now()
	switch {
	case resp.StatusCode == http.StatusNotModified:
		p.freshen(ex.in, ex.rq, ex.entry, resp.Header, reqTime, respTime)
		return
	case resp.StatusCode >= 500:
		return // keep serving what we have
	}
	job, reason := p.decideStore(ex.in, ex.n.path, ex.key, ex.rq, resp.StatusCode, resp.Header, resp.ContentLength, reqTime, respTime)
	if job == nil {
		if !requestOnly(reason) {
			_ = p.st.Delete(context.Background(), ex.entry.rec.Key, ex.entry.rec.Variant)
		}
		return
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, p.cfg.MaxObjectSize+1))
	if err != nil || int64(len(body)) > p.cfg.MaxObjectSize || (resp.ContentLength >= 0 && int64(len(body)) != resp.ContentLength) {
		return
	}
	p.fillSync(job, body)
}
