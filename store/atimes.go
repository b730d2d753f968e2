package store

import (
	"hash/maphash"
	"math"
	"sync/atomic"
	"time"
)

// knownAtimes is a lossy, lock-free table of the access times known for
// record keys: what lets a Get skip an access that would change nothing
// (accessTracker).
//
// A slot is one atomic uint64, so a reader never sees half of one: the
// key's tag (the top 36 bits of its maphash) and, in the low 28 bits, an
// access time in whole seconds since base, rounded down. Zero is an empty
// slot. A key may sit in any of the knownWays slots of the group its
// hash's low bits choose, and sits in at most one of them. Two keys with
// the same group and tag (about 1 in 2^52 pairs for the default size)
// would share an entry: the one price of a table that keeps no keys.
//
// # What a slot claims
//
// A slot claims a lower bound of its record's access time A: the later of
// the time stored in the file and the pending one held in memory
// (accessTracker). A reader at t that finds t less than the granularity
// after the slot's time therefore knows t is less than that after A, so
// the access changes nothing, and returns. A slot that claims less than A
// (or nothing) only sends a read to the lock path, which decides exactly.
//
// # Who writes it
//
//   - The writer goroutine, around its transactions: one that changes a
//     record's stored access time (a Put, a flush, an eviction's re-timing,
//     an Annotate) or removes the record clears the key's slot at once and
//     lists the change in its wtx; once the transaction has committed,
//     applied sets the stored times (and clears the removed keys) in order,
//     under the tracker's mutex. A transaction that fails or rolls back
//     applies nothing, so its keys' slots stay empty. DeleteAll clears the
//     whole table at once and again after its commit.
//   - A read's lock path (accessTracker.record, under the mutex; a
//     Touch's sets nothing): the access time it has just made pending
//     (then A itself), or the A it found unchanged, learned from the
//     stored time of its own read snapshot and the pending one. The
//     latter only if no commit was applied since that snapshot began (the
//     tracker's epoch), since the stored time may have changed since; the
//     pending time needs no such care.
//
// A slot set after its record was removed claims a time for a key with no
// record: harmless (nothing reads its access), and a later Put sets its own
// time. After a crash the table is empty; a damaged file set aside empties
// it (reset). With a clock that goes back the bound may not hold for a
// while (a record put again at an earlier time); times written stay
// monotone otherwise. Times outside the 28 bits (before base, or more than
// 8.5 years after it) are not held.
type knownAtimes struct {
	seed  maphash.Seed
	slots []atomic.Uint64 // nil: no table (a read-only store)
	mask  uint64          // groups - 1
	base  int64           // Unix ns of second 0
}

const (
	knownWays    = 4
	knownSecBits = 28
	knownSecMask = 1<<knownSecBits - 1
)

// init sizes the table to slots (rounded up to a power of two of at
// least a group; 0 means defaultKnownAtimes, negative no table), its time
// range starting 2^26 s (about 2 years) before now.
func (t *knownAtimes) init(slots int, now time.Time) {
	switch {
	case slots < 0:
		return
	case slots == 0:
		slots = defaultKnownAtimes
	}
	groups := 1
	for groups*knownWays < slots {
		groups <<= 1
	}
	t.seed = maphash.MakeSeed()
	t.slots = make([]atomic.Uint64, groups*knownWays)
	t.mask = uint64(groups - 1)
	t.base = now.UnixNano() - int64(1<<26)*int64(time.Second)
}

// hash is ck's hash for fresh, set and clear (the table must exist).
func (t *knownAtimes) hash(ck []byte) uint64 { return maphash.Bytes(t.seed, ck) }

// freshKey is fresh for record key ck.
func (t *knownAtimes) freshKey(ck []byte, ns, gran int64) bool {
	return t.slots != nil && t.fresh(t.hash(ck), ns, gran)
}

func (t *knownAtimes) group(h uint64) []atomic.Uint64 {
	i := (h & t.mask) * knownWays
	return t.slots[i : i+knownWays : i+knownWays]
}

// fresh reports whether the table holds an access time for the key of
// hash h and ns is less than gran after it: an access at ns that changes
// nothing. It takes no lock and allocates nothing.
func (t *knownAtimes) fresh(h uint64, ns, gran int64) bool {
	if t.slots == nil {
		return false
	}
	tag := h >> knownSecBits
	for i, g := 0, t.group(h); i < knownWays; i++ {
		v := g[i].Load()
		if v != 0 && v>>knownSecBits == tag {
			stored := t.base + int64(v&knownSecMask)*int64(time.Second)
			return ns-stored < gran
		}
	}
	return false
}

// set notes that ns is a lower bound of the access time of the key of hash
// h (see "Who writes it" above for when that may be done). A time the slot
// cannot hold clears the key instead. When the key has no slot, it takes
// an empty one of its group, or the one holding the oldest time.
func (t *knownAtimes) set(h uint64, ns int64) {
	d := ns - t.base
	if t.slots == nil || d < 0 || d/int64(time.Second) > knownSecMask {
		t.clear(h)
		return
	}
	tag := h >> knownSecBits
	v := tag<<knownSecBits | uint64(d/int64(time.Second))
	if v == 0 { // indistinguishable from an empty slot
		t.clear(h)
		return
	}
	g := t.group(h)
	victim, empty, oldest := 0, false, uint64(math.MaxUint64)
	for i := range g {
		cur := g[i].Load()
		switch {
		case cur != 0 && cur>>knownSecBits == tag:
			g[i].Store(v)
			return
		case cur == 0:
			if !empty {
				victim, empty = i, true
			}
		case !empty && cur&knownSecMask < oldest:
			victim, oldest = i, cur&knownSecMask
		}
	}
	g[victim].Store(v)
}

// clear forgets the key of hash h.
func (t *knownAtimes) clear(h uint64) {
	if t.slots == nil {
		return
	}
	tag := h >> knownSecBits
	g := t.group(h)
	for i := range g {
		if v := g[i].Load(); v != 0 && v>>knownSecBits == tag {
			g[i].Store(0)
		}
	}
}

// clearAll forgets every key.
func (t *knownAtimes) clearAll() {
	for i := range t.slots {
		t.slots[i].Store(0)
	}
}

// atimeNote is one change a transaction made to a record's access time,
// applied to knownAtimes after the commit: ns is the stored access time,
// forgetAtime when the record and its access time were removed, or
// forgetEveryAtime when every record may have been (DeleteAll).
type atimeNote struct {
	h  uint64
	ns int64
}

const (
	forgetAtime      = -1 // stored access times are >= 0 (clampNs)
	forgetEveryAtime = -2
)

// apply applies a committed transaction's notes, in order.
func (t *knownAtimes) apply(notes []atimeNote) {
	for _, n := range notes {
		switch n.ns {
		case forgetAtime:
			t.clear(n.h)
		case forgetEveryAtime:
			t.clearAll()
		default:
			t.set(n.h, n.ns)
		}
	}
}

// noteAtime records, in a write transaction, that record ck's access time
// is now ns (ns forgetAtime: removed): the key's slot is cleared at once,
// and set to ns after the commit.
func (w *wtx) noteAtime(ck []byte, ns int64) {
	if w.known == nil || w.known.slots == nil {
		return
	}
	h := w.known.hash(ck)
	w.known.clear(h)
	w.atimes = append(w.atimes, atimeNote{h, ns})
}

// noteStoredAtime records, in a write transaction, that record ck's
// stored access time is ns and stays so (a flush found it within the
// granularity): the key's slot is set to ns after the commit.
func (w *wtx) noteStoredAtime(ck []byte, ns int64) {
	if w.known == nil || w.known.slots == nil {
		return
	}
	w.atimes = append(w.atimes, atimeNote{w.known.hash(ck), ns})
}

// forgetAllAtimes records, in a write transaction, that every record may
// be gone (DeleteAll): the table is cleared at once and again after the
// commit (so that no read's lock path keeps a time it learned meanwhile),
// and the notes before are moot.
func (w *wtx) forgetAllAtimes() {
	if w.known == nil {
		return
	}
	w.known.clearAll()
	w.atimes = append(w.atimes[:0], atimeNote{ns: forgetEveryAtime})
}
