// Package e2e tests the live-socket broker with the real caching proxy,
// store, LiveView lint and demo origin, and (browser_test.go) with headless
// Chromium running the real phoenix_live_view client. It is a separate
// package so that livesocket's own tests do not depend on the others.
package e2e

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/firstrender/firstrender/httpcache"
	"github.com/firstrender/firstrender/httpcache/demo"
	"github.com/firstrender/firstrender/httpcache/livesocket"
	"github.com/firstrender/firstrender/httpcache/liveview"
	"github.com/firstrender/firstrender/store"
	"github.com/firstrender/firstrender/store/storetest"
	"github.com/prometheus/client_golang/prometheus"
)

// stack is origin → firstrender (broker in front of the caching proxy).
type stack struct {
	origin *httptest.Server
	front  *httptest.Server
	proxy  *httpcache.Proxy
	broker *livesocket.Broker
	store  *store.Store
	reg    *prometheus.Registry

	originRenders atomic.Int64 // GET / answered by the origin
}

func liveTick(d time.Duration) demo.LiveConfig { return demo.LiveConfig{Tick: d} }

// refused reads firstrender_livesocket_upgrades_refused_total{reason}.
func (s *stack) refused(reason string) float64 {
	return s.counter("firstrender_livesocket_upgrades_refused_total", "reason", reason)
}

// counter reads a counter with one label from the broker's registry.
func (s *stack) counter(name, label, value string) float64 {
	mfs, _ := s.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

type stackOpts struct {
	live      demo.LiveConfig // the origin's live socket
	allowed   []string        // nil: the front's own origin
	scripts   bool            // inject demo.LiveScripts into pages (until demo.go does)
	nodeMods  string
	threshold int
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func newStack(t testing.TB, o stackOpts) *stack {
	t.Helper()
	pages := demo.New(demo.Config{})
	o.live.NodeModules = o.nodeMods
	live := demo.LiveHandler(o.live)
	mux := http.NewServeMux()
	mux.Handle("/live/websocket", live)
	mux.Handle("/assets/", live)
	var pageHandler http.Handler = pages
	if o.scripts {
		pageHandler = injectScripts(pages)
	}
	s := &stack{reg: prometheus.NewRegistry()}
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" && r.Method == http.MethodGet {
			s.originRenders.Add(1)
		}
		pageHandler.ServeHTTP(w, r)
	}))
	s.origin = httptest.NewServer(mux)
	t.Cleanup(s.origin.Close)

	st := storetest.Open(t, store.Options{}) // closed and checked after the cleanup below
	s.store = st
	upstream, _ := url.Parse(s.origin.URL)
	lint, err := liveview.New(liveview.Config{})
	if err != nil {
		t.Fatal(err)
	}
	s.proxy, err = httpcache.New(httpcache.Config{Upstream: upstream, Store: st, Inspector: lint, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	s.front = httptest.NewUnstartedServer(nil)
	frontOrigin := "http://" + s.front.Listener.Addr().String()
	allowed := o.allowed
	if allowed == nil {
		allowed = []string{frontOrigin}
	}
	policy, err := livesocket.NewOriginPolicy(livesocket.OriginConfig{Allowed: allowed, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	s.broker, err = livesocket.New(livesocket.Config{
		Origin:         upstream,
		Policy:         policy,
		TrustForwarded: true, // tests tell clients apart by X-Forwarded-For
		Registerer:     s.reg,
		Guard:          &livesocket.GuardConfig{Cache: s.proxy, Annotator: st, Threshold: o.threshold},
		Logger:         quiet(),
	})
	if err != nil {
		t.Fatal(err)
	}
	s.front.Config.Handler = s.broker.Wrap(s.proxy)
	s.front.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.broker.Shutdown(ctx)
		s.front.Close()
		s.proxy.Close(ctx)
	})
	return s
}

// injectScripts adds demo.LiveScripts before </body> of HTML pages that
// lack them, so the page goes live in a browser.
func injectScripts(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		body := rec.Body.String()
		if strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") && !strings.Contains(body, "/assets/app.js") {
			body = strings.Replace(body, "</body>", demo.LiveScripts+"</body>", 1)
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Del("Content-Length")
		w.WriteHeader(rec.Code)
		io.WriteString(w, body)
	})
}

var (
	sessionRE = regexp.MustCompile(`data-phx-session="([^"]+)"[^>]*id="([^"]+)"`)
	renderRE  = regexp.MustCompile(`render #(\d+)`)
)

type page struct {
	status      cacheStatus // the proxy's Cache-Status member
	token, id   string
	render, url string
}

// hit reports whether the proxy served p from the store.
func (p page) hit() bool { return p.status.has("hit") }

func (s *stack) get(t testing.TB, path string) page {
	t.Helper()
	resp, err := http.Get(s.front.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	p := page{status: proxyStatus(t, resp.Header), url: s.front.URL + path}
	if m := sessionRE.FindSubmatch(body); m != nil {
		p.token, p.id = string(m[1]), string(m[2])
	}
	if m := renderRE.FindSubmatch(body); m != nil {
		p.render = string(m[1])
	}
	return p
}

// cachedPage fetches path, waits for the proxy's background store write
// (Proxy.Wait), and fetches it again: that second answer must be a hit.
func (s *stack) cachedPage(t testing.TB, path string) page {
	t.Helper()
	first := s.get(t, path)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.proxy.Wait(ctx); err != nil {
		t.Fatalf("waiting for the proxy to store %s: %v", path, err)
	}
	p := s.get(t, path)
	if !p.hit() {
		t.Fatalf("GET %s after its store write: Cache-Status %s (first %s), want a hit", path, p.status, first.status)
	}
	return p
}
