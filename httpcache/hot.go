package httpcache

import (
	"hash/maphash"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/firstrender/firstrender/store"
)

// The memory tier keeps decoded entries of popular pages, so a hit reads
// neither the store nor its record encoding, and answers with header
// values prepared once per entry.
//
//   - Bounded by bytes (Config.MemoryCacheSize: body, key and header
//     bytes plus a fixed overhead per entry), split over hotShards shards,
//     each with its own lock and CLOCK (second-chance) eviction: a hit
//     sets the entry's reference bit (one atomic store, only when it is
//     clear), and eviction skips (and clears) referenced entries.
//   - Admission (TinyLFU, Einziger, Friedman and Manes, "TinyLFU: A
//     Highly Efficient Cache Admission Policy", 2017; what Caffeine and
//     Ristretto do): each shard keeps a doorkeeper (a Bloom filter of key
//     hashes seen once) in front of a count-min sketch of 4-bit counters
//     (hotSketch), halved after a window of samples so old popularity
//     fades. Every read counts: a store read offered to the tier, and a
//     hit from memory (lock-free, and a load only once its counters are
//     saturated). An entry read from the store is admitted on its
//     second sighting while its shard has room; once the shard is full,
//     only if its estimated frequency is higher than the CLOCK victim's
//     (ties reject). So one-hit wonders (crawlers walking every URL once)
//     never displace popular pages, and a uniform scan over many more
//     pages than the tier holds, whose hit ratio no admission can raise,
//     does not churn the tier: each rejected copy dies young instead of
//     living (and costing heap growth and GC) until its eviction.
//     The policy is built here, not taken from a library: ristretto, say,
//     would replace the whole tier, and its asynchronous admission (a
//     buffered Set applied later) would break the ticket protocol below,
//     which needs the insert to be decided under the shard's lock against
//     the invalidation count the reader saw.
//   - Invalidation per key: the store tells the proxy of every committed
//     change (store.Store.Watch) before the write that made it returns,
//     and the tier drops exactly those entries. A purge therefore takes
//     effect in memory before its acknowledgement. A reader that loaded an
//     entry from the store before a change but inserts it after the
//     change's notification is refused: each shard counts its
//     invalidations, and an insert succeeds only if the count has not
//     moved since the reader started. A purge-all epoch (cluster) is also
//     checked on every hit, since the store publishes it after the commit.
//   - Access times: a hit from memory tells the store of the access
//     (store.Store.Touch, kept in memory and flushed in batches) at most
//     once per hotTouchEvery (30s) per entry, so the store's LRU order
//     stays right to that resolution without a lock on the hit path. (At
//     1s, a working set cycled every few seconds touched the store on
//     almost every hit: about 20 allocations and a share of an access-time
//     transaction per request; docs/performance.md.)
const (
	hotShards       = 64
	hotEntryCost    = 512 // bytes charged per entry beyond body, key and headers
	hotTouchEvery   = 30 * time.Second
	hotTypicalEntry = 4 << 10 // bytes per entry assumed to size a shard's sketch
	hotSampleFactor = 10      // sketch window: samples per entry held before halving
	defaultHotBytes = DefaultMemoryCacheSize
)

type hotCache struct {
	max    int64       // <= 0: off
	off    atomic.Bool // set by Proxy.Close: no longer watching the store
	seed   maphash.Seed
	shards [hotShards]hotShard
	st     *store.Store
}

type hotShard struct {
	mu sync.RWMutex
	// m maps the maphash of a hot key (key NUL variant) to its entry,
	// whose hk is that key (find checks it): a lookup hashes the key once
	// (for the shard and the map alike) and compares it once. Two keys of
	// one hash share the slot, the later admission evicting the other.
	m     map[uint64]*hotEntry
	ring  []*hotEntry // CLOCK order
	hand  int
	bytes int64
	max   int64
	// inval counts invalidations in this shard; see load.
	inval atomic.Uint64
	sk    hotSketch // admission frequencies; see hotSketch
	// admission counts (under mu), for stats and metrics
	admitted, evicted                     uint64
	rejFirst, rejFreq, rejStale, rejLarge uint64
	_                                     [56]byte // 256 bytes in all: keep shards' hot fields on their own cache lines
}

// hotEntry is an immutable entry plus its CLOCK and access-time state.
type hotEntry struct {
	e       *entry
	hk      string // key NUL variant
	size    int64
	idx     int    // position in ring (under the shard's lock)
	hash    uint64 // maphash of hk, for the sketch
	ref     atomic.Uint32
	sat     atomic.Uint32 // sketch epoch + 1 at which a hit found its counters saturated
	touched atomic.Int64  // wall ns of the last store.Touch
}

func (h *hotCache) init(max int64, st *store.Store) {
	h.max, h.st = max, st
	h.seed = maphash.MakeSeed()
	for i := range h.shards {
		sh := &h.shards[i]
		sh.max = max / hotShards
		if max > 0 {
			sh.sk.init(sh.max / hotTypicalEntry)
		}
	}
}

// hotKey is the memory tier's key for a variant: key NUL variant (keys
// never contain NUL).
func appendHotKey(b []byte, key, variant string) []byte {
	b = append(b, key...)
	b = append(b, 0)
	return append(b, variant...)
}

func (h *hotCache) shard(hk []byte) *hotShard {
	return &h.shards[maphash.Bytes(h.seed, hk)%hotShards]
}

func (h *hotCache) hash(hk []byte) (*hotShard, uint64) {
	x := maphash.Bytes(h.seed, hk)
	return &h.shards[x%hotShards], x
}

// find returns the entry for hot key hk, of maphash x, or nil; the
// caller holds sh.mu.
func (sh *hotShard) find(x uint64, hk []byte) *hotEntry {
	if he := sh.m[x]; he != nil && he.hk == string(hk) {
		return he
	}
	return nil
}

// get returns the entry for hot key hk (key NUL variant), or nil. It
// allocates nothing.
func (h *hotCache) get(hk []byte, wall time.Time) *entry {
	if h.max <= 0 || h.off.Load() {
		return nil
	}
	sh, x := h.hash(hk)
	sh.mu.RLock()
	he := sh.find(x, hk)
	sh.mu.RUnlock()
	if he == nil {
		return nil
	}
	// Count the hit, unless its counters were at 15 at a hit since the
	// sketch's last reset (a popular page: then the hit reads none of the
	// sketch's memory, a cache line nothing else brings in).
	if se := sh.sk.epoch.Load() + 1; he.sat.Load() != se && sh.sk.recordHit(x) {
		he.sat.Store(se)
	}
	if ep := h.st.Epoch(); !ep.IsZero() && !he.e.rec.StoredTime.After(ep) {
		h.invalidate(he.hk) // hidden by a purge-all epoch
		return nil
	}
	if he.ref.Load() == 0 {
		he.ref.Store(1)
	}
	if ns := wall.UnixNano(); ns-he.touched.Load() >= int64(hotTouchEvery) {
		if old := he.touched.Load(); ns-old >= int64(hotTouchEvery) && he.touched.CompareAndSwap(old, ns) {
			h.st.Touch(he.e.rec.Key, he.e.rec.Variant)
		}
	}
	return he.e
}

// ticket is what a reader must show to insert what it read from the
// store: the shard's invalidation count before the read.
type ticket struct {
	sh    *hotShard
	inval uint64
}

// before returns the ticket for hk; take it before reading the store.
func (h *hotCache) before(hk []byte) ticket {
	if h.max <= 0 || h.off.Load() {
		return ticket{}
	}
	sh := h.shard(hk)
	return ticket{sh, sh.inval.Load()}
}

// put offers e, read from the store after t was taken, to the tier, and
// reports whether the tier now holds e (true: e, its record and its
// body's memory are shared with every hit from memory from now on, and
// the caller must not reuse any of it; false: the tier keeps no
// reference to e). The read counts as an access of hk (hotSketch). e is
// refused if an invalidation hit its shard since t; otherwise it is
// admitted on its key's second sighting while the shard has room, and
// once the shard is full only if hk's estimated frequency beats the
// CLOCK victim's. The body is charged by its capacity, the memory held (a
// pooled store-read buffer may be larger than the body: lookup.go).
func (h *hotCache) put(t ticket, hk []byte, e *entry, wall time.Time) bool {
	sh := t.sh
	if sh == nil {
		return false
	}
	size := int64(cap(e.rec.Body)+2*len(hk)+len(e.block)) + hotEntryCost
	for k, v := range e.rec.Header {
		size += int64(len(k))
		for _, s := range v {
			size += int64(len(s)) + 16
		}
	}
	hash := maphash.Bytes(h.seed, hk)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	seen := sh.sk.estimate(hash) > 0
	sh.sk.record(hash)
	if sh.sk.samples.Load() >= hotSampleFactor*int64(max(len(sh.sk.table), len(sh.ring))) {
		sh.sk.reset()
	}
	switch {
	case size > sh.max/2:
		sh.rejLarge++
		return false
	case h.off.Load() || sh.inval.Load() != t.inval:
		sh.rejStale++
		return false // changed since it was read: let the next reader load it
	case !seen:
		sh.rejFirst++
		return false // first sighting: remembered by the doorkeeper
	}
	if sh.m == nil {
		sh.m = make(map[uint64]*hotEntry)
	}
	old := sh.m[hash]
	if old != nil {
		sh.remove(old)
		if old.hk != string(hk) {
			sh.evicted++ // another key of the same hash
		}
	}
	for decided := old != nil; sh.bytes+size > sh.max && len(sh.ring) > 0; {
		if sh.hand >= len(sh.ring) {
			sh.hand = 0
		}
		v := sh.ring[sh.hand]
		if v.ref.Load() != 0 {
			v.ref.Store(0)
			sh.hand++
			continue
		}
		if !decided {
			// The shard is full: TinyLFU's test against the victim. The
			// hand stays on it, so the next candidate meets it too
			// unless a hit saves it first.
			if sh.sk.estimate(hash) <= sh.sk.estimate(v.hash) {
				sh.rejFreq++
				return false
			}
			decided = true
		}
		sh.remove(v)
		sh.evicted++
	}
	// The key string only now: most offers of a scan over more pages than
	// the tier holds are refused above, and allocated nothing.
	he := &hotEntry{e: e, hk: string(hk), size: size, idx: len(sh.ring), hash: hash}
	he.touched.Store(wall.UnixNano())
	sh.ring = append(sh.ring, he)
	sh.m[hash] = he
	sh.bytes += size
	sh.admitted++
	return true
}

// remove drops he (present) from the shard; the caller holds the lock.
func (sh *hotShard) remove(he *hotEntry) {
	last := len(sh.ring) - 1
	if he.idx != last {
		mv := sh.ring[last]
		sh.ring[he.idx], mv.idx = mv, he.idx
	}
	sh.ring[last] = nil
	sh.ring = sh.ring[:last]
	delete(sh.m, he.hash)
	sh.bytes -= he.size
}

// invalidate drops the entry for hot key hk, if any, and refuses inserts
// of copies read before now.
func (h *hotCache) invalidate(hk string) {
	if h.max <= 0 {
		return
	}
	x := maphash.String(h.seed, hk)
	sh := &h.shards[x%hotShards]
	sh.mu.Lock()
	sh.inval.Add(1)
	if he := sh.m[x]; he != nil && he.hk == hk {
		sh.remove(he)
	}
	sh.mu.Unlock()
}

// invalidateBytes is invalidate for a key in bytes, making no string of
// it (the map index converts without a copy).
func (h *hotCache) invalidateBytes(hk []byte) {
	if h.max <= 0 {
		return
	}
	sh, x := h.hash(hk)
	sh.mu.Lock()
	sh.inval.Add(1)
	if he := sh.find(x, hk); he != nil {
		sh.remove(he)
	}
	sh.mu.Unlock()
}

// invalidateAll empties the tier.
func (h *hotCache) invalidateAll() {
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.Lock()
		sh.inval.Add(1)
		clear(sh.m)
		clear(sh.ring)
		sh.ring, sh.bytes, sh.hand = sh.ring[:0], 0, 0
		sh.mu.Unlock()
	}
}

// changed is the store's Watch callback.
func (h *hotCache) changed(all bool, keys []store.RecordKey) {
	if all {
		h.invalidateAll()
		return
	}
	var arr [256]byte
	buf := arr[:0]
	for _, k := range keys {
		buf = appendHotKey(buf[:0], k.Key, k.Variant)
		h.invalidateBytes(buf)
	}
}

// stats returns the entries and bytes held (for tests and metrics).
func (h *hotCache) stats() (n int, bytes int64) {
	st := h.counters()
	return st.entries, st.bytes
}

// hotStats are the memory tier's size and admission counts since start.
// Every store read offered to the tier (hotCache.put) is counted once, as
// admitted or under one rejection reason.
type hotStats struct {
	entries  int
	bytes    int64
	admitted uint64 // inserted
	evicted  uint64 // dropped by CLOCK to make room (not invalidations)
	// rejected, by reason
	firstSeen uint64 // the key's first sighting (the doorkeeper)
	frequency uint64 // the shard was full and the CLOCK victim was read as often or more
	stale     uint64 // an invalidation hit the shard since the read began, or the tier is closed
	tooLarge  uint64 // more than half a shard
}

// counters sums the shards' hotStats (each shard's read-locked in turn).
func (h *hotCache) counters() hotStats {
	var st hotStats
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.RLock()
		st.entries += len(sh.m)
		st.bytes += sh.bytes
		st.admitted += sh.admitted
		st.evicted += sh.evicted
		st.firstSeen += sh.rejFirst
		st.frequency += sh.rejFreq
		st.stale += sh.rejStale
		st.tooLarge += sh.rejLarge
		sh.mu.RUnlock()
	}
	return st
}

// hitHeader is the part of a stored response's header that changes with
// time (Age, and Cache-Status through ttl=): prepared once per second of
// age for the plain "hit" answer and shared by every hit in that second.
//
// It is one allocation (none for the first of an entry read from the
// store: readEntry has room for it): Age and Cache-Status are field values with their
// own array (vals), each sliced to capacity 1 like oneValue, and their
// bytes live in buf, written once before the hitHeader is published and
// never after (strings over it, unsafe.String, are as immutable as any).
// The working set, whose pages are each read about once per second,
// builds one per hit (was three allocations: holder, Age string,
// Cache-Status string; five before that).
type hitHeader struct {
	age, ttl int64
	vals     [2]string // Age, Cache-Status: both over buf
	buf      [hitHeaderBuf]byte
}

// hitHeaderBuf holds the longest Age and Cache-Status values: two int64s
// (20 bytes each with a sign; Age is at most 10 digits) and the member's
// fixed text.
const hitHeaderBuf = 2*20 + len(CacheName) + len("; hit; ttl=")

func (e *entry) hitHeader(age, ttl time.Duration) (ageV, cs []string) {
	a, t := min(int64(age/time.Second), 1<<31), int64(ttl.Round(time.Second)/time.Second)
	if hh := e.hit.Load(); hh != nil && hh.age == a && hh.ttl == t {
		return hh.vals[0:1:1], hh.vals[1:2:2]
	}
	hh := e.spare.Swap(nil) // one caller at most takes it
	if hh == nil {
		hh = new(hitHeader)
	}
	*hh = hitHeader{age: a, ttl: t}
	// As strconv.FormatInt(a, 10) and cacheStatus{hit: true, ttl: ttl,
	// hasTTL: true}.String() (TestHitHeader holds them equal); b stays
	// within buf, sized for the longest values.
	b := strconv.AppendInt(hh.buf[:0], a, 10)
	na := len(b)
	b = append(b, CacheName...)
	b = append(b, "; hit; ttl="...)
	b = strconv.AppendInt(b, t, 10)
	hh.vals = [2]string{unsafe.String(&hh.buf[0], na), unsafe.String(&hh.buf[na], len(b)-na)}
	e.hit.Store(hh)
	return hh.vals[0:1:1], hh.vals[1:2:2]
}

// oneValue is a header value slice whose capacity is its length, so an
// Add by anyone copies instead of writing into the shared array.
func oneValue(v string) []string { return []string{v}[:1:1] }

// forgetKey drops every hot variant of key (a purge, a disable) and
// refuses inserts of copies read before now.
func (h *hotCache) forgetKey(key string) {
	h.forgetMatching(func(k string) bool { return k == key })
}

// forgetMatching drops the hot entries whose primary key match accepts
// (nil: all), and refuses inserts of copies read before now. Purges call
// it through Proxy.forget (the store's Watch drops the records a change
// touched as well; this covers what the proxy cannot name by record).
func (h *hotCache) forgetMatching(match func(key string) bool) {
	if h.max <= 0 {
		return
	}
	if match == nil {
		h.invalidateAll()
		return
	}
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.Lock()
		sh.inval.Add(1)
		for _, he := range sh.m {
			key, _, _ := strings.Cut(he.hk, "\x00")
			if match(key) {
				sh.remove(he)
			}
		}
		sh.mu.Unlock()
	}
}

// hotSketch is one shard's TinyLFU frequency estimate: a doorkeeper (a
// Bloom filter, three bits per key in one word) that absorbs a key's first
// sighting, in front of a count-min sketch of 4-bit counters. A key's
// four counters (one per row) are four nibbles of one word, one in each
// quarter of it, so a count is one load and at most one compare-and-swap
// on one cache line; the increment is conservative (only the counters at
// the key's minimum rise, which keeps collisions from inflating the
// others). After a window of samples (hotSampleFactor per word of the
// table, or per entry held if the shard holds more), reset halves every
// counter and clears the doorkeeper: popularity ages.
//
// Concurrency: hits count under the shard's read lock or none, with
// atomic loads and compare-and-swaps (no lock, and no store once a key's
// counters are saturated, so one hot page does not bounce a cache line
// between cores; an entry that saw its counters saturated skips them
// until the next reset, hotEntry.sat); a lost increment or one overwritten by a concurrent
// reset only makes the estimate approximate, as it is anyway. reset and
// the admission decision run under the shard's lock.
type hotSketch struct {
	table   []atomic.Uint64 // 16 counters per word; a key's 4 in one word
	door    []atomic.Uint64
	samples atomic.Int64
	epoch   atomic.Uint32 // resets so far
}

// init sizes the sketch for about entries keys held (at least 64).
func (s *hotSketch) init(entries int64) {
	n := uint64(64)
	for n < uint64(entries) && n < 1<<24 {
		n <<= 1
	}
	s.table = make([]atomic.Uint64, n)  // one word (16 counters) per entry
	s.door = make([]atomic.Uint64, 2*n) // 128 bits per entry: 3 of them per key, 12.8 per key of a full window (1% false positives)
}

// Odd constants (from splitmix64 and the golden ratio) that spread a
// hash's bits differently for the word, the counters and the doorkeeper.
const (
	hotMixA = 0x9e3779b97f4a7c15
	hotMixB = 0xbf58476d1ce4e5b9
	hotMixC = 0x94d049bb133111eb
)

func (s *hotSketch) doorBits(x uint64) (*atomic.Uint64, uint64) {
	d := x * hotMixC
	w := &s.door[(d>>40)%uint64(len(s.door))]
	return w, 1<<(d&63) | 1<<((d>>6)&63) | 1<<((d>>12)&63)
}

// counters returns hash x's word and the bit shifts of its 4 counters
// (row i's among nibbles 4i..4i+3).
func (s *hotSketch) counters(x uint64) (*atomic.Uint64, [4]uint) {
	w := &s.table[((x*hotMixA)>>32)%uint64(len(s.table))]
	c := uint((x * hotMixB) >> 56)
	return w, [4]uint{(c & 3) * 4, (4 + (c>>2)&3) * 4, (8 + (c>>4)&3) * 4, (12 + (c>>6)&3) * 4}
}

func minNibble(v uint64, sh [4]uint) uint64 {
	return min((v>>sh[0])&15, (v>>sh[1])&15, (v>>sh[2])&15, (v>>sh[3])&15)
}

// record counts one read of hash x from the store: its doorkeeper bits
// if they are not all set, else its counters.
func (s *hotSketch) record(x uint64) {
	if s.table == nil {
		return
	}
	if w, bits := s.doorBits(x); w.Load()&bits != bits {
		w.Or(bits)
		s.samples.Add(1)
		return
	}
	s.count(x)
}

// recordHit counts one hit from memory of hash x: its counters, past the
// doorkeeper (whose purpose, keeping one-hit wonders out of the counters,
// does not apply to a resident entry; either adds one to the estimate).
// It reports whether they were saturated.
func (s *hotSketch) recordHit(x uint64) bool {
	return s.table != nil && s.count(x)
}

// count raises hash x's counters that are at its minimum, unless that is
// 15 (saturated: it reports true).
func (s *hotSketch) count(x uint64) bool {
	w, sh := s.counters(x)
	for {
		old := w.Load()
		m := minNibble(old, sh)
		if m == 15 {
			return true // no store
		}
		nw := old
		for _, b := range sh {
			if (old>>b)&15 == m {
				nw += 1 << b
			}
		}
		if w.CompareAndSwap(old, nw) {
			s.samples.Add(1)
			return false
		}
	}
}

// estimate is hash x's estimated accesses (recent ones weigh more: each
// reset halves the older): its smallest counter, plus one if the
// doorkeeper has it.
func (s *hotSketch) estimate(x uint64) int {
	if s.table == nil {
		return 0
	}
	w, sh := s.counters(x)
	m := int(minNibble(w.Load(), sh))
	if w, bits := s.doorBits(x); w.Load()&bits == bits {
		m++
	}
	return m
}

// reset halves every counter and clears the doorkeeper; the caller holds
// the shard's lock.
func (s *hotSketch) reset() {
	for i := range s.table {
		w := &s.table[i]
		w.Store((w.Load() >> 1) & 0x7777777777777777)
	}
	for i := range s.door {
		s.door[i].Store(0)
	}
	s.samples.Store(0)
	s.epoch.Add(1)
}
