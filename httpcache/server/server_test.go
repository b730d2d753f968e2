package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/firstrender/firstrender/httpcache"
	"github.com/firstrender/firstrender/httpcache/httpcachetest"
	"github.com/firstrender/firstrender/httpcache/livesocket"
	"github.com/firstrender/firstrender/httpcache/liveview"
	"github.com/firstrender/firstrender/httpcache/liveview/plugsession"
	"github.com/firstrender/firstrender/store"
	"github.com/firstrender/firstrender/store/storetest"
	"github.com/gorilla/websocket"
)

// syncBuffer is a log sink safe to read while the server writes to it,
// read back as JSON lines.
type syncBuffer struct{ httpcachetest.SyncBuffer }

func (b *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

type testServer struct {
	srv           *Server
	public, admin string // base URLs
	logs          *syncBuffer
	cancel        context.CancelFunc
	done          chan struct{} // closed when Run has returned
	err           error         // Run's result, valid after done
}

// wait returns Run's error once it has returned, failing the test after 15s.
func (s *testServer) wait(t testing.TB) error {
	t.Helper()
	select {
	case <-s.done:
		return s.err
	case <-time.After(15 * time.Second):
		t.Fatalf("Run did not return 15s after its context was cancelled; logs:\n%s", s.logs)
		return nil
	}
}

// stop cancels Run's context and returns its error; it fails the test if
// Run does not return within the shutdown bound.
func (s *testServer) stop(t *testing.T) error {
	t.Helper()
	s.cancel()
	return s.wait(t)
}

// testConfig fills what a test leaves zero: loopback port-0 listeners, a
// database in a temporary directory, JSON logs into logs, a 5s shutdown.
func testConfig(t testing.TB, cfg Config, logs io.Writer) Config {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.AdminListen == "" {
		cfg.AdminListen = "127.0.0.1:0"
	}
	if cfg.DB == "" {
		cfg.DB = filepath.Join(t.TempDir(), "test.db")
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	}
	return cfg
}

// stored waits until the proxy's pending store writes have committed, so
// the next request for a page just fetched is a hit, not a collapsed one.
func (s *testServer) stored(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.srv.Proxy().Wait(ctx); err != nil {
		t.Fatalf("Proxy.Wait: %v", err)
	}
}

// startServer builds the server from cfg (see testConfig) and runs it
// until the test ends.
func startServer(t testing.TB, cfg Config) *testServer {
	t.Helper()
	logs := &syncBuffer{}
	cfg = testConfig(t, cfg, logs)
	srv, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v; logs:\n%s", err, logs)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &testServer{srv: srv, logs: logs, cancel: cancel, done: make(chan struct{})}
	go func() { s.err = srv.Run(ctx); close(s.done) }()
	select {
	case <-srv.Ready():
	case <-s.done:
		t.Fatalf("Run returned before it was ready: %v; logs:\n%s", s.err, logs)
	}
	s.public = "http://" + srv.PublicAddr().String()
	if a := srv.AdminAddr(); a != nil {
		s.admin = "http://" + a.String()
	}
	t.Cleanup(func() {
		cancel()
		s.wait(t)
		storetest.Check(t, cfg.DB) // the shutdown left a whole file
	})
	return s
}

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// countingOrigin is an httptest origin that counts requests per path.
func countingOrigin(t *testing.T) (*httptest.Server, *sync.Map) {
	t.Helper()
	var counts sync.Map
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := counts.LoadOrStore(r.URL.Path, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
		w.Header().Set("Cache-Control", "public, s-maxage=300")
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "origin says hello from "+r.URL.Path+"\n")
	}))
	t.Cleanup(srv.Close)
	return srv, &counts
}

func hits(m *sync.Map, path string) int64 {
	n, ok := m.Load(path)
	if !ok {
		return 0
	}
	return n.(*atomic.Int64).Load()
}

func fetch(t *testing.T, method, u string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func TestServer_AdminAndPublicListenersAreSeparate(t *testing.T) {
	t.Parallel()
	origin, counts := countingOrigin(t)
	s := startServer(t, Config{Upstream: mustURL(t, origin.URL)})

	// On the public listener the admin paths are just origin paths: they
	// are forwarded (the origin sees them) and never answered by firstrender.
	for _, p := range []string{"/metrics", "/healthz"} {
		res, body := fetch(t, "GET", s.public+p)
		if strings.Contains(body, "go_goroutines") || strings.Contains(body, "firstrender_") || body == "ok\n" {
			t.Errorf("public GET %s answered with admin content (status %d): %.80q", p, res.StatusCode, body)
		}
		if got := hits(counts, p); got != 1 {
			t.Errorf("public GET %s: origin asked %d times, want 1 (forwarded, not served by the server)", p, got)
		}
	}

	// After public traffic, the admin listener reports it.
	res, body := fetch(t, "GET", s.admin+"/metrics")
	if res.StatusCode != 200 {
		t.Fatalf("GET admin /metrics status = %d, want 200", res.StatusCode)
	}
	for _, want := range []string{
		"go_goroutines", "process_open_fds", // runtime and process collectors
		`firstrender_requests_total{cache="miss"}`, "firstrender_origin_requests_total", "firstrender_origin_duration_seconds", // proxy
		"firstrender_store_entries", "firstrender_store_bytes", "firstrender_store_evictions_total", // store
		"firstrender_livesocket_", // broker
	} {
		if !strings.Contains(body, want) {
			t.Errorf("admin /metrics lacks %s", want)
		}
	}
	if res, _ := fetch(t, "GET", s.admin+"/healthz"); res.StatusCode != 200 {
		t.Errorf("GET admin /healthz status = %d, want 200", res.StatusCode)
	}

	// And the admin listener does not proxy: its root is the admin API,
	// behind the token.
	if res, _ := fetch(t, "GET", s.admin+"/"); res.StatusCode != 401 {
		t.Errorf("GET admin / status = %d, want 401 (the admin API without a token)", res.StatusCode)
	}
	if got := hits(counts, "/"); got != 0 {
		t.Errorf("admin GET / reached the origin %d times, want 0", got)
	}
}

func TestServer_StopsOnContextCancel(t *testing.T) {
	t.Parallel()
	origin, _ := countingOrigin(t)
	s := startServer(t, Config{Upstream: mustURL(t, origin.URL)})
	if res, _ := fetch(t, "GET", s.public+"/x"); res.StatusCode != 200 {
		t.Fatalf("GET /x status = %d, want 200", res.StatusCode)
	}
	if err := s.stop(t); err != nil {
		t.Fatalf("run returned %v after cancel, want nil", err)
	}
	u, _ := url.Parse(s.public)
	if c, err := net.DialTimeout("tcp", u.Host, time.Second); err == nil {
		c.Close()
		t.Errorf("public listener %s still accepts connections after run returned", u.Host)
	}
	var sawStopped bool
	for _, l := range s.logs.lines(t) {
		if l["msg"] == "stopped" {
			sawStopped = true
		}
	}
	if !sawStopped {
		t.Errorf("no \"stopped\" log line after shutdown; logs:\n%s", s.logs)
	}
}

func TestServer_FinishesInFlightRequestOnShutdown(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	started := make(chan struct{})
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "slow but complete")
	}))
	defer origin.Close()
	s := startServer(t, Config{Upstream: mustURL(t, origin.URL)})

	type result struct {
		body string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		res, err := http.Get(s.public + "/slow")
		if err != nil {
			got <- result{err: err}
			return
		}
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		got <- result{string(b), err}
	}()
	<-started
	s.cancel() // shutdown begins while the request is in flight
	close(release)
	r := <-got
	if r.err != nil || r.body != "slow but complete" {
		t.Errorf("in-flight request during shutdown: got %q, %v; want the full body", r.body, r.err)
	}
	if err := s.wait(t); err != nil {
		t.Errorf("run returned %v, want nil", err)
	}
}

func TestServer_LogsBoundAddressesAndAccessLines(t *testing.T) {
	t.Parallel()
	origin, _ := countingOrigin(t)
	s := startServer(t, Config{Upstream: mustURL(t, origin.URL)})
	fetch(t, "GET", s.public+"/page?a=1")
	if err := s.stop(t); err != nil {
		t.Fatalf("stop: %v", err)
	}
	var listeners = map[string]string{}
	var access map[string]any
	for _, l := range s.logs.lines(t) {
		if l["msg"] == "listening" {
			listeners[l["listener"].(string)] = l["addr"].(string)
		}
		if l["msg"] == "request" && l["path"] == "/page?a=1" {
			access = l
		}
	}
	if "http://"+listeners["public"] != s.public || "http://"+listeners["admin"] != s.admin {
		t.Errorf("logged listeners %v, want public %s and admin %s", listeners, s.public, s.admin)
	}
	if access == nil {
		t.Fatalf("no access log line for /page?a=1; logs:\n%s", s.logs)
	}
	for _, k := range []string{"client", "method", "host", "path", "status", "cache", "detail", "stored", "key", "cache_status", "duration_ms", "bytes", "user_agent", "remote"} {
		if _, ok := access[k]; !ok {
			t.Errorf("access log line lacks %q: %v", k, access)
		}
	}
	if access["status"] != float64(200) || access["method"] != "GET" || access["key"] != s.public+"/page?a=1" ||
		access["bytes"] != float64(len("origin says hello from /page\n")) || access["user_agent"] != "Go-http-client/1.1" || access["client"] != "127.0.0.1" {
		t.Errorf("access log line = %v, want GET, status 200, key %s/page?a=1, the body's bytes, Go's user agent, client 127.0.0.1", access, s.public)
	}
	if _, ok := access["aborted"]; ok {
		t.Errorf("a complete response logged aborted: %v", access)
	}
}

func TestServer_DemoOriginLiveSocket(t *testing.T) {
	t.Parallel()
	s := startServer(t, Config{}) // no --upstream: the demo origin
	wsURL := "ws" + strings.TrimPrefix(s.public, "http") + "/live/websocket?vsn=2.0.0"

	// A foreign Origin is refused before the origin is dialled.
	_, res, err := websocket.DefaultDialer.Dial(wsURL, http.Header{"Origin": {"http://evil.example"}})
	if err == nil || res == nil || res.StatusCode != http.StatusForbidden {
		status := 0
		if res != nil {
			status = res.StatusCode
		}
		t.Errorf("upgrade with Origin http://evil.example: status %d, err %v; want 403", status, err)
	}

	// Our own origin goes through, and shutdown closes it with 1001.
	c, res, err := websocket.DefaultDialer.Dial(wsURL, http.Header{"Origin": {s.public}})
	if err != nil {
		status := 0
		if res != nil {
			status = res.StatusCode
		}
		t.Fatalf("upgrade with Origin %s: status %d, err %v; want 101", s.public, status, err)
	}
	defer c.Close()
	s.cancel()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
			t.Errorf("brokered socket on shutdown: got %v, want close 1001 (going away)", err)
		}
		break
	}
	if err := s.wait(t); err != nil {
		t.Errorf("run returned %v, want nil", err)
	}
	var opened, closed bool
	for _, l := range s.logs.lines(t) {
		if l["path"] != "/live/websocket?vsn=2.0.0" {
			continue
		}
		switch {
		case l["msg"] == "websocket open" && l["origin"] == s.public:
			if closed {
				t.Errorf("websocket open logged after websocket closed")
			}
			opened = true
		case l["msg"] == "websocket closed" && l["status"] == float64(101):
			if _, ok := l["duration_ms"]; !ok {
				t.Errorf("websocket closed line lacks duration_ms: %v", l)
			}
			closed = true
		}
	}
	if !opened || !closed {
		t.Errorf("brokered socket: logged open %v, closed (status 101) %v; want both; logs:\n%s", opened, closed, s.logs)
	}
}

// TestRun_DemoPageJoinsThroughBroker joins the LiveView of a page served
// from the store, through the broker, the way the phoenix_live_view client
// does (channel v2: [join_ref, ref, topic, event, payload]).

func TestServer_DemoPageJoinsThroughBroker(t *testing.T) {
	t.Parallel()
	s := startServer(t, Config{})
	fetch(t, "GET", s.public+"/") // miss: stored
	s.stored(t)
	res, body := fetch(t, "GET", s.public+"/")
	if cs := res.Header.Get("Cache-Status"); !strings.Contains(cs, "hit") {
		t.Fatalf("second GET /: Cache-Status %q, want a hit", cs)
	}
	m := regexp.MustCompile(`data-phx-session="([^"]+)" data-phx-static="([^"]+)" id="([^"]+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("GET / has no LiveView main div:\n%s", body)
	}
	session, static, id := m[1], m[2], m[3]

	wsURL := "ws" + strings.TrimPrefix(s.public, "http") + "/live/websocket?vsn=2.0.0"
	c, _, err := websocket.DefaultDialer.Dial(wsURL, http.Header{"Origin": {s.public}})
	if err != nil {
		t.Fatalf("dial %s: %v", wsURL, err)
	}
	defer c.Close()
	topic := "lv:" + id
	join, _ := json.Marshal([]any{"1", "1", topic, "phx_join", map[string]any{
		"url": s.public + "/", "params": map[string]any{"_mounts": 0}, "session": session, "static": static,
	}})
	if err := c.WriteMessage(websocket.TextMessage, join); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, msg, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for the join reply: %v", err)
		}
		var frame []json.RawMessage
		if json.Unmarshal(msg, &frame) != nil || len(frame) != 5 {
			continue
		}
		var ref, event string
		json.Unmarshal(frame[1], &ref)
		json.Unmarshal(frame[3], &event)
		if ref != "1" || event != "phx_reply" {
			continue
		}
		var reply struct {
			Status   string         `json:"status"`
			Response map[string]any `json:"response"`
		}
		json.Unmarshal(frame[4], &reply)
		if reply.Status != "ok" || reply.Response["rendered"] == nil {
			t.Errorf("join reply = %s, want status ok with a rendered diff", frame[4])
		}
		return
	}
}

func TestServer_UnreachableUpstream(t *testing.T) {
	t.Parallel()
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close() // its address now refuses connections
	s := startServer(t, Config{Upstream: mustURL(t, gone.URL), Cache: httpcache.Config{OriginTimeout: 5 * time.Second}})
	for _, path := range []string{"/", "/account"} {
		start := time.Now()
		res, body := fetch(t, "GET", s.public+path)
		if res.StatusCode != http.StatusBadGateway || len(body) == 0 || len(body) > 200 || res.Header.Get("Cache-Status") == "" {
			t.Errorf("GET %s with --upstream %s unreachable: got %d, Cache-Status %q, body %q; want 502, a Cache-Status and a short body",
				path, gone.URL, res.StatusCode, res.Header.Get("Cache-Status"), body)
		}
		if d := time.Since(start); d > 4*time.Second {
			t.Errorf("GET %s took %v with a refusing upstream, want an answer well before --origin-timeout", path, d)
		}
	}
	if err := s.stop(t); err != nil {
		t.Errorf("shutdown after origin errors = %v, want nil", err)
	}
}

func TestServer_LiveViewLintIsWired(t *testing.T) {
	t.Parallel()
	t.Run("per-user session is refused with the lint's reason", func(t *testing.T) {
		s := startServer(t, Config{Cache: httpcache.Config{StripSetCookie: []string{"/"}}})
		res, _ := fetch(t, "GET", s.public+"/account")
		if cs := res.Header.Get("Cache-Status"); !strings.Contains(cs, "detail=liveview-user-session") || strings.Contains(cs, "stored") {
			t.Errorf("GET /account with --set-cookie=strip: Cache-Status %q, want not stored with detail=liveview-user-session", cs)
		}
	})
	t.Run("strip policies store a shareable copy", func(t *testing.T) {
		s := startServer(t, Config{
			Cache:    httpcache.Config{StripSetCookie: []string{"/"}},
			LiveView: liveview.Config{Policy: map[liveview.Kind]liveview.Action{liveview.KindCSRFMeta: liveview.Strip, liveview.KindUserSession: liveview.Allow}},
		})
		first, firstBody := fetch(t, "GET", s.public+"/account")
		s.stored(t)
		if first.Header.Get("Set-Cookie") == "" || !regexp.MustCompile(`name="csrf-token" content="[^"]+"`).MatchString(firstBody) {
			t.Fatalf("first GET /account: the visitor who caused the fetch should get the cookie and token")
		}
		second, body := fetch(t, "GET", s.public+"/account")
		if cs := second.Header.Get("Cache-Status"); !strings.Contains(cs, "hit") {
			t.Fatalf("second GET /account: Cache-Status %q, want a hit", cs)
		}
		if c := second.Header.Get("Set-Cookie"); c != "" {
			t.Errorf("stored copy served Set-Cookie %q, want none", c)
		}
		if !strings.Contains(body, `name="csrf-token" content=""`) {
			t.Errorf("stored copy's CSRF meta is not blanked:\n%s", body)
		}
	})
}

// TestServer_AccessLogCountsTheProxysOwnResult: behind an origin that sends
// its own Cache-Status (RFC 9211: a cache nearer the origin), the access
// log and the server's metrics report firstrender's result, not the
// origin's member.
func TestServer_AccessLogCountsTheProxysOwnResult(t *testing.T) {
	t.Parallel()
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Status", "origin-cdn; hit; ttl=30")
		w.Header().Set("Cache-Control", "public, s-maxage=300")
		io.WriteString(w, "from behind a CDN\n")
	}))
	t.Cleanup(origin.Close)
	s := startServer(t, Config{Upstream: mustURL(t, origin.URL)})
	fetch(t, "GET", s.public+"/a") // miss, stored
	s.stored(t)
	fetch(t, "GET", s.public+"/a") // hit
	fetch(t, "POST", s.public+"/a")
	if err := s.stop(t); err != nil {
		t.Fatalf("stop: %v", err)
	}
	var got []string
	for _, l := range s.logs.lines(t) {
		if l["msg"] == "request" {
			got = append(got, l["method"].(string)+" "+l["cache"].(string)+" stored="+strings.TrimSpace(jsonString(l["stored"])))
		}
	}
	want := []string{"GET miss stored=true", "GET hit stored=false", "POST pass stored=false"}
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Errorf("access log results = %q, want %q", got, want)
	}
	for _, tc := range []struct {
		result string
		want   float64
	}{{"miss", 1}, {"hit", 1}, {"pass", 1}} {
		if n := counterValue(t, s.srv, "firstrender_requests_total", "cache", tc.result); n != tc.want {
			t.Errorf(`firstrender_requests_total{cache=%q} = %v, want %v`, tc.result, n, tc.want)
		}
	}
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// counterValue sums the counter name's series whose label has value.
func counterValue(t *testing.T, s *Server, name, label, value string) float64 {
	t.Helper()
	mfs, err := s.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}

// TestServer_HandleAdminMountsOnTheAdminListenerOnly: what the admin API
// will plug in is served on the admin listener and never on the public one.
func TestServer_HandleAdminMountsOnTheAdminListenerOnly(t *testing.T) {
	t.Parallel()
	origin, counts := countingOrigin(t)
	s := startServer(t, Config{Upstream: mustURL(t, origin.URL)})
	if err := s.srv.HandleAdmin("GET /api/ping", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "pong")
	})); err != nil {
		t.Fatalf("HandleAdmin: %v", err)
	}
	if res, body := fetch(t, "GET", s.admin+"/api/ping"); res.StatusCode != 200 || body != "pong" {
		t.Errorf("admin GET /api/ping = %d %q, want 200 pong", res.StatusCode, body)
	}
	if _, body := fetch(t, "GET", s.public+"/api/ping"); body == "pong" || hits(counts, "/api/ping") != 1 {
		t.Errorf("public GET /api/ping answered %q (origin asked %d times); want it forwarded to the origin", body, hits(counts, "/api/ping"))
	}

	noAdmin, err := New(testConfig(t, Config{Upstream: mustURL(t, origin.URL), NoAdmin: true}, io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	defer noAdmin.Close()
	if noAdmin.AdminAddr() != nil {
		t.Errorf("NoAdmin: AdminAddr() = %v, want nil", noAdmin.AdminAddr())
	}
	if err := noAdmin.HandleAdmin("/x", http.NotFoundHandler()); err == nil {
		t.Errorf("HandleAdmin with NoAdmin = nil, want an error")
	}
}

// TestServer_CloseWithoutRunReleasesEverything: a Server that is never Run
// gives back its listeners and the database lock on Close.
func TestServer_CloseWithoutRunReleasesEverything(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, Config{}, io.Discard) // the demo origin too
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	addr := srv.PublicAddr().String()
	if err := srv.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("public listener %s still accepts connections after Close", addr)
	}
	st, err := store.Open(cfg.DB, store.Options{Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("store.Open after Close: %v, want the lock released", err)
	}
	st.Close()
	if err := srv.Run(context.Background()); err == nil {
		t.Errorf("Run after Close = nil, want an error")
	}
}

func TestNew_RefusesBadConfig(t *testing.T) {
	t.Parallel()
	u := mustURL(t, "http://127.0.0.1:1")
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"wiring field set", Config{Cache: httpcache.Config{Upstream: u}}, "Cache.Upstream"},
		{"policy set", Config{Sockets: livesocket.Config{Policy: &livesocket.OriginPolicy{}}}, "Sockets.Policy"},
		{"proxy to itself", Config{Upstream: mustURL(t, "http://example.com"), PublicURL: mustURL(t, "http://EXAMPLE.com:80")}, "proxy to itself"},
		{"admin on the public address", Config{Listen: "127.0.0.1:8080", AdminListen: "127.0.0.1:8080"}, "public listener"},
		{"library refusal", Config{Upstream: u, Cache: httpcache.Config{MaxBuffered: 1, MaxObjectSize: 2}}, "MaxBuffered"},
		{"bad origin", Config{Upstream: u, Origins: livesocket.OriginConfig{Allowed: []string{"example.com"}}}, "example.com"},
		{"splicer set directly", Config{Upstream: u, Cache: httpcache.Config{Splicer: testSplicer(t)}}, "Cache.Splicer"},
		{"splice paths without the splice", Config{Upstream: u, Cache: httpcache.Config{SplicePaths: []string{"/shop"}}}, "LiveView.Splice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(t, tt.cfg, io.Discard)
			srv, err := New(cfg)
			if err == nil {
				srv.Close()
				t.Fatalf("New: nil error, want one mentioning %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: %v, want it to mention %q", err, tt.want)
			}
			// Nothing stays open: the database can be opened again.
			if st, err := store.Open(cfg.DB, store.Options{Timeout: 100 * time.Millisecond}); err == nil {
				st.Close()
			} else if !errors.Is(err, os.ErrNotExist) {
				t.Errorf("store.Open after the failed New: %v", err)
			}
		})
	}
}

// TestNew_FieldErrors: an address or database that cannot be used is a
// *FieldError naming the field, wrapping the cause, and leaves the file
// as it was.
func TestNew_FieldErrors(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dir := t.TempDir()
	// A file that is not a database is no error any more: it is moved
	// aside (TestServer_CorruptDBStartsEmpty).
	held := filepath.Join(dir, "held.db")
	holder, err := store.Open(held, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	up := mustURL(t, "http://127.0.0.1:1")
	tests := []struct {
		name         string
		cfg          Config
		field, value string
		want         string
	}{
		{"listen address in use", Config{Upstream: up, Listen: taken.Addr().String(), NoAdmin: true}, "Listen", taken.Addr().String(), "address already in use"},
		{"admin address in use", Config{Upstream: up, AdminListen: taken.Addr().String()}, "AdminListen", taken.Addr().String(), "address already in use"},
		{"directory", Config{Upstream: up, DB: dir}, "DB", dir, "is a directory, not a database file: name a file inside it"},
		{"missing parent directory", Config{Upstream: up, DB: filepath.Join(dir, "nope", "x.db")}, "DB", filepath.Join(dir, "nope", "x.db"), "directory " + filepath.Join(dir, "nope") + " does not exist: create it or choose another path"},
		{"locked by another holder", Config{Upstream: up, DB: held, Store: store.Options{Timeout: 50 * time.Millisecond}}, "DB", held, "locked by another process for the whole 50ms wait"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, err := New(testConfig(t, tt.cfg, io.Discard))
			if err == nil {
				srv.Close()
				t.Fatalf("New: nil error, want a FieldError for %s", tt.field)
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field || fe.Value != tt.value || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: %v (%T), want a *FieldError{%s, %s} saying %q", err, err, tt.field, tt.value, tt.want)
			}
			if tt.field == "Listen" {
				var opErr *net.OpError
				if !errors.As(err, &opErr) {
					t.Errorf("New error %v does not wrap the *net.OpError", err)
				}
			}
		})
	}
}

func testSplicer(t *testing.T) *liveview.Splicer {
	t.Helper()
	sp, err := liveview.NewSplicer(liveview.SpliceConfig{
		Session:    plugsession.Config{SecretKeyBase: strings.Repeat("s3cret-key-base-", 5), SigningSalt: "session-salt-value"},
		CookieName: "_shop_key",
	})
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

// TestServer_SessionSplice: LiveView.Splice is the proxy's Splicer on
// every path by default (or Cache.SplicePaths), and the policy line names
// the cookie and the paths, never the secret or the salt.
func TestServer_SessionSplice(t *testing.T) {
	t.Parallel()
	origin, _ := countingOrigin(t)
	for _, tc := range []struct {
		paths, want []string
	}{
		{nil, []string{"/"}},
		{[]string{"/shop", "/blog"}, []string{"/shop", "/blog"}},
	} {
		s := startServer(t, Config{Upstream: mustURL(t, origin.URL), LiveView: liveview.Config{Splice: testSplicer(t)}, Cache: httpcache.Config{SplicePaths: tc.paths}})
		if got := s.srv.Proxy().SplicePaths(); !slices.Equal(got, tc.want) {
			t.Errorf("SplicePaths = %v, want %v", got, tc.want)
		}
		if got := s.srv.Proxy().SessionCookie(tc.want[0] + "x"); got != "_shop_key" {
			t.Errorf("SessionCookie = %q, want _shop_key", got)
		}
		logs := s.logs.String()
		if !strings.Contains(logs, `"session_splice":"cookie _shop_key (signed) on `+strings.Join(tc.want, ",")+`"`) {
			t.Errorf("policy line lacks the session splice:\n%s", logs)
		}
		for _, secret := range []string{"s3cret-key-base-", "session-salt-value"} {
			if strings.Contains(logs, secret) {
				t.Errorf("the log shows a secret %q", secret)
			}
		}
	}
}

// TestServer_AccessLineOfAnEncodedHit checks the access line of a plain
// hit whose fields went out as one encoded block inserted by the cork
// (httpcache's serveEncoded, on the public listener): its cache_status is
// the Cache-Status sent, though net/http's header map never held it.
func TestServer_AccessLineOfAnEncodedHit(t *testing.T) {
	t.Parallel()
	origin, _ := countingOrigin(t)
	s := startServer(t, Config{Upstream: mustURL(t, origin.URL)})
	fetch(t, "GET", s.public+"/enc") // the fill
	s.stored(t)
	c, err := net.Dial("tcp", strings.TrimPrefix(s.public, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET /enc HTTP/1.1\r\nHost: "+strings.TrimPrefix(s.public, "http://")+"\r\nConnection: close\r\n\r\n")
	raw, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	head, _, _ := strings.Cut(string(raw), "\r\n\r\n")
	_, fields, _ := strings.Cut(head, "\r\n")
	if !strings.HasPrefix(fields, "Content-Length: ") || !strings.Contains(head, "\r\nCache-Status: firstrender; hit; ttl=") {
		t.Fatalf("not a hit with its fields inserted after net/http's Content-Length:\n%s", head)
	}
	sent := head[strings.Index(head, "\r\nCache-Status: ")+len("\r\nCache-Status: "):]
	sent, _, _ = strings.Cut(sent, "\r\n")
	if err := s.stop(t); err != nil {
		t.Fatalf("stop: %v", err)
	}
	var lines []map[string]any
	for _, l := range s.logs.lines(t) {
		if l["msg"] == "request" && l["path"] == "/enc" {
			lines = append(lines, l)
		}
	}
	if len(lines) != 2 || lines[1]["cache_status"] != sent || lines[1]["cache"] != "hit" {
		t.Fatalf("access lines for /enc: %v; want two, the second with cache hit and cache_status %q", lines, sent)
	}
}
