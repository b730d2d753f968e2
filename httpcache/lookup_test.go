package httpcache

import (
	"slices"
	"strconv"
	"testing"

	"github.com/firstrender/firstrender/store"
)

// The cold lookup takes every shard's ticket before its store read
// (beforeAll) and picks the variant's afterwards (ticketFor): a copy read
// before an invalidation of its key must still be refused after it, and
// one read with no invalidation in between admitted as with before.
func TestMemoryTier_AllTicketsRefuseStaleInsert(t *testing.T) {
	st := newTestStoreForHot(t)
	var h hotCache
	h.init(1<<20, st)
	e := &entry{rec: &store.Record{Key: "http://x/a", Variant: "v", Body: []byte("old")}}
	hk := appendHotKey(nil, "http://x/a", "v")
	var ts hotTickets
	for range 2 { // admitted on the second offer
		h.beforeAll(&ts)
		if got, want := h.ticketFor(&ts, hk), h.before(hk); got != want {
			t.Fatalf("ticketFor = %+v, before = %+v", got, want)
		}
		h.put(h.ticketFor(&ts, hk), hk, e, timeNow())
	}
	if h.get(hk, timeNow()) == nil {
		t.Fatal("not admitted with tickets from beforeAll")
	}
	h.beforeAll(&ts)
	h.changed(false, []store.RecordKey{{Key: "http://x/a", Variant: "v"}})
	for range 2 {
		h.put(h.ticketFor(&ts, hk), hk, e, timeNow())
	}
	if h.get(hk, timeNow()) != nil {
		t.Fatal("a copy read before the invalidation was inserted after it")
	}
	var off hotCache
	off.init(0, st)
	off.beforeAll(&ts)
	if tk := off.ticketFor(&ts, hk); tk.sh != nil {
		t.Fatal("a ticket from a disabled tier")
	}
}

// Keys whose Vary names are equal share one names slice (so a hit reads
// names other hits keep in cache); each key still gets its own names,
// also past maxVaryLists distinct lists.
func TestVaryMemory_SharesEqualNames(t *testing.T) {
	var v varyMemory
	v.set("a", []string{"Accept-Encoding"})
	v.set("b", []string{"Accept-Encoding"})
	v.set("c", []string{"Accept-Encoding", "Accept-Language"})
	v.set("d", nil)
	a, _ := v.get("a")
	b, _ := v.get("b")
	c, _ := v.get("c")
	d, ok := v.get("d")
	if &a[0] != &b[0] {
		t.Error("equal names are two slices")
	}
	if !slices.Equal(c, []string{"Accept-Encoding", "Accept-Language"}) || &c[0] == &a[0] {
		t.Errorf("c = %q", c)
	}
	if !ok || d == nil || len(d) != 0 {
		t.Errorf("d = %#v, %v: want known, no names", d, ok)
	}
	for i := range 2 * maxVaryLists {
		k := "k" + strconv.Itoa(i)
		v.set(k, []string{"X-" + strconv.Itoa(i)})
	}
	for i := range 2 * maxVaryLists {
		if got, _ := v.get("k" + strconv.Itoa(i)); !slices.Equal(got, []string{"X-" + strconv.Itoa(i)}) {
			t.Errorf("k%d = %q", i, got)
		}
	}
	if len(v.canon) > maxVaryLists {
		t.Errorf("%d lists interned, bound %d", len(v.canon), maxVaryLists)
	}
	if got, _ := v.getBytes([]byte("a")); &got.names[0] != &a[0] || got.key != "a" {
		t.Error("getBytes returned another slice")
	}
}
