package admin

import (
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// FuzzCursor: any string either decodes to a position holding a NUL
// (and re-encodes to itself) or is refused with a 400; never a panic.
func FuzzCursor(f *testing.F) {
	for _, s := range []string{"", "c", "g", encodeCursor("k\x00"), encodeCursor("https://a/x\x00gzip"), encodeCursorFrom("\xff\x00\xff"),
		"c" + strings.Repeat("A", 100), "cAAA=", "x" + encodeCursor("k\x00")[1:], "c-_-_", encodeCursor("\x00")} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, c string) {
		pos, incl, err := decodeCursor(c)
		if err != nil {
			e := apiErr(err)
			if e == nil || e.Status != 400 || e.Code != "bad_request" {
				t.Fatalf("decodeCursor(%q) error %v is not a 400", c, err)
			}
			return
		}
		if i := strings.IndexByte(pos, 0); i <= 0 {
			t.Fatalf("decodeCursor(%q) = %q: no key before the NUL", c, pos)
		}
		re := encodeCursor(pos)
		if incl {
			re = encodeCursorFrom(pos)
		}
		if p2, i2, err := decodeCursor(re); err != nil || p2 != pos || i2 != incl {
			t.Fatalf("round trip of %q: %q %v %v", pos, p2, i2, err)
		}
	})
}

// FuzzListQuery: any query string parses to a valid ListQuery or a 400;
// a valid one survives Values and parses back equal.
func FuzzListQuery(f *testing.F) {
	for _, s := range []string{"", "limit=10", "after=" + encodeCursor("k\x00") + "&prefix=https://a/", "status=4xx&findings=1&disabled=true",
		"last=1&tag=t&contains=x", "limit=1001", "before=" + encodeCursor("a\x00b"), "status=404", "a=%zz", "prefix=%00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := ParseListQuery(v)
		if err != nil {
			if e := apiErr(err); e == nil || e.Status != 400 {
				t.Fatalf("ParseListQuery(%q) error %v is not a 400", raw, err)
			}
			return
		}
		q2, err := ParseListQuery(q.Values())
		if err != nil {
			t.Fatalf("re-parse of %+v: %v", q, err)
		}
		if q.Limit == 0 && q2.Limit == 0 {
			q2.Limit = q.Limit
		}
		if !reflect.DeepEqual(q, q2) {
			t.Fatalf("round trip: %+v != %+v", q, q2)
		}
	})
}

// FuzzPurgeRequest: selectorOf never panics and accepts only requests
// with exactly one bounded selector (All only when confirmed).
func FuzzPurgeRequest(f *testing.F) {
	f.Add("k", "", "", false, "", 0)
	f.Add("", "p", "", false, "", 1)
	f.Add("", "", "", true, "all", 0)
	f.Add("", "", "t\x00", false, "", 2)
	f.Fuzz(func(t *testing.T, key, prefix, tag string, all bool, confirm string, nkeys int) {
		req := PurgeRequest{Key: key, Prefix: prefix, Tag: tag, All: all, Confirm: confirm}
		for i := range nkeys % 5 {
			req.Keys = append(req.Keys, key+string(rune('a'+i)))
		}
		sel, err := selectorOf(&req, nil)
		if err != nil {
			if apiErr(err) == nil {
				t.Fatalf("selectorOf error %v is not an *Error", err)
			}
			return
		}
		n := 0
		for _, on := range []bool{sel.Key != "", len(sel.Keys) > 0, sel.Prefix != "", sel.Tag != "", sel.All} {
			if on {
				n++
			}
		}
		if n != 1 || sel.All && confirm != "all" || len(sel.Prefix) > MaxPrefix || strings.ContainsRune(sel.Key+sel.Prefix+sel.Tag, 0) {
			t.Fatalf("selectorOf(%+v) accepted %+v", req, sel)
		}
	})
}
