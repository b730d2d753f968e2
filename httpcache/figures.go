package httpcache

import (
	"sync/atomic"
	"time"
)

// Figures are the proxy's counters since it was created: what the admin
// API's stats and the cluster heartbeat report. Reading them is O(1).
type Figures struct {
	// Requests by result (hit, stale, collapsed, miss, revalidated,
	// pass, error); Requests is their sum.
	Requests, Hits, Stale, Collapsed, Misses, Revalidated, Pass, Errors int64
	// OriginRequests counts requests sent to the origin (answered or
	// not); OriginLatency is the mean time to the response headers of
	// those answered (zero when none were).
	OriginRequests int64
	OriginLatency  time.Duration
	// Stores counts records written by fills (new bodies and 304
	// refreshes); PurgeDropped counts fills not stored because a purge
	// covered them while their origin fetch was under way.
	Stores, PurgeDropped int64
	// Disabled counts entries disabled ([Proxy.Disable]) since start.
	Disabled int64
}

// figures holds the counters behind [Proxy.Figures].
type figures struct {
	byResult       [8]atomic.Int64 // indexed like Results
	origin         atomic.Int64
	originAnswered atomic.Int64
	originNanos    atomic.Int64
	stores         atomic.Int64
	purgeDropped   atomic.Int64
	disabled       atomic.Int64
}

func resultIndex(r Result) int {
	for i, x := range Results {
		if x == r {
			return i
		}
	}
	return -1
}

// observe counts a request whose result has index i in Results
// (resultIndex; -1: none).
func (f *figures) observe(i int) {
	if i >= 0 && i < len(f.byResult) {
		f.byResult[i].Add(1)
	}
}

func (f *figures) originDone(code int, d time.Duration) {
	f.origin.Add(1)
	if code > 0 {
		f.originAnswered.Add(1)
		f.originNanos.Add(int64(d))
	}
}

// Figures returns the proxy's counters. Safe for concurrent use.
func (p *Proxy) Figures() Figures {
	f := &p.fig
	var out Figures
	by := map[Result]*int64{
		ResultHit: &out.Hits, ResultStale: &out.Stale, ResultCollapsed: &out.Collapsed, ResultMiss: &out.Misses,
		ResultRevalidated: &out.Revalidated, ResultPass: &out.Pass, ResultError: &out.Errors,
	}
	for i, r := range Results {
		if i >= len(f.byResult) {
			break
		}
		n := f.byResult[i].Load()
		out.Requests += n
		if p, ok := by[r]; ok {
			*p = n
		}
	}
	out.OriginRequests = f.origin.Load()
	if n := f.originAnswered.Load(); n > 0 {
		out.OriginLatency = time.Duration(f.originNanos.Load() / n)
	}
	out.Stores = f.stores.Load()
	out.PurgeDropped = f.purgeDropped.Load()
	out.Disabled = f.disabled.Load()
	return out
}

// Event is one thing the proxy did that an operator may watch: a fill
// stored, an entry disabled or enabled. [Config].OnEvent receives them.
type Event struct {
	Type    string // EventStore, EventDisable, EventEnable
	Key     string
	Variant string
	Reason  string // the disable reason
}

// The Event types.
const (
	EventStore   = "store"
	EventDisable = "disable"
	EventEnable  = "enable"
)

func (p *Proxy) event(ev Event) {
	if p.cfg.OnEvent != nil {
		p.cfg.OnEvent(ev)
	}
}
