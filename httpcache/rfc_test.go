package httpcache

import (
	"fmt"
	"github.com/firstrender/firstrender/store/storetest"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// step is one request in a scenario, with what the client must get and
// how many requests the origin must have seen by then (cumulative).
type step struct {
	advance    time.Duration // move the clock first
	method     string        // default GET
	path       string        // default "/"
	hdr        []string      // request header name, value pairs
	wantStatus int           // default 200
	wantCS     []string      // parameter lists the Cache-Status member must match (Member.Match)
	notCS      []string      // parameters it must lack (Member.Lacks)
	wantOrigin int64         // origin requests so far
	wantBody   string        // if set
	wantHeader []string      // name, value pairs ("" value: must be absent)
}

// scenario is a table row: an origin and a sequence of steps.
type scenario struct {
	name   string
	origin func(c *storetest.Clock, n int64, w http.ResponseWriter, r *http.Request)
	config func(*Config)
	steps  []step
}

func runScenarios(t *testing.T, scenarios []scenario) {
	t.Helper()
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			var r *rig
			var n atomic.Int64
			r = newRig(t, func(w http.ResponseWriter, req *http.Request) {
				sc.origin(r.Clock, n.Add(1), w, req)
			}, sc.config)
			for i, s := range sc.steps {
				r.Clock.Advance(s.advance)
				method := s.method
				if method == "" {
					method = http.MethodGet
				}
				path := s.path
				if path == "" {
					path = "/"
				}
				res := r.Do(method, path, s.hdr...)
				where := fmt.Sprintf("step %d (%s %s %v)", i, method, path, s.hdr)
				want := s.wantStatus
				if want == 0 {
					want = http.StatusOK
				}
				cs := csOf(t, res.Header)
				if res.Status != want {
					t.Errorf("%s: got status %d, want %d (Cache-Status %q, body %q)", where, res.Status, want, cs, res.Body)
				}
				for _, w := range s.wantCS {
					if err := cs.Match(w); err != nil {
						t.Errorf("%s: %v", where, err)
					}
				}
				for _, w := range s.notCS {
					if err := cs.Lacks(w); err != nil {
						t.Errorf("%s: %v", where, err)
					}
				}
				if got := r.Origin.Count(); got != s.wantOrigin {
					t.Errorf("%s: origin asked %d times, want %d (Cache-Status %q)", where, got, s.wantOrigin, cs)
				}
				if s.wantBody != "" && res.Body != s.wantBody {
					t.Errorf("%s: got body %q, want %q", where, res.Body, s.wantBody)
				}
				for j := 0; j+1 < len(s.wantHeader); j += 2 {
					name, v := s.wantHeader[j], s.wantHeader[j+1]
					if got := res.Header.Get(name); got != v {
						t.Errorf("%s: got %s %q, want %q", where, name, got, v)
					}
				}
			}
		})
	}
}

// respond writes a small response with the given header pairs; Date is
// the test clock. The body is "v<n>".
func respond(hdr ...string) func(c *storetest.Clock, n int64, w http.ResponseWriter, r *http.Request) {
	return func(c *storetest.Clock, n int64, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Date", c.Now().Format(http.TimeFormat))
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Add(hdr[i], hdr[i+1])
		}
		fmt.Fprintf(w, "v%d", n)
	}
}

// TestRFC9111_Storing covers RFC 9111 §3: what a shared cache stores.
func TestRFC9111_Storing(t *testing.T) {
	runScenarios(t, []scenario{
		{name: "public max-age is stored and hit", origin: respond("Cache-Control", "public, max-age=60"),
			steps: []step{
				{wantCS: []string{"fwd=uri-miss", "fwd-status=200", "stored", "ttl=60"}, wantOrigin: 1, wantBody: "v1"},
				{wantCS: []string{"hit", "ttl=60"}, wantOrigin: 1, wantBody: "v1", wantHeader: []string{"Age", "0"}},
			}},
		{name: "private is not stored", origin: respond("Cache-Control", "private, max-age=60"),
			steps: []step{
				{wantCS: []string{"fwd=uri-miss", "detail=private"}, notCS: []string{"stored"}, wantOrigin: 1},
				{wantCS: []string{"fwd=uri-miss", "detail=private"}, wantOrigin: 2, wantBody: "v2"},
			}},
		{name: "no-store is not stored", origin: respond("Cache-Control", "no-store"),
			steps: []step{{wantCS: []string{"detail=no-store"}, wantOrigin: 1}, {wantOrigin: 2}}},
		{name: "Set-Cookie is not stored by default", origin: respond("Cache-Control", "max-age=60", "Set-Cookie", "s=1"),
			steps: []step{
				{wantCS: []string{"detail=set-cookie"}, wantOrigin: 1, wantHeader: []string{"Set-Cookie", "s=1"}},
				{wantOrigin: 2},
			}},
		{name: "Set-Cookie is stripped under a configured prefix", origin: respond("Cache-Control", "max-age=60", "Set-Cookie", "s=1"),
			config: func(c *Config) { c.StripSetCookie = []string{"/pub"} },
			steps: []step{
				{path: "/pub/a", wantCS: []string{"stored"}, wantOrigin: 1, wantHeader: []string{"Set-Cookie", "s=1"}},
				{path: "/pub/a", wantCS: []string{"hit"}, wantOrigin: 1, wantHeader: []string{"Set-Cookie", ""}},
				{path: "/other", wantCS: []string{"detail=set-cookie"}, wantOrigin: 2},
			}},
		{name: "Authorization without public is not stored", origin: respond("Cache-Control", "max-age=60"),
			steps: []step{
				{hdr: []string{"Authorization", "Bearer a"}, wantCS: []string{"detail=authorization"}, wantOrigin: 1},
				{hdr: []string{"Authorization", "Bearer a"}, wantOrigin: 2},
			}},
		// Stricter than RFC 9111 §3.5, which would store these: a request
		// with Authorization is never looked up nor stored.
		{name: "Authorization with s-maxage or public is not stored either", origin: respond("Cache-Control", "public, s-maxage=60"),
			steps: []step{
				{hdr: []string{"Authorization", "Bearer a"}, wantCS: []string{"fwd=bypass", "detail=authorization"}, wantOrigin: 1},
				{wantCS: []string{"fwd=uri-miss", "stored"}, wantOrigin: 2},
				{hdr: []string{"Authorization", "Bearer a"}, wantCS: []string{"fwd=bypass", "detail=authorization"}, wantOrigin: 3},
			}},
		{name: "hop-by-hop fields are not stored", origin: respond("Cache-Control", "max-age=60", "Connection", "X-Hop", "X-Hop", "1", "X-End", "2"),
			steps: []step{
				{wantOrigin: 1, wantHeader: []string{"X-Hop", "", "X-End", "2"}},
				{wantCS: []string{"hit"}, wantOrigin: 1, wantHeader: []string{"X-Hop", "", "X-End", "2"}},
			}},
		{name: "HEAD does not fill, but is answered from a GET", origin: respond("Cache-Control", "max-age=60"),
			steps: []step{
				{method: "HEAD", wantCS: []string{"fwd=uri-miss"}, notCS: []string{"stored"}, wantOrigin: 1},
				{wantCS: []string{"stored"}, wantOrigin: 2},
				{method: "HEAD", wantCS: []string{"hit"}, wantOrigin: 2, wantHeader: []string{"Content-Length", "2"}},
			}},
		{name: "POST is forwarded and not stored", origin: respond("Cache-Control", "max-age=60"),
			steps: []step{
				{method: "POST", wantCS: []string{"fwd=method"}, wantOrigin: 1},
				{method: "POST", wantCS: []string{"fwd=method"}, wantOrigin: 2},
			}},
		{name: "308 is stored heuristically", origin: func(c *storetest.Clock, n int64, w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Date", c.Now().Format(http.TimeFormat))
			w.Header().Set("Last-Modified", c.Now().Add(-10*time.Hour).Format(http.TimeFormat))
			w.Header().Set("Location", "/new")
			w.WriteHeader(http.StatusPermanentRedirect)
		}, steps: []step{
			{wantStatus: 308, wantCS: []string{"stored", "ttl=3600"}, wantOrigin: 1},
			{wantStatus: 308, wantCS: []string{"hit"}, wantOrigin: 1, wantHeader: []string{"Location", "/new"}},
		}},
		{name: "Vary star is not stored", origin: respond("Cache-Control", "max-age=60", "Vary", "*"),
			steps: []step{{wantCS: []string{"detail=vary-star"}, wantOrigin: 1}, {wantOrigin: 2}}},
		{name: "socket paths are bypassed", origin: respond("Cache-Control", "max-age=60"),
			steps: []step{
				{path: "/live/websocket?vsn=2", wantCS: []string{"fwd=bypass", "detail=socket-path"}, wantOrigin: 1},
				{path: "/live/websocket?vsn=2", wantOrigin: 2},
			}},
	})
}

// TestRFC9111_Freshness covers §4.2: lifetime, Age, heuristics.
func TestRFC9111_Freshness(t *testing.T) {
	runScenarios(t, []scenario{
		{name: "max-age expires", origin: respond("Cache-Control", "max-age=60"),
			steps: []step{
				{wantOrigin: 1},
				{advance: 59 * time.Second, wantCS: []string{"hit", "ttl=1"}, wantOrigin: 1, wantHeader: []string{"Age", "59"}},
				{advance: 2 * time.Second, wantCS: []string{"fwd=stale", "stored"}, wantOrigin: 2, wantBody: "v2"},
			}},
		{name: "origin Age counts", origin: respond("Cache-Control", "max-age=60", "Age", "50"),
			steps: []step{
				{wantCS: []string{"ttl=10"}, wantOrigin: 1},
				{advance: 5 * time.Second, wantCS: []string{"hit", "ttl=5"}, wantOrigin: 1, wantHeader: []string{"Age", "55"}},
				{advance: 6 * time.Second, wantCS: []string{"fwd=stale"}, wantOrigin: 2},
			}},
		{name: "s-maxage overrides max-age", origin: respond("Cache-Control", "max-age=1, s-maxage=100"),
			steps: []step{{wantOrigin: 1}, {advance: 50 * time.Second, wantCS: []string{"hit"}, wantOrigin: 1}}},
		{name: "Expires is used without max-age", origin: func(c *storetest.Clock, n int64, w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Date", c.Now().Format(http.TimeFormat))
			w.Header().Set("Expires", c.Now().Add(30*time.Second).Format(http.TimeFormat))
			fmt.Fprintf(w, "v%d", n)
		}, steps: []step{
			{wantCS: []string{"ttl=30"}, wantOrigin: 1},
			{advance: 29 * time.Second, wantCS: []string{"hit"}, wantOrigin: 1},
			{advance: 2 * time.Second, wantOrigin: 2},
		}},
		{name: "heuristic freshness from Last-Modified", origin: func(c *storetest.Clock, n int64, w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Date", c.Now().Format(http.TimeFormat))
			w.Header().Set("Last-Modified", c.Now().Add(-10*time.Hour).Format(http.TimeFormat)) // 10h before the clock
			fmt.Fprintf(w, "v%d", n)
		}, steps: []step{
			{wantCS: []string{"stored", "ttl=3600"}, wantOrigin: 1},
			{advance: 30 * time.Minute, wantCS: []string{"hit"}, wantOrigin: 1},
		}},
		{name: "heuristic freshness can be disabled", origin: func(c *storetest.Clock, n int64, w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Date", c.Now().Format(http.TimeFormat))
			w.Header().Set("Last-Modified", c.Now().Add(-10*time.Hour).Format(http.TimeFormat))
			fmt.Fprintf(w, "v%d", n)
		}, config: func(c *Config) { c.HeuristicFraction = -1 },
			steps: []step{
				{wantCS: []string{"stored", "ttl=0"}, wantOrigin: 1}, // kept for revalidation only
				{wantCS: []string{"fwd=stale"}, wantOrigin: 2},
			}},
		{name: "no freshness and no validator is not stored", origin: respond(),
			config: func(c *Config) { c.HeuristicFraction = -1 },
			steps:  []step{{wantCS: []string{"detail=no-freshness"}, wantOrigin: 1}, {wantOrigin: 2}}},
	})
}

// etagOrigin answers If-None-Match with 304 and otherwise 200 with an
// ETag, plus extra header pairs; it tags each response with X-Seq.
func etagOrigin(hdr ...string) func(c *storetest.Clock, n int64, w http.ResponseWriter, r *http.Request) {
	return func(c *storetest.Clock, n int64, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Date", c.Now().Format(http.TimeFormat))
		w.Header().Set("Etag", `"e1"`)
		w.Header().Set("X-Seq", fmt.Sprint(n))
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Set(hdr[i], hdr[i+1])
		}
		if r.Header.Get("If-None-Match") == `"e1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		fmt.Fprintf(w, "v%d", n)
	}
}

// TestRFC9111_Validation covers §4.3 and request directives (§5.2.1).
func TestRFC9111_Validation(t *testing.T) {
	runScenarios(t, []scenario{
		{name: "stale entry is revalidated and a 304 refreshes its headers", origin: etagOrigin("Cache-Control", "max-age=10"),
			steps: []step{
				{wantOrigin: 1, wantBody: "v1", wantHeader: []string{"X-Seq", "1"}},
				{advance: 11 * time.Second, wantCS: []string{"fwd=stale", "fwd-status=304", "stored"}, wantOrigin: 2, wantBody: "v1", wantHeader: []string{"X-Seq", "2"}},
				{advance: 5 * time.Second, wantCS: []string{"hit", "ttl=5"}, wantOrigin: 2, wantBody: "v1", wantHeader: []string{"X-Seq", "2", "Age", "5"}},
			}},
		{name: "client If-None-Match on a fresh entry gets 304 from the cache", origin: etagOrigin("Cache-Control", "max-age=60"),
			steps: []step{
				{wantOrigin: 1},
				{hdr: []string{"If-None-Match", `"x", "e1"`}, wantStatus: 304, wantCS: []string{"hit"}, wantOrigin: 1, wantHeader: []string{"Etag", `"e1"`}},
				{hdr: []string{"If-None-Match", `"other"`}, wantStatus: 200, wantCS: []string{"hit"}, wantOrigin: 1},
			}},
		{name: "client conditional on a miss still fills the cache", origin: etagOrigin("Cache-Control", "max-age=60"),
			steps: []step{
				{hdr: []string{"If-None-Match", `"e1"`}, wantStatus: 200, wantCS: []string{"stored"}, wantOrigin: 1},
				{wantCS: []string{"hit"}, wantOrigin: 1},
			}},
		{name: "client If-Modified-Since on a fresh entry", origin: respond("Cache-Control", "max-age=60", "Last-Modified", "Thu, 01 Jan 2026 00:00:00 GMT"),
			steps: []step{
				{wantOrigin: 1},
				{hdr: []string{"If-Modified-Since", "Fri, 02 Jan 2026 00:00:00 GMT"}, wantStatus: 304, wantOrigin: 1},
				{hdr: []string{"If-Modified-Since", "Wed, 31 Dec 2025 00:00:00 GMT"}, wantStatus: 200, wantOrigin: 1},
			}},
		{name: "response no-cache is validated every time", origin: etagOrigin("Cache-Control", "no-cache"),
			steps: []step{
				{wantCS: []string{"stored"}, wantOrigin: 1},
				{wantCS: []string{"fwd=stale", "fwd-status=304"}, wantOrigin: 2, wantBody: "v1"},
				{wantCS: []string{"fwd=stale", "fwd-status=304"}, wantOrigin: 3, wantBody: "v1"},
			}},
		{name: "request no-cache validates", origin: etagOrigin("Cache-Control", "max-age=60"),
			steps: []step{
				{wantOrigin: 1},
				{hdr: []string{"Cache-Control", "no-cache"}, wantCS: []string{"fwd=request", "fwd-status=304"}, wantOrigin: 2, wantBody: "v1"},
				{hdr: []string{"Pragma", "no-cache"}, wantCS: []string{"fwd=request"}, wantOrigin: 3},
			}},
		{name: "request max-age=0 validates", origin: etagOrigin("Cache-Control", "max-age=60"),
			steps: []step{
				{wantOrigin: 1},
				{advance: time.Second, hdr: []string{"Cache-Control", "max-age=0"}, wantCS: []string{"fwd=request"}, wantOrigin: 2},
				{hdr: []string{"Cache-Control", "max-age=30"}, wantCS: []string{"hit"}, wantOrigin: 2},
			}},
		{name: "request min-fresh", origin: etagOrigin("Cache-Control", "max-age=60"),
			steps: []step{
				{wantOrigin: 1},
				{advance: 50 * time.Second, hdr: []string{"Cache-Control", "min-fresh=20"}, wantCS: []string{"fwd=request"}, wantOrigin: 2},
			}},
		{name: "only-if-cached", origin: respond("Cache-Control", "max-age=60"),
			steps: []step{
				{hdr: []string{"Cache-Control", "only-if-cached"}, wantStatus: 504, wantCS: []string{"fwd=uri-miss; detail=only-if-cached"}, wantOrigin: 0},
				{wantOrigin: 1},
				{hdr: []string{"Cache-Control", "only-if-cached"}, wantCS: []string{"hit"}, wantOrigin: 1},
			}},
		{name: "max-stale accepts a stale entry", origin: respond("Cache-Control", "max-age=10"),
			steps: []step{
				{wantOrigin: 1},
				{advance: 20 * time.Second, hdr: []string{"Cache-Control", "max-stale=30"}, wantCS: []string{"hit", "detail=max-stale", "ttl=-10"}, wantOrigin: 1},
				{hdr: []string{"Cache-Control", "max-stale=5"}, wantCS: []string{"fwd=stale"}, wantOrigin: 2},
			}},
		{name: "must-revalidate refuses max-stale", origin: respond("Cache-Control", "max-age=10, must-revalidate"),
			steps: []step{
				{wantOrigin: 1},
				{advance: 20 * time.Second, hdr: []string{"Cache-Control", "max-stale"}, wantCS: []string{"fwd=stale"}, wantOrigin: 2},
			}},
		{name: "a 304 for another ETag does not update; the proxy refetches", origin: func(c *storetest.Clock, n int64, w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Date", c.Now().Format(http.TimeFormat))
			w.Header().Set("Cache-Control", "max-age=10")
			etag := `"e1"`
			if n > 1 {
				etag = `"e2"`
			}
			w.Header().Set("Etag", etag)
			if r.Header.Get("If-None-Match") != "" { // a sloppy origin: 304 to any conditional
				w.WriteHeader(http.StatusNotModified)
				return
			}
			fmt.Fprintf(w, "v%d", n)
		}, steps: []step{
			{wantOrigin: 1, wantBody: "v1"},
			{advance: 11 * time.Second, wantCS: []string{"fwd=stale", "fwd-status=200", "stored"}, wantOrigin: 3, wantBody: "v3", wantHeader: []string{"Etag", `"e2"`}},
			{wantCS: []string{"hit"}, wantOrigin: 3, wantBody: "v3"},
		}},
		{name: "a HEAD showing a new ETag invalidates the stored GET", origin: func(c *storetest.Clock, n int64, w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Date", c.Now().Format(http.TimeFormat))
			w.Header().Set("Cache-Control", "max-age=10")
			w.Header().Set("Etag", fmt.Sprintf(`"e%d"`, n))
			fmt.Fprintf(w, "v%d", n)
		}, steps: []step{
			{wantOrigin: 1, wantBody: "v1"},
			{advance: 11 * time.Second, method: "HEAD", wantCS: []string{"fwd=stale"}, wantOrigin: 2},
			{wantCS: []string{"fwd=uri-miss"}, wantOrigin: 3, wantBody: "v3"},
		}},
		{name: "a 200 to a revalidation replaces the entry", origin: func(c *storetest.Clock, n int64, w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Date", c.Now().Format(http.TimeFormat))
			w.Header().Set("Cache-Control", "max-age=10")
			w.Header().Set("Etag", fmt.Sprintf(`"e%d"`, n))
			fmt.Fprintf(w, "v%d", n)
		}, steps: []step{
			{wantOrigin: 1, wantBody: "v1"},
			{advance: 11 * time.Second, wantCS: []string{"fwd=stale", "fwd-status=200", "stored"}, wantOrigin: 2, wantBody: "v2"},
			{wantCS: []string{"hit"}, wantOrigin: 2, wantBody: "v2"},
		}},
	})
}

// TestRFC5861 covers stale-while-revalidate and stale-if-error.
func TestRFC5861(t *testing.T) {
	var failing atomic.Bool
	flaky := func(cc string) func(c *storetest.Clock, n int64, w http.ResponseWriter, r *http.Request) {
		return func(c *storetest.Clock, n int64, w http.ResponseWriter, r *http.Request) {
			if failing.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			w.Header().Set("Date", c.Now().Format(http.TimeFormat))
			w.Header().Set("Cache-Control", cc)
			fmt.Fprintf(w, "v%d", n)
		}
	}
	fail := func(c *storetest.Clock, n int64, w http.ResponseWriter, r *http.Request) {}
	_ = fail
	runScenarios(t, []scenario{
		{name: "stale-while-revalidate serves stale and revalidates in the background", origin: respond("Cache-Control", "max-age=10, stale-while-revalidate=60"),
			steps: []step{
				{wantOrigin: 1, wantBody: "v1"},
				{advance: 20 * time.Second, wantCS: []string{"hit", "detail=stale-while-revalidate", "ttl=-10"}, wantOrigin: 2, wantBody: "v1"},
				{wantCS: []string{"hit"}, notCS: []string{"detail=stale-while-revalidate"}, wantOrigin: 2, wantBody: "v2"},
			}},
		{name: "past the stale-while-revalidate window the client waits", origin: respond("Cache-Control", "max-age=10, stale-while-revalidate=5"),
			steps: []step{
				{wantOrigin: 1},
				{advance: 20 * time.Second, wantCS: []string{"fwd=stale"}, wantOrigin: 2, wantBody: "v2"},
			}},
		{name: "server-wide stale-while-revalidate default", origin: respond("Cache-Control", "max-age=10"),
			config: func(c *Config) { c.StaleWhileRevalidate = time.Minute },
			steps: []step{
				{wantOrigin: 1},
				{advance: 20 * time.Second, wantCS: []string{"detail=stale-while-revalidate"}, wantOrigin: 2, wantBody: "v1"},
			}},
	})
	t.Run("stale-if-error serves stale on a 5xx", func(t *testing.T) {
		failing.Store(false)
		runScenarios(t, []scenario{{name: "5xx", origin: func(c *storetest.Clock, n int64, w http.ResponseWriter, r *http.Request) {
			if n > 1 {
				failing.Store(true)
			}
			flaky("max-age=10, stale-if-error=60")(c, n, w, r)
		}, steps: []step{
			{wantOrigin: 1, wantBody: "v1"},
			{advance: 20 * time.Second, wantCS: []string{"fwd=stale", "fwd-status=503", "detail=stale-if-error"}, wantOrigin: 2, wantBody: "v1"},
			{advance: 60 * time.Second, wantStatus: 503, wantOrigin: 3},
		}}})
	})
	t.Run("without stale-if-error a 5xx passes through", func(t *testing.T) {
		runScenarios(t, []scenario{{name: "5xx", origin: func(c *storetest.Clock, n int64, w http.ResponseWriter, r *http.Request) {
			if n > 1 {
				w.WriteHeader(http.StatusBadGateway)
				return
			}
			respond("Cache-Control", "max-age=10")(c, n, w, r)
		}, steps: []step{
			{wantOrigin: 1},
			{advance: 20 * time.Second, wantStatus: 502, wantCS: []string{"fwd=stale", "fwd-status=502"}, wantOrigin: 2},
		}}})
	})
	t.Run("must-revalidate with the origin unreachable gives 504", func(t *testing.T) {
		r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
			respond("Cache-Control", "max-age=10, must-revalidate, stale-if-error=60")(nil2clock(), 1, w, req)
		}, func(c *Config) { c.StaleIfError = time.Minute })
		r.Get("/")
		r.Origin.Close()
		r.Clock.Advance(20 * time.Second)
		res := r.Get("/")
		if cs := csOf(t, res.Header); res.Status != 504 || !match(cs, "detail=must-revalidate") {
			t.Errorf("got %d Cache-Status %q, want 504 with detail=must-revalidate", res.Status, cs)
		}
	})
	t.Run("stale-if-error serves stale when the origin is unreachable", func(t *testing.T) {
		r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
			respond("Cache-Control", "max-age=10")(nil2clock(), 1, w, req)
		}, func(c *Config) { c.StaleIfError = time.Minute })
		if res := r.Get("/"); res.Status != 200 {
			t.Fatalf("first GET: got %d", res.Status)
		}
		r.Origin.Close()
		r.Clock.Advance(20 * time.Second)
		res := r.Get("/")
		if cs := csOf(t, res.Header); res.Status != 200 || !match(cs, "detail=stale-if-error") || res.Body != "v1" {
			t.Errorf("GET with origin down: got %d %q Cache-Status %q, want 200 v1 with detail=stale-if-error", res.Status, res.Body, cs)
		}
		r.Clock.Advance(2 * time.Minute)
		res = r.Get("/")
		if res.Status != http.StatusBadGateway || res.Body != "502 bad gateway: origin unreachable\n" {
			t.Errorf("GET past stale-if-error with origin down: got %d %q, want 502 with a short body", res.Status, res.Body)
		}
	})
}

func nil2clock() *storetest.Clock { return storetest.NewClock(time.Time{}) }

// TestRFC9111_Invalidation covers §4.4.
func TestRFC9111_Invalidation(t *testing.T) {
	unsafe := func(c *storetest.Clock, n int64, w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			if r.URL.Query().Get("fail") != "" {
				w.WriteHeader(500)
				return
			}
			w.Header().Set("Location", r.URL.Query().Get("loc"))
			w.Header().Set("Content-Location", r.URL.Query().Get("cloc"))
			w.WriteHeader(http.StatusSeeOther)
			return
		}
		respond("Cache-Control", "max-age=600")(c, n, w, r)
	}
	runScenarios(t, []scenario{
		{name: "POST invalidates the target URL", origin: unsafe, steps: []step{
			{path: "/a", wantOrigin: 1},
			{path: "/a", wantCS: []string{"hit"}, wantOrigin: 1},
			{method: "POST", path: "/a", wantStatus: 303, wantCS: []string{"fwd=method"}, wantOrigin: 2},
			{path: "/a", wantCS: []string{"fwd=uri-miss"}, wantOrigin: 3},
		}},
		{name: "Location and Content-Location on the same host are invalidated", origin: unsafe, steps: []step{
			{path: "/b", wantOrigin: 1},
			{path: "/c?x=1", wantOrigin: 2},
			{method: "POST", path: "/form?loc=/b&cloc=c%3Fx%3D1", wantStatus: 303, wantOrigin: 3},
			{path: "/b", wantCS: []string{"fwd=uri-miss"}, wantOrigin: 4},
			{path: "/c?x=1", wantCS: []string{"fwd=uri-miss"}, wantOrigin: 5},
		}},
		{name: "Location on another host is not", origin: unsafe, steps: []step{
			{path: "/d", wantOrigin: 1},
			{method: "POST", path: "/form?loc=http://evil.example/d", wantStatus: 303, wantOrigin: 2},
			{path: "/d", wantCS: []string{"hit"}, wantOrigin: 2},
		}},
		{name: "an error response does not invalidate", origin: unsafe, steps: []step{
			{path: "/e", wantOrigin: 1},
			{method: "POST", path: "/e?fail=1", wantStatus: 500, wantOrigin: 2},
			{path: "/e", wantCS: []string{"hit"}, wantOrigin: 2},
		}},
		{name: "PUT DELETE PATCH invalidate", origin: unsafe, steps: []step{
			{path: "/f", wantOrigin: 1},
			{method: "PUT", path: "/f", wantStatus: 200, wantOrigin: 2},
			{path: "/f", wantCS: []string{"fwd=uri-miss"}, wantOrigin: 3},
			{method: "DELETE", path: "/f", wantStatus: 200, wantOrigin: 4},
			{path: "/f", wantCS: []string{"fwd=uri-miss"}, wantOrigin: 5},
			{method: "PATCH", path: "/f", wantStatus: 200, wantOrigin: 6},
			{path: "/f", wantCS: []string{"fwd=uri-miss"}, wantOrigin: 7},
		}},
	})
}

// TestVary covers §4.1: selecting a variant by the stored Vary.
func TestVary(t *testing.T) {
	runScenarios(t, []scenario{
		{name: "variants follow Vary", origin: respond("Cache-Control", "max-age=60", "Vary", "Accept-Encoding, X-Theme"),
			steps: []step{
				{hdr: []string{"Accept-Encoding", "gzip", "X-Theme", "dark"}, wantCS: []string{"fwd=uri-miss", "stored"}, wantOrigin: 1, wantBody: "v1"},
				{hdr: []string{"Accept-Encoding", "br", "X-Theme", "dark"}, wantCS: []string{"fwd=vary-miss", "stored"}, wantOrigin: 2, wantBody: "v2"},
				{hdr: []string{"Accept-Encoding", "GZIP", "X-Theme", "dark"}, wantCS: []string{"hit"}, wantOrigin: 2, wantBody: "v1"},
				{hdr: []string{"Accept-Encoding", " br ", "X-Theme", "dark"}, wantCS: []string{"hit"}, wantOrigin: 2, wantBody: "v2"},
				{hdr: []string{"Accept-Encoding", "gzip", "X-Theme", "Dark"}, wantCS: []string{"fwd=vary-miss"}, wantOrigin: 3},
			}},
	})
}

// TestKeys covers key normalization as the proxy applies it.
func TestKeys(t *testing.T) {
	t.Run("ignored and reordered parameters share an entry and never reach the origin", func(t *testing.T) {
		r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
			respond("Cache-Control", "max-age=60")(storetest.NewClock(time.Time{}), 1, w, req)
		}, nil)
		r.Get("/p?b=2&utm_source=news&a=1")
		if got := r.Origin.LastRequest().URL.RawQuery; got != "a=1&b=2" {
			t.Errorf("origin got query %q, want %q", got, "a=1&b=2")
		}
		res := r.Get("/p?a=1&fbclid=x&b=2")
		if cs := csOf(t, res.Header); !match(cs, "hit") || r.Origin.Count() != 1 {
			t.Errorf("reordered query: Cache-Status %q, origin %d; want a hit and 1", cs, r.Origin.Count())
		}
		res = r.Get("/x/../p?a=1&b=2")
		if cs := csOf(t, res.Header); !match(cs, "hit") {
			t.Errorf("dot segments: Cache-Status %q, want a hit", cs)
		}
	})
	t.Run("hosts that are not configured can be forwarded uncached", func(t *testing.T) {
		r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
			respond("Cache-Control", "max-age=60")(storetest.NewClock(time.Time{}), 1, w, req)
		}, func(c *Config) { c.OtherHosts = ForwardUncached })
		for i := 1; i <= 2; i++ {
			res := r.DoWith(http.MethodGet, "/", func(req *http.Request) { req.Host = "other.example" })
			if cs := csOf(t, res.Header); !match(cs, "fwd=bypass; fwd-status=200; detail=host-not-cached") || r.Origin.Count() != int64(i) {
				t.Errorf("request %d: Cache-Status %q, origin %d", i, cs, r.Origin.Count())
			}
		}
	})
	t.Run("hosts that are not configured are refused by default", func(t *testing.T) {
		r := newRig(t, func(w http.ResponseWriter, req *http.Request) {}, nil)
		res := r.DoWith(http.MethodGet, "/", func(req *http.Request) { req.Host = "other.example" })
		if res.Status != http.StatusMisdirectedRequest || r.Origin.Count() != 0 {
			t.Errorf("got %d, origin %d; want 421 and 0", res.Status, r.Origin.Count())
		}
	})
}
