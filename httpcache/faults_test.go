package httpcache

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/firstrender/firstrender/httpcache/hop"
	"github.com/firstrender/firstrender/httpcache/httpcachetest"
	"github.com/firstrender/firstrender/store"
	"github.com/firstrender/firstrender/store/storetest"
	"github.com/prometheus/client_golang/prometheus"
)

// lineLog is a slog handler keeping each record as one line.
type lineLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *lineLog) Enabled(_ context.Context, lv slog.Level) bool { return lv >= slog.LevelInfo }
func (l *lineLog) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool { b.WriteString(" " + a.String()); return true })
	l.mu.Lock()
	l.lines = append(l.lines, b.String())
	l.mu.Unlock()
	return nil
}
func (l *lineLog) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *lineLog) WithGroup(string) slog.Handler      { return l }
func (l *lineLog) count(level, sub string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.lines {
		if strings.HasPrefix(s, level) && strings.Contains(s, sub) {
			n++
		}
	}
	return n
}
func (l *lineLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// TestProxy_StoreFailing: while the store's writes fail (a full, then a
// read-only disk, injected under the store), hits keep being served,
// misses are forwarded and answered 200, no response claims "stored"
// once the store knows its writes fail (the write is asynchronous: the
// first miss after the disk filled cannot know), the failed writes are
// counted by cause, the proxy logs no warning per request and the store
// one line per change of state; storing resumes when the disk does.
func TestProxy_StoreFailing(t *testing.T) {
	t.Parallel()
	var fault atomic.Pointer[error]
	setFault := func(errno syscall.Errno) {
		if errno == 0 {
			fault.Store(nil)
			return
		}
		var e error = &os.PathError{Op: "write", Path: "fr.db", Err: errno}
		fault.Store(&e)
	}
	storeLog, proxyLog := &lineLog{}, &lineLog{}
	st := storetest.Open(t, store.Options{Logger: slog.New(storeLog), WriteFault: func() error {
		if e := fault.Load(); e != nil {
			return *e
		}
		return nil
	}})
	origin := httpcachetest.NewOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		io.WriteString(w, "page "+r.URL.Path)
	})
	up, _ := url.Parse(origin.URL)
	reg := prometheus.NewRegistry()
	p, err := New(Config{Upstream: up, Store: st, Logger: slog.New(proxyLog), Registerer: reg,
		Inspector: InspectorFunc(func(*http.Request, *Response) Verdict { return Verdict{} })})
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(p)
	t.Cleanup(func() { front.Close(); p.Close(context.Background()) })
	get := func(path string) (int, string, httpcachetest.Member) {
		t.Helper()
		res, err := http.Get(front.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if err := p.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		return res.StatusCode, string(b), csOf(t, res.Header)
	}
	if _, _, m := get("/kept"); !match(m, "fwd=uri-miss; stored") {
		t.Fatalf("healthy miss: %s", m)
	}
	for _, tc := range []struct {
		errno syscall.Errno
		cause string
	}{{syscall.ENOSPC, "no-space"}, {syscall.EROFS, "read-only"}} {
		setFault(tc.errno)
		get(fmt.Sprintf("/first-%s", tc.cause)) // its write is what fails first
		for i := range 10 {
			path := fmt.Sprintf("/%s/%d", tc.cause, i)
			code, body, m := get(path)
			if code != 200 || body != "page "+path {
				t.Fatalf("miss while %s: %d %q", tc.cause, code, body)
			}
			if !match(m, "fwd=uri-miss; detail=store-failing", "stored", "ttl") {
				t.Errorf("miss while %s claims: %s", tc.cause, m)
			}
			if code, body, m := get("/kept"); code != 200 || body != "page /kept" || !match(m, "hit") {
				t.Errorf("hit while %s: %d %q %s", tc.cause, code, body, m)
			}
		}
		got := gathered(t, reg, "firstrender_store_write_failures_total", "cause", tc.cause)
		if got < 11 {
			t.Errorf("firstrender_store_write_failures_total{cause=%q} = %v, want >= 11", tc.cause, got)
		}
		if g := gathered(t, reg, "firstrender_store_writes_failing", "", ""); g != 1 {
			t.Errorf("firstrender_store_writes_failing = %v while %s", g, tc.cause)
		}
	}
	if n := proxyLog.count("WARN", "store"); n != 0 {
		t.Errorf("the proxy logged %d store warnings (want none: the store logs state changes):\n%s", n, proxyLog)
	}
	if n := storeLog.count("WARN", "writes failing"); n != 2 {
		t.Errorf("the store logged %d 'writes failing' lines for 2 state changes:\n%s", n, storeLog)
	}
	setFault(0)
	get("/probe") // its write commits: the store is healthy again
	if _, _, m := get("/back"); !match(m, "fwd=uri-miss; stored") {
		t.Errorf("miss after the disk recovered: %s", m)
	}
	if _, _, m := get("/back"); !match(m, "hit") {
		t.Errorf("hit after the disk recovered: %s", m)
	}
	if n := storeLog.count("INFO", "writes resumed"); n != 1 {
		t.Errorf("%d 'writes resumed' lines:\n%s", n, storeLog)
	}
	if g := gathered(t, reg, "firstrender_store_writes_failing", "", ""); g != 0 {
		t.Errorf("firstrender_store_writes_failing = %v after recovery", g)
	}
}

// gathered finds the gathered series name (with label=value when
// label is not empty) in reg and returns its value.
func gathered(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			ok := label == ""
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					ok = true
				}
			}
			if ok {
				return m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no series %s{%s=%q}", name, label, value)
	return 0
}

// gatedTransport holds every origin request until open is closed, then
// fails it with err (a timeout or a refused connection), counting calls.
type gatedTransport struct {
	open  chan struct{}
	err   error
	calls atomic.Int64
}

func (g *gatedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	g.calls.Add(1)
	select {
	case <-g.open:
	case <-r.Context().Done():
		return nil, r.Context().Err()
	}
	return nil, g.err
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

var _ net.Error = timeoutErr{}

// TestProxy_CollapsedOriginFailure: 20 concurrent requests for one URL
// whose one origin request fails (no answer in time, or the origin is
// unreachable, or its answer cannot be read) are all answered with that
// failure at once: the origin
// sees that one request only (before, the waiters queued for two more
// timeouts and then all went to the origin). With a stale entry that
// allows stale-if-error, every one of them is served stale. The default
// CollapseWait (OriginTimeout) does not send waiters to the origin early.
func TestProxy_CollapsedOriginFailure(t *testing.T) {
	t.Parallel()
	const clients = 20
	for _, tc := range []struct {
		name       string
		err        error
		stale      bool // an entry with stale-if-error is stored and stale
		wantStatus int
		want       string
	}{
		{"timeout", timeoutErr{}, false, http.StatusGatewayTimeout, "collapsed; detail=origin-timeout"},
		{"unreachable", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, false, http.StatusBadGateway, "collapsed; detail=origin-unreachable"},
		{"unreadable framing", fmt.Errorf("reading the response: %w", hop.ErrFraming), false, http.StatusBadGateway, "collapsed; detail=origin-framing"},
		{"timeout with stale-if-error", timeoutErr{}, true, http.StatusOK, "fwd=stale; detail=stale-if-error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			gate := &gatedTransport{open: make(chan struct{}), err: tc.err}
			var direct atomic.Bool // before the gate is used: a real origin
			direct.Store(tc.stale)
			hook, waiting := countTo(clients - 1)
			r := newRig(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Cache-Control", "max-age=60, stale-if-error=3600")
				io.WriteString(w, "stale page")
			}, func(c *Config) {
				c.Transport = roundTripFunc(func(req *http.Request) (*http.Response, error) {
					if direct.Load() {
						return http.DefaultTransport.RoundTrip(req)
					}
					return gate.RoundTrip(req)
				})
				c.OriginTimeout = time.Minute // the gate decides when the request fails
			})
			if tc.stale {
				r.Get("/x")
				r.Clock.Advance(2 * time.Minute)
				direct.Store(false)
			}
			r.Proxy.onWait = hook
			var wg sync.WaitGroup
			type answer struct {
				code int
				m    httpcachetest.Member
				body string
			}
			answers := make([]answer, clients)
			for i := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					res, err := r.Client.Get(r.Front.URL + "/x")
					if err != nil {
						t.Error(err)
						return
					}
					b, _ := io.ReadAll(res.Body)
					res.Body.Close()
					m, _ := httpcachetest.Find(res.Header, CacheName)
					answers[i] = answer{res.StatusCode, m, string(b)}
				}()
			}
			within(t, waiting, 10*time.Second, "19 requests waiting on the first")
			close(gate.open)
			wg.Wait()
			if n := gate.calls.Load(); n != 1 {
				t.Errorf("the origin got %d requests for one URL and one failure, want 1", n)
			}
			leaders := 0
			for _, a := range answers {
				if a.code != tc.wantStatus {
					t.Errorf("status %d, want %d (%s)", a.code, tc.wantStatus, a.m)
				}
				if tc.stale && a.body != "stale page" {
					t.Errorf("body %q, want the stale page", a.body)
				}
				if a.m.Has("collapsed") {
					if !match(a.m, tc.want) {
						t.Errorf("waiter's Cache-Status %s, want %s", a.m, tc.want)
					}
				} else {
					leaders++
				}
			}
			if leaders != 1 {
				t.Errorf("%d answers not collapsed, want 1 (the leader)", leaders)
			}
		})
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestProxy_ClockJumps: with the clock injected, a jump backwards (or a
// forward jump corrected later) never makes a stored entry fresh for
// longer than its lifetime, and a token-capped entry (an Inspector's
// NotAfter) is never served at or after its cap, whichever way the clock
// moved.
func TestProxy_ClockJumps(t *testing.T) {
	t.Parallel()
	t0 := storetest.Start
	notAfter := t0.Add(10 * time.Minute)
	var etag atomic.Int64
	r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Header().Set("ETag", `"v1"`)
		if req.Header.Get("If-None-Match") == `"v1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		etag.Add(1)
		io.WriteString(w, "page")
	}, func(c *Config) {
		c.Inspector = InspectorFunc(func(req *http.Request, _ *Response) Verdict {
			if strings.HasPrefix(req.URL.Path, "/token") {
				return Verdict{NotAfter: notAfter}
			}
			return Verdict{}
		})
	})
	hit := func(path string) bool {
		t.Helper()
		before := r.Origin.Count()
		res := r.Get(path)
		if res.Status != 200 && res.Status != 304 {
			t.Fatalf("GET %s at %v: %d", path, r.Clock.Now(), res.Status)
		}
		return r.Origin.Count() == before
	}

	t.Run("backwards", func(t *testing.T) {
		r.Clock.Set(t0)
		hit("/back")
		if !hit("/back") {
			t.Fatal("not a hit right after storing")
		}
		r.Clock.Set(t0.Add(-time.Hour)) // max-age=3600 would keep it "fresh" for 2 h
		if hit("/back") {
			t.Error("after the clock jumped back 1h, the entry was served without asking the origin")
		}
		// Revalidated (304): fresh again for its lifetime on the new clock.
		if !hit("/back") {
			t.Error("not a hit after the revalidation")
		}
		r.Clock.Set(t0.Add(-time.Hour + 3601*time.Second))
		if hit("/back") {
			t.Error("served past its lifetime after the clock jump")
		}
	})
	t.Run("forward then corrected", func(t *testing.T) {
		r.Clock.Set(t0.Add(365 * 24 * time.Hour))
		hit("/future")
		r.Clock.Set(t0)
		if hit("/future") {
			t.Error("an entry stored while the clock was a year ahead was fresh after the correction")
		}
	})
	t.Run("token cap", func(t *testing.T) {
		for _, jump := range []struct {
			name string
			to   time.Time
		}{
			{"forward past the cap", notAfter.Add(time.Second)},
			{"back one hour", t0.Add(-time.Hour)},
			{"at the cap", notAfter},
			{"back a day", t0.Add(-24 * time.Hour)},
			{"forward a day", t0.Add(24 * time.Hour)},
		} {
			path := "/token?case=" + url.QueryEscape(jump.name)
			r.Clock.Set(t0)
			r.Get(path) // stored, ttl capped at 600 s
			r.Clock.Set(jump.to)
			for range 3 {
				served := hit(path)
				if served && !r.Clock.Now().Before(notAfter) {
					t.Errorf("%s: served from the cache at %v, at or after its token cap %v", jump.name, r.Clock.Now(), notAfter)
				}
			}
		}
	})
}
