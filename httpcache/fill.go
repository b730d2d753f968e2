package httpcache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/firstrender/firstrender/httpcache/hop"
	"github.com/firstrender/firstrender/store"
)

// fill is one origin fetch that may fill the store: a client's miss or
// revalidation, or a background revalidation, all sent through forward.
// It owns, in the order they happen:
//
//   - the collapsed flight its waiters wait on (release publishes the
//     result early; the flight ends after the store write);
//   - the store decision (decide: RFC 9111 §3, the proxy's policies,
//     hit-for-pass for what is refused);
//   - the MaxBuffered reservation and the body copy (prepare, tee.go);
//   - the final store change (finish, exactly once, when the handler is
//     done writing): the complete body (store), a 304's refreshed record
//     (put), or the removal of an entry the origin's answer superseded
//     (remove).
//
// A fill belongs to one exchange and is used by its goroutine only,
// until finish hands it to the background store write.
type fill struct {
	p      *Proxy
	flight *flight // nil when not collapsed (hit-for-pass, retries)
	// job is the storable response whose body is being copied; while set
	// it holds a background reservation (Proxy.reserve) for the store
	// write. nil: not storable, given up, or not decided yet.
	job      *fillJob
	prepaid  int64  // bytes of MaxBuffered reserved for job's body up front
	complete bool   // job's body arrived whole (body holds it unless inspected)
	body     []byte //
	put      *store.Record
	remove   *entry
	storing  bool // finish started the store write of job
	// pooled is the buffer (getBody) holding the body inspectNow read, or
	// nil. The fill owns it until its end: the client's copy (memBody),
	// the Inspector, the entry it builds (job.e: rec.Body and a splice
	// page) and the store's Put (which does not retain it) all use it
	// before then. Its end is the store write (Proxy.store) or finish,
	// after flightGroup.end: the buffer is recycled there only if no
	// other request joined the flight, as a waiter serves the published
	// entry from it for as long as its client takes; otherwise it is left
	// to the GC. Nothing else may keep the entry: it is never put in the
	// memory tier (that reads the record back from the store).
	pooled *[]byte
	mb     memBody // the client's copy of an inspected body (inspectNow)
	tee    teeBody // inspectNow's read of the origin's body
	// cork batches the client connection's writes of a response whose
	// body is mb (modifyResponse); uncork ends it before the handler
	// returns.
	cork hop.Cork
	// since is the purge log's sequence when the origin fetch started
	// (forwardOnce): a purge registered after it that covers the record
	// keeps the record out of the store (purgeLog.admit).
	since uint64
	// storeFailing: the store's writes were failing when the response was
	// judged, so neither Cache-Status nor the Outcome claims "stored".
	storeFailing bool
}

// stored reports whether ex's response is (being) stored, for the
// Outcome and the debug log.
func (ex *exchange) stored() bool {
	return ex.cs.stored || (ex.fill != nil && ex.fill.storing && !ex.fill.storeFailing)
}

// release publishes e (nil: waiters must fetch themselves) to f's
// waiters, if any. Only the first call counts.
func (f *fill) release(e *entry) {
	if f.flight != nil {
		f.flight.release(e)
	}
}

// fail publishes to f's waiters that the origin gave no usable answer,
// and which fault it was. Only the first release or fail counts.
func (f *fill) fail(fault originFault) {
	if f.flight != nil {
		f.flight.fail(fault)
	}
}

// finish makes f's one store change and ends its flight (for a stored
// body, once the write committed). forward calls it when the handler is
// done writing, so the write does not compete with the client's response.
func (f *fill) finish() {
	p := f.p
	switch {
	case f.job != nil && f.complete:
		f.storing = true
		go p.storeReserved(f) // ends the flight
		return
	case f.job != nil:
		p.unreserve() // the body did not arrive whole
	case f.put != nil:
		rec, since := f.put, f.since
		p.goBackground(func() {
			if !p.purges.admit(since, rec.Key, rec.Tags, func() {
				if err := p.st.Put(context.Background(), rec); err != nil {
					p.storeErr("httpcache: store put (304 refresh)", rec.Key, err)
					return
				}
				p.fig.stores.Add(1)
			}) {
				p.purgeDropped(rec.Key)
			}
		})
	case f.remove != nil:
		rec := f.remove.rec
		p.goBackground(func() {
			if err := p.st.Delete(context.Background(), rec.Key, rec.Variant); err != nil && !errors.Is(err, store.ErrNotFound) {
				p.storeErr("httpcache: store delete", rec.Key, err)
			}
		})
	}
	f.end()
}

// uncork sends what f's cork holds, after w's buffered bytes, and ends
// it (a no-op without one).
func (f *fill) uncork(w http.Flusher) {
	if f.cork.Holding() {
		w.Flush()
	}
	f.cork.Release()
	f.cork = hop.Cork{}
}

// end ends f's flight and recycles its pooled body unless another
// request joined the flight (see fill.pooled). Called once, last.
func (f *fill) end() {
	joined := false
	if f.flight != nil {
		joined = f.p.flights.end(f.flight)
	}
	if f.pooled != nil && !joined {
		putBody(f.pooled)
	}
	f.pooled = nil
}

// decide judges the origin's response for ex (a miss, or a revalidation
// answered with a full response) before its headers go out, and records
// the outcome in ex.cs. A storable response gets a job, a background
// reservation and a MaxBuffered reservation (prepare). A refused one is
// remembered for hit-for-pass, releases the waiters at once, and, when
// the origin's new answer supersedes a stored entry, removes it. It
// returns an error (for the ErrorHandler) only when the body could not be
// read for inspection.
func (f *fill) decide(resp *http.Response, ex *exchange, respTime time.Time) error {
	p := f.p
	// A miss whose lookup found no record of the URL at all (uri-miss) has
	// room for a variant: MaxVariants is not asked of the store again.
	// (Fills running at once could each pass the check anyway: the bound
	// is checked before the body, not in the store's write.)
	noVariants := ex.mode == modeMiss && ex.cs.fwd == fwdURIMiss
	job, reason := p.decideStore(ex.in, ex.n.path, ex.key, ex.rq, resp.StatusCode, resp.Header, resp.ContentLength, ex.call.reqTime, respTime, noVariants)
	if job != nil && ex.mode == modeRevalidate && resp.StatusCode >= 400 && ex.entry.rec.Status < 400 {
		// An error never replaces a good stored response, even a status
		// opted into StoreErrors: the stored one stays for the next
		// request (this one gets the error, uncached).
		job, reason = nil, reasonErrorStatus
	}
	if job == nil {
		ex.cs.detail = reason
		p.met.refuse(reason)
		if ex.result == ResultMiss {
			// Uncacheable: the hit ratio is hits / (hits + misses) of
			// what could be cached, so this request counts as a pass.
			ex.result = ResultPass
		}
		p.pass.remember(ex.key, reason, p.now().Add(p.cfg.HitForPassTTL))
		f.release(nil) // waiters need not wait for the body
		if ex.mode == modeRevalidate && resp.StatusCode < 400 && !requestOnly(reason) && reason != reasonEmptyBody {
			// The origin's new answer supersedes the stored one. An error
			// or an empty page does not: it may be one client's doing (an
			// oversized or override header), or a restart.
			f.remove = ex.entry
		}
		return nil
	}
	if !p.reserve() {
		ex.cs.detail = "closing"
		f.release(nil)
		return nil
	}
	f.job = job
	ex.cs.stored = true
	ex.cs.ttl, ex.cs.hasTTL = job.pol.lifetime-job.pol.initialAge, true
	err := f.prepare(resp, ex)
	f.checkStoreHealth(ex)
	return err
}

// detailStoreFailing is the Cache-Status detail of a storable response
// while the store's writes fail (a full or read-only disk).
const detailStoreFailing = "store-failing"

// checkStoreHealth withdraws the claim "stored" while the store's writes
// fail (store.Store.WritesFailing: the latest write transaction failed).
// The write is still attempted beside the response, as every write is
// the store's probe for recovery, but the client is not told it was
// stored, nor the log: the write is asynchronous, so its health at the
// moment of the decision is the best knowledge there is.
func (f *fill) checkStoreHealth(ex *exchange) {
	if !ex.cs.stored || !f.p.st.WritesFailing() {
		return
	}
	f.storeFailing = true
	ex.cs.stored, ex.cs.hasTTL = false, false
	if ex.cs.detail == "" {
		ex.cs.detail = detailStoreFailing
	}
}

// drop gives up storing f's job before the response's headers go out
// (not as hit-for-pass: the reason is transient).
func (f *fill) drop(ex *exchange, reason string) {
	f.job = nil
	f.p.unreserve()
	f.p.met.refuse(reason)
	ex.cs.stored, ex.cs.hasTTL, ex.cs.detail = false, false, reason
	f.release(nil)
}

// abandon gives up storing f's job after the response's headers arrived
// but before its body was copied (the visitor needs another answer, see
// splicedResponse): the reservations are given back, waiters fetch
// themselves.
func (f *fill) abandon() {
	if f.prepaid > 0 {
		f.p.buffered.Add(-f.prepaid)
		f.prepaid = 0
	}
	f.job = nil
	f.p.unreserve()
	f.release(nil)
}

// fillJob is a response on its way into the store.
type fillJob struct {
	req      *http.Request
	path     string // normalized
	splicing bool   // Set-Cookie let through to the Inspector (splice path)
	key      string
	variant  string
	vary     []string // parseVary of the origin's header
	// varyN and varyOne are the origin's Vary field lines (their number;
	// the line when there is one), for newEntry to see that the stored
	// copy's Vary is unchanged without parsing it again.
	varyN    int
	varyOne  string
	status   int
	header   http.Header // the copy to store
	pol      policy
	reqTime  time.Time
	respTime time.Time

	// inspected is set when the Inspector already ran on the complete
	// body before the response's headers went out (see inspectNow):
	// res and verdict are then the stored copy and the decision, and e
	// the entry built from them (nil when refused).
	inspected bool
	res       *Response
	resv      Response // what res points to (one allocation less)
	verdict   Verdict
	e         *entry
	splice    SplicePage // from verdict.Splice, loaded by inspect
}

// decideStore applies RFC 9111 §3 and the proxy's policies to a response
// for req. It returns a job (nil if not storable) and the reason.
// noVariants: the request's lookup just found nothing stored for key, so
// Config.MaxVariants need not be checked.
func (p *Proxy) decideStore(req *http.Request, path, key string, rq reqDirectives, status int, h http.Header, contentLength int64, reqTime, respTime time.Time, noVariants bool) (*fillJob, string) {
	d := p.parser.response(h)
	reason := storable(req.Method, req.Header, rq, status, h, d)
	stripCookie, splice := false, false
	if reason == "" && len(h["Set-Cookie"]) > 0 {
		if p.splicePath(path) && p.cfg.Inspector != nil {
			// The session cookie of a first render to splice: the
			// Inspector must take it out of the stored copy (inspect).
			splice = true
		} else if p.stripSetCookie(path) {
			stripCookie = true
		} else {
			reason = reasonSetCookie
		}
	}
	var errorTTL time.Duration
	if reason == "" && status >= 400 {
		if errorTTL = p.cfg.StoreErrors[status]; errorTTL == 0 {
			reason = reasonErrorStatus
		}
	}
	if reason == "" && !storableEncoding(h) {
		reason = reasonContentEncoding // one the cache could not decode for other clients
	}
	if reason == "" && p.cfg.Inspector == nil {
		// With an Inspector these are judged on the copy it leaves
		// (inspect): it may take Cookie out of Vary.
		reason = p.afterInspection(req, status, h, contentLength)
	}
	if reason == "" && contentLength > p.cfg.MaxObjectSize {
		reason = reasonTooLarge
	}
	if reason == "" && p.isClosed() {
		reason = "closing"
	}
	pol := computePolicy(status, h, d, reqTime, respTime, p.fc)
	if errorTTL > 0 && (pol.lifetime <= 0 || pol.lifetime > errorTTL) {
		// StoreErrors: the operator's freshness, unless the origin's is
		// shorter; and no stale serving of an error.
		pol.lifetime, pol.heuristic, pol.swr, pol.sie = errorTTL, false, 0, 0
	}
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
	for _, f := range d.noCacheFields {
		delete(sh, f) // qualified no-cache: never sent without revalidation
	}
	if stripCookie {
		delete(sh, "Set-Cookie")
	}
	names, _ := parseVary(h)
	if !noVariants {
		if reason := p.variantRoom(req, key, names); reason != "" {
			return nil, reason
		}
	}
	job := &fillJob{
		req:      req,
		path:     path,
		splicing: splice,
		key:      key,
		variant:  variantKey(names, req.Header),
		vary:     names,
		varyN:    len(h["Vary"]),
		status:   status,
		header:   sh,
		pol:      pol,
		reqTime:  reqTime,
		respTime: respTime,
	}
	if job.varyN == 1 {
		job.varyOne = h["Vary"][0]
	}
	return job, ""
}

// sameVary reports whether h's Vary field lines are the origin's, so that
// parseVary(h) is job.vary.
func (job *fillJob) sameVary(h http.Header) bool {
	v := h["Vary"]
	return len(v) == job.varyN && (len(v) == 0 || len(v) == 1 && v[0] == job.varyOne)
}

func (p *Proxy) stripSetCookie(path string) bool {
	for _, pre := range p.cfg.StripSetCookie {
		if strings.HasPrefix(path, pre) {
			return true
		}
	}
	return false
}

// requestOnly reports whether a refusal to store is owed to the request
// alone (its no-store or Authorization) or to a transient state (closing),
// not to the origin's answer. Such a refusal answers that client without
// touching what is stored for others: otherwise any visitor could purge
// entries with request headers.
func requestOnly(reason string) bool {
	return reason == reasonRequestNoStore || reason == reasonAuthorization || reason == "closing"
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
// storable response in f.job is filled, and what its Cache-Status says:
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
func (f *fill) prepare(resp *http.Response, ex *exchange) error {
	p := f.p
	cl := resp.ContentLength
	if cl >= 0 {
		if !p.holdBuffer(cl) {
			f.drop(ex, reasonMaxBuffered)
			return nil
		}
		if p.cfg.Inspector != nil && cl <= p.cfg.InspectBuffer {
			return f.inspectNow(resp, ex)
		}
		f.prepaid = cl
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
// cl, is already reserved in MaxBuffered), runs the Inspector on it and
// records the exact outcome in ex.cs. The client gets the origin's body
// unchanged; the store write still happens after the response (finish
// starts it).
//
// The body is read once, into one pooled buffer that is not written
// again until it is recycled: it is what the client is sent (memBody),
// what the Inspector sees (which must not write to it, see [Inspector]),
// the stored record's Body and the body collapsed waiters are served
// from the flight's entry. fill.pooled says who owns it and when it is
// recycled.
func (f *fill) inspectNow(resp *http.Response, ex *exchange) error {
	p, job := f.p, f.job
	cl := resp.ContentLength
	t := &f.tee
	p.initTeeBody(t, resp, ex)
	// The client's bytes are counted by the memBody handed on below;
	// counting this read too served every inspected page's bytes twice in
	// firstrender_served_bytes_total.
	counted := t.counted
	t.counted = nil
	body, pooled, err := t.readExactly(cl)
	t.finish(err == nil)
	p.buffered.Add(-cl)
	if err != nil {
		if p.met != nil {
			p.met.aborted.Inc()
		}
		ex.cs.stored, ex.cs.hasTTL = false, false
		if ex.call.timedOut.Load() {
			return errOriginTimeout
		}
		return fmt.Errorf("httpcache: reading the origin's body for inspection: %w", err)
	}
	if !reusableAfter(ex.client) {
		pooled = nil // the client's copy may outlive its Write: the GC's
	}
	f.pooled = pooled
	resp.Body.Close()
	f.mb = memBody{b: body, counted: counted}
	resp.Body = &f.mb

	res, v := p.inspect(job, body)
	job.inspected, job.res, job.verdict = true, res, v
	f.complete, f.body = true, nil
	if v.Refuse != "" {
		p.refused(job, v.Refuse)
		f.release(nil)
		if ex.result == ResultMiss {
			ex.result = ResultPass // uncacheable, as in decide
		}
		ex.cs.stored, ex.cs.hasTTL, ex.cs.detail = false, false, v.Refuse
		return nil
	}
	job.e = p.newEntry(job, res, v)
	f.release(job.e)
	ex.cs.ttl = ttlOf(job.e, p.now())
	return nil
}

// storeReserved is p.store(f) run as runReserved runs its work (finish
// made the reservation), without the two closures runReserved(func() {
// p.store(f) }) would allocate per stored response.
func (p *Proxy) storeReserved(f *fill) {
	defer p.unreserve()
	defer p.recoverBackground()
	p.store(f)
}

// store inspects (unless inspectNow did) and stores f's complete
// response, in the background after the handler is done writing. It ends
// f's flight once the record committed, so a request arriving meanwhile
// still finds the result there.
func (p *Proxy) store(f *fill) {
	job, body := f.job, f.body
	defer f.end() // after the Put returned: the body may be recycled
	res, v, e := job.res, job.verdict, job.e
	if !job.inspected {
		res, v = p.inspect(job, body)
		if v.Refuse != "" {
			p.refused(job, v.Refuse)
		}
	}
	if v.Refuse == reasonEmptyBody {
		return // a failed render does not replace what is stored
	}
	if v.Refuse != "" {
		// An older copy must not outlive the origin's new answer.
		if err := p.st.Delete(context.Background(), job.key, job.variant); err != nil && !errors.Is(err, store.ErrNotFound) {
			p.storeErr("httpcache: store delete", job.key, err)
		}
		return
	}
	if e == nil {
		e = p.newEntry(job, res, v)
	}
	f.release(e)
	// A purge that covers the record and was registered after the fetch
	// started wins: the record is not written (the check and the write
	// are ordered against purges by the purge log).
	if !p.purges.admit(f.since, job.key, e.rec.Tags, func() {
		if prev, ok := p.vary.get(job.key); ok && !slices.Equal(prev, job.vary) {
			// The Vary of the resource changed: older variants are unusable.
			_, _ = p.st.DeleteKey(context.Background(), job.key)
		}
		// Deferred: nobody waits on this write (the response is sent),
		// so trickling fills share commits (store.Options.CommitDelay).
		if err := p.st.PutDeferred(context.Background(), e.rec); err != nil {
			p.storeErr("httpcache: store put", job.key, err)
			return
		}
		p.vary.set(job.key, job.vary)
		p.pass.forget(job.key)
		p.fig.stores.Add(1)
		p.event(Event{Type: EventStore, Key: job.key, Variant: job.variant})
	}) {
		p.purgeDropped(job.key)
	}
}

// purgeDropped records a fill not stored because a purge covered it.
func (p *Proxy) purgeDropped(key string) {
	p.fig.purgeDropped.Add(1)
	p.log.Debug("httpcache: response not stored: purged while its origin fetch was under way", "key", key)
}

// storeErr logs a failed store write: at debug level when it is a
// *store.WriteError (a full or read-only disk, a damaged file), which the
// store reports once per change of its health instead of once per write;
// as a warning otherwise.
func (p *Proxy) storeErr(msg, key string, err error) {
	level := slog.LevelWarn
	if _, ok := errors.AsType[*store.WriteError](err); ok {
		level = slog.LevelDebug
	}
	p.log.Log(context.Background(), level, msg, "key", key, "err", err)
}

// inspect runs the Inspector (if any) on the stored copy of a complete
// response and returns that copy with the verdict. A verdict whose
// NotAfter has already passed becomes a refusal ("not-after-passed"); an
// Inspector that panics refuses ("inspector-panic") without taking the
// server down.
func (p *Proxy) inspect(job *fillJob, body []byte) (res *Response, v Verdict) {
	job.resv = Response{Status: job.status, Header: job.header, Body: body}
	res = &job.resv
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
	if v.Refuse == "" && v.Splice != "" {
		if !p.splicePath(job.path) {
			v.Refuse = "splice-unconfigured"
		} else if page, err := p.cfg.Splicer.Load(res.Body, v.Splice); err != nil {
			p.log.Warn("httpcache: the Inspector's splice data does not fit the page", "key", job.key, "err", err)
			v.Refuse = "splice-invalid"
		} else {
			job.splice = page
		}
	}
	if v.Refuse == "" && p.cfg.Inspector != nil {
		v.Refuse = p.afterInspection(job.req, res.Status, res.Header, int64(len(res.Body)))
	} else if v.Refuse == "" && len(res.Body) == 0 {
		v.Refuse = p.afterInspection(job.req, res.Status, res.Header, 0) // a body of unknown length that was empty
	}
	if v.Refuse == "" && job.splicing && len(res.Header["Set-Cookie"]) > 0 {
		// Let through for the splice, but the Inspector kept it.
		if p.stripSetCookie(job.path) {
			delete(res.Header, "Set-Cookie")
		} else {
			v.Refuse = reasonSetCookie
		}
	}
	return res, v
}

// refused records an Inspector refusal: hit-for-pass, log, metrics.
func (p *Proxy) refused(job *fillJob, reason string) {
	p.pass.remember(job.key, reason, p.now().Add(p.cfg.HitForPassTTL))
	p.log.Info("httpcache: inspector refused response", "key", job.key, "reason", reason)
	p.met.refuse(reason)
}

// newEntry builds the record for a response about to be stored. It is
// keyed by the Vary of the stored copy: an Inspector that changed it (the
// liveview lint's vary-cookie strip) changes the variants, so what is
// keyed on and the Vary served agree.
func (p *Proxy) newEntry(job *fillJob, res *Response, v Verdict) *entry {
	if !job.sameVary(res.Header) {
		if names, _ := parseVary(res.Header); !slices.Equal(names, job.vary) {
			job.vary, job.variant = names, variantKey(names, job.req.Header)
		}
	}
	ann := make(map[string]string, len(v.Annotations)+3)
	maps.Copy(ann, v.Annotations)
	ann[AnnotationPolicy] = job.pol.encode()
	ann[AnnotationVary] = strings.Join(job.vary, ",")
	delete(ann, AnnotationDisabled)
	delete(ann, AnnotationNotAfter)
	delete(ann, AnnotationSplice)
	if job.splice != nil {
		ann[AnnotationSplice] = v.Splice
	}
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
	// The entry and its record in one allocation: they live as long as
	// each other.
	er := &entryRecord{}
	rec := &er.rec
	*rec = store.Record{
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
	e := &er.e
	e.rec, e.pol, e.vary = rec, job.pol, job.vary
	if job.splice != nil {
		e.setSplice(job.splice)
	}
	if !v.NotAfter.IsZero() {
		e.notAfter = v.NotAfter.UTC()
	}
	rec.Expires = p.expiresHint(e, res.Header)
	return e
}

// entryRecord is an entry newEntry builds and the record it points to.
type entryRecord struct {
	e   entry
	rec store.Record
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

// passMemory is the hit-for-pass memory: keys whose last response was not
// storable skip request collapsing until the deadline.
type passMemory struct {
	mu sync.Mutex
	m  map[string]passEntry
}

type passEntry struct {
	until  time.Time
	reason string
}

func (p *passMemory) remember(key, reason string, until time.Time) {
	p.mu.Lock()
	if p.m == nil || len(p.m) >= maxMemoryEntries {
		p.m = make(map[string]passEntry)
	}
	p.m[key] = passEntry{until, reason}
	p.mu.Unlock()
}

func (p *passMemory) check(key string, now time.Time) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.m[key]
	if !ok {
		return "", false
	}
	if !now.Before(e.until) {
		delete(p.m, key)
		return "", false
	}
	return e.reason, true
}

func (p *passMemory) forget(key string) {
	p.mu.Lock()
	delete(p.m, key)
	p.mu.Unlock()
}

// Reasons judged on the response as it would be stored.
const (
	reasonVaryCookie        = "vary-cookie"        // Vary: Cookie: one entry per visitor's cookie
	reasonVaryAuthorization = "vary-authorization" // Vary: Authorization: one entry per credential
	reasonEmptyBody         = "empty-body"         // an empty 200 on an HTML (or untyped) route
	reasonMaxVariants       = "max-variants"       // Config.MaxVariants variants are stored already
)

// afterInspection judges what a response would store (with an Inspector,
// the copy it left): Vary naming Cookie or Authorization is per-user (a
// shared cache would keep one entry per visitor, and the requests that
// could match are bypassed anyway), and an empty 200 whose Content-Type
// is HTML (or absent, for a request that accepts HTML: a page
// navigation) is a failed render (unless Config.StoreEmptyHTML). bodyLen
// < 0 means not known yet.
func (p *Proxy) afterInspection(req *http.Request, status int, h http.Header, bodyLen int64) string {
	// parseVary's names, in its order (sorted: Authorization first),
	// without building the slice.
	cookie, auth := false, false
vary:
	for _, v := range h.Values("Vary") {
		for f := range strings.SplitSeq(v, ",") {
			f = strings.TrimSpace(f)
			if f == "*" {
				cookie, auth = false, false // parseVary: no names
				break vary
			}
			switch http.CanonicalHeaderKey(f) {
			case "Cookie":
				cookie = true
			case "Authorization":
				auth = true
			}
		}
	}
	switch {
	case auth:
		return reasonVaryAuthorization
	case cookie:
		return reasonVaryCookie
	}
	if bodyLen == 0 && status == http.StatusOK && !p.cfg.StoreEmptyHTML {
		ct := strings.ToLower(strings.TrimSpace(h.Get("Content-Type")))
		html := strings.HasPrefix(ct, "text/html") || strings.HasPrefix(ct, "application/xhtml+xml")
		if html || (ct == "" && strings.Contains(strings.ToLower(strings.Join(req.Header["Accept"], ",")), "text/html")) {
			return reasonEmptyBody
		}
	}
	return ""
}

// variantRoom reports why one more variant of key cannot be stored
// (Config.MaxVariants are stored and this request's is not among them),
// or "".
func (p *Proxy) variantRoom(req *http.Request, key string, names []string) string {
	if len(names) == 0 || p.cfg.MaxVariants < 0 {
		return ""
	}
	metas, err := p.st.Variants(req.Context(), key)
	if err != nil || len(metas) < p.cfg.MaxVariants {
		return ""
	}
	variant := variantKey(names, req.Header)
	for i := range metas {
		if metas[i].Variant == variant {
			return "" // a replacement
		}
	}
	return reasonMaxVariants
}
