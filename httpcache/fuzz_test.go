package httpcache

import (
	"net/http"
	"testing"
	"time"
)

// FuzzHeaderParsing covers the other parsers of outside input: Vary and
// variant keys, conditional requests and the stored policy annotation
// (Connection and Upgrade: hop.FuzzConnection).
func FuzzHeaderParsing(f *testing.F) {
	for _, s := range [][3]string{
		{"Accept-Encoding, X-Theme", "gzip, br", "dark"},
		{"*", "", ""},
		{" , accept ,,", "text/html;q=0.9, */*", "a&b=c"},
		{"keep-alive, Upgrade, X-Secret", `"e1", W/"e2"`, "Thu, 01 Jan 2026 00:00:00 GMT"},
		{"lifetime=60 age=0 swr=0 sie=0 flags=no-cache", "lifetime=-1", "flags=,,"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, a, b, c string) {
		// Vary and variants.
		names, star := parseVary(http.Header{"Vary": {a}})
		if star && names != nil {
			t.Fatalf("parseVary(%q) = %v with star", a, names)
		}
		if vs := varyStar(http.Header{"Vary": {a, b}}); vs != (star || func() bool { _, s := parseVary(http.Header{"Vary": {b}}); return s }()) {
			t.Fatalf("varyStar(%q, %q) = %v, parseVary disagrees", a, b, vs)
		}
		h1 := http.Header{}
		h2 := http.Header{}
		for _, n := range names {
			h1[n] = []string{b}
			h2[n] = []string{c}
		}
		k1, k2 := variantKey(names, h1), variantKey(names, h2)
		if k1 != variantKey(names, h1.Clone()) {
			t.Fatalf("variantKey not deterministic")
		}
		if len(names) > 0 && len(k1) < 512 && len(k2) < 512 {
			same := true
			for _, n := range names {
				fold := caseInsensitiveVary[n]
				if normalizeVaryValue([]string{b}, fold) != normalizeVaryValue([]string{c}, fold) {
					same = false
				}
			}
			if same != (k1 == k2) {
				t.Fatalf("variantKey(%v): values %q and %q give keys %q and %q", names, b, c, k1, k2)
			}
		}
		// Conditionals never panic.
		_ = notModified(http.Header{"If-None-Match": {b}, "If-Modified-Since": {c}}, http.Header{"Etag": {c}, "Last-Modified": {b}}, time.Time{})
		// Stored policy annotations: never panic, and what decodes re-encodes.
		if p, ok := decodePolicy(a); ok {
			if back, ok2 := decodePolicy(p.encode()); !ok2 || back != p {
				t.Fatalf("policy %q: %+v re-decodes as %+v", a, p, back)
			}
		}
	})
}

// FuzzEncodeBlock holds encodeBlock to net/http's own encoding of the
// same fields (Header.Write) for any names and values an origin's
// response could have stored: a value written differently would be a
// response net/http would never send (or a field line split in two).
func FuzzEncodeBlock(f *testing.F) {
	f.Add("Content-Type", "text/html", "X-Multi", "a\r\nInjected: yes")
	f.Add("Bad Name", "  padded\t", "x-lower", "\n")
	f.Add("", "", "Age", "3")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		switch k1 {
		case "Connection", "Transfer-Encoding", "Trailer":
			return
		}
		switch k2 {
		case "Connection", "Transfer-Encoding", "Trailer":
			return
		}
		h := http.Header{}
		h[k1] = append(h[k1], v1)
		h[k2] = append(h[k2], v2)
		if got, want := string(encodeBlock(nil, fieldsOf(h))), netHTTPBlock(h); got != want {
			t.Fatalf("encodeBlock(%q):\n%q\nnet/http:\n%q", h, got, want)
		}
	})
}
