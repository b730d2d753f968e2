package store

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"slices"
	"sync"
	"time"
)

// accessTracker keeps the access times recorded by Get in memory, so a
// read never writes. flushAccess writes them in one transaction every
// Options.AccessFlushInterval, before eviction, and on Close. When more
// than maxPendingAccess keys are pending, a flush is started early and
// further accesses of new keys are dropped until it runs (LRU is an
// approximation; an access lost this way only makes a record look older).
//
// In front of the pending map sits known, a lossy table of the access
// times known to be stored: a touch whose time is within gran
// (Options.AccessGranularity) of its record's stored access time would be
// skipped by the flush anyway, so touch returns without a lock, an
// allocation or a pending entry. A key the table does not hold (never
// noted, pushed out by other keys, cleared) is recorded as before, so the
// times written, and the LRU order, are those of recording every access.
type accessTracker struct {
	mu   sync.Mutex
	m    map[string]int64
	kick chan struct{}
	// recorded counts touches that took mu (tests: the others took none).
	recorded int64

	known knownAtimes
	gran  int64 // Options.AccessGranularity in ns
}

const maxPendingAccess = 1 << 17

// defaultKnownAtimes is the number of slots of the table of stored
// access times (8 bytes each: 2 MiB). With 4 slots per group, it holds
// nearly every key of a working set of up to about 200,000 records; past
// that, keys share slots and the ones pushed out are recorded as if the
// table were not there.
const defaultKnownAtimes = 1 << 18

func (a *accessTracker) init(slots int, gran time.Duration, now time.Time) {
	a.m = make(map[string]int64)
	a.kick = make(chan struct{}, 1)
	a.gran = int64(gran)
	a.known.init(slots, now)
}

// touch records an access at ns of record ck (a bbolt key; not retained),
// unless ns is within the granularity of ck's stored access time.
func (a *accessTracker) touch(ck []byte, ns int64) {
	if a.known.freshKey(ck, ns, a.gran) {
		return
	}
	a.record(string(ck), ns)
}

func (a *accessTracker) record(ck string, ns int64) {
	a.mu.Lock()
	a.recorded++
	if len(a.m) >= maxPendingAccess {
		if _, ok := a.m[ck]; !ok {
			a.mu.Unlock()
			select {
			case a.kick <- struct{}{}:
			default:
			}
			return
		}
	}
	a.m[ck] = ns
	a.mu.Unlock()
}

func (a *accessTracker) get(ck string) (int64, bool) {
	if a.kick == nil {
		return 0, false
	}
	a.mu.Lock()
	ns, ok := a.m[ck]
	a.mu.Unlock()
	return ns, ok
}

func (a *accessTracker) pending() int {
	if a.kick == nil {
		return 0
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.m)
}

func (a *accessTracker) take() map[string]int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	m := a.m
	a.m = make(map[string]int64)
	return m
}

// flushAccess writes pending access times to the atime and lru buckets.
func (s *Store) flushAccess(ctx context.Context) error {
	m := s.access.take()
	if len(m) == 0 {
		return nil
	}
	return s.do(ctx, 0, func(w *wtx) error {
		type access struct {
			ns  int64
			ck  []byte
			old int64 // the access time stored (had: there is one)
			had bool
		}
		todo := make([]access, 0, len(m))
		for ck, ns := range m {
			k := []byte(ck)
			if w.rec.Get(k) == nil {
				continue
			}
			a := access{ns: clampNs(ns), ck: k}
			if v := w.atime.Get(k); len(v) == 8 {
				a.old, a.had = int64(binary.BigEndian.Uint64(v)), true
			}
			// Written only when it moves the record by at least
			// AccessGranularity (an older or equal time never).
			if a.had && a.old > a.ns-int64(s.opts.AccessGranularity) {
				// Known from the commit on: the record's next reads
				// within the granularity record nothing.
				w.noteStoredAtime(k, a.old)
				continue
			}
			todo = append(todo, a)
		}
		// In the lru index's order (time, then record key): every new
		// entry lands at the end of the index's last leaf, which grows
		// within the transaction until the commit splits it. In the map's
		// random order each insert shifted that leaf's entries: quadratic
		// in the accesses of one flush, and a third of the server's CPU
		// in a 100,000-page run (docs/performance.md, round 4).
		slices.SortFunc(todo, func(a, b access) int {
			return cmp.Or(cmp.Compare(a.ns, b.ns), bytes.Compare(a.ck, b.ck))
		})
		for _, a := range todo {
			if err := w.setAtime(a.ck, a.old, a.had, a.ns); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *Store) flushLoop(ctx context.Context) {
	defer s.bgWG.Done()
	t := time.NewTicker(s.opts.AccessFlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.access.kick:
		}
		if err := s.flushAccess(ctx); err != nil && ctx.Err() == nil && !quiet(err) {
			s.log.Error("store: writing access times", "path", s.path, "err", err)
		}
	}
}

func (s *Store) kickEvict() {
	select {
	case s.evictKick <- struct{}{}:
	default:
	}
}

func (s *Store) evictLoop(ctx context.Context) {
	defer s.bgWG.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.evictKick:
		}
		n, err := s.evict(ctx)
		if err != nil && ctx.Err() == nil && !quiet(err) {
			s.log.Error("store: eviction", "path", s.path, "err", err)
		}
		if n > 0 {
			s.log.Debug("store: evicted", "path", s.path, "records", n, "bytes", s.bytes.Load())
		}
		if s.opts.evictDone != nil {
			select {
			case s.opts.evictDone <- n:
			case <-ctx.Done():
				return
			}
		}
	}
}

// evict brings Stats.Bytes under 90% of MaxSize. Order: first records
// whose Expires has passed (earliest expiry first), then the least
// recently used (by access time: the Put, or the last Get as flushed from
// memory; pending accesses are flushed first), oldest first, ties in key
// order. It works in transactions of at most 1,000 records, so writers
// interleave; readers are never blocked (bbolt readers see a snapshot).
func (s *Store) evict(ctx context.Context) (int, error) {
	if s.opts.MaxSize <= 0 || s.bytes.Load() <= s.opts.MaxSize {
		return 0, nil
	}
	target := s.opts.MaxSize / 10 * 9
	if err := s.flushAccess(ctx); err != nil {
		return 0, err
	}
	const step = 1000
	return s.inSteps(ctx, func(w *wtx) (n int, more bool, err error) {
		done := func() bool { return w.cnt.Bytes <= target }
		if done() {
			return 0, false, nil
		}
		n, more, err = w.removeExpired(w.nowNs, step, done)
		if err != nil || more || done() {
			return n, more, err
		}
		keys, _ := prefixKeys(w.lru.Cursor(), nil, step)
		progress := n > 0
		for _, k := range keys {
			if done() {
				return n, false, nil
			}
			ck := k[8:]
			v := w.rec.Get(ck)
			if v == nil { // stale index entry
				if err := w.lru.Delete(k); err != nil {
					return n, false, must(err)
				}
				progress = true
				continue
			}
			if err := w.del(ck, v); err != nil {
				return n, false, err
			}
			w.cnt.Evictions++
			n++
			progress = true
		}
		return n, !done() && progress, nil
	})
}

func (s *Store) expireLoop(ctx context.Context) {
	defer s.bgWG.Done()
	t := time.NewTicker(s.opts.ExpireInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := s.RemoveExpired(ctx, s.opts.Now())
		if err != nil && ctx.Err() == nil && !quiet(err) {
			s.log.Error("store: removing expired records", "path", s.path, "err", err)
		}
		if s.opts.expireDone != nil {
			select {
			case s.opts.expireDone <- n:
			case <-ctx.Done():
				return
			}
		}
	}
}
