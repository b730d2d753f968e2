package hop

import (
	"net/http"
	"net/textproto"
	"strings"
	"testing"
)

// FuzzConnection checks the Connection / Upgrade rules on outside input:
// no panic, an upgrade only with the Connection token, and nothing
// hop-by-hop (or nominated) left after Remove.
func FuzzConnection(f *testing.F) {
	for _, s := range [][3]string{
		{"keep-alive, Upgrade, X-Secret", "websocket", "timeout=5"},
		{"Upgrade", "h2c", ""},
		{" , ,\t", "", ""},
		{"upgrade-insecure", "websocket", "x"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, a, b, c string) {
		h := http.Header{"Connection": {a}, "Upgrade": {b}, "Keep-Alive": {c}, "X-Kept": {"1"}}
		var nominated []string
		for f := range strings.SplitSeq(a, ",") {
			if f = textproto.TrimString(f); f != "" && http.CanonicalHeaderKey(f) != "X-Kept" {
				h[http.CanonicalHeaderKey(f)] = []string{"x"}
				nominated = append(nominated, http.CanonicalHeaderKey(f))
			}
		}
		up := UpgradeType(h)
		if up != "" && !HasToken(h, "Connection", "upgrade") {
			t.Fatalf("UpgradeType without the Connection token: %q", up)
		}
		Remove(h)
		for _, k := range append(hopHeaders, nominated...) {
			if _, ok := h[k]; ok {
				t.Fatalf("Remove left %s (Connection %q)", k, a)
			}
		}
	})
}
