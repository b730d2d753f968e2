package liveview

import (
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/firstrender/firstrender/httpcache"
	"github.com/firstrender/firstrender/httpcache/httpcachetest"
	"github.com/firstrender/firstrender/httpcache/liveview/plugsession"
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

// discardWriter is a ResponseWriter that keeps nothing but the status.
type discardWriter struct {
	h    http.Header
	code int
	n    int
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) WriteHeader(c int)   { w.code = c }
func (w *discardWriter) Write(p []byte) (int, error) {
	w.n += len(p)
	return len(p), nil
}

// BenchmarkProxyHit_SplicedVsPlain serves, in one loop, a plain hit of a
// stored 20 KB page and a spliced hit of a 20 KB phx.new page (three token
// occurrences) through the proxy's handler, and reports the spliced hit's
// throughput relative to the plain hit's (plain-ns / spliced-ns; the
// target is >= 0.8). kept: the visitor's session holds a token (mask only);
// created: no cookie (a new session is encoded and signed too).
func BenchmarkProxyHit_SplicedVsPlain(b *testing.B) {
	filler := strings.Repeat(`<p class="text-sm leading-6 text-zinc-600">Lorem ipsum dolor sit amet, consectetur adipiscing elit.</p>`+"\n", 20<<10/107)
	app := newPhxApp(b, testSessionConfig())
	app.page = func(m string) string {
		return strings.Replace(phxTestPage(m), "</div>\n</body>", filler+"</div>\n</body>", 1)
	}
	plainPage := strings.Replace(phxTestPage(strings.Repeat("x", plugsession.MaskedTokenSize)), "</div>\n</body>", filler+"</div>\n</body>", 1)
	plainPage = strings.NewReplacer(`<meta name="csrf-token"`, `<meta name="x-token"`, `data-csrf=`, `data-x=`, `name="_csrf_token"`, `name="x"`).Replace(plainPage)
	origin := func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/plain" {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Cache-Control", "public, s-maxage=600, max-age=0")
			w.Header().Set("Content-Length", strconv.Itoa(len(plainPage)))
			io.WriteString(w, plainPage)
			return
		}
		app.ServeHTTP(w, r)
	}
	sp := mustSplicer(b, defaultSplice())
	rig := httpcachetest.New(b, origin, func(env httpcachetest.Env) (*httpcache.Proxy, error) {
		lint, err := New(Config{Splice: sp})
		if err != nil {
			return nil, err
		}
		return httpcache.New(httpcache.Config{Upstream: env.Upstream, Store: env.Store, Inspector: lint, Splicer: sp, Logger: env.Logger})
	})
	for _, p := range []string{"/plain", "/spliced"} {
		rig.Get(p)
		if res := rig.Get(p); !res.CacheStatus(b, httpcache.CacheName).Has("hit") {
			b.Fatalf("%s is not a hit: %v", p, res.Header["Cache-Status"])
		}
	}
	tok, _ := plugsession.GenerateToken(rand.Reader)
	kept, _ := app.codec.Encode(plugsession.PutToken(nil, tok))
	host := rig.Front.URL
	for _, c := range []struct {
		name   string
		cookie string
	}{
		{"kept", sessionCookie(kept)},
		{"created", ""},
	} {
		b.Run(c.name, func(b *testing.B) {
			plainReq := httptest.NewRequest("GET", host+"/plain", nil)
			splicedReq := httptest.NewRequest("GET", host+"/spliced", nil)
			if c.cookie != "" {
				splicedReq.Header.Set("Cookie", c.cookie)
			}
			w := &discardWriter{h: http.Header{}}
			var plain, spliced time.Duration
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				t0 := time.Now()
				rig.Proxy.ServeHTTP(w, plainReq)
				t1 := time.Now()
				clear(w.h)
				rig.Proxy.ServeHTTP(w, splicedReq)
				t2 := time.Now()
				plain += t1.Sub(t0)
				spliced += t2.Sub(t1)
				if w.code != 200 {
					b.Fatalf("status %d", w.code)
				}
			}
			if !strings.Contains(w.h.Get("Cache-Status"), "detail=spliced") {
				b.Fatalf("not spliced: %v", w.h["Cache-Status"])
			}
			reportRatio(b, plain, spliced)
		})
		// The same over loopback HTTP/1.1 keep-alive through the rig's
		// front server: what a client sees, whole response read.
		b.Run("loopback-"+c.name, func(b *testing.B) {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2, DisableCompression: true}}
			defer client.CloseIdleConnections()
			get := func(path, cookie string) {
				req, _ := http.NewRequest("GET", host+path, nil)
				if cookie != "" {
					req.Header.Set("Cookie", cookie)
				}
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || (path == "/spliced" && !strings.Contains(resp.Header.Get("Cache-Status"), "spliced")) {
					b.Fatalf("%s: %d %v", path, resp.StatusCode, resp.Header["Cache-Status"])
				}
			}
			var plain, spliced time.Duration
			b.ReportAllocs()
			for b.Loop() {
				t0 := time.Now()
				get("/plain", "")
				t1 := time.Now()
				get("/spliced", c.cookie)
				t2 := time.Now()
				plain += t1.Sub(t0)
				spliced += t2.Sub(t1)
			}
			reportRatio(b, plain, spliced)
		})
	}
}

func reportRatio(b *testing.B, plain, spliced time.Duration) {
	n := float64(b.N)
	b.ReportMetric(float64(plain.Nanoseconds())/n, "plain-ns/hit")
	b.ReportMetric(float64(spliced.Nanoseconds())/n, "spliced-ns/hit")
	b.ReportMetric(float64(plain)/float64(spliced), "spliced/plain-throughput")
}
