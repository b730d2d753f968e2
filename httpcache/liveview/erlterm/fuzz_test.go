package erlterm

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func corpusFromFixtures(f *testing.F) {
	for _, dir := range []string{"seed", "hostile"} {
		files, _ := filepath.Glob(filepath.Join("../../../fixtures/liveview", dir, "*.token"))
		for _, fn := range files {
			b, err := os.ReadFile(fn)
			if err != nil {
				f.Fatal(err)
			}
			parts := strings.Split(strings.TrimSpace(string(b)), ".")
			if len(parts) != 3 {
				continue
			}
			if p, err := base64.RawURLEncoding.DecodeString(parts[1]); err == nil && len(p) < 8192 {
				f.Add(p)
			}
		}
	}
	f.Add(newFunBytes())
}

// FuzzDecode: never panics; errors are *DecodeError wrapping a sentinel
// with an offset inside the input; a decoded term encodes, and the
// encoding decodes to an equal term (encode∘decode is idempotent).
func FuzzDecode(f *testing.F) {
	corpusFromFixtures(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		start := time.Now()
		defer func() {
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("input took %v", d)
			}
		}()
		term, err := Decode(in)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %v is not a *DecodeError", err)
			}
			if !de.Compressed && (de.Offset < 0 || de.Offset > len(in)) {
				t.Fatalf("offset %d outside input of %d bytes", de.Offset, len(in))
			}
			return
		}
		_ = Format(term)
		_ = JSON(term)
		enc, err := Encode(term)
		if err != nil {
			if errors.Is(err, ErrUnsupported) {
				return // e.g. a latin-1 atom of 255 bytes that is longer in UTF-8
			}
			t.Fatalf("Encode: %v", err)
		}
		back, err := Decode(enc)
		if err != nil {
			t.Fatalf("Decode(Encode(term)) = %v", err)
		}
		if !Equal(term, back) {
			t.Fatalf("round trip changed the term: %v vs %v", term, back)
		}
		enc2, err := Encode(back)
		if err != nil || string(enc2) != string(enc) {
			t.Fatalf("encoding not stable")
		}
	})
}
