package plugsession

import (
	"bytes"
	"crypto/rand"
	"strings"
	"testing"
	"time"
)

// benchPage is a 20 KB first render with the token in a meta tag, a link
// and a form, as a phx.new page has.
func benchPage(b *testing.B) (*Splicer, *Page, []byte, *vectors) {
	v := loadVectors(b)
	s := testSplicer(b, v, nil)
	page := phxPage(v.CSRFMask[0].Masked)
	filler := strings.Repeat(`<p class="text-sm leading-6 text-zinc-600">Lorem ipsum dolor sit amet, consectetur adipiscing elit.</p>`+"\n", 20<<10/107)
	page = bytes.Replace(page, []byte("</div>\n  </body>"), []byte(filler+"</div>\n  </body>"), 1)
	p, err := s.Prepare(page, []string{v.SetCookies[1].SetCookie})
	if err != nil {
		b.Fatal(err)
	}
	return s, p.Page, page, v
}

// BenchmarkSpliceHit times, in one loop, writing the stored 20 KB page as
// a plain hit does and serving it spliced (Splice + WriteTo), and reports
// the spliced/plain time ratio.
func BenchmarkSpliceHit(b *testing.B) {
	for _, c := range []struct {
		name   string
		cookie func(v *vectors) []string
	}{
		{"kept", func(v *vectors) []string { return []string{"_my_app_key=" + v.Sessions[2].Signed} }},
		{"created", func(v *vectors) []string { return nil }},
	} {
		b.Run(c.name, func(b *testing.B) {
			s, page, body, v := benchPage(b)
			cookies := c.cookie(v)
			var buf bytes.Buffer
			buf.Grow(len(body))
			var plain, spliced time.Duration
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				t0 := time.Now()
				buf.Reset()
				buf.Write(body)
				t1 := time.Now()
				buf.Reset()
				r, err := s.Splice(page, cookies)
				if err != nil {
					b.Fatal(err)
				}
				r.WriteTo(&buf)
				t2 := time.Now()
				plain += t1.Sub(t0)
				spliced += t2.Sub(t1)
			}
			b.ReportMetric(float64(spliced)/float64(plain), "spliced/plain")
			b.ReportMetric(float64(spliced.Nanoseconds())/float64(b.N), "spliced-ns/op")
			b.ReportMetric(float64(plain.Nanoseconds())/float64(b.N), "plain-ns/op")
		})
	}
}

func BenchmarkCodecDecode(b *testing.B) {
	v := loadVectors(b)
	signed, encrypted := fuzzCodecs(b, v)
	for _, c := range []struct {
		name  string
		codec *Codec
		value string
	}{{"signed", signed, v.Sessions[2].Signed}, {"xchacha", encrypted, v.Sessions[2].Encrypted}, {"a128gcm", encrypted, v.LegacySession.Encrypted}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.codec.Decode(c.value); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkMaskNew(b *testing.B) {
	tok, _ := GenerateToken(rand.Reader)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := MaskNew(tok, rand.Reader); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFindTokens(b *testing.B) {
	_, _, body, _ := benchPage(b)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := FindTokens(body, FindOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
