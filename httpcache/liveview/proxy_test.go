package liveview

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/firstrender/firstrender/httpcache"
	"github.com/firstrender/firstrender/httpcache/liveview/phxtoken"
	"github.com/firstrender/firstrender/store"
	"github.com/firstrender/firstrender/store/storetest"
)

// proxyRig runs httpcache proxies with the Linter in front of an origin
// serving page, over one real store. fill/serve use separate proxies: a
// proxy's Close waits for its background store write, which is how the
// test knows the entry is on disk without sleeping.
type proxyRig struct {
	t      *testing.T
	st     *store.Store
	up     *url.URL
	clock  *storetest.Clock
	lint   *Linter
	origin atomic.Int64
}

func newProxyRig(t *testing.T, clk *storetest.Clock, lcfg Config, page func() string) *proxyRig {
	r := &proxyRig{t: t, clock: clk}
	lcfg.Now = clk.Now
	r.lint = newLinter(t, lcfg)
	o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.origin.Add(1)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "public, s-maxage=3600")
		// A known length lets the proxy inspect the whole page before it
		// answers, so the first response's Cache-Status is exact.
		pg := page()
		w.Header().Set("Content-Length", strconv.Itoa(len(pg)))
		io.WriteString(w, pg)
	}))
	t.Cleanup(o.Close)
	r.up, _ = url.Parse(o.URL)
	r.st = storetest.Open(t, store.Options{})
	return r
}

// get sends one GET through a fresh proxy and closes it, which waits for
// its background store; it returns the proxy's Cache-Status member.
func (r *proxyRig) get() cacheStatus {
	r.t.Helper()
	p, err := httpcache.New(httpcache.Config{Upstream: r.up, Store: r.st, Inspector: r.lint, Now: r.clock.Now, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		r.t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", r.up.String()+"/products", nil)
	p.ServeHTTP(rec, req)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		r.t.Fatal(err)
	}
	if rec.Code != 200 {
		r.t.Fatalf("GET status %d", rec.Code)
	}
	return proxyStatus(r.t, rec.Header())
}

// TestProxy_TokenExpiryCapsFreshness: the origin says s-maxage=3600, but
// the page's token expires in 2 minutes; with a 30 s margin the proxy must
// serve the stored copy for at most 90 s, then go back to the origin.
func TestProxy_TokenExpiryCapsFreshness(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name string
		cfg  Config
		// page signs its tokens so the earliest expires 2 minutes after start.
		signedAt time.Time
		maxAge   time.Duration
	}{
		{"data-phx-session under LiveView's 14-day verifier max age", Config{Margin: 30 * time.Second}, start.Add(-phxtoken.DefaultLiveViewMaxAge + 2*time.Minute), 86400 * time.Second},
		{"embedded max age when LiveViewMaxAge is negative", Config{Margin: 30 * time.Second, LiveViewMaxAge: -1}, start, 2 * time.Minute},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clk := storetest.NewClock(start)
			page := strings.Replace(pageWith(t, nil, tt.signedAt, tt.maxAge), `<meta name="csrf-token" content="bWUDLRwDMXs-HgcyPQ0DGiMbJnUvVzoYNL2FEBGLu31v0iwgbFZiVkWt">`, "", 1)
			r := newProxyRig(t, clk, tt.cfg, func() string { return page })

			if cs := r.get(); !cs.has("stored") {
				t.Fatalf("first GET Cache-Status %s, want stored", cs)
			}
			pg, err := r.st.Scan(context.Background(), store.ScanOptions{Limit: 10})
			if err != nil || len(pg.Entries) != 1 {
				t.Fatalf("store Scan = %d entries, %v; want 1", len(pg.Entries), err)
			}
			ann := pg.Entries[0].Annotations
			wantExp := start.Add(2 * time.Minute)
			if got := ann[AnnotationExpires]; got != wantExp.Format(time.RFC3339) {
				t.Errorf("%s = %q, want %s", AnnotationExpires, got, wantExp.Format(time.RFC3339))
			}
			if got, err := time.Parse(time.RFC3339Nano, ann[httpcache.AnnotationNotAfter]); err != nil || !got.Equal(wantExp.Add(-30*time.Second)) {
				t.Errorf("%s = %q, want %s", httpcache.AnnotationNotAfter, ann[httpcache.AnnotationNotAfter], wantExp.Add(-30*time.Second))
			}
			if got := strings.Split(ann[phxtoken.AnnotationTokens], ","); len(got) != 2 || len(got[0]) != 16 {
				t.Errorf("%s = %q, want two 16-hex hashes", phxtoken.AnnotationTokens, ann[phxtoken.AnnotationTokens])
			}
			clk.Advance(time.Minute)
			cs := r.get()
			if !cs.has("hit") {
				t.Fatalf("GET at +1m Cache-Status %s, want a hit", cs)
			}
			if got := cs.param("ttl"); got != "30" {
				t.Errorf("GET at +1m Cache-Status %s: ttl=%s, want ttl=30 (token cap, not s-maxage)", cs, got)
			}
			if n := r.origin.Load(); n != 1 {
				t.Fatalf("origin asked %d times by +1m, want 1", n)
			}
			clk.Advance(31 * time.Second) // +91s: past expiry minus margin, long before s-maxage
			if cs := r.get(); cs.has("hit") {
				t.Errorf("GET at +91s Cache-Status %s, want no hit (token expires at +2m)", cs)
			}
			if n := r.origin.Load(); n != 2 {
				t.Errorf("origin asked %d times by +91s, want 2", n)
			}
			clk.Advance(2 * time.Minute) // past the token's own expiry too
			if cs := r.get(); cs.has("hit") {
				t.Errorf("GET at +3m31s Cache-Status %s, want no hit", cs)
			}
			if n := r.origin.Load(); n != 3 {
				t.Errorf("origin asked %d times by +3m31s, want 3", n)
			}
		})
	}
}

// TestProxy_LintRefusal: with the default 5-minute margin a token that
// expires in 2 minutes is never stored, and a CSRF meta tag is refused by
// default; Cache-Status names the reason.
func TestProxy_LintRefusal(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name, page string
	}{
		{"token expiring within the margin", strings.Replace(pageWith(t, nil, start.Add(-phxtoken.DefaultLiveViewMaxAge+2*time.Minute), 86400*time.Second), `content="bWUDLRwDMXs-HgcyPQ0DGiMbJnUvVzoYNL2FEBGLu31v0iwgbFZiVkWt"`, `content=""`, 1)},
		{"csrf meta", pageWith(t, nil, start, 86400*time.Second)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clk := storetest.NewClock(start)
			r := newProxyRig(t, clk, Config{}, func() string { return tt.page })
			r.get() // Close waits for the background inspection
			page, err := r.st.Scan(context.Background(), store.ScanOptions{Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Entries) != 0 {
				t.Errorf("store holds %d entries after a refused page, want 0 (annotations %v)", len(page.Entries), page.Entries[0].Annotations)
			}
			if cs := r.get(); cs.has("hit") || r.origin.Load() != 2 {
				t.Errorf("second GET Cache-Status %s, origin asked %d times; want a miss and 2", cs, r.origin.Load())
			}
		})
	}
}
