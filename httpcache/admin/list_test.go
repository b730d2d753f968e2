package admin

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/firstrender/firstrender/store"
)

const bulkN = 100_000

// listFunc is one GET entries call: through the client, or the handler's
// lister directly (the same code without HTTP and JSON, which dominate
// under -race when paging 100,000 entries many times).
type listFunc func(context.Context, ListQuery) (Page, error)

// pageAll pages forward from the start with q, and returns the keys.
func pageAll(t *testing.T, list listFunc, q ListQuery) []string {
	t.Helper()
	var keys []string
	for calls := 0; ; calls++ {
		if calls > 2*bulkN {
			t.Fatal("paging does not end")
		}
		p, err := list(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		if p.Scanned > 10000 {
			t.Fatalf("one call scanned %d records, over the budget", p.Scanned)
		}
		for _, e := range p.Items {
			keys = append(keys, e.Key)
		}
		if p.Done {
			if p.Next != "" {
				t.Fatalf("done page has next %q", p.Next)
			}
			return keys
		}
		if p.Next == "" {
			t.Fatal("page neither done nor has next")
		}
		q.After = p.Next
	}
}

// pageBack pages backward from the end with q, and returns the keys in key order.
func pageBack(t *testing.T, list listFunc, q ListQuery) []string {
	t.Helper()
	var rev [][]string
	q.Last = true
	for calls := 0; ; calls++ {
		if calls > 2*bulkN {
			t.Fatal("paging does not end")
		}
		p, err := list(context.Background(), q)
		if err != nil {
			t.Fatalf("%+v: %v", q, err)
		}
		if p.Scanned > 10000 {
			t.Fatalf("one call scanned %d records, over the budget", p.Scanned)
		}
		var ks []string
		for _, e := range p.Items {
			ks = append(ks, e.Key)
		}
		if !slices.IsSorted(ks) {
			t.Fatalf("backward page not in key order: %v", ks)
		}
		rev = append(rev, ks)
		if p.Done {
			if p.Prev != "" {
				t.Fatalf("done page has prev")
			}
			break
		}
		if p.Prev == "" {
			t.Fatal("page neither done nor has prev")
		}
		q.Last, q.Before = false, p.Prev
	}
	var keys []string
	for i := len(rev) - 1; i >= 0; i-- {
		keys = append(keys, rev[i]...)
	}
	return keys
}

func TestEntries_Paging100k(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 100,000-record store")
	}
	st := bulkStore(t, bulkN)
	ts := newTestServer(t, st, func(c *HandlerConfig) { c.Purger = nil })
	all := make([]int, bulkN)
	for i := range all {
		all[i] = i
	}
	want := func(pred func(i int) bool) []string {
		var ks []string
		for _, i := range all {
			if pred(i) {
				ks = append(ks, bulkKey(i))
			}
		}
		slices.Sort(ks)
		return ks
	}
	direct := func(ctx context.Context, q ListQuery) (Page, error) {
		if err := q.validate(); err != nil {
			return Page{}, err
		}
		return ts.h.list.list(ctx, q)
	}
	cases := []struct {
		name string
		q    ListQuery
		pred func(int) bool
	}{
		{"everything, default limit", ListQuery{Limit: 1000}, func(int) bool { return true }},
		{"prefix", ListQuery{Limit: 1000, Prefix: "https://bulk.test/s3/"}, func(i int) bool { return i%10 == 3 }},
		{"substring", ListQuery{Limit: 500, Contains: "p0123"}, func(i int) bool { return strings.Contains(bulkKey(i), "p0123") }},
		{"tag", ListQuery{Limit: 1000, Tag: "t1"}, func(i int) bool { return i%3 == 1 }},
		{"status class", ListQuery{Limit: 1000, Status: "4xx"}, func(i int) bool { return i%7 == 0 }},
		{"status code", ListQuery{Limit: 1000, Status: "200"}, func(i int) bool { return i%7 != 0 }},
		{"findings", ListQuery{Limit: 1000, Findings: true}, func(i int) bool { return i%11 == 0 }},
		{"disabled", ListQuery{Limit: 1000, Disabled: true}, func(i int) bool { return i%13 == 0 }},
		{"combined, small pages", ListQuery{Limit: 37, Prefix: "https://bulk.test/s1", Disabled: true, Status: "2xx"}, func(i int) bool { return i%10 == 1 && i%13 == 0 && i%7 != 0 }},
		{"rare match: budget-bounded calls", ListQuery{Limit: 10, Contains: "p099999"}, func(i int) bool { return strings.Contains(bulkKey(i), "p099999") }},
		{"no match", ListQuery{Limit: 10, Prefix: "https://bulk.test/s1", Contains: "s2"}, func(int) bool { return false }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := want(tc.pred)
			list := listFunc(direct)
			if tc.name == "everything, default limit" || tc.name == "combined, small pages" {
				list = ts.c.List // these two through HTTP and JSON
			}
			if got := pageAll(t, list, tc.q); !slices.Equal(got, w) {
				t.Errorf("forward: %d keys, want %d (first diff near %v)", len(got), len(w), firstDiff(got, w))
			}
			if got := pageBack(t, list, tc.q); !slices.Equal(got, w) {
				t.Errorf("backward: %d keys, want %d (first diff near %v)", len(got), len(w), firstDiff(got, w))
			}
		})
	}
	t.Run("prev of a forward page is the page before", func(t *testing.T) {
		ctx := context.Background()
		p1, err := ts.c.List(ctx, ListQuery{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if p1.Prev != "" {
			t.Errorf("first page has prev")
		}
		p2, _ := ts.c.List(ctx, ListQuery{Limit: 100, After: p1.Next})
		back, err := ts.c.List(ctx, ListQuery{Limit: 100, Before: p2.Prev})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.EqualFunc(back.Items, p1.Items, func(a, b Entry) bool { return a.Key == b.Key }) {
			t.Errorf("before=page2.prev gave %d items starting %q, want page 1", len(back.Items), back.Items[0].Key)
		}
		fwd, _ := ts.c.List(ctx, ListQuery{Limit: 100, After: back.Next})
		if fwd.Items[0].Key != p2.Items[0].Key {
			t.Errorf("after=back.next starts at %q, want %q", fwd.Items[0].Key, p2.Items[0].Key)
		}
		if p1.ApproxTotal != bulkN {
			t.Errorf("approx_total = %d, want %d", p1.ApproxTotal, bulkN)
		}
	})
	t.Run("last page", func(t *testing.T) {
		p, err := ts.c.List(context.Background(), ListQuery{Limit: 10, Last: true})
		if err != nil {
			t.Fatal(err)
		}
		w := want(func(int) bool { return true })
		if got := keysOf(p.Items); !slices.Equal(got, w[len(w)-10:]) {
			t.Errorf("last page = %v, want %v", got, w[len(w)-10:])
		}
		if p.Next != "" || p.Prev == "" {
			t.Errorf("last page next=%q prev=%q", p.Next, p.Prev)
		}
	})
	t.Run("iterator", func(t *testing.T) {
		n := 0
		for e, err := range ts.c.Entries(context.Background(), ListQuery{Limit: 1000, Prefix: "https://bulk.test/s7/"}) {
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(e.Key, "https://bulk.test/s7/") {
				t.Fatalf("iterator gave %q", e.Key)
			}
			n++
		}
		if n != bulkN/10 {
			t.Errorf("iterator gave %d entries, want %d", n, bulkN/10)
		}
	})
}

func keysOf(es []Entry) []string {
	var ks []string
	for _, e := range es {
		ks = append(ks, e.Key)
	}
	return ks
}

func firstDiff(a, b []string) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("index %d: %.80q vs %.80q", i, a[i], b[i])
		}
	}
	return fmt.Sprintf("length %d vs %d", len(a), len(b))
}

// exact returns the stored bytes of e's key and variant.
func exact(t *testing.T, e Entry) string {
	k, v := e.Key, e.Variant
	if e.KeyBase64 != "" {
		b, err := base64.StdEncoding.DecodeString(e.KeyBase64)
		if err != nil {
			t.Fatal(err)
		}
		k = string(b)
	}
	if e.VariantBase64 != "" {
		b, err := base64.StdEncoding.DecodeString(e.VariantBase64)
		if err != nil {
			t.Fatal(err)
		}
		v = string(b)
	}
	return recPos(k, v)
}

// Keys with any byte (but NUL), variants, and keys that are prefixes of
// each other page correctly both ways with every limit.
func TestEntries_HostileKeys(t *testing.T) {
	st := newTestStore(t)
	var recs []*store.Record
	keys := []string{"a", "a\x01", "a\xff", "ab", "a/b", "\xff\xff", "\x01", "b", "b\xff\xfe", "é", "a%00", strings.Repeat("z", 5000)}
	var want []string
	for _, k := range keys {
		for _, v := range []string{"", "v1", "v\xff"} {
			recs = append(recs, &store.Record{Key: k, Variant: v, Status: 200, Body: []byte("x")})
			want = append(want, recPos(k, v))
		}
	}
	put(t, st, recs)
	slices.Sort(want)
	ts := newTestServer(t, st, nil)
	for _, limit := range []int{1, 2, 3, 5, 7, 1000} {
		var got []string
		for e, err := range ts.c.Entries(context.Background(), ListQuery{Limit: limit}) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, exact(t, e))
		}
		if !slices.Equal(got, want) {
			t.Errorf("limit %d forward: %s", limit, firstDiff(got, want))
		}
		// Backward.
		var rev []string
		q := ListQuery{Limit: limit, Last: true}
		for range 100 {
			p, err := ts.c.List(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			var ks []string
			for _, e := range p.Items {
				ks = append(ks, exact(t, e))
			}
			rev = append(ks, rev...)
			if p.Done {
				break
			}
			q = ListQuery{Limit: limit, Before: p.Prev}
		}
		if !slices.Equal(rev, want) {
			t.Errorf("limit %d backward: %s", limit, firstDiff(rev, want))
		}
	}
}

func TestEntries_EmptyAndEnds(t *testing.T) {
	st := newTestStore(t)
	ts := newTestServer(t, st, nil)
	ctx := context.Background()
	for _, q := range []ListQuery{{}, {Last: true}, {Prefix: "x", Tag: "t"}} {
		p, err := ts.c.List(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Items) != 0 || !p.Done || p.Next != "" || p.Prev != "" || p.Items == nil {
			t.Errorf("empty store %+v: %+v", q, p)
		}
	}
	put(t, st, []*store.Record{{Key: "k1", Status: 200}, {Key: "k2", Status: 200}})
	p, _ := ts.c.List(ctx, ListQuery{Limit: 2})
	if !p.Done || len(p.Items) != 2 {
		t.Errorf("exactly one full page: %+v", p)
	}
	// An empty backward page still leads forward to where it was.
	p1, _ := ts.c.List(ctx, ListQuery{Limit: 1})
	if p1.Prev != "" {
		t.Errorf("first page prev %q", p1.Prev)
	}
	first, _ := ts.c.List(ctx, ListQuery{Limit: 1, After: p1.Next})
	none, err := ts.c.List(ctx, ListQuery{Limit: 1, Before: first.Prev, Status: "5xx"})
	if err != nil || len(none.Items) != 0 || !none.Done {
		t.Fatalf("filtered backward page: %+v %v", none, err)
	}
	again, _ := ts.c.List(ctx, ListQuery{Limit: 5, After: none.Next})
	if got := keysOf(again.Items); !slices.Equal(got, []string{"k2"}) {
		t.Errorf("after the empty backward page's next: %v, want [k2]", got)
	}
}

func TestEntries_BadQueries(t *testing.T) {
	ts := newTestServer(t, newTestStore(t), nil)
	for _, q := range []string{
		"limit=1001", "limit=-1", "limit=x", "after=zzz", "after=c", "before=g" + encodeCursor("k\x00")[1:],
		"after=" + encodeCursor("k\x00") + "&before=" + encodeCursor("k\x00"), "status=6xx", "status=20", "status=2000",
		"prefix=" + strings.Repeat("p", MaxPrefix+1), "prefix=%00", "findings=maybe", "bogus=1", "limit=1&limit=2",
		"after=" + encodeCursor("nokey"), "after=c" + "%2B%2B",
	} {
		resp := ts.do(t, "GET", "/admin/v1/entries?"+q, "")
		var e Error
		decodeJSON(t, resp, &e)
		if resp.StatusCode != 400 || e.Code != "bad_request" || e.Message == "" {
			t.Errorf("GET entries?%s = %d %+v, want 400 bad_request", q, resp.StatusCode, e)
		}
	}
}

func TestEntries_ItemFields(t *testing.T) {
	st := newTestStore(t)
	na := testNow.Add(30 * time.Second)
	put(t, st, []*store.Record{{
		Key: "https://a.test/x", Variant: "accept-language=de", Status: 200,
		Body: []byte("hello"), ResponseTime: testNow.Add(-100 * time.Second), StoredTime: testNow.Add(-90 * time.Second),
		Tags: []string{"a", "b"},
		Annotations: map[string]string{
			annPolicy: "lifetime=60 age=10 swr=0 sie=0 flags=", annVary: "Accept-Language",
			annNotAfter: na.Format(time.RFC3339Nano), annDisabled: "join-refused",
			annFindings: `[{"kind":"user-session","severity":"error","action":"allow","message":"m"}]`,
		},
	}})
	hits := func(k, v string) (int64, bool) { return 7, k == "https://a.test/x" }
	ts := newTestServer(t, st, func(c *HandlerConfig) { c.Hits = hits })
	p, err := ts.c.List(context.Background(), ListQuery{})
	if err != nil || len(p.Items) != 1 {
		t.Fatal(p, err)
	}
	e := p.Items[0]
	wantExp := testNow.Add(-100 * time.Second).Add(50 * time.Second)
	switch {
	case e.AgeS != 110:
		t.Errorf("age_s = %d, want 110 (initial 10 + resident 100)", e.AgeS)
	case e.Expires == nil || !e.Expires.Equal(wantExp):
		t.Errorf("expires = %v, want %v", e.Expires, wantExp)
	case !e.Stale:
		t.Errorf("not stale at age 110 of lifetime 60")
	case e.NotAfter == nil || !e.NotAfter.Equal(na):
		t.Errorf("not_after = %v, want %v", e.NotAfter, na)
	case e.Disabled != "join-refused" || !slices.Equal(e.Findings, []string{"user-session"}) || !slices.Equal(e.Vary, []string{"Accept-Language"}):
		t.Errorf("item %+v", e)
	case e.Hits != 7 || e.Size <= 0 || e.BodySize != 5 || !slices.Equal(e.Tags, []string{"a", "b"}):
		t.Errorf("item %+v", e)
	}
}

// apiErr returns err as *Error, or nil.
func apiErr(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}
