package httpcache

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/firstrender/firstrender/store"
)

// Selection is what a purge covers: exactly one of Keys (every variant
// of each normalized primary key), Prefix (every key starting with it),
// Tag (every record carrying it, from the response's Surrogate-Key) or
// All. Soft marks the selected records stale instead of removing them
// (see [Proxy.Purge]). It is the proxy's own type: httpcache/admin's
// Selector and httpcache/cluster's Selector are converted to it by the
// composition root (httpcache/server), so the proxy imports neither.
type Selection struct {
	Keys   []string
	Prefix string
	Tag    string
	All    bool
	Soft   bool
}

// validate reports why s cannot be applied.
func (s Selection) validate() error {
	n := 0
	for _, on := range []bool{len(s.Keys) > 0, s.Prefix != "", s.Tag != "", s.All} {
		if on {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("httpcache: purge: exactly one of Keys, Prefix, Tag, All must be set (got %d)", n)
	}
	return nil
}

// annSoftPurged is httpcache/admin.AnnotationSoftPurged (admin does not
// import the proxy, nor the proxy admin; httpcache/server's tests check
// that the two agree). Its value is the RFC 3339 instant of the soft
// purge. The proxy honours it in its freshness check: a marked record is
// stale (never served as a hit), so the next request revalidates it with
// the origin, while the entry's own stale-while-revalidate and
// stale-if-error windows, counted from the purge, may still serve the
// stored copy. A refill or a successful revalidation (304) drops the mark.
const annSoftPurged = "admin.soft-purged"

// SoftMark returns the annotations a soft purge merges into every record
// it covers (the stale mark, stamped with Config.Now). The cluster mode
// applies it through the store for soft purges from other nodes.
func (p *Proxy) SoftMark() map[string]string {
	return map[string]string{annSoftPurged: p.now().UTC().Format(time.RFC3339Nano)}
}

// Purge removes (or, with sel.Soft, marks stale) the stored records sel
// covers and forgets what the proxy remembers about them (see
// [Proxy.Invalidate]). It returns the number of records removed or
// marked, only after the change committed to the store, so an
// acknowledged purge survives a crash; on an error midway, n is what was
// done before it. A response whose origin fetch started before Purge was
// called and that sel covers is never stored afterwards. Safe for
// concurrent use.
func (p *Proxy) Purge(ctx context.Context, sel Selection) (n int, err error) {
	if err := sel.validate(); err != nil {
		return 0, err
	}
	err = p.Invalidate(ctx, []Selection{sel}, func(ctx context.Context) error {
		n, err = p.purgeStore(ctx, sel)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("httpcache: purge: %w", err)
	}
	return n, nil
}

// purgeStore makes sel's change in the store.
func (p *Proxy) purgeStore(ctx context.Context, sel Selection) (int, error) {
	st := p.st
	if sel.Soft {
		return p.softPurge(ctx, sel)
	}
	switch {
	case len(sel.Keys) > 0:
		n := 0
		for _, k := range sel.Keys {
			c, err := st.DeleteKey(ctx, k)
			n += c
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return n, err
			}
		}
		return n, nil
	case sel.Prefix != "":
		return st.DeletePrefix(ctx, sel.Prefix)
	case sel.Tag != "":
		return st.DeleteTag(ctx, sel.Tag)
	default:
		return st.DeleteAll(ctx)
	}
}

// softPurge annotates every record sel covers with the stale mark.
func (p *Proxy) softPurge(ctx context.Context, sel Selection) (int, error) {
	return p.st.AnnotateEach(ctx, p.SoftMark(), func(visit func(*store.Meta) bool) error {
		if len(sel.Keys) == 0 {
			return store.Walk(ctx, p.st, sel.Prefix, sel.Tag, visit)
		}
		for _, k := range sel.Keys {
			ms, err := p.st.Variants(ctx, k)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			for i := range ms {
				if !visit(&ms[i]) {
					return nil
				}
			}
		}
		return nil
	})
}

// Invalidate applies an invalidation made by commit (which changes the
// store: a purge, or the cluster mode's applied invalidations with their
// sequence in the same transaction) through the proxy, for every
// selection in sels:
//
//   - before commit runs, the selections are registered in the purge
//     log, so any fill whose origin fetch started before this call and
//     that a selection covers is not stored afterwards (see
//     purgeLog.admit), and collapsed fetches under way are detached, so
//     later requests do not wait for a pre-purge response;
//   - commit is called exactly once, and its error returned;
//   - after it (also when it failed: the store may have changed
//     midway), [Proxy.forget] drops what the proxy remembers about them.
//
// Safe for concurrent use.
func (p *Proxy) Invalidate(ctx context.Context, sels []Selection, commit func(context.Context) error) error {
	for _, s := range sels {
		if err := s.validate(); err != nil {
			return err
		}
	}
	// register waits for the fills that passed their purge check to have
	// written; their deferred commits need not wait for company.
	p.st.Nudge()
	p.purges.register(sels)
	for _, s := range sels {
		p.flights.detach(s)
	}
	err := commit(ctx)
	for _, s := range sels {
		p.forget(s)
	}
	return err
}

// forget drops everything the proxy keeps in memory about the records sel
// covers: the Vary names per key, hit-for-pass marks, in-memory (hot)
// copies. It is the ONE place a purge makes the proxy forget: anything
// new the proxy remembers per key (a faster in-memory tier, per-key
// counters) must be forgotten here too, or purges will not reach it.
// Selections the proxy cannot map to keys in memory (Tag, and All) clear
// the whole memory, which only costs store lookups.
func (p *Proxy) forget(sel Selection) {
	var match func(key string) bool
	switch {
	case len(sel.Keys) > 0:
		if len(sel.Keys) <= 16 {
			for _, k := range sel.Keys {
				p.vary.forget(k)
				p.pass.forget(k)
				p.hot.forgetKey(k)
			}
			return
		}
		set := make(map[string]struct{}, len(sel.Keys))
		for _, k := range sel.Keys {
			set[k] = struct{}{}
		}
		match = func(k string) bool { _, ok := set[k]; return ok }
	case sel.Prefix != "":
		match = func(k string) bool { return strings.HasPrefix(k, sel.Prefix) }
	default: // Tag, All: keys unknown in memory
		match = nil
	}
	p.vary.forgetMatching(match)
	p.pass.forgetMatching(match)
	p.hot.forgetMatching(match)
}

// forgetMatching deletes the keys match accepts (nil: all).
func (v *varyMemory) forgetMatching(match func(string) bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.m = deleteMatching(v.m, match)
}

// forgetMatching deletes the keys match accepts (nil: all).
func (p *passMemory) forgetMatching(match func(string) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.m = deleteMatching(p.m, match)
}

// deleteMatching deletes from m the keys match accepts and returns m; a
// nil match drops them all (nil: the map is made again on its next set).
func deleteMatching[V any](m map[string]V, match func(string) bool) map[string]V {
	if match == nil {
		return nil
	}
	maps.DeleteFunc(m, func(k string, _ V) bool { return match(k) })
	return m
}

// detach removes from the group the flights (collapsed origin fetches)
// sel may cover, so requests arriving after a purge start a fetch of
// their own instead of waiting for a response from before it. The
// detached flight still answers the requests already waiting on it (they
// came before the purge) and ends as before; its store write is refused
// by the purge log. Tag selections detach every flight (a response's tags
// are unknown until it arrives).
func (g *flightGroup) detach(sel Selection) {
	var match func(primary string) bool
	switch {
	case len(sel.Keys) > 0:
		set := make(map[string]struct{}, len(sel.Keys))
		for _, k := range sel.Keys {
			set[k] = struct{}{}
		}
		match = func(k string) bool { _, ok := set[k]; return ok }
	case sel.Prefix != "":
		match = func(k string) bool { return strings.HasPrefix(k, sel.Prefix) }
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for fk := range g.m {
		primary, _, _ := strings.Cut(fk, "\x00")
		if match == nil || match(primary) {
			delete(g.m, fk) // end() checks g.m[f.key] == f, so it leaves a successor alone
		}
	}
}

// purgeRing is how many recent purges the purge log remembers. A fill
// that started before the oldest of them is refused as if covered.
const purgeRing = 256

// purgeLog orders purges against fills. Every purge registers its
// selections (each gets the next sequence number) before it changes the
// store; every fill notes the sequence when its origin fetch starts
// (since) and, when it is about to write, admit runs the write only if no
// purge registered after since covers the record. Registration takes the
// write lock, and admit holds the read lock across the check and the
// store write, so a write either committed before the purge registered
// (and the purge's change removes it) or sees the purge and is dropped.
type purgeLog struct {
	mu   sync.RWMutex
	seq  atomic.Uint64 // the last registered purge
	ring [purgeRing]purgeMark
}

type purgeMark struct {
	keys   map[string]struct{}
	prefix string
	tag    string
	all    bool
}

// since is the sequence a fill notes when its origin fetch starts.
func (l *purgeLog) since() uint64 { return l.seq.Load() }

func (l *purgeLog) register(sels []Selection) {
	marks := make([]purgeMark, len(sels))
	for i, s := range sels {
		m := purgeMark{prefix: s.Prefix, tag: s.Tag, all: s.All}
		if len(s.Keys) > 0 {
			m.keys = make(map[string]struct{}, len(s.Keys))
			for _, k := range s.Keys {
				m.keys[k] = struct{}{}
			}
		}
		marks[i] = m
	}
	l.mu.Lock()
	for _, m := range marks {
		seq := l.seq.Load() + 1
		l.ring[seq%purgeRing] = m
		l.seq.Store(seq)
	}
	l.mu.Unlock()
}

func (m *purgeMark) covers(key string, tags []string) bool {
	switch {
	case m.all:
		return true
	case m.keys != nil:
		_, ok := m.keys[key]
		return ok
	case m.prefix != "":
		return strings.HasPrefix(key, m.prefix)
	case m.tag != "":
		return slices.Contains(tags, m.tag)
	}
	return false
}

// admit runs write (a store write of a record with key and tags, by a
// fill whose fetch started at since) unless a purge registered after
// since covers it, and reports whether it ran.
func (l *purgeLog) admit(since uint64, key string, tags []string, write func()) bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	last := l.seq.Load()
	if last-since >= purgeRing {
		return false // older than the log's memory: assume covered
	}
	for s := since + 1; s <= last; s++ {
		if l.ring[s%purgeRing].covers(key, tags) {
			return false
		}
	}
	write()
	return true
}

// Enable undoes a disable ([Proxy.Disable], the join guard's or an
// operator's) of one stored variant: the entry is served again. It
// returns store.ErrNotFound (wrapped) when there is no such entry, and
// returns after the change committed.
func (p *Proxy) Enable(ctx context.Context, key, variant string) error {
	if err := p.st.Annotate(ctx, key, variant, map[string]string{AnnotationDisabled: ""}); err != nil {
		return fmt.Errorf("httpcache: enable %q: %w", key, err)
	}
	p.hot.forgetKey(key)
	p.event(Event{Type: EventEnable, Key: key, Variant: variant})
	return nil
}
