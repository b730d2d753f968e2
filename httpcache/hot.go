package httpcache

import (
	"hash/maphash"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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
//   - Admission: an entry is admitted on its second read from the store
//     within the doorkeeper's window (a set of key hashes per shard,
//     cleared when it fills), so one-hit wonders (crawlers walking every
//     URL once) never displace popular pages.
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
	hotDoorkeeperN  = 8192 // key hashes remembered per shard before it is cleared
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
	mu    sync.RWMutex
	m     map[string]*hotEntry // hot key (key NUL variant) -> entry
	ring  []*hotEntry          // CLOCK order
	hand  int
	bytes int64
	max   int64
	// inval counts invalidations in this shard; see load.
	inval atomic.Uint64
	door  map[uint64]struct{} // doorkeeper: seen once
	_     [40]byte            // keep shards' hot fields on their own cache lines
}

// hotEntry is an immutable entry plus its CLOCK and access-time state.
type hotEntry struct {
	e       *entry
	hk      string // key NUL variant
	size    int64
	idx     int // position in ring (under the shard's lock)
	ref     atomic.Uint32
	touched atomic.Int64 // wall ns of the last store.Touch
}

func (h *hotCache) init(max int64, st *store.Store) {
	h.max, h.st = max, st
	h.seed = maphash.MakeSeed()
	for i := range h.shards {
		h.shards[i].max = max / hotShards
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

// get returns the entry for hot key hk (key NUL variant), or nil. It
// allocates nothing.
func (h *hotCache) get(hk []byte, wall time.Time) *entry {
	if h.max <= 0 || h.off.Load() {
		return nil
	}
	sh := h.shard(hk)
	sh.mu.RLock()
	he := sh.m[string(hk)]
	sh.mu.RUnlock()
	if he == nil {
		return nil
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

// put offers e, read from the store after t was taken, to the tier. It is
// admitted on its key's second offer within the doorkeeper window, and
// only if no invalidation hit its shard since t. It reports whether the
// tier now holds e (true: e, its record and its body's memory are shared
// with every hit from memory from now on, and the caller must not reuse
// any of it; false: the tier keeps no reference to e). The body is
// charged by its capacity, the memory held (a pooled store-read buffer
// may be larger than the body: lookup.go).
func (h *hotCache) put(t ticket, hk []byte, e *entry, wall time.Time) bool {
	sh := t.sh
	if sh == nil {
		return false
	}
	size := int64(cap(e.rec.Body)+2*len(hk)) + hotEntryCost
	for k, v := range e.rec.Header {
		size += int64(len(k))
		for _, s := range v {
			size += int64(len(s)) + 16
		}
	}
	if size > sh.max/2 {
		return false
	}
	hash := maphash.Bytes(h.seed, hk)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if h.off.Load() || sh.inval.Load() != t.inval {
		return false // changed since it was read: let the next reader load it
	}
	if _, seen := sh.door[hash]; !seen {
		if sh.door == nil || len(sh.door) >= hotDoorkeeperN {
			sh.door = make(map[uint64]struct{}, 64)
		}
		sh.door[hash] = struct{}{}
		return false
	}
	if sh.m == nil {
		sh.m = make(map[string]*hotEntry)
	}
	key := string(hk)
	if old := sh.m[key]; old != nil {
		sh.remove(old)
	}
	for sh.bytes+size > sh.max && len(sh.ring) > 0 {
		if sh.hand >= len(sh.ring) {
			sh.hand = 0
		}
		v := sh.ring[sh.hand]
		if v.ref.Load() != 0 {
			v.ref.Store(0)
			sh.hand++
			continue
		}
		sh.remove(v)
	}
	delete(sh.door, hash)
	he := &hotEntry{e: e, hk: key, size: size, idx: len(sh.ring)}
	he.touched.Store(wall.UnixNano())
	sh.ring = append(sh.ring, he)
	sh.m[key] = he
	sh.bytes += size
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
	delete(sh.m, he.hk)
	sh.bytes -= he.size
}

// invalidate drops the entry for hot key hk, if any, and refuses inserts
// of copies read before now.
func (h *hotCache) invalidate(hk string) {
	if h.max <= 0 {
		return
	}
	sh := &h.shards[maphash.String(h.seed, hk)%hotShards]
	sh.mu.Lock()
	sh.inval.Add(1)
	if he := sh.m[hk]; he != nil {
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
	var buf []byte
	for _, k := range keys {
		buf = appendHotKey(buf[:0], k.Key, k.Variant)
		h.invalidate(string(buf))
	}
}

// stats returns the entries and bytes held (for tests and metrics).
func (h *hotCache) stats() (n int, bytes int64) {
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.RLock()
		n += len(sh.m)
		bytes += sh.bytes
		sh.mu.RUnlock()
	}
	return n, bytes
}

// hitHeader is the part of a stored response's header that changes with
// time (Age, and Cache-Status through ttl=): prepared once per second of
// age for the plain "hit" answer and shared by every hit in that second.
//
// Age and Cache-Status are field values with their own array in the one
// allocation (vals), each sliced to capacity 1 like oneValue: the
// working set, whose pages are each read about once per second, builds
// one per hit (three allocations, was five).
type hitHeader struct {
	age, ttl int64
	vals     [2]string // Age, Cache-Status
}

func (e *entry) hitHeader(age, ttl time.Duration) (ageV, cs []string) {
	a, t := min(int64(age/time.Second), 1<<31), int64(ttl.Round(time.Second)/time.Second)
	if hh := e.hit.Load(); hh != nil && hh.age == a && hh.ttl == t {
		return hh.vals[0:1:1], hh.vals[1:2:2]
	}
	c := cacheStatus{hit: true, ttl: ttl, hasTTL: true}
	hh := &hitHeader{age: a, ttl: t, vals: [2]string{strconv.FormatInt(a, 10), c.String()}}
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
		for hk, he := range sh.m {
			key, _, _ := strings.Cut(hk, "\x00")
			if match(key) {
				sh.remove(he)
			}
		}
		sh.mu.Unlock()
	}
}
