package httpcache

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/firstrender/firstrender/store"
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
	sh := r.Proxy.hot.shard(hk)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	return sh.m[string(hk)] != nil
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

// hitHeader builds Age and Cache-Status once per second of age in three
// allocations (the values and their holder), shares them within that
// second, and hands out slices an Add cannot write through.
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
	}); allocs > 3 {
		t.Fatalf("%v allocations per new second, want at most 3", allocs)
	}
}
