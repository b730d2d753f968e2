package liveview

import (
	"testing"
	"time"

	"github.com/firstrender/firstrender/httpcache"
)

// BenchmarkLint_FirstRender20KB lints the 20 KB fixture first render (two
// tokens, one CSRF meta): Lint alone, and Inspect with annotations.
func BenchmarkLint_FirstRender20KB(b *testing.B) {
	page := []byte(readPage(b))
	now := seedSignedAt.Add(time.Hour)
	l := newLinter(b, Config{Policy: map[Kind]Action{KindCSRFMeta: Allow}, Now: func() time.Time { return now }})
	h := htmlHeader()
	b.Run("Lint", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(page)))
		for b.Loop() {
			rep := l.Lint(h, page)
			if len(rep.Tokens) != 2 {
				b.Fatalf("tokens = %d", len(rep.Tokens))
			}
		}
	})
	b.Run("Inspect", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(page)))
		res := &httpcache.Response{Status: 200, Header: h, Body: page}
		for b.Loop() {
			v := l.Inspect(nil, res)
			if v.NotAfter.IsZero() {
				b.Fatal("no NotAfter")
			}
		}
	})
}
