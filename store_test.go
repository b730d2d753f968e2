package firstrender_test

// This file is the black-box, end-to-end test of firstrender as its users
// meet it: the page store alone (open, put, close, reopen, read back,
// purge, reopen), the whole server assembled by httpcache/server (origin
// -> server -> bbolt file -> restart -> invalidation), and the real
// cmd/server binary on its embedded defaults with the demo origin; and
// the admin purge after a restart (origin -> server -> store -> restart ->
// cmd/admin purge -> miss).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/firstrender/firstrender/httpcache"
	"github.com/firstrender/firstrender/httpcache/admin"
	"github.com/firstrender/firstrender/httpcache/server"
	"github.com/firstrender/firstrender/store"
	"github.com/firstrender/firstrender/store/storetest"
)

func TestPageStore_SurvivesRestartAndPurge(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "firstrender.db")
	t.Cleanup(func() { storetest.Check(t, path) })
	opts := store.Options{Timeout: time.Second}

	open := func(t *testing.T) *store.Store {
		t.Helper()
		s, err := store.Open(path, opts)
		if err != nil {
			t.Fatalf("Open(%q) = %v, want nil error", path, err)
		}
		return s
	}

	stored := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	records := []*store.Record{
		{
			Key: "https://example.com/", Status: 200,
			Header:     map[string][]string{"Content-Type": {"text/html; charset=utf-8"}},
			Body:       []byte("<html><body data-phx-main>home</body></html>"),
			StoredTime: stored, Tags: []string{"page", "home"},
		},
		{
			Key: "https://example.com/blog/1", Variant: "accept-language=en", Status: 200,
			Header:     map[string][]string{"Content-Type": {"text/html"}, "Vary": {"Accept-Language"}},
			Body:       []byte("<p>post one (en)</p>"),
			StoredTime: stored, Tags: []string{"page", "blog"},
		},
		{
			Key: "https://example.com/blog/1", Variant: "accept-language=de", Status: 200,
			Header:     map[string][]string{"Content-Type": {"text/html"}, "Vary": {"Accept-Language"}},
			Body:       []byte("<p>Beitrag eins (de)</p>"),
			StoredTime: stored, Tags: []string{"page", "blog"},
			Annotations: map[string]string{"liveview.expires": "2026-11-26T12:00:00Z"},
		},
		{
			Key: "https://example.com/blog/2", Status: 404,
			Body:       []byte("not found"),
			StoredTime: stored, Tags: []string{"blog"},
		},
	}

	// Open a fresh file and fill it.
	s := open(t)
	for _, r := range records {
		if err := s.Put(ctx, r); err != nil {
			t.Fatalf("Put(%q, %q) = %v, want nil", r.Key, r.Variant, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v, want nil", err)
	}

	// Reopen: everything is read back exactly.
	s = open(t)
	if got, want := s.Stats().Records, int64(len(records)); got != want {
		t.Errorf("after reopen Stats().Records = %d, want %d", got, want)
	}
	for _, want := range records {
		got, err := s.Get(ctx, want.Key, want.Variant)
		if err != nil {
			t.Fatalf("after reopen Get(%q, %q) = %v, want nil", want.Key, want.Variant, err)
		}
		if got.Status != want.Status || !bytes.Equal(got.Body, want.Body) ||
			!got.StoredTime.Equal(want.StoredTime) || len(got.Tags) != len(want.Tags) {
			t.Errorf("after reopen Get(%q, %q) = status %d body %q stored %v tags %q, want %d %q %v %q",
				want.Key, want.Variant, got.Status, got.Body, got.StoredTime, got.Tags,
				want.Status, want.Body, want.StoredTime, want.Tags)
		}
		for name, vals := range want.Header {
			if g := got.Header[name]; len(g) != len(vals) || g[0] != vals[0] {
				t.Errorf("after reopen Get(%q, %q).Header[%q] = %q, want %q", want.Key, want.Variant, name, g, vals)
			}
		}
		for k, v := range want.Annotations {
			if g := got.Annotations[k]; g != v {
				t.Errorf("after reopen Get(%q, %q).Annotations[%q] = %q, want %q", want.Key, want.Variant, k, g, v)
			}
		}
	}
	variants, err := s.Variants(ctx, "https://example.com/blog/1")
	if err != nil || len(variants) != 2 {
		t.Errorf("Variants(blog/1) = %d entries, %v; want 2, nil", len(variants), err)
	}

	// Purge: by tag, then one key; both acknowledged before Close.
	n, err := s.DeleteTag(ctx, "blog")
	if err != nil || n != 3 {
		t.Errorf("DeleteTag(blog) = %d, %v; want 3, nil", n, err)
	}
	if err := s.Delete(ctx, "https://example.com/", ""); err != nil {
		t.Errorf("Delete(home) = %v, want nil", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v, want nil", err)
	}

	// Reopen: the purges held.
	s = open(t)
	defer s.Close()
	for _, r := range records {
		if _, err := s.Get(ctx, r.Key, r.Variant); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("after purge and reopen Get(%q, %q) = %v, want ErrNotFound", r.Key, r.Variant, err)
		}
	}
	if st := s.Stats(); st.Records != 0 || st.Bytes != 0 {
		t.Errorf("after purge and reopen Stats() = %d records, %d bytes; want 0, 0", st.Records, st.Bytes)
	}
	page, err := s.Scan(ctx, store.ScanOptions{Limit: 10})
	if err != nil || len(page.Entries) != 0 || page.Next != "" {
		t.Errorf("after purge and reopen Scan() = %d entries, next %q, %v; want 0, \"\", nil", len(page.Entries), page.Next, err)
	}
}

// TestPageStore_LockedWhileOpen shows what the offline admin tool meets when
// a server holds the database: a clear, matchable error naming the file, not a hang.
func TestPageStore_LockedWhileOpen(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "firstrender.db")
	s, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatalf("Open(%q) = %v", path, err)
	}
	defer s.Close()

	start := time.Now()
	_, err = store.Open(path, store.Options{ReadOnly: true, Timeout: 100 * time.Millisecond})
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("second read-only Open(%q) = %v, want ErrLocked", path, err)
	}
	if !bytes.Contains([]byte(err.Error()), []byte(path)) {
		t.Errorf("error %q does not name the path %q", err, path)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("locked Open took %v, want about the 100ms timeout", d)
	}
}

// ---- The whole server: origin -> firstrender -> bbolt file -> restart.

// runServer runs the server assembled by httpcache/server in-process on
// loopback port 0 and returns it, its public base URL and a stop function
// that shuts it down (SIGTERM's path: Run's context ends) and fails the
// test unless the shutdown is clean and the file passes the store's
// integrity check.
func runServer(t *testing.T, cfg server.Config) (srv *server.Server, public string, stop func()) {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	cfg.NoAdmin = cfg.AdminListen == "" // the admin listener only when asked for
	cfg.Logger = slog.New(slog.DiscardHandler)
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	t.Cleanup(func() { srv.Close() }) // a no-op once Run was called
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	select {
	case <-srv.Ready():
	case err := <-done:
		t.Fatalf("Run returned before it was ready: %v", err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run after cancel = %v, want a clean shutdown", err)
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("Run still running 20s after its context ended")
			}
			storetest.Check(t, cfg.DB)
		})
	}
	t.Cleanup(stop)
	return srv, "http://" + srv.PublicAddr().String(), stop
}

// stored waits until srv's pending store writes have committed (the proxy
// stores beside the response).
func stored(t *testing.T, srv *server.Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Proxy().Wait(ctx); err != nil {
		t.Fatalf("Proxy.Wait: %v", err)
	}
}

type reply struct {
	status      int
	cacheStatus string
	body        string
	header      http.Header
}

// do sends one request; host, when not empty, is sent as the Host header
// (the cache key holds the host, so a fixed name keeps keys stable across
// restarts on new ports).
func do(t *testing.T, method, url string, host ...string) reply {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(host) > 0 {
		req.Host = host[0]
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return reply{res.StatusCode, res.Header.Get("Cache-Status"), string(b), res.Header}
}

// ourMember returns firstrender's member of a Cache-Status field (RFC 9211:
// the cache nearest the client appends last) split into its parameters:
// "hit", "stored" → "", "fwd" → "miss", ...; nil when there is none.
func ourMember(cs string) map[string]string {
	members := strings.Split(cs, ",")
	m := strings.Split(strings.TrimSpace(members[len(members)-1]), ";")
	if strings.TrimSpace(m[0]) != "firstrender" {
		return nil
	}
	params := map[string]string{}
	for _, p := range m[1:] {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		params[k] = strings.Trim(v, `"`)
	}
	return params
}

func isHit(cs string) bool {
	_, ok := ourMember(cs)["hit"]
	return ok
}

func isStored(cs string) bool {
	p := ourMember(cs)
	_, stored := p["stored"]
	return p["fwd"] != "" && stored
}

func TestServer_MissHitRestartInvalidate(t *testing.T) {
	t.Parallel()
	var gets, posts atomic.Int64
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet:
			n := gets.Add(1)
			w.Header().Set("Cache-Control", "public, s-maxage=600")
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprintf(w, "<p>page %s, render %d</p>\n", r.URL.Path, n)
		case http.MethodPost:
			posts.Add(1)
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	defer origin.Close()
	upstream, _ := url.Parse(origin.URL)
	const host = "shop.example"
	cfg := server.Config{
		Upstream: upstream,
		DB:       filepath.Join(t.TempDir(), "firstrender.db"),
		Cache:    httpcache.Config{Hosts: []string{host}},
	}

	srv, public, stop := runServer(t, cfg)
	first := do(t, "GET", public+"/products", host)
	if first.status != 200 || !isStored(first.cacheStatus) {
		t.Fatalf("first GET: status %d, Cache-Status %q; want 200, a forwarded miss that is stored", first.status, first.cacheStatus)
	}
	stored(t, srv)
	second := do(t, "GET", public+"/products", host)
	if !isHit(second.cacheStatus) || second.body != first.body {
		t.Errorf("second GET: Cache-Status %q, body %q; want a hit with the first body %q", second.cacheStatus, second.body, first.body)
	}
	if got := gets.Load(); got != 1 {
		t.Errorf("origin GETs after miss + hit = %d, want 1", got)
	}
	stop()

	// Same file, new server: what was stored is still served.
	_, public, stop = runServer(t, cfg)
	third := do(t, "GET", public+"/products", host)
	if !isHit(third.cacheStatus) || third.body != first.body {
		t.Errorf("GET after restart: Cache-Status %q, body %q; want a hit with %q", third.cacheStatus, third.body, first.body)
	}
	if got := gets.Load(); got != 1 {
		t.Errorf("origin GETs after restart = %d, want still 1", got)
	}

	// RFC 9111 §4.4: a successful POST invalidates the target URL.
	if r := do(t, "POST", public+"/products", host); r.status != http.StatusNoContent {
		t.Fatalf("POST status = %d, want 204 from the origin", r.status)
	}
	if got := posts.Load(); got != 1 {
		t.Errorf("origin POSTs = %d, want 1", got)
	}
	fourth := do(t, "GET", public+"/products", host)
	if isHit(fourth.cacheStatus) || fourth.body == first.body {
		t.Errorf("GET after POST: Cache-Status %q, body %q; want a miss with a fresh render", fourth.cacheStatus, fourth.body)
	}
	if got := gets.Load(); got != 2 {
		t.Errorf("origin GETs after POST + GET = %d, want 2", got)
	}
	stop()
}

// TestServer_RestartThenAdminPurge is the admin step: origin -> server ->
// store -> restart -> cmd/admin purge (the real binary, finding the token
// in <db>.admin-token) -> the next request is a miss with a fresh render,
// while another page still hits; then a prefix purge through the Go client.
func TestServer_RestartThenAdminPurge(t *testing.T) {
	t.Parallel()
	var gets atomic.Int64
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := gets.Add(1)
		w.Header().Set("Cache-Control", "public, s-maxage=600")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<p>page %s, render %d</p>\n", r.URL.Path, n)
	}))
	defer origin.Close()
	upstream, _ := url.Parse(origin.URL)
	const host = "shop.example"
	db := filepath.Join(t.TempDir(), "firstrender.db")
	cfg := server.Config{Upstream: upstream, DB: db, AdminListen: "127.0.0.1:0", Cache: httpcache.Config{Hosts: []string{host}}}

	srv, public, stop := runServer(t, cfg)
	first := do(t, "GET", public+"/products", host)
	other := do(t, "GET", public+"/about", host)
	stored(t, srv)
	if !isStored(first.cacheStatus) || !isStored(other.cacheStatus) {
		t.Fatalf("first GETs: Cache-Status %q / %q; want both stored", first.cacheStatus, other.cacheStatus)
	}
	stop()

	srv, public, stop = runServer(t, cfg)
	if r := do(t, "GET", public+"/products", host); !isHit(r.cacheStatus) || r.body != first.body {
		t.Fatalf("GET after restart: %q %q; want a hit with the first render", r.cacheStatus, r.body)
	}
	adminURL := "http://" + srv.AdminAddr().String()
	bin := filepath.Join(t.TempDir(), "admin")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/admin").CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/admin: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "purge", "--admin", adminURL, "--db", db, "--url", "http://"+host+"/products", "--json")
	cmd.Env = append(os.Environ(), "FIRSTRENDER_ADMIN_TOKEN=", "FIRSTRENDER_ADMIN_TOKEN_FILE=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("admin purge: %v\n%s", err, out)
	}
	var res admin.PurgeResult
	if err := json.Unmarshal(out, &res); err != nil || res.Count != 1 {
		t.Errorf("admin purge --json = %s (%v); want a count of 1", out, err)
	}
	before := gets.Load()
	after := do(t, "GET", public+"/products", host)
	if isHit(after.cacheStatus) || after.body == first.body || gets.Load() != before+1 {
		t.Errorf("GET after the admin purge: Cache-Status %q, body %q; want a miss with a fresh render", after.cacheStatus, after.body)
	}
	if r := do(t, "GET", public+"/about", host); !isHit(r.cacheStatus) || r.body != other.body {
		t.Errorf("the page not purged: Cache-Status %q; want still a hit", r.cacheStatus)
	}

	// The Go client: a prefix purge of the host.
	tok, err := os.ReadFile(admin.TokenFile(db))
	if err != nil {
		t.Fatal(err)
	}
	c, err := admin.NewClient(adminURL, strings.TrimSpace(string(tok)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stored(t, srv)
	pr, err := c.Purge(ctx, admin.PurgeRequest{Prefix: "http://" + host + "/"})
	if err != nil || pr.Count != 2 {
		t.Fatalf("client prefix purge = %+v, %v; want 2 records", pr, err)
	}
	if r := do(t, "GET", public+"/about", host); isHit(r.cacheStatus) {
		t.Errorf("GET /about after the prefix purge: %q, want a miss", r.cacheStatus)
	}
	stop()
}

// ---- The real binary: go build ./cmd/server, run it as its own process.
//
// One test builds cmd/server, starts it on loopback port 0 (reading the
// bound addresses from its JSON log) with nothing but a database path, the
// way a newcomer runs `go run ./cmd/server`, and stops it with SIGTERM.

// buildServer compiles ./cmd/server into the test's temporary directory.
func buildServer(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "firstrender")
	out, err := exec.Command("go", "build", "-o", path, "./cmd/server").CombinedOutput()
	if err != nil {
		t.Fatalf("go build ./cmd/server: %v\n%s", err, out)
	}
	return path
}

// serverProc is one running firstrender process.
type serverProc struct {
	cmd    *exec.Cmd
	public string // http://127.0.0.1:port
	admin  string
	mu     sync.Mutex
	logs   bytes.Buffer
	exited chan struct{}
	err    error // cmd.Wait's result, valid after exited
}

func (p *serverProc) logText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// startServerProc starts the binary with args plus loopback port-0
// listeners and JSON logs, and waits (bounded) until it logged both
// listeners' addresses.
func startServerProc(t *testing.T, bin string, args ...string) *serverProc {
	t.Helper()
	args = append([]string{"--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--log-format", "json"}, args...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "FIRSTRENDER_NODE_MODULES=/nonexistent")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serverProc{cmd: cmd, exited: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		var public, admin string
		for sc.Scan() {
			line := sc.Bytes()
			p.mu.Lock()
			p.logs.Write(line)
			p.logs.WriteByte('\n')
			p.mu.Unlock()
			var rec struct{ Msg, Listener, Addr string }
			if json.Unmarshal(line, &rec) == nil && rec.Msg == "listening" {
				switch rec.Listener {
				case "public":
					public = rec.Addr
				case "admin":
					admin = rec.Addr
				}
				if public != "" && admin != "" && p.public == "" {
					p.public, p.admin = "http://"+public, "http://"+admin
					close(ready)
				}
			}
		}
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			cmd.Process.Kill()
			<-p.exited
		}
	})
	select {
	case <-ready:
	case <-p.exited:
		t.Fatalf("firstrender exited before listening: %v\n%s", p.err, p.logText())
	case <-time.After(30 * time.Second):
		t.Fatalf("firstrender did not log its listeners within 30s:\n%s", p.logText())
	}
	return p
}

// stop sends SIGTERM and waits (bounded) for a clean exit.
func (p *serverProc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		t.Fatalf("firstrender still running 20s after SIGTERM:\n%s", p.logText())
	}
	if p.err != nil {
		t.Fatalf("firstrender exited with %v after SIGTERM, want exit 0:\n%s", p.err, p.logText())
	}
}

func TestServerBinary_DemoOrigin(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "demo.db")
	srv := startServerProc(t, buildServer(t), "--db", db)
	first := do(t, "GET", srv.public+"/")
	if first.status != 200 || !isStored(first.cacheStatus) {
		t.Fatalf("demo GET /: status %d, Cache-Status %q; want 200, stored miss", first.status, first.cacheStatus)
	}
	if !strings.Contains(first.body, `data-phx-session="SFMyNTY.`) || first.header.Get("Set-Cookie") != "" {
		t.Errorf("demo / is not a public LiveView first render (Set-Cookie %q):\n%s", first.header.Get("Set-Cookie"), first.body)
	}
	second := do(t, "GET", srv.public+"/")
	if !isHit(second.cacheStatus) || second.body != first.body {
		t.Errorf("demo second GET /: Cache-Status %q; want a hit with the same body", second.cacheStatus)
	}
	// The per-user page is refused, and the reason is visible.
	for i := range 2 {
		acc := do(t, "GET", srv.public+"/account")
		if acc.status != 200 || isHit(acc.cacheStatus) || strings.Contains(acc.cacheStatus, "stored") || !strings.Contains(acc.cacheStatus, "detail=") {
			t.Errorf("demo GET /account #%d: Cache-Status %q; want not stored, with a detail= reason", i+1, acc.cacheStatus)
		}
	}
	// Metrics are on the admin listener, not the public one.
	if m := do(t, "GET", srv.admin+"/metrics"); m.status != 200 || !strings.Contains(m.body, "firstrender_requests_total") {
		t.Errorf("admin /metrics: status %d, want 200 with firstrender_requests_total", m.status)
	}
	if m := do(t, "GET", srv.public+"/metrics"); strings.Contains(m.body, "firstrender_requests_total") {
		t.Errorf("public /metrics exposes metrics; it must not")
	}
	srv.stop(t)
	storetest.Check(t, db)
}
