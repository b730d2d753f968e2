package store

import (
	"cmp"
	"context"
	"encoding/binary"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// accessTracker keeps the latest access times recorded by Get, Lookup and
// Touch in memory, so a read never writes, and writes them to the file
// lazily, as a cache that keeps its LRU order in memory would: on Close,
// every Options.AccessFlushInterval (default 5 minutes: what a crash may
// lose), when maxPendingAccess keys are pending, and, for the records it
// is about to evict, in the eviction's own transaction (evict). Nothing
// reads the file's access times without also consulting the pending ones
// (evict, Meta.LastAccess), so while the process runs the LRU order is
// that of writing every access at once.
//
// # What an access changes
//
// A record's access time A is the Put's time, moved to an access at t
// when t is at least gran (Options.AccessGranularity) after A: the latest
// access is then less than gran after A, and a record read over and over
// moves once per gran. A is the later of the stored time and the pending
// one (m). The decision needs A exactly: a read that reaches record
// brings the stored time from its own read transaction (accessCheck), so
// a store with or without the known table decides every access the same
// way (TestAccess_SameOrderAsRecordingEverything). A Touch has no read
// transaction: what it cannot decide is held in its pending entry
// (pendingTime.touches) and applied, in order, by whoever next knows the
// stored time (a read's lock path, a flush, eviction, a listing).
//
// # The known table
//
// In front of m sits known, a lossy table of lower bounds of A (the
// stored or the pending time, to the second): a touch within gran of the
// time its slot holds changes nothing, so it returns without a lock, an
// allocation or a read of the stored time. See knownAtimes for who may
// write a slot and what it claims. A key the table does not hold (never
// seen since Open, pushed out by other keys, cleared) takes the lock and
// is decided as above; the lock path then teaches the table A.
//
// When maxPendingAccess keys are pending, a flush is started and
// accesses of further keys are dropped until it has written some (an
// access lost this way only makes a record look older).
type accessTracker struct {
	mu   sync.Mutex
	m    map[string]pendingTime // pending access times (not yet written)
	seq  uint64                 // stamps each change of an entry of m (pendingTime.seq)
	kick chan struct{}
	// recorded counts touches that took mu (tests: the others took none).
	recorded int64
	// epoch counts applications of committed access-time changes to
	// known (applied, reset; under mu): a read whose stored time may
	// predate one does not teach the table that time.
	epoch atomic.Uint64

	known knownAtimes
	gran  int64 // Options.AccessGranularity in ns
}

const maxPendingAccess = 1 << 17

// flushBatch bounds the access times one flush transaction writes, so
// that fills and purges queued meanwhile commit between its batches (a
// purge is acknowledged after its commit and must not wait behind a
// flush of 100,000 records).
const flushBatch = 2000

// defaultKnownAtimes is the number of slots of the table of known access
// times (8 bytes each: 2 MiB). With 4 slots per group, it holds nearly
// every key of a working set of up to about 200,000 records; past that,
// keys share slots and the ones pushed out take the lock path.
const defaultKnownAtimes = 1 << 18

func (a *accessTracker) init(slots int, gran time.Duration, now time.Time) {
	a.m = make(map[string]pendingTime)
	a.kick = make(chan struct{}, 1)
	a.gran = int64(gran)
	a.known.init(slots, now)
}

// pendingTime is what memory holds of a record's access time beyond the
// stored one: the time a read decided (moved: A, decided with the stored
// time of its read), and the Touches that could not be decided yet (a
// Touch takes no read transaction: it may run inside one, a Lookup's
// choose), in order. at folds them onto a stored time.
type pendingTime struct {
	ns      int64
	moved   bool
	touches []int64
	seq     uint64 // accessTracker.seq at the entry's last change
}

// maxTouches bounds the undecided Touches one entry holds; further ones
// are dropped (the memory tier touches a record at most once per 30s, and
// every read that takes the lock, flush, eviction and listing decides
// them).
const maxTouches = 16

// at returns the record's access time A given its stored time (had: it
// has one): the later of stored and the decided time, then each undecided
// Touch applied in order (it moves A when at least gran after it).
func (e *pendingTime) at(stored int64, had bool, gran int64) (int64, bool) {
	a, ok := stored, had
	if e.moved && (!ok || e.ns > a) {
		a, ok = e.ns, true
	}
	for _, t := range e.touches {
		if !ok || t-a >= gran {
			a, ok = t, true
		}
	}
	return a, ok
}

// last is the latest time e holds (for ordering a flush).
func (e *pendingTime) last() int64 {
	if n := len(e.touches); n > 0 && (!e.moved || e.touches[n-1] > e.ns) {
		return e.touches[n-1]
	}
	return e.ns
}

// accessCheck is one read's access of a record: begun before the read's
// transaction (the tracker's epoch), checked inside it (the time, the
// table, and if need be the stored access time), recorded after it.
type accessCheck struct {
	epoch  uint64
	ns     int64  // the access
	h      uint64 // the key's hash (when there is a table)
	stored int64  // the stored access time (had: there is one)
	had    bool
	skip   bool // within gran of the time the table holds: nothing to record
}

// begin starts the access check of a read, before its transaction.
func (a *accessTracker) begin() accessCheck {
	return accessCheck{epoch: a.epoch.Load()}
}

// check fills c for an access of record ck now (ns) inside the read
// transaction tx that found it, reading the stored access time unless
// the table says the access changes nothing (the atime bucket is not even
// opened then: that allocates).
func (a *accessTracker) check(c *accessCheck, tx *bolt.Tx, ck []byte, ns int64) {
	c.ns = ns
	if a.known.slots != nil {
		c.h = a.known.hash(ck)
		if a.known.fresh(c.h, ns, a.gran) {
			c.skip = true
			return
		}
	}
	atime := tx.Bucket(bucketAtime)
	if atime == nil {
		return
	}
	if v := atime.Get(ck); len(v) == 8 {
		c.stored, c.had = int64(binary.BigEndian.Uint64(v)), true
	}
}

// record decides the access c of record ck (a bbolt key; not retained)
// checked in a read transaction: A moves to c.ns when that is at least
// gran after A (the stored time, the pending one, undecided Touches
// applied; they are decided now).
func (a *accessTracker) record(ck []byte, c *accessCheck) {
	if c.skip {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.recorded++
	e, pending := a.m[string(ck)]
	latest, ok := e.at(c.stored, c.had, a.gran)
	if ok && c.ns-latest < a.gran {
		// Nothing moves. Settle the Touches this read decided; teach
		// the table latest (it did not hold it, or held less), unless
		// committed changes were applied since the read's snapshot,
		// which latest may predate.
		if pending && len(e.touches) > 0 {
			if c.had && latest <= c.stored {
				delete(a.m, string(ck))
			} else {
				a.seq++
				a.m[string(ck)] = pendingTime{ns: latest, moved: true, seq: a.seq}
			}
		}
		if a.epoch.Load() == c.epoch {
			a.known.set(c.h, latest)
		}
		return
	}
	if !pending && len(a.m) >= maxPendingAccess {
		a.kickFlush()
		return
	}
	a.seq++
	a.m[string(ck)] = pendingTime{ns: c.ns, moved: true, seq: a.seq}
	// c.ns is now the key's latest access time: a lower bound of A
	// whatever the writer did since the read's snapshot.
	a.known.set(c.h, c.ns)
	if len(a.m) >= maxPendingAccess {
		a.kickFlush()
	}
}

// touch is record for an access at ns of record ck that has no read
// transaction (Touch) and that the table could not decide: an access less
// than gran after the decided pending time changes nothing (A is at least
// that); any other is held undecided until a read, a flush, an eviction
// or a listing decides it with the stored time.
func (a *accessTracker) touch(ck []byte, ns int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.recorded++
	e, pending := a.m[string(ck)]
	if pending && e.moved && ns-e.ns < a.gran {
		return
	}
	if !pending && len(a.m) >= maxPendingAccess {
		a.kickFlush()
		return
	}
	if len(e.touches) >= maxTouches {
		return
	}
	e.touches = append(e.touches, ns)
	a.seq++
	e.seq = a.seq
	a.m[string(ck)] = e
	if len(a.m) >= maxPendingAccess {
		a.kickFlush()
	}
}

func (a *accessTracker) kickFlush() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// accessAt returns record ck's access time A given its stored one (had:
// it has one), pending times applied, and the seq of its pending entry
// (pending: it has one).
func (a *accessTracker) accessAt(ck []byte, stored int64, had bool) (ns int64, ok bool, seq uint64, pending bool) {
	if a.kick == nil {
		return stored, had, 0, false
	}
	a.mu.Lock()
	e, pending := a.m[string(ck)]
	a.mu.Unlock()
	if !pending {
		return stored, had, 0, false
	}
	ns, ok = e.at(stored, had, a.gran)
	return ns, ok, e.seq, true
}

func (a *accessTracker) pending() int {
	if a.kick == nil {
		return 0
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.m)
}

// applied applies a committed transaction's notes to the table (writer
// goroutine, after the commit), under mu so that no read's lock path
// teaches the table a time from before them.
func (a *accessTracker) applied(notes []atimeNote) {
	if len(notes) == 0 {
		return
	}
	a.mu.Lock()
	a.known.apply(notes)
	a.epoch.Add(1)
	a.mu.Unlock()
}

// reset forgets every pending time and every known one (the records are
// gone: a damaged file set aside).
func (a *accessTracker) reset() {
	a.mu.Lock()
	a.m = make(map[string]pendingTime)
	a.known.clearAll()
	a.epoch.Add(1)
	a.mu.Unlock()
}

// pendingAccess is one pending entry, as a flush writes it.
type pendingAccess struct {
	ck string
	e  pendingTime
}

// snapshot lists the pending access times in record key order, without
// removing them: they stay visible to eviction and listings until
// written.
func (a *accessTracker) snapshot() []pendingAccess {
	a.mu.Lock()
	todo := make([]pendingAccess, 0, len(a.m))
	for ck, e := range a.m {
		todo = append(todo, pendingAccess{ck, e})
	}
	a.mu.Unlock()
	slices.SortFunc(todo, func(x, y pendingAccess) int { return strings.Compare(x.ck, y.ck) })
	return todo
}

// written drops the pending entries of done that a committed transaction
// wrote or found stale, unless a later access changed them meanwhile.
func (a *accessTracker) written(done []pendingAccess) {
	a.mu.Lock()
	for _, d := range done {
		if e, ok := a.m[d.ck]; ok && e.seq == d.e.seq {
			delete(a.m, d.ck)
		}
	}
	a.mu.Unlock()
}

// flushAccess writes every pending access time to the atime and lru
// buckets, in transactions of at most flushBatch. A time the stored one
// has caught up with (a record put again, evicted, or re-timed by
// eviction) is dropped unwritten.
//
// Each transaction takes the next flushBatch records in key order, so
// that it rewrites only the atime leaves of its key range (in the map's
// or the times' order every batch touched nearly every leaf of the atime
// bucket: 2.7 times the pages written, BenchmarkAccessUniformOld), and
// writes them in the lru index's order (time, then key): every new
// entry then lands after the one before. In random order each insert
// shifted the entries of the leaf it grows: quadratic in the accesses of
// one transaction, and a third of the server's CPU in a 100,000-page run
// (docs/performance.md, round 4).
func (s *Store) flushAccess(ctx context.Context) error {
	todo := s.access.snapshot()
	gran := int64(s.opts.AccessGranularity)
	var kb []byte
	for len(todo) > 0 {
		batch := todo[:min(len(todo), flushBatch)]
		todo = todo[len(batch):]
		slices.SortFunc(batch, func(x, y pendingAccess) int {
			return cmp.Or(cmp.Compare(x.e.last(), y.e.last()), strings.Compare(x.ck, y.ck))
		})
		err := s.do(ctx, 0, func(w *wtx) error {
			for _, e := range batch {
				kb = append(kb[:0], e.ck...)
				if w.recGet(kb) == nil {
					continue
				}
				var old int64
				had := false
				if v := w.atime.Get(kb); len(v) == 8 {
					old, had = int64(binary.BigEndian.Uint64(v)), true
				}
				ns, ok := e.e.at(old, had, gran)
				if !ok {
					continue
				}
				ns = clampNs(ns)
				// Written only when it moves the record by at least
				// AccessGranularity (an older or equal time never).
				if had && (ns <= old || ns-old < gran) {
					w.noteStoredAtime(kb, old)
					continue
				}
				if err := w.setAtime(kb, old, had, ns); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		s.access.written(batch)
		if s.opts.flushStep != nil {
			s.opts.flushStep(len(batch))
		}
	}
	return nil
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
// recently used (by access time: the Put, or the latest Get, pending ones
// included), oldest first, ties in key order. It works in transactions of
// at most 1,000 records, so writers interleave; readers are never blocked
// (bbolt readers see a snapshot).
//
// Pending access times are not flushed first: a candidate at the front of
// the lru index whose pending access time is later than its stored one
// (by at least AccessGranularity, so one a flush would write) gets a
// second chance: it is re-timed in the eviction's transaction, which
// moves it to its place further on in the index, and the walk goes on
// from the front. So the records evicted, and their order, are those of
// flushing every pending time first, at the cost of re-timing only the
// candidates.
func (s *Store) evict(ctx context.Context) (int, error) {
	if s.opts.MaxSize <= 0 || s.bytes.Load() <= s.opts.MaxSize {
		return 0, nil
	}
	target := s.opts.MaxSize / 10 * 9
	gran := int64(s.opts.AccessGranularity)
	const step = 1000
	var retimed []pendingAccess
	total := 0
	for {
		var n int
		var more bool
		err := s.do(ctx, 0, func(w *wtx) (err error) {
			retimed = retimed[:0] // set afresh if the op is retried alone
			n, more, err = s.evictStep(w, target, gran, step, &retimed)
			return err
		})
		if err != nil {
			return total, err
		}
		s.access.written(retimed) // stored now: no longer pending
		total += n
		if !more {
			return total, nil
		}
	}
}

// evictStep is one transaction of evict: expired records first, then up
// to step entries from the front of the lru index, each evicted or (with
// a pending access time later by at least gran) re-timed, listed in
// retimed.
func (s *Store) evictStep(w *wtx, target, gran int64, step int, retimed *[]pendingAccess) (n int, more bool, err error) {
	done := func() bool { return w.cnt.Bytes <= target }
	if done() {
		return 0, false, nil
	}
	n, more, err = w.removeExpired(w.nowNs, step, done)
	if err != nil || more || done() {
		return n, more, err
	}
	progress := n > 0
	var kb []byte
	for range step {
		if done() {
			return n, false, nil
		}
		// From the front each time: a re-timed entry moved further on,
		// maybe before entries a list taken at the start would hold.
		k, _ := w.lru.Cursor().First()
		if k == nil {
			return n, false, nil
		}
		kb = append(kb[:0], k...) // bbolt's key is not ours past a change
		ck := kb[8:]
		v := w.recGet(ck)
		if v == nil { // stale index entry
			if err := w.lru.Delete(kb); err != nil {
				return n, false, must(err)
			}
			progress = true
			continue
		}
		old := int64(binary.BigEndian.Uint64(kb[:8]))
		if a := w.atime.Get(ck); len(a) != 8 || int64(binary.BigEndian.Uint64(a)) != old {
			// An index entry the record's access time does not match:
			// stale; the record's own entry sits where its time says.
			if err := w.lru.Delete(kb); err != nil {
				return n, false, must(err)
			}
			progress = true
			continue
		}
		if p, _, seq, pending := s.access.accessAt(ck, old, true); pending && p > old && p-old >= gran {
			// Second chance: used since its stored time.
			if err := w.setAtime(ck, old, true, p); err != nil {
				return n, false, err
			}
			*retimed = append(*retimed, pendingAccess{string(ck), pendingTime{seq: seq}})
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
