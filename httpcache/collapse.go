package httpcache

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// flightGroup collapses concurrent misses for one key (like
// golang.org/x/sync/singleflight, plus a bounded number of waiters and
// a result published before the flight ends).
type flightGroup struct {
	mu sync.Mutex
	m  map[string]*flight
}

// flight is one in-flight origin fetch. res is published (ready closed)
// once the response is known to be storable, or nil when it is not;
// the flight is removed from the group only after the store write, so a
// request arriving in between still finds the result here.
type flight struct {
	key      string
	ready    chan struct{}
	res      *entry
	failed   *flightFailure // set instead of res when the origin gave no answer
	waiters  atomic.Int64
	released atomic.Bool
	// joined counts the requests join handed this flight to besides its
	// leader (under flightGroup.mu): when none did, nobody but the
	// leader's fill ever sees res (the fill may then recycle its body).
	joined int
}

// flightFailure is the origin failure a flight's waiters share: none of
// them goes to the origin again for another full timeout.
type flightFailure struct {
	fault originFault
}

// join returns the flight for key, creating it (leader=true) if none.
func (g *flightGroup) join(key string) (f *flight, leader bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if f, ok := g.m[key]; ok {
		f.joined++
		return f, false
	}
	if g.m == nil {
		g.m = make(map[string]*flight)
	}
	f = &flight{key: key, ready: make(chan struct{})}
	g.m[key] = f
	return f, true
}

// release publishes res (nil: waiters must fetch themselves). Only the
// first call counts.
func (f *flight) release(res *entry) {
	if f.released.CompareAndSwap(false, true) {
		f.res = res
		close(f.ready)
	}
}

// fail publishes an origin failure (no response) to the waiters. Only
// the first release or fail counts.
func (f *flight) fail(fault originFault) {
	if f.released.CompareAndSwap(false, true) {
		f.failed = &flightFailure{fault: fault}
		close(f.ready)
	}
}

// end releases f (if not yet) and removes it from the group. It reports
// whether any request besides the leader joined f: after end none can.
func (g *flightGroup) end(f *flight) (joined bool) {
	f.release(nil)
	g.mu.Lock()
	if g.m[f.key] == f {
		delete(g.m, f.key)
	}
	joined = f.joined > 0
	g.mu.Unlock()
	return joined
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
	// CollapseWait defaults to OriginTimeout: the leader's origin request
	// may take that long for its headers (and then fails for all waiters
	// at once), and a shorter wait sends every waiter to the origin
	// during the leader's timeout.
	t := time.NewTimer(p.cfg.CollapseWait)
	select {
	case <-f.ready:
		t.Stop()
	case <-t.C:
		p.forward(w, r, ex)
		return true
	case <-r.Context().Done():
		t.Stop()
		ex.result = ResultError // the client left; nobody to answer
		return true
	}
	if f.failed != nil {
		p.answerFailed(w, r, ex, f.failed)
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
	p.serveEntry(w, r, ex, res, ResultCollapsed, cacheStatus{hit: true, collapsed: true}, now)
	return true
}

// answerFailed answers a waiter whose leader got no answer from the
// origin, as the leader was answered: stale-if-error from the waiter's
// own stored entry when that allows it, else the leader's error
// (replyOriginFault). The origin is not asked again.
func (p *Proxy) answerFailed(w http.ResponseWriter, r *http.Request, ex *exchange, ff *flightFailure) {
	now := p.now()
	cs := ex.cs
	cs.collapsed = true
	revalidating := ex.entry != nil && ex.mode == modeRevalidate
	switch {
	case revalidating && p.staleIfErrorOK(ex.entry, &ex.rq, now):
		cs.detail = "stale-if-error"
		p.serveEntry(w, r, ex, ex.entry, ResultStale, cs, now)
	default:
		p.replyOriginFault(w, ex, cs, ff.fault, revalidating && ex.entry.pol.mustReval)
	}
}

// usable reports whether a just-fetched entry may be served without
// validation to a collapsed waiter.
func (p *Proxy) usable(e *entry, now time.Time) bool {
	// RFC 9111 §4.2: only a fresh response is reused without validation.
	return !e.pol.noCache && ttlOf(e, now) > 0
}
