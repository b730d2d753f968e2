package httpcache

import (
	"sync"
	"sync/atomic"
	"time"
)

// maxMemoryEntries bounds the proxy's small in-memory maps (Vary names,
// hit-for-pass); when one fills up it is cleared, which only costs a
// store lookup or one collapsed fetch.
const maxMemoryEntries = 100_000

// varyMemory remembers, per primary key, the Vary header names of the
// stored response, so a hit computes its variant without listing variants.
type varyMemory struct {
	mu sync.RWMutex
	m  map[string][]string
}

func (v *varyMemory) get(key string) ([]string, bool) {
	v.mu.RLock()
	names, ok := v.m[key]
	v.mu.RUnlock()
	return names, ok
}

func (v *varyMemory) set(key string, names []string) {
	if names == nil {
		names = []string{}
	}
	v.mu.Lock()
	if v.m == nil || len(v.m) >= maxMemoryEntries {
		v.m = make(map[string][]string)
	}
	v.m[key] = names
	v.mu.Unlock()
}

func (v *varyMemory) forget(key string) {
	v.mu.Lock()
	delete(v.m, key)
	v.mu.Unlock()
}

func (v *varyMemory) clear() {
	v.mu.Lock()
	v.m = nil
	v.mu.Unlock()
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
	waiters  atomic.Int64
	released atomic.Bool
}

// join returns the flight for key, creating it (leader=true) if none.
func (g *flightGroup) join(key string) (f *flight, leader bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if f, ok := g.m[key]; ok {
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

// end releases f (if not yet) and removes it from the group.
func (g *flightGroup) end(f *flight) {
	f.release(nil)
	g.mu.Lock()
	if g.m[f.key] == f {
		delete(g.m, f.key)
	}
	g.mu.Unlock()
}
