package hop

import (
	"net/http"
	"slices"
	"testing"
)

// TestAppendVia: RFC 9110 §7.6.3 — the member goes after those already
// there, with the received protocol's version, as one field line; the
// caller's value slices are never written.
func TestAppendVia(t *testing.T) {
	for _, tc := range []struct {
		name         string
		prior        []string
		major, minor int
		pseudonym    string
		want         []string
	}{
		{"none before", nil, 1, 1, "firstrender", []string{"1.1 firstrender"}},
		{"HTTP/1.0", nil, 1, 0, "firstrender", []string{"1.0 firstrender"}},
		{"HTTP/2", nil, 2, 0, "firstrender", []string{"2.0 firstrender"}},
		{"HTTP/3", nil, 3, 0, "firstrender", []string{"3.0 firstrender"}},
		{"appended", []string{"1.0 fred, 1.1 p.example.net"}, 1, 1, "edge", []string{"1.0 fred, 1.1 p.example.net, 1.1 edge"}},
		{"field lines joined", []string{"1.0 a", "1.1 b"}, 1, 1, "c", []string{"1.0 a, 1.1 b, 1.1 c"}},
		{"empty pseudonym: untouched", []string{"1.1 a"}, 1, 1, "", []string{"1.1 a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			var orig []string
			if tc.prior != nil {
				orig = slices.Clone(tc.prior)
				h["Via"] = tc.prior
			}
			AppendVia(h, tc.major, tc.minor, tc.pseudonym)
			if got := h["Via"]; !slices.Equal(got, tc.want) {
				t.Errorf("Via = %q, want %q", got, tc.want)
			}
			if !slices.Equal(tc.prior, orig) {
				t.Errorf("the prior slice was written: %q", tc.prior)
			}
		})
	}
}

func TestIsToken(t *testing.T) {
	for s, want := range map[string]bool{
		"firstrender": true, "edge-1": true, "-": true, "!#$%&'*+-.^_`|~": true, "Max-Forwards": true,
		"": false, "a b": false, "host:8080": false, `"q"`: false, "a/b": false, "é": false, "a\x00": false,
	} {
		if got := IsToken(s); got != want {
			t.Errorf("IsToken(%q) = %v, want %v", s, got, want)
		}
	}
}
