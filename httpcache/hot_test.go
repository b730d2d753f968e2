package httpcache

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/firstrender/firstrender/store"
	"github.com/prometheus/client_golang/prometheus"
)

func hotPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "max-age=600")
	w.Write([]byte("page " + r.URL.Path))
}

// inMemory reports whether the memory tier holds the variant "" of path.
func inMemory(t *testing.T, r *rig, path string) bool {
	t.Helper()
	key, err := r.Proxy.Key(r.Front.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	hk := appendHotKey(nil, key, "")
	sh, x := r.Proxy.hot.hash(hk)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	return sh.find(x, hk) != nil
}

func TestMemoryTier_AdmitsOnSecondRead(t *testing.T) {
	r := newRig(t, hotPage, nil)
	r.Get("/a") // miss, stored
	r.Get("/a") // first read from the store: remembered, not admitted
	if inMemory(t, r, "/a") {
		t.Fatal("admitted on its first read from the store: one-hit wonders would fill the tier")
	}
	r.Get("/a")
	if !inMemory(t, r, "/a") {
		t.Fatal("not admitted on its second read from the store")
	}
	if res := r.Get("/a"); !match(cs(t, res), "hit") || res.Body != "page /a" {
		t.Fatalf("from memory: %q %q", res.Header.Get("Cache-Status"), res.Body)
	}
}

// The memory tier is invalidated per key: a write to another record
// (a miss stored anywhere) leaves an entry in memory, a change to its own
// record drops it before the write returns.
func TestMemoryTier_PerKeyInvalidation(t *testing.T) {
	r := newRig(t, hotPage, nil)
	for range 3 {
		r.Get("/a")
	}
	if !inMemory(t, r, "/a") {
		t.Fatal("/a not in memory")
	}
	r.Get("/b") // another miss, stored: a committed store write
	if !inMemory(t, r, "/a") {
		t.Fatal("an unrelated store write dropped /a from memory")
	}
	key, _ := r.Proxy.Key(r.Front.URL + "/a")
	if err := r.Store.Annotate(context.Background(), key, "", map[string]string{"test.x": "1"}); err != nil {
		t.Fatal(err)
	}
	if inMemory(t, r, "/a") {
		t.Fatal("a change to /a's record left the old copy in memory")
	}
	if err := r.Store.Delete(context.Background(), key, ""); err != nil {
		t.Fatal(err)
	}
	if res := r.Get("/a"); match(cs(t, res), "hit") || r.Origin.Count() != 3 {
		t.Fatalf("after Delete: %q, origin %d; want a miss", res.Header.Get("Cache-Status"), r.Origin.Count())
	}
}

// A reader that loaded an entry before a change must not insert it after
// the change's notification.
func TestMemoryTier_StaleInsertRefused(t *testing.T) {
	st := newTestStoreForHot(t)
	var h hotCache
	h.init(1<<20, st)
	e := &entry{rec: &store.Record{Key: "http://x/a", Body: []byte("old")}}
	hk := appendHotKey(nil, "http://x/a", "")
	for i := range 2 { // admitted on the second offer
		tk := h.before(hk)
		if kept := h.put(tk, hk, e, timeNow()); kept != (i == 1) {
			t.Fatalf("offer %d: put reported kept=%v", i+1, kept)
		}
	}
	if h.get(hk, timeNow()) == nil {
		t.Fatal("not admitted")
	}
	tk := h.before(hk)
	h.changed(false, []store.RecordKey{{Key: "http://x/a"}})
	if h.get(hk, timeNow()) != nil {
		t.Fatal("invalidated entry still served")
	}
	if h.put(tk, hk, e, timeNow()) || h.put(tk, hk, e, timeNow()) {
		t.Fatal("put of a copy read before the invalidation reported it kept")
	}
	if h.get(hk, timeNow()) != nil {
		t.Fatal("a copy read before the invalidation was inserted after it")
	}
}

// The store's change notification drops exactly the records it names
// (key and variant), and allocates nothing per record.
func TestMemoryTier_ChangedDropsNamedVariants(t *testing.T) {
	st := newTestStoreForHot(t)
	var h hotCache
	h.init(1<<20, st)
	const key = "http://127.0.0.1/a/page/with/a/path/longer/than/thirty-two/bytes"
	admit := func(variant string) []byte {
		hk := appendHotKey(nil, key, variant)
		e := &entry{rec: &store.Record{Key: key, Variant: variant, Body: []byte(variant)}}
		for range 2 { // admitted on the second offer
			h.put(h.before(hk), hk, e, timeNow())
		}
		if h.get(hk, timeNow()) == nil {
			t.Fatalf("%q not admitted", variant)
		}
		return hk
	}
	gz, plain := admit("accept-encoding=gzip"), admit("")
	h.changed(false, []store.RecordKey{{Key: key, Variant: "accept-encoding=gzip"}})
	if h.get(gz, timeNow()) != nil {
		t.Fatal("the changed variant is still served")
	}
	if h.get(plain, timeNow()) == nil {
		t.Fatal("a variant that did not change was dropped")
	}
	keys := []store.RecordKey{{Key: key, Variant: "accept-encoding=br"}, {Key: key + "/other"}}
	if n := testing.AllocsPerRun(100, func() { h.changed(false, keys) }); n != 0 {
		t.Fatalf("changed made %v allocations for %d keys, want 0", n, len(keys))
	}
}

func TestMemoryTier_BoundedByBytes(t *testing.T) {
	const max = 256 << 10
	r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		w.Write(make([]byte, 1000))
	}, func(c *Config) { c.MemoryCacheSize = max })
	for i := range 400 {
		p := fmt.Sprintf("/p%d", i)
		for range 3 {
			r.Get(p)
		}
	}
	n, b := r.Proxy.hot.stats()
	if b > max || n == 0 {
		t.Fatalf("memory tier holds %d entries, %d bytes; want some, at most %d bytes", n, b, max)
	}
	// Every page still answers correctly, from memory or the store.
	for i := range 400 {
		if res := r.Get(fmt.Sprintf("/p%d", i)); !match(cs(t, res), "hit") || len(res.Body) != 1000 {
			t.Fatalf("/p%d: %q, %d bytes", i, res.Header.Get("Cache-Status"), len(res.Body))
		}
	}
}

func TestMemoryTier_Disabled(t *testing.T) {
	r := newRig(t, hotPage, func(c *Config) { c.MemoryCacheSize = -1 })
	for range 4 {
		r.Get("/a")
	}
	if n, _ := r.Proxy.hot.stats(); n != 0 {
		t.Fatalf("%d entries in a disabled memory tier", n)
	}
	if res := r.Get("/a"); !match(cs(t, res), "hit") {
		t.Fatalf("%q", res.Header.Get("Cache-Status"))
	}
}

// Hits from memory share prepared header values; a handler further out
// adding to one must not change what the next hit sends.
func TestMemoryTier_SharedHeaderValuesNotAliased(t *testing.T) {
	r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		w.Header().Set("X-One", "a")
		w.Write([]byte("x"))
	}, nil)
	for range 3 {
		r.Get("/a")
	}
	req, _ := http.NewRequest(http.MethodGet, r.Front.URL+"/a", nil)
	for range 2 {
		w := &discardWriter{h: http.Header{}}
		r.Proxy.ServeHTTP(w, req)
		w.h.Add("X-One", "b")
		w.h.Add("Cache-Status", "outer; hit")
	}
	w := &discardWriter{h: http.Header{}}
	r.Proxy.ServeHTTP(w, req)
	if v := w.h["X-One"]; len(v) != 1 || v[0] != "a" {
		t.Fatalf("X-One = %q after another response's Add", v)
	}
	if v := w.h["Cache-Status"]; len(v) != 1 {
		t.Fatalf("Cache-Status = %q after another response's Add", v)
	}
}

func TestAppendVariantKeyMatchesVariantKey(t *testing.T) {
	for _, tc := range []struct {
		names []string
		h     http.Header
	}{
		{nil, nil},
		{[]string{"Accept-Encoding"}, http.Header{"Accept-Encoding": {"gzip, deflate, br, zstd"}}},
		{[]string{"Accept-Encoding"}, http.Header{"Accept-Encoding": {" GZIP ,, Br  ", "zstd"}}},
		{[]string{"Accept-Language", "X-Thing"}, http.Header{"Accept-Language": {"en-US,en;q=0.9"}, "X-Thing": {"A  b\tC", "é%&="}}},
		{[]string{"Cookie"}, http.Header{}},
		{[]string{"X-Long"}, http.Header{"X-Long": {string(make([]byte, 600))}}},
		{[]string{"X-Nbsp"}, http.Header{"X-Nbsp": {"a\u00a0b"}}},
	} {
		got := string(appendVariantKey([]byte("k\x00"), tc.names, tc.h))
		if want := "k\x00" + variantKey(tc.names, tc.h); got != want {
			t.Errorf("appendVariantKey(%q, %q) = %q, variantKey %q", tc.names, tc.h, got, want)
		}
	}
}

func FuzzAppendVariantKey(f *testing.F) {
	f.Add("gzip, deflate", "en-US,en;q=0.9")
	f.Add(" A\tB ,,c", "\x00\xff")
	f.Fuzz(func(t *testing.T, a, b string) {
		names := []string{"Accept-Encoding", "X-Custom"}
		h := http.Header{"Accept-Encoding": {a, b}, "X-Custom": {b}}
		if got, want := string(appendVariantKey(nil, names, h)), variantKey(names, h); got != want {
			t.Fatalf("appendVariantKey = %q, variantKey %q", got, want)
		}
	})
}

func newTestStoreForHot(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(t.TempDir()+"/hot.db", store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

var timeNow = func() time.Time { return time.Now() }

// hitHeader builds Age and Cache-Status once per second of age in one
// allocation, with the bytes the general path (FormatInt, cacheStatus's
// String) gives, shares them within that second, and hands out slices an
// Add cannot write through.
func TestHitHeader(t *testing.T) {
	e := &entry{}
	age, ttl := 1000*time.Second, 86000*time.Second
	a1, c1 := e.hitHeader(age, ttl)
	if len(a1) != 1 || a1[0] != "1000" || len(c1) != 1 || c1[0] != "firstrender; hit; ttl=86000" {
		t.Fatalf("hitHeader = %q, %q", a1, c1)
	}
	if cap(a1) != 1 || cap(c1) != 1 {
		t.Fatalf("capacities %d, %d: an Add would write into the shared array", cap(a1), cap(c1))
	}
	if a2, c2 := e.hitHeader(age+300*time.Millisecond, ttl-300*time.Millisecond); &a2[0] != &a1[0] || &c2[0] != &c1[0] {
		t.Fatal("rebuilt within the same second")
	}
	h := http.Header{"Age": a1}
	h.Add("Age", "x")
	if _, c3 := e.hitHeader(age, ttl); a1[0] != "1000" || c3[0] != c1[0] {
		t.Fatal("an Add changed the shared values")
	}
	n := 0
	if allocs := testing.AllocsPerRun(100, func() {
		n++
		e.hitHeader(age+time.Duration(n)*time.Second, ttl-time.Duration(n)*time.Second)
	}); allocs > 1 {
		t.Fatalf("%v allocations per new second, want at most 1", allocs)
	}
	// The bytes, for ages and ttls of every length, the extremes included.
	for _, c := range []struct{ age, ttl time.Duration }{
		{0, time.Second}, {999 * time.Millisecond, 1500 * time.Millisecond}, {9 * time.Second, 99 * time.Second},
		{12345 * time.Second, 1<<31*time.Second + 7}, {(1<<31 + 5) * time.Second, 1<<62 - 1}, {-3 * time.Second, -1 << 62},
	} {
		e := &entry{}
		a, cs := e.hitHeader(c.age, c.ttl)
		wantA := strconv.FormatInt(min(int64(c.age/time.Second), 1<<31), 10)
		wantCS := cacheStatus{hit: true, ttl: c.ttl, hasTTL: true}.String()
		if a[0] != wantA || cs[0] != wantCS {
			t.Errorf("hitHeader(%v, %v) = %q, %q; want %q, %q", c.age, c.ttl, a[0], cs[0], wantA, wantCS)
		}
	}
}

// hotSim drives a hotCache the way lookup does (get; on a miss, a ticket,
// a store read and put) over n keys of 20 KB entries.
type hotSim struct {
	h    hotCache
	ents []*entry
	hks  [][]byte
	now  time.Time
}

func newHotSim(t *testing.T, max int64, n int) *hotSim {
	s := &hotSim{now: time.Now()}
	s.h.init(max, newTestStoreForHot(t))
	body := make([]byte, 20<<10)
	for i := range n {
		k := fmt.Sprintf("http://x/p%d", i)
		s.ents = append(s.ents, &entry{rec: &store.Record{Key: k, Body: body}})
		s.hks = append(s.hks, appendHotKey(nil, k, ""))
	}
	return s
}

// read reads key i and reports whether it came from memory.
func (s *hotSim) read(i int) bool {
	if s.h.get(s.hks[i], s.now) != nil {
		return true
	}
	s.h.put(s.h.before(s.hks[i]), s.hks[i], s.ents[i], s.now)
	return false
}

func (s *hotSim) resident(i int) bool {
	sh, x := s.h.hash(s.hks[i])
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	return sh.find(x, s.hks[i]) != nil
}

func (st hotStats) offers() uint64 {
	return st.admitted + st.firstSeen + st.frequency + st.stale + st.tooLarge
}

// A uniform scan over ten times the tier's capacity cannot raise the hit
// ratio by admitting: once the tier is full, it must not churn (each
// admission an eviction and a 20 KB copy kept until it is evicted).
func TestMemoryTier_UniformScanAdmitsFew(t *testing.T) {
	const max = 16 << 20 // about 770 entries of 20 KB
	s := newHotSim(t, max, 8000)
	for range 2 { // two passes: the tier fills (second sightings, room)
		for i := range s.ents {
			s.read(i)
		}
	}
	c0 := s.h.counters()
	if c0.bytes > max || c0.entries < 500 {
		t.Fatalf("after two passes: %+v; want the tier full", c0)
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 100_000 {
		s.read(rnd.IntN(len(s.ents)))
	}
	c1 := s.h.counters()
	offers, admitted, evicted := c1.offers()-c0.offers(), c1.admitted-c0.admitted, c1.evicted-c0.evicted
	t.Logf("uniform over 8000 keys, tier of %d: %d store reads, %d admitted, %d evicted", c1.entries, offers, admitted, evicted)
	if offers < 80_000 {
		t.Fatalf("%d store reads of 100,000: the tier holds more than it should", offers)
	}
	if admitted > offers/10 {
		t.Fatalf("%d of %d store reads admitted: the tier churns under a scan", admitted, offers)
	}
	if evicted > admitted || c1.bytes > max {
		t.Fatalf("%+v", c1)
	}
	// An offer the tier refuses allocates nothing (the key string is made
	// for an admitted entry alone): reads of a scan, nearly all refused,
	// allocate far less than one object each.
	// (testing.AllocsPerRun rounds down to whole allocations per run.)
	const reads = 20_000
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	for range reads {
		s.read(rnd.IntN(len(s.ents)))
	}
	runtime.ReadMemStats(&m1)
	if allocs := float64(m1.Mallocs-m0.Mallocs) / reads; allocs > 0.5 {
		t.Errorf("%.2f allocations per read of the scan, want well under 1", allocs)
	}
}

// A small hot set read among a uniform scan displaces scan entries and
// stays; one-hit wonders (and keys read twice) never displace it.
func TestMemoryTier_HotSetAmongScanStays(t *testing.T) {
	const max, hot = 16 << 20, 100 // ~770 entries; the hot set is keys 0..99
	s := newHotSim(t, max, 8000)
	for range 2 {
		for i := hot; i < len(s.ents); i++ { // the tier fills with scan keys
			s.read(i)
		}
	}
	rnd := rand.New(rand.NewPCG(3, 4))
	for i := range 100_000 {
		if i%4 == 0 {
			s.read(rnd.IntN(hot)) // each hot key: about 1 read in 400
		} else {
			s.read(hot + rnd.IntN(len(s.ents)-hot)) // each scan key: 1 in 10,500
		}
	}
	missing := 0
	for i := range hot {
		if !s.resident(i) {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d hot keys not in memory after 25,000 hot reads among 75,000 scan reads", missing, hot)
	}
	c0 := s.h.counters()
	// One-hit wonders never displace the hot set, and are admitted only
	// by the doorkeeper's false positives (a Bloom filter: about 1% when
	// its window is full) that then also beat the victim.
	for i := range 20_000 {
		k := fmt.Sprintf("http://x/once%d", i)
		hk := appendHotKey(nil, k, "")
		if s.h.get(hk, s.now) == nil {
			s.h.put(s.h.before(hk), hk, &entry{rec: &store.Record{Key: k, Body: s.ents[0].rec.Body}}, s.now)
		}
	}
	if c1 := s.h.counters(); c1.admitted-c0.admitted > 20 {
		t.Fatalf("%d of 20,000 one-hit wonders admitted", c1.admitted-c0.admitted)
	}
	for i := range hot {
		if !s.resident(i) {
			t.Fatalf("hot key %d displaced by one-hit wonders", i)
		}
	}
	// Keys read twice each (a second scan of new pages, interleaved with
	// the hot set's reads) may displace scan entries, never the hot set.
	for i := range 4000 {
		k := fmt.Sprintf("http://x/twice%d", i)
		hk := appendHotKey(nil, k, "")
		e := &entry{rec: &store.Record{Key: k, Body: s.ents[0].rec.Body}}
		for range 2 {
			if s.h.get(hk, s.now) == nil {
				s.h.put(s.h.before(hk), hk, e, s.now)
			}
		}
		s.read(rnd.IntN(hot))
	}
	for i := range hot {
		if !s.resident(i) {
			t.Fatalf("hot key %d displaced by keys read twice", i)
		}
	}
}

// The sketch counts to 15 and halves on reset; the doorkeeper takes the
// first sighting.
func TestHotSketch(t *testing.T) {
	var s hotSketch
	s.init(64)
	const x = 0x12345678abcdef
	if s.estimate(x) != 0 {
		t.Fatal("fresh sketch estimates nonzero")
	}
	s.record(x)
	if got := s.estimate(x); got != 1 {
		t.Fatalf("after one sighting: %d, want 1 (the doorkeeper)", got)
	}
	for range 30 {
		s.record(x)
	}
	if got := s.estimate(x); got != 16 {
		t.Fatalf("after 31 records: %d, want 16 (15 and the doorkeeper)", got)
	}
	if !s.recordHit(x) {
		t.Fatal("recordHit of a saturated key reports it not saturated")
	}
	s.reset()
	if s.recordHit(x) {
		t.Fatal("recordHit after a reset reports the halved counters saturated")
	}
	s.reset()
	if got := s.estimate(x); got != 4 {
		t.Fatalf("after two resets and a hit: %d, want 4 (15 halved to 7, +1, halved to 4, doorkeeper cleared)", got)
	}
	if allocs := testing.AllocsPerRun(100, func() { s.record(x) }); allocs != 0 {
		t.Fatalf("record allocates %v", allocs)
	}
}

// The memory tier's metrics report its entries and every store read's
// admission decision.
func TestMemoryTier_Metrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	r := newRig(t, hotPage, func(c *Config) { c.Registerer = reg })
	for range 4 { // miss; store read (first seen); store read (admitted); memory
		r.Get("/a")
	}
	want := map[string]float64{
		"firstrender_memory_entries":                               1,
		"firstrender_memory_admissions_total":                      1,
		"firstrender_memory_evictions_total":                       0,
		`firstrender_memory_rejections_total{reason="first_seen"}`: 1,
		`firstrender_memory_rejections_total{reason="frequency"}`:  0,
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += `{` + l.GetName() + `="` + l.GetValue() + `"}`
			}
			switch {
			case m.Gauge != nil:
				got[name] = m.Gauge.GetValue()
			case m.Counter != nil:
				got[name] = m.Counter.GetValue()
			}
		}
	}
	for name, v := range want {
		if g, ok := got[name]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", name, g, ok, v)
		}
	}
	if got["firstrender_memory_bytes"] < float64(len("page /a")) {
		t.Errorf("firstrender_memory_bytes = %v", got["firstrender_memory_bytes"])
	}
}

// Hits count in the sketch without the shard's write lock while store
// reads record, reset and decide admission under it (run with -race).
func TestMemoryTier_ConcurrentHitsAndAdmissions(t *testing.T) {
	s := newHotSim(t, 4<<20, 2000)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(g), 9))
			for range 20_000 {
				if g == 0 {
					s.read(rnd.IntN(20)) // a hot set, mostly hits
				} else {
					s.read(rnd.IntN(len(s.ents)))
				}
			}
		})
	}
	wg.Wait()
	st := s.h.counters()
	if st.bytes > 4<<20 || st.offers() == 0 || st.admitted < uint64(st.entries) {
		t.Fatalf("%+v", st)
	}
}

// The tier's map is keyed by the hot key's hash; an entry is found,
// invalidated and replaced only under its own key. Two keys of one hash
// are simulated by moving key 0's entry into key 1's slot.
func TestMemoryTier_HashSlotChecksKey(t *testing.T) {
	s := newHotSim(t, 64<<20, 2)
	for range 2 {
		s.read(0)
	}
	if !s.read(0) {
		t.Fatal("key 0 not admitted")
	}
	sh0, x0 := s.h.hash(s.hks[0])
	sh1, x1 := s.h.hash(s.hks[1])
	sh0.mu.Lock()
	he := sh0.m[x0]
	sh0.remove(he)
	sh0.mu.Unlock()
	sh1.mu.Lock()
	he.hash, he.idx = x1, len(sh1.ring)
	sh1.ring = append(sh1.ring, he)
	if sh1.m == nil {
		sh1.m = map[uint64]*hotEntry{}
	}
	sh1.m[x1] = he
	sh1.bytes += he.size
	sh1.mu.Unlock()
	if s.h.get(s.hks[1], s.now) != nil {
		t.Fatal("key 1 got key 0's entry from its slot")
	}
	s.h.invalidate(string(s.hks[1]))
	sh1.mu.RLock()
	kept := sh1.m[x1] == he
	sh1.mu.RUnlock()
	if !kept {
		t.Fatal("invalidating key 1 dropped key 0's entry")
	}
	// Key 1 admitted into its slot replaces (evicts) the other key's entry.
	ev := s.h.counters().evicted
	for range 2 {
		s.read(1)
	}
	if !s.read(1) || !s.resident(1) {
		t.Fatal("key 1 not admitted over the other key's entry")
	}
	if c := s.h.counters(); c.evicted != ev+1 || c.entries != 1 {
		t.Fatalf("after the replacement: %+v; want one eviction and one entry", c)
	}
}
