package httpcache

import (
	"sync"
	"time"
)

// hotMaxAge bounds how long a hot entry is used without reading the
// store again. Reading through the store keeps its access times (and so
// its LRU eviction order) right for popular pages.
const hotMaxAge = 2 * time.Second

// hotCache keeps recently served entries in memory so a hit neither reads
// nor decodes the store record (no body copy, no header decoding).
//
// Consistency: an entry is used only while the store's generation
// ((*store.Store).Generation, one atomic load) equals the value read
// before the entry was fetched from the store. Every committed change to
// records, purges and annotations included, advances it before the call
// returns, so after an acknowledged purge no hot entry from before it is
// served. Writes of access times do not advance it. Entries are immutable
// once cached.
type hotCache struct {
	mu   sync.RWMutex
	m    map[hotK]*hotEntry
	size int64
	max  int64
}

type hotEntry struct {
	e      *entry
	gen    uint64
	loaded time.Time // wall clock
	size   int64
}

// hotK is a hot entry's key: a struct, so lookups allocate nothing.
type hotK struct{ key, variant string }

func (h *hotCache) get(k hotK, gen uint64, now time.Time) *entry {
	if h.max <= 0 {
		return nil
	}
	h.mu.RLock()
	he := h.m[k]
	h.mu.RUnlock()
	if he == nil || he.gen != gen || now.Sub(he.loaded) > hotMaxAge {
		return nil
	}
	return he.e
}

func (h *hotCache) put(k hotK, e *entry, gen uint64, now time.Time) {
	size := int64(len(e.rec.Body) + len(k.key) + len(k.variant) + 512)
	for hk, v := range e.rec.Header {
		size += int64(len(hk))
		for _, s := range v {
			size += int64(len(s))
		}
	}
	if h.max <= 0 || size > h.max/4 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil {
		h.m = make(map[hotK]*hotEntry)
	}
	if old := h.m[k]; old != nil {
		h.size -= old.size
	}
	h.m[k] = &hotEntry{e: e, gen: gen, loaded: now, size: size}
	h.size += size
	if h.size > h.max {
		// Drop entries in map order (pseudo-random) down to 90%.
		for ok, v := range h.m {
			if h.size <= h.max*9/10 {
				break
			}
			if ok == k {
				continue
			}
			delete(h.m, ok)
			h.size -= v.size
		}
	}
}
