package httpcache

import (
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
