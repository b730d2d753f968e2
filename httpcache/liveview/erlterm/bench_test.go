package erlterm

import (
	"encoding/base64"
	"os"
	"strings"
	"testing"
)

// BenchmarkDecode_SeedSession decodes the term in the seed's
// data-phx-session token.
func BenchmarkDecode_SeedSession(b *testing.B) {
	raw, err := os.ReadFile("../../../fixtures/liveview/seed/session_atom_ext.token")
	if err != nil {
		b.Fatal(err)
	}
	p, err := base64.RawURLEncoding.DecodeString(strings.Split(strings.TrimSpace(string(raw)), ".")[1])
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		if _, err := Decode(p); err != nil {
			b.Fatal(err)
		}
	}
}
