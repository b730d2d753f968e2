package httpcache

import (
	"context"
	"errors"
	"hash/maphash"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/firstrender/firstrender/store"
)

// entry is a stored response as the hit path uses it. Entries are
// immutable once built (hit caches its own prepared values atomically);
// the memory tier shares one entry between concurrent hits.
type entry struct {
	rec      *store.Record
	pol      policy
	vary     []string
	notAfter time.Time
	clen     []string // Content-Length value, shared read-only (prepared entries)
	// hdr is rec.Header prepared once (prepare): its fields in a slice,
	// without those that target this cache (isTargetedField), each value
	// slice clipped (capacity = length) so that a handler's Add copies
	// instead of writing into the shared array. Nil: use rec.Header.
	hdr []headerField
	// With hdr: whether rec.Header has a gzip Content-Encoding (isGzip),
	// a Content-Type and a Date, read once instead of from each
	// response's map.
	gzip, hasCT, hasDate bool
	// block is hdr encoded once as net/http writes header fields, less
	// those every response sets itself (Age, Cache-Status,
	// Content-Length), for a plain hit's header section on a corked
	// connection (serveEncoded). Nil: not encodable that way (no
	// Content-Type, gzip, framing fields stored).
	block []byte
	hit   atomic.Pointer[hitHeader]
	// spare, until taken (hitHeader), is room for the first hitHeader
	// (a readEntry's): nil once taken, or for other entries.
	spare  atomic.Pointer[hitHeader]
	splice SplicePage // non-nil: served only through it (splice.go)
	privCC []string   // with splice: the Cache-Control sent to one visitor
	// soft: soft-purged at softAt (annSoftPurged): stale from then on.
	soft   bool
	softAt time.Time
}

// softCap caps remaining, the freshness left at now, for a soft-purged
// entry: it is stale since its purge (never fresh, whatever the clock),
// so stale-while-revalidate and stale-if-error windows count from then.
func (e *entry) softCap(remaining time.Duration, now time.Time) time.Duration {
	if !e.soft {
		return remaining
	}
	return min(remaining, min(e.softAt.Sub(now), 0))
}

type headerField struct {
	name   string
	values []string
}

// readEntry is an entry made for a record read from the store, with room
// for what the read and prepare fill, so that a store-served hit
// allocates one object where it allocated five (Record, entry, field
// slice, Content-Length slice, the first hitHeader): the record itself
// (buf, read with store.GetBuf), the prepared fields, the Content-Length
// value and the first hitHeader (entry.spare). Nothing but its entry is
// referred to from outside: the memory tier keeps and charges the entry
// (its room included, an interior pointer keeps it all).
type readEntry struct {
	entry
	buf     store.RecordBuf
	fields  [readEntryFields]headerField
	clen    [1]string
	clenBuf [20]byte // clen[0]'s bytes, written once before the entry is shared
	hit     hitHeader
	block   [readEntryBlock]byte // room for entry.block
}

// readEntryFields is the prepared fields a readEntry holds: a stored page's
// (the load command's has 7); more take a slice of their own.
const readEntryFields = 10

// readEntryBlock is the room a readEntry has for its encoded fields (the
// load command's page takes 236 bytes); a larger block takes its own.
const readEntryBlock = 512

// newReadEntry returns a readEntry whose entry's rec is rec, or its own
// buf when rec is nil (for store.GetBuf), and whose first hitHeader is its
// own.
func newReadEntry(rec *store.Record) *readEntry {
	re := new(readEntry)
	if rec == nil {
		rec = &re.buf.Record
	}
	re.rec = rec
	re.spare.Store(&re.hit)
	return re
}

// prepare fills the values every response from e shares: the header
// fields (in name order), their encoded block and Content-Length. With
// re (nil: none; e is re's entry) they go into re's room when they fit.
func (e *entry) prepare(re *readEntry) {
	if re != nil && len(e.rec.Header) <= len(re.fields) {
		e.hdr = re.fields[:0]
	} else {
		e.hdr = make([]headerField, 0, len(e.rec.Header))
	}
	for k, v := range e.rec.Header {
		if !isTargetedField(k) {
			e.hdr = append(e.hdr, headerField{k, v[:len(v):len(v)]})
		}
	}
	slices.SortFunc(e.hdr, func(a, b headerField) int { return strings.Compare(a.name, b.name) })
	h := http.Header(e.rec.Header)
	e.gzip, e.hasCT, e.hasDate = isGzip(h), hasField(h, "Content-Type"), hasField(h, "Date")
	if re != nil {
		// As strconv.Itoa, over re's own bytes (as hitHeader does).
		b := strconv.AppendInt(re.clenBuf[:0], int64(len(e.rec.Body)), 10)
		re.clen[0] = unsafe.String(&re.clenBuf[0], len(b))
		e.clen = re.clen[:1:1]
	} else {
		e.clen = oneValue(strconv.Itoa(len(e.rec.Body)))
	}
	if e.hasCT && !e.gzip && e.rec.Status == http.StatusOK {
		var room []byte
		if re != nil {
			room = re.block[:0]
		}
		e.block = encodeBlock(room, e.hdr)
	}
}

// nowAt is the proxy's clock for a request that arrived at wall (wall
// clock): wall itself when the clock is time.Now (no clock read on a hit
// beyond the one at arrival), else Config.Now's reading.
func (p *Proxy) nowAt(wall time.Time) time.Time {
	if p.wallClock {
		return wall
	}
	return p.now()
}

// hotKeyBuf is room on the stack for the memory tier's key of most URLs.
const hotKeyBuf = 256

// lookupHot finds the request's variant of the normalized URL n in the
// memory tier, allocating nothing: the key, the Vary names' lookup and
// the variant (from vf, the request's fields as forwarded) are built in
// one stack buffer. wall is the request's arrival (exchange.start). It
// returns nil when the entry is not in memory (or is past its not-after:
// the slow path then says why). With known non-nil, what the Vary memory
// knows of the key is stored there (its key string and names, for
// lookupEarly; left zero when it knows nothing or the key is too long to
// be used as it is), the memory tier on or off.
func (p *Proxy) lookupHot(n *nurl, vf variantFields, wall time.Time, known *varyKnown) *entry {
	if p.hot.max <= 0 && known == nil {
		return nil
	}
	var a [hotKeyBuf]byte
	b := append(a[:0], n.scheme...)
	b = append(b, "://"...)
	b = append(b, n.host...)
	b = append(b, n.path...)
	if n.query != "" {
		b = append(b, '?')
		b = append(b, n.query...)
	}
	if len(b) > maxUnshortenedKey {
		return nil // shortened keys take the slow path
	}
	k, ok := p.vary.getBytes(b)
	if !ok {
		return nil
	}
	if known != nil {
		*known = k
	}
	if p.hot.max <= 0 {
		return nil
	}
	b = append(b, 0)
	b, ok = appendVariantKeyFields(b, k.names, vf)
	if !ok {
		return nil
	}
	e := p.hot.get(b, wall)
	if e == nil || (!e.notAfter.IsZero() && !p.nowAt(wall).Before(e.notAfter)) {
		return nil
	}
	return e
}

// lookup finds the stored entry for the request's variant of key. On a
// miss it returns the Cache-Status forward reason and detail.
//
// With rb non-nil (and holding no buffer), a body read from the store is
// copied into a pooled buffer that rb then holds (bodypool.go): the
// entry is the caller's alone and the caller must recycle or disown rb.
// rb holds nothing when the entry came from the memory tier, was
// admitted to it, or is spliced; when rb holds a buffer and no entry is
// returned, nothing refers to the buffer.
func (p *Proxy) lookup(ctx context.Context, key string, reqH http.Header, rb *readBuf) (*entry, string, string) {
	var into store.BodyBuffer
	if rb != nil {
		into = rb.body
	}
	names, known := p.vary.get(key)
	if !known {
		return p.lookupCold(ctx, key, reqH, into, rb)
	}
	var a [hotKeyBuf]byte
	variant := p.vary.variantString(appendVariantKey(a[:0], names, reqH))
	return p.lookupVariant(ctx, key, names, variant, into, rb)
}

// lookupVariant is lookup for a key whose Vary names are known: the
// memory tier, then the store, for variant.
func (p *Proxy) lookupVariant(ctx context.Context, key string, names []string, variant string, into store.BodyBuffer, rb *readBuf) (*entry, string, string) {
	var a [hotKeyBuf]byte
	hk := appendHotKey(a[:0], key, variant)
	wall := time.Now()
	if e := p.hot.get(hk, wall); e != nil {
		if !e.notAfter.IsZero() && !p.now().Before(e.notAfter) {
			return nil, fwdMiss, "not-after"
		}
		return e, "", ""
	}
	t := p.hot.before(hk)
	re := newReadEntry(nil)
	rec, err := p.st.GetBuf(ctx, key, variant, &re.buf, into)
	if err != nil {
		return nil, p.readFailed(key, variant, names, err), ""
	}
	return p.entryFrom(re, rec, names, t, hk, wall, rb)
}

// lookupEarly is lookup before the request's fwdPlan is applied, for a
// plan that changes only Accept-Encoding: the variant is keyed on vf, the
// fields as forwarded (as lookupHot keys it), so a store-served plain hit
// costs no copy of the request and its header either. known is what the
// Vary memory knows of the key (lookupHot): its key string and names. ok
// is false, and nothing was read, when it knows nothing (the names are
// not known yet) or the variant cannot be keyed from vf: the caller then
// applies the plan and calls lookup. Otherwise the result is lookup's,
// for the caller's first attempt (rb as lookup's).
func (p *Proxy) lookupEarly(ctx context.Context, known varyKnown, vf variantFields, rb *readBuf) (e *entry, fwd, detail string, ok bool) {
	if known.key == "" {
		return nil, "", "", false
	}
	var a [hotKeyBuf]byte
	vb, ok := appendVariantKeyFields(a[:0], known.names, vf)
	if !ok {
		return nil, "", "", false
	}
	e, fwd, detail = p.lookupVariant(ctx, known.key, known.names, p.vary.variantString(vb), rb.body, rb)
	return e, fwd, detail, true
}

// lookupCold is lookup for a key whose Vary names are not known: one
// store read (store.Store.Lookup) lists the key's variants, takes the
// Vary names from the newest sound one, and reads the request's variant,
// its body into into (nil: allocated), whose buffer rb holds (see lookup).
func (p *Proxy) lookupCold(ctx context.Context, key string, reqH http.Header, into store.BodyBuffer, rb *readBuf) (*entry, string, string) {
	// The variant, so the memory tier's shard, is known only inside the
	// read: take every shard's ticket before it begins.
	var ts hotTickets
	p.hot.beforeAll(&ts)
	var (
		names   []string
		variant string
		hot     *entry
		a       [hotKeyBuf]byte
		hk      []byte
	)
	wall := time.Now()
	rec, err := p.st.LookupInto(ctx, key, func(metas []store.Meta) (string, bool) {
		var newest *store.Meta
		for i := range metas {
			if metas[i].Corrupt {
				continue
			}
			if newest == nil || metas[i].StoredTime.After(newest.StoredTime) {
				newest = &metas[i]
			}
		}
		if newest == nil {
			return "", false
		}
		names = splitVaryAnnotation(newest.Annotations[AnnotationVary])
		variant = variantKey(names, reqH)
		hk = appendHotKey(a[:0], key, variant)
		if hot = p.hot.get(hk, wall); hot != nil {
			return "", false // in memory: read nothing
		}
		return variant, true
	}, into)
	if names != nil {
		p.vary.set(key, names)
	}
	if hot != nil {
		if !hot.notAfter.IsZero() && !p.now().Before(hot.notAfter) {
			return nil, fwdMiss, "not-after"
		}
		return hot, "", ""
	}
	if err != nil {
		if names == nil {
			if !errors.Is(err, store.ErrNotFound) {
				p.log.Warn("httpcache: store lookup", "key", key, "err", err)
			}
			return nil, fwdURIMiss, ""
		}
		return nil, p.readFailed(key, variant, names, err), ""
	}
	return p.entryFrom(newReadEntry(rec), rec, names, p.hot.ticketFor(&ts, hk), hk, wall, rb)
}

// readFailed handles a failed read of key's variant (Vary names names)
// and returns the Cache-Status forward reason: a damaged record is
// removed in the background.
func (p *Proxy) readFailed(key, variant string, names []string, err error) string {
	var ce *store.CorruptError
	switch {
	case errors.Is(err, store.ErrNotFound):
	case errors.As(err, &ce):
		p.log.Warn("httpcache: corrupt record removed", "key", key, "variant", variant, "err", err)
		p.goBackground(func() { _ = p.st.Delete(context.Background(), key, variant) })
	default:
		p.log.Warn("httpcache: store get", "key", key, "err", err)
	}
	if len(names) > 0 {
		return fwdVary
	}
	return fwdURIMiss
}

// entryFrom makes the entry for rec, read from the store after ticket t
// was taken, in re (whose entry's rec is rec), offers it to the memory
// tier under hot key hk, and returns it, or why it cannot be served. rb
// (nil: none) holds the pooled buffer rec's body is in, if any: disowned
// when the tier keeps the entry or a Splicer is given the body (see
// lookup).
func (p *Proxy) entryFrom(re *readEntry, rec *store.Record, names []string, t ticket, hk []byte, wall time.Time, rb *readBuf) (*entry, string, string) {
	key, variant := rec.Key, rec.Variant
	if _, ok := rec.Annotations[AnnotationDisabled]; ok {
		return nil, fwdMiss, "disabled" // the reason is in the annotation
	}
	e := &re.entry
	e.vary = names
	if na := rec.Annotations[AnnotationNotAfter]; na != "" {
		t, err := time.Parse(time.RFC3339Nano, na)
		if err != nil {
			return nil, fwdMiss, "bad-not-after"
		}
		e.notAfter = t
		if !p.now().Before(t) {
			return nil, fwdMiss, "not-after"
		}
	}
	if v, ok := rec.Annotations[annSoftPurged]; ok {
		e.soft = true
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			e.softAt = t
		} else {
			e.softAt = rec.ResponseTime // unreadable mark: stale since it was stored
		}
	}
	if data, ok := rec.Annotations[AnnotationSplice]; ok {
		// Stored for splicing: its body holds a token of the visitor it
		// was rendered for, never to be served as it is.
		if p.cfg.Splicer == nil {
			return nil, fwdMiss, "splice-unconfigured"
		}
		if rb != nil {
			rb.disown() // the page may keep slices of the body
		}
		page, err := p.cfg.Splicer.Load(rec.Body, data)
		if err != nil {
			p.log.Warn("httpcache: stored splice data unusable", "key", key, "variant", variant, "err", err)
			return nil, fwdMiss, "splice-invalid"
		}
		e.setSplice(page)
	}
	pol, ok := decodePolicy(rec.Annotations[AnnotationPolicy])
	if !ok {
		h := http.Header(rec.Header)
		pol = computePolicy(rec.Status, h, p.parser.response(h), rec.RequestTime, rec.ResponseTime, p.fc)
	}
	e.pol = pol
	e.prepare(re)
	if p.hot.put(t, hk, e, wall) && rb != nil {
		rb.disown() // the tier's now, shared by every hit from memory
	}
	return e, "", ""
}

// hotTickets are the memory tier's tickets of every shard (their
// invalidation counts), for a store read whose variant, so whose shard,
// is known only once the read has begun (lookupCold).
type hotTickets [hotShards]uint64

// beforeAll fills ts with every shard's ticket; take them before reading
// the store. It is 64 atomic loads, nothing when the tier is off.
func (h *hotCache) beforeAll(ts *hotTickets) {
	if h.max <= 0 || h.off.Load() {
		return
	}
	for i := range h.shards {
		ts[i] = h.shards[i].inval.Load()
	}
}

// ticketFor is the ticket for hot key hk out of ts (filled by beforeAll
// before the read): what before(hk) would have returned then.
func (h *hotCache) ticketFor(ts *hotTickets, hk []byte) ticket {
	if h.max <= 0 || h.off.Load() || hk == nil {
		return ticket{}
	}
	i := maphash.Bytes(h.seed, hk) % hotShards // as h.shard
	return ticket{&h.shards[i], ts[i]}
}

func splitVaryAnnotation(s string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Split(s, ",")
}

// maxMemoryEntries bounds the proxy's small in-memory maps (Vary names,
// hit-for-pass); when one fills up it is cleared, which only costs a
// store lookup or one collapsed fetch.
const maxMemoryEntries = 100_000

// varyMemory remembers, per primary key, the Vary header names of the
// stored response, so a hit computes its variant without listing variants.
//
// Keys whose names are equal share one slice (canon): a site's pages
// mostly vary on the same fields, and a hit from memory then reads its
// names from memory every hit keeps in the CPU's caches, where a slice
// per key cost a cache miss per hit over a working set. The slices are
// read-only.
type varyMemory struct {
	mu    sync.RWMutex
	m     map[string]varyKnown
	canon [][]string // distinct name lists set so far, at most maxVaryLists
	// variants holds variant strings already made (variantString),
	// copied on write, at most maxVariantStrings; nil until the first.
	variants atomic.Pointer[map[string]string]
}

// varyKnown is what varyMemory holds for a key: the key itself (the
// string a hit keyed by bytes uses instead of building one, lookupHot)
// and its Vary names.
type varyKnown struct {
	key   string
	names []string
}

// maxVariantStrings bounds varyMemory.variants, and maxVariantString the
// length of a variant kept there: a site's pages mostly vary on a few
// values of the same fields (Accept-Encoding), while a variant of a
// high-cardinality field (a cookie) is made per read as before.
const (
	maxVariantStrings = 256
	maxVariantString  = 128
)

// variantString is string(vb), shared with every earlier read of the
// same variant (no allocation) while it is among the first
// maxVariantStrings short ones made.
func (v *varyMemory) variantString(vb []byte) string {
	if len(vb) == 0 {
		return ""
	}
	if m := v.variants.Load(); m != nil {
		if s, ok := (*m)[string(vb)]; ok {
			return s
		}
	}
	s := string(vb)
	if len(s) > maxVariantString {
		return s
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	m := make(map[string]string)
	if old := v.variants.Load(); old != nil {
		if t, ok := (*old)[s]; ok {
			return t // made meanwhile
		}
		if len(*old) >= maxVariantStrings {
			return s
		}
		maps.Copy(m, *old)
	}
	m[s] = s
	v.variants.Store(&m)
	return s
}

// maxVaryLists bounds varyMemory.canon; name lists past it are kept as
// they come.
const maxVaryLists = 16

func (v *varyMemory) get(key string) ([]string, bool) {
	v.mu.RLock()
	k, ok := v.m[key]
	v.mu.RUnlock()
	return k.names, ok
}

func (v *varyMemory) set(key string, names []string) {
	if names == nil {
		names = []string{}
	}
	v.mu.Lock()
	if v.m == nil || len(v.m) >= maxMemoryEntries {
		v.m = make(map[string]varyKnown)
	}
	v.m[key] = varyKnown{key, v.intern(names)}
	v.mu.Unlock()
}

// intern returns the list in canon equal to names, adding names if there
// is none and room; v.mu is held.
func (v *varyMemory) intern(names []string) []string {
	for _, c := range v.canon {
		if slices.Equal(c, names) {
			return c
		}
	}
	if len(v.canon) < maxVaryLists {
		names = slices.Clip(names)
		v.canon = append(v.canon, names)
	}
	return names
}

// getBytes is get for a key in a byte slice, without allocating; it
// returns the key as the string the memory holds too.
func (v *varyMemory) getBytes(key []byte) (varyKnown, bool) {
	v.mu.RLock()
	k, ok := v.m[string(key)]
	v.mu.RUnlock()
	return k, ok
}

func (v *varyMemory) forget(key string) {
	v.mu.Lock()
	delete(v.m, key)
	v.mu.Unlock()
}
