package httpcache

import (
	"net/http"
	"net/textproto"
	"strings"
	"testing"
)

// FuzzSpliceHeaders covers the splice's parsers of outside input: the
// request's Cookie lines (hasCookie, removeCookie) and the stored
// Cache-Control rewritten for one visitor. Properties: no panic; after
// removeCookie the cookie is gone and the others stay, in order;
// privateCacheControl starts with private, keeps no shared-cache
// directive and is stable (f(f(x)) == f(x)).
func FuzzSpliceHeaders(f *testing.F) {
	for _, s := range [][3]string{
		{"_my_app_key=SFMyNTY.abc.def; theme=dark", "_my_app_key", "public, s-maxage=600, max-age=0"},
		{"a=1;_k=2;  _k=3", "_k", `no-cache="Set-Cookie, X", public`},
		{"_k", "_k", "private=\"a,b\", max-age=5, proxy-revalidate"},
		{";;=;", "", `s-maxage="1,2", , ,`},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, cookie, name, cc string) {
		if name == "" || strings.ContainsAny(name, "=; \t") {
			return // not a cookie name (the Splicer refuses those)
		}
		h := http.Header{"Cookie": {cookie}}
		had := hasCookie(h["Cookie"], name)
		if removeCookie(h, name) != had {
			t.Fatalf("removeCookie(%q, %q) disagrees with hasCookie", cookie, name)
		}
		if hasCookie(h["Cookie"], name) {
			t.Fatalf("removeCookie(%q, %q) left %q", cookie, name, h["Cookie"])
		}
		if had {
			var want []string
			for kv := range strings.SplitSeq(cookie, ";") {
				k, _, _ := strings.Cut(kv, "=")
				if textproto.TrimString(k) != name && strings.TrimSpace(kv) != "" {
					want = append(want, strings.TrimSpace(kv))
				}
			}
			if got := strings.Join(h["Cookie"], "; "); got != strings.Join(want, "; ") {
				t.Fatalf("removeCookie(%q, %q) = %q, want %q", cookie, name, got, strings.Join(want, "; "))
			}
		}
		p := privateCacheControl([]string{cc})
		if !strings.HasPrefix(p, "private") {
			t.Fatalf("privateCacheControl(%q) = %q", cc, p)
		}
		for _, d := range splitDirectives(p)[1:] {
			n, _, _ := strings.Cut(d, "=")
			switch strings.ToLower(strings.TrimSpace(n)) {
			case "public", "private", "s-maxage", "proxy-revalidate":
				t.Fatalf("privateCacheControl(%q) = %q keeps %q", cc, p, d)
			}
		}
		if again := privateCacheControl([]string{p}); again != p {
			t.Fatalf("privateCacheControl not stable: %q → %q → %q", cc, p, again)
		}
	})
}
