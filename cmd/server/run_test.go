package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/firstrender/firstrender/httpcache/liveview"
	"github.com/gorilla/websocket"
)

// syncBuffer is a log sink safe to read while the server writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines returns the JSON log records written so far.
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
	public, admin string // base URLs
	logs          *syncBuffer
	cancel        context.CancelFunc
	done          chan struct{} // closed when run has returned
	err           error         // run's result, valid after done
}

// wait returns run's error once it has returned, failing the test after 15s.
func (s *testServer) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-s.done:
		return s.err
	case <-time.After(15 * time.Second):
		t.Fatalf("run did not return 15s after its context was cancelled; logs:\n%s", s.logs)
		return nil
	}
}

// stop cancels run's context and returns its error; it fails the test if
// run does not return within the shutdown bound.
func (s *testServer) stop(t *testing.T) error {
	t.Helper()
	s.cancel()
	return s.wait(t)
}

// startServer runs the server in-process on loopback port 0 with its
// database in a temporary directory. mutate adjusts the parsed config.
func startServer(t *testing.T, args []string, mutate func(*config)) *testServer {
	t.Helper()
	base := []string{"--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
		"--db", filepath.Join(t.TempDir(), "test.db"), "--log-format", "json", "--shutdown-timeout", "5s"}
	cfg, err := parseConfig(append(base, args...), envFrom(nil), nil)
	if err != nil {
		t.Fatalf("parseConfig: %v", err)
	}
	logs := &syncBuffer{}
	cfg.logOutput = logs
	type addrs struct{ public, admin net.Addr }
	ready := make(chan addrs, 1)
	cfg.ready = func(p, a net.Addr) { ready <- addrs{p, a} }
	if mutate != nil {
		mutate(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &testServer{logs: logs, cancel: cancel, done: make(chan struct{})}
	go func() { s.err = run(ctx, cfg); close(s.done) }()
	select {
	case a := <-ready:
		s.public = "http://" + a.public.String()
		if a.admin != nil {
			s.admin = "http://" + a.admin.String()
		}
	case <-s.done:
		t.Fatalf("run returned before it was ready: %v; logs:\n%s", s.err, logs)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatalf("run not ready after 10s; logs:\n%s", logs)
	}
	t.Cleanup(func() {
		cancel()
		s.wait(t)
	})
	return s
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

func TestRun_AdminAndPublicListenersAreSeparate(t *testing.T) {
	origin, counts := countingOrigin(t)
	s := startServer(t, []string{"--upstream", origin.URL}, nil)

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
		"firstrender_server_requests_total",                                                                                    // the access log's counter
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

	// And the admin listener does not proxy.
	if res, _ := fetch(t, "GET", s.admin+"/"); res.StatusCode != 404 {
		t.Errorf("GET admin / status = %d, want 404", res.StatusCode)
	}
	if got := hits(counts, "/"); got != 0 {
		t.Errorf("admin GET / reached the origin %d times, want 0", got)
	}
}

func TestRun_StopsOnContextCancel(t *testing.T) {
	origin, _ := countingOrigin(t)
	s := startServer(t, []string{"--upstream", origin.URL}, nil)
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

func TestRun_FinishesInFlightRequestOnShutdown(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "slow but complete")
	}))
	defer origin.Close()
	s := startServer(t, []string{"--upstream", origin.URL}, nil)

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

func TestRun_LogsBoundAddressesAndAccessLines(t *testing.T) {
	origin, _ := countingOrigin(t)
	s := startServer(t, []string{"--upstream", origin.URL}, nil)
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
	for _, k := range []string{"method", "path", "status", "cache", "cache_status", "dur", "bytes", "remote"} {
		if _, ok := access[k]; !ok {
			t.Errorf("access log line lacks %q: %v", k, access)
		}
	}
	if access["status"] != float64(200) || access["method"] != "GET" {
		t.Errorf("access log line = %v, want GET with status 200", access)
	}
}

func TestRun_AddressInUseNamesFlag(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg, err := parseConfig([]string{"--listen", ln.Addr().String(), "--admin-listen=", "--db", filepath.Join(t.TempDir(), "x.db")}, envFrom(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.logOutput = io.Discard
	err = run(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "--listen") {
		t.Errorf("run on a taken address: got %v, want an error naming --listen", err)
	}
	var opErr *net.OpError
	if !errors.As(err, &opErr) {
		t.Errorf("run error %v does not wrap the *net.OpError", err)
	}
}

func TestRun_DemoOriginLiveSocket(t *testing.T) {
	s := startServer(t, nil, nil) // no --upstream: the demo origin
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
	var sawUpgrade bool
	for _, l := range s.logs.lines(t) {
		if l["msg"] == "request" && l["path"] == "/live/websocket?vsn=2.0.0" && l["status"] == float64(101) {
			sawUpgrade = true
		}
	}
	if !sawUpgrade {
		t.Errorf("no access log line with status 101 for the brokered socket; logs:\n%s", s.logs)
	}
}

// TestRun_DemoPageJoinsThroughBroker joins the LiveView of a page served
// from the store, through the broker, the way the phoenix_live_view client
// does (channel v2: [join_ref, ref, topic, event, payload]).
func TestRun_DemoPageJoinsThroughBroker(t *testing.T) {
	s := startServer(t, nil, nil)
	fetch(t, "GET", s.public+"/") // miss: stored
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

func TestRun_LockedDatabaseNamesFlag(t *testing.T) {
	origin, _ := countingOrigin(t)
	db := filepath.Join(t.TempDir(), "shared.db")
	startServer(t, []string{"--upstream", origin.URL, "--db", db}, nil)

	cfg, err := parseConfig([]string{"--upstream", origin.URL, "--db", db, "--listen", "127.0.0.1:0", "--admin-listen="}, envFrom(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.logOutput = io.Discard
	err = run(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "--db "+db) || !strings.Contains(err.Error(), "locked") {
		t.Errorf("second server on the same --db: got %v, want an error naming --db and saying it is locked", err)
	}
}

// TestRun_BadDatabaseNamesFlag: a --db that cannot be used stops the
// server with a message naming the flag, the file and what is wrong, and
// leaves the file as it was.
func TestRun_BadDatabaseNamesFlag(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	content := []byte(strings.Repeat("not a database\n", 500))
	if err := os.WriteFile(garbage, content, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, db, want string
	}{
		{"file that is not a database", garbage, "not a firstrender database or damaged"},
		{"directory", dir, "is a directory"},
		{"missing parent directory", filepath.Join(dir, "nope", "x.db"), "no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseConfig([]string{"--upstream", "http://127.0.0.1:1", "--db", tt.db, "--listen", "127.0.0.1:0", "--admin-listen="}, envFrom(nil), nil)
			if err != nil {
				t.Fatal(err)
			}
			cfg.logOutput = io.Discard
			err = run(context.Background(), cfg)
			if err == nil || !strings.Contains(err.Error(), "--db "+tt.db+": ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("run with --db %s: got %v, want an error naming --db and saying %q", tt.db, err, tt.want)
			}
		})
	}
	if got, err := os.ReadFile(garbage); err != nil || !bytes.Equal(got, content) {
		t.Errorf("after the refused start %s holds %d bytes (err %v), want its %d bytes unchanged", garbage, len(got), err, len(content))
	}
}

// TestRun_UnreachableUpstream: an --upstream nobody listens on does not stop
// the server; each request gets a prompt 502 with a short plain body and a
// Cache-Status, and the server still shuts down cleanly.
func TestRun_UnreachableUpstream(t *testing.T) {
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close() // its address now refuses connections
	s := startServer(t, []string{"--upstream", gone.URL, "--origin-timeout", "5s"}, nil)
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

func TestNewLinter_FlagsBecomePolicy(t *testing.T) {
	tests := []struct {
		args []string
		kind liveview.Kind
		want liveview.Action
	}{
		{nil, liveview.KindCSRFMeta, liveview.Refuse},
		{nil, liveview.KindSetCookie, liveview.Refuse},
		{nil, liveview.KindUserSession, liveview.Refuse},
		{[]string{"--lv-csrf", "strip"}, liveview.KindCSRFMeta, liveview.Strip},
		{[]string{"--lv-set-cookie", "allow"}, liveview.KindSetCookie, liveview.Allow},
		{[]string{"--lv-session", "allow"}, liveview.KindUserSession, liveview.Allow},
	}
	for _, tt := range tests {
		cfg, err := parseConfig(tt.args, envFrom(nil), nil)
		if err != nil {
			t.Fatal(err)
		}
		l, err := newLinter(cfg)
		if err != nil {
			t.Fatalf("newLinter(%q): %v", tt.args, err)
		}
		if got := l.Policy(tt.kind); got != tt.want {
			t.Errorf("newLinter(%q).Policy(%s) = %v, want %v", tt.args, tt.kind, got, tt.want)
		}
	}
}

func TestRun_LiveViewLintIsWired(t *testing.T) {
	t.Run("per-user session is refused with the lint's reason", func(t *testing.T) {
		s := startServer(t, []string{"--set-cookie", "strip"}, nil)
		res, _ := fetch(t, "GET", s.public+"/account")
		if cs := res.Header.Get("Cache-Status"); !strings.Contains(cs, "detail=liveview-user-session") || strings.Contains(cs, "stored") {
			t.Errorf("GET /account with --set-cookie=strip: Cache-Status %q, want not stored with detail=liveview-user-session", cs)
		}
	})
	t.Run("strip policies store a shareable copy", func(t *testing.T) {
		s := startServer(t, []string{"--set-cookie", "strip", "--lv-csrf", "strip", "--lv-session", "allow"}, nil)
		first, firstBody := fetch(t, "GET", s.public+"/account")
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
