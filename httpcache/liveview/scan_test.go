package liveview

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

var scanPatterns = []*pattern{&patTokenPrefix, &patPhxS, &patCSRF}

// TestPatternIndex: pattern.index agrees with bytes.Index on the pages
// and edge cases the linter meets: matches at either end, anchors
// without a match, overlapping near-misses, and a page full of the
// anchor byte (the fallback to bytes.Index).
func TestPatternIndex(t *testing.T) {
	t.Parallel()
	page := readPage(t)
	cases := []string{
		"", "x", "k", "M", page,
		"data-phx-s", "csrf-token", "SFMyNTY.",
		"data-phx-", "csrf-toke", "SFMyNTY",
		"xxdata-phx-sxx", "..csrf-token", "SFMyNTY.SFMyNTY.",
		"data-phx-xdata-phx-s", "csrf-tokcsrf-token", "SFMSFMyNTY.",
		strings.Repeat("x", 5000) + "data-phx-s",
		strings.Repeat("k", 5000) + "csrf-token" + strings.Repeat("k", 100),
		strings.Repeat("M", 5000) + "SFMyNTY.",
		strings.Repeat("px-4 ", 2000) + "data-phx-static",
		strings.Repeat("x", 5000),
		page[:len(page)/2] + "csrf-token",
	}
	for _, c := range cases {
		for _, p := range scanPatterns {
			b := []byte(c)
			if got, want := p.index(b), bytes.Index(b, p.s); got != want {
				t.Errorf("%q in %.40q (%d bytes): index = %d, bytes.Index = %d", p.s, c, len(c), got, want)
			}
			// Every suffix, as the scanning loops search body[pos:].
			for i := 0; i < len(b) && i < 300; i++ {
				if got, want := p.index(b[i:]), bytes.Index(b[i:], p.s); got != want {
					t.Fatalf("%q in %.40q[%d:]: index = %d, bytes.Index = %d", p.s, c, i, got, want)
				}
			}
		}
	}
}

// FuzzPatternIndex: pattern.index is bytes.Index, on any input.
func FuzzPatternIndex(f *testing.F) {
	f.Add("<div data-phx-session=\"SFMyNTY.abc\"><meta name=\"csrf-token\" content=\"x\">")
	f.Add(strings.Repeat("x", 200) + "data-phx-s")
	f.Add("csrf-tokcsrf-token")
	f.Fuzz(func(t *testing.T, s string) {
		b := []byte(s)
		for _, p := range scanPatterns {
			if got, want := p.index(b), bytes.Index(b, p.s); got != want {
				t.Fatalf("%q in %q: index = %d, bytes.Index = %d", p.s, s, got, want)
			}
		}
	})
}

// BenchmarkPatternIndex finds every occurrence of each pattern the
// linter scans for in the 20 KB fixture page, with pattern.index and with
// bytes.Index, alternating in one loop so that a busy machine slows both
// alike; speedup is bytes.Index's time over pattern.index's.
func BenchmarkPatternIndex(b *testing.B) {
	page := []byte(readPage(b))
	all := func(find func([]byte) int, n int) int {
		c := 0
		for pos := 0; ; {
			i := find(page[pos:])
			if i < 0 {
				return c
			}
			c++
			pos += i + n
		}
	}
	for _, p := range scanPatterns {
		b.Run(string(p.s), func(b *testing.B) {
			var anchored, plain time.Duration
			b.SetBytes(int64(len(page)))
			for b.Loop() {
				t0 := time.Now()
				n1 := all(p.index, len(p.s))
				t1 := time.Now()
				n2 := all(func(s []byte) int { return bytes.Index(s, p.s) }, len(p.s))
				plain += time.Since(t1)
				anchored += t1.Sub(t0)
				if n1 != n2 {
					b.Fatalf("%d occurrences, bytes.Index finds %d", n1, n2)
				}
			}
			b.ReportMetric(float64(anchored.Nanoseconds())/float64(b.N), "anchored-ns/page")
			b.ReportMetric(float64(plain.Nanoseconds())/float64(b.N), "bytes.Index-ns/page")
			b.ReportMetric(plain.Seconds()/anchored.Seconds(), "speedup")
		})
	}
}
