package server

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/firstrender/firstrender/httpcache"
	"github.com/firstrender/firstrender/httpcache/livesocket"
	"github.com/gorilla/websocket"
)

func socketsConfig(paths ...string) livesocket.Config { return livesocket.Config{Paths: paths} }

// TestServer_SocketRefusalsSayWhy: the 403 body names the reason, so an
// operator with curl sees what the log says.
func TestServer_SocketRefusalsSayWhy(t *testing.T) {
	t.Parallel()
	s := startServer(t, Config{})
	ws := "ws" + strings.TrimPrefix(s.public, "http") + "/live/websocket"
	for _, tc := range []struct {
		name   string
		origin []string
		want   string
	}{
		{"no Origin is refused", nil, "(no_origin): the request has no Origin header"},
		{"null origin is refused", []string{"null"}, `(null_origin): Origin is "null"`},
		{"foreign site is refused", []string{"https://evil.example"}, `(origin_denied): Origin "https://evil.example" is not an allowed site`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.origin != nil {
				h["Origin"] = tc.origin
			}
			_, res, err := websocket.DefaultDialer.Dial(ws, h)
			if err == nil || res == nil {
				t.Fatalf("Dial: %v, want a refusal", err)
			}
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != 403 || !strings.Contains(string(body), tc.want) {
				t.Errorf("status %d body %q, want 403 saying %q", res.StatusCode, body, tc.want)
			}
		})
	}
}

// TestServer_Readyz: ready while the store and origin are fine, 503 with
// the failing check named when the origin is unreachable, and 503 once
// the shutdown started; /healthz stays a plain liveness probe.
func TestServer_Readyz(t *testing.T) {
	t.Parallel()
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	s := startServer(t, Config{Upstream: mustURL(t, origin.URL)})
	res, body := fetch(t, "GET", s.admin+"/readyz")
	if res.StatusCode != 200 || !strings.Contains(body, "store: ok") || !strings.Contains(body, "origin: ok") {
		t.Fatalf("readyz with a live origin: %d %q, want 200 with store and origin ok", res.StatusCode, body)
	}

	// The origin goes away: once the last contact is older than
	// originFresh the probe dials, and fails.
	origin.Close()
	var clock atomic.Int64
	clock.Store(time.Now().Add(time.Hour).UnixNano())
	s.srv.readiness.mu.Lock()
	s.srv.readiness.now = func() time.Time { return time.Unix(0, clock.Load()) }
	s.srv.readiness.mu.Unlock()
	res, body = fetch(t, "GET", s.admin+"/readyz")
	if res.StatusCode != 503 || !strings.Contains(body, "origin: failing: ") || !strings.Contains(body, "store: ok") {
		t.Errorf("readyz with the origin gone: %d %q, want 503 naming the origin", res.StatusCode, body)
	}
	if res, body := fetch(t, "GET", s.admin+"/healthz"); res.StatusCode != 200 || body != "ok\n" {
		t.Errorf("healthz: %d %q, want 200 ok", res.StatusCode, body)
	}
}

func TestReadiness_StoreAndShutdown(t *testing.T) {
	t.Parallel()
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(origin.Close)
	srv, err := New(testConfig(t, Config{Upstream: mustURL(t, origin.URL)}, io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	rd := srv.readiness
	if lines, ok := rd.check(context.Background()); !ok {
		t.Fatalf("fresh server not ready: %q", lines)
	}
	rd.stopping.Store(true)
	if lines, ok := rd.check(context.Background()); ok || !strings.Contains(strings.Join(lines, "\n"), "server: failing: shutting down") {
		t.Errorf("stopping server: ready %v %q, want not ready, shutting down", ok, lines)
	}
	rd.stopping.Store(false)
	srv.Close() // closes the store
	if lines, ok := rd.check(context.Background()); ok || !strings.Contains(strings.Join(lines, "\n"), "store: failing: ") {
		t.Errorf("closed store: ready %v %q, want store failing", ok, lines)
	}
}

// TestServer_TwoSockets: the docs' two-socket recipe (a session-less
// socket at /live for cached pages, a session socket at /live-auth) works
// with --socket-paths naming both; each one's long-poll path is never
// cached.
func TestServer_TwoSockets(t *testing.T) {
	t.Parallel()
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	var longpolls atomic.Int64
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/live/websocket", "/live-auth/websocket":
			c, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			c.WriteMessage(websocket.TextMessage, []byte(r.URL.Path))
			c.Close()
		case "/live-auth/longpoll":
			longpolls.Add(1)
			w.Header().Set("Cache-Control", "public, s-maxage=300") // a misconfigured app: still never cached
			io.WriteString(w, "poll\n")
		}
	}))
	t.Cleanup(origin.Close)
	s := startServer(t, Config{Upstream: mustURL(t, origin.URL), Sockets: socketsConfig("/live/websocket", "/live-auth/websocket")})
	for _, p := range []string{"/live/websocket", "/live-auth/websocket"} {
		c, res, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(s.public, "http")+p+"?vsn=2.0.0", http.Header{"Origin": {s.public}})
		if err != nil {
			status := 0
			if res != nil {
				status = res.StatusCode
			}
			t.Fatalf("socket %s: %v (status %d), want it brokered", p, err, status)
		}
		_, msg, err := c.ReadMessage()
		c.Close()
		if err != nil || string(msg) != p {
			t.Errorf("socket %s: read %q, %v; want the origin's greeting", p, msg, err)
		}
	}
	for range 2 {
		res, _ := fetch(t, "GET", s.public+"/live-auth/longpoll?vsn=2.0.0")
		s.stored(t)
		if cs := res.Header.Get("Cache-Status"); !strings.Contains(cs, "detail=socket-path") {
			t.Errorf("long-poll Cache-Status %q, want a bypass (socket-path)", cs)
		}
	}
	if n := longpolls.Load(); n != 2 {
		t.Errorf("origin saw %d long-poll requests, want 2 (never cached)", n)
	}
}

// TestServer_ServesPassedListeners: listeners given in Config (as
// systemd passes them) are served instead of binding Listen.
func TestServer_ServesPassedListeners(t *testing.T) {
	t.Parallel()
	pub, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adm, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	origin, counts := countingOrigin(t)
	s := startServer(t, Config{Upstream: mustURL(t, origin.URL), PublicListener: pub, AdminListener: adm, Listen: "unused:1", AdminListen: "unused:2"})
	if s.public != "http://"+pub.Addr().String() || s.admin != "http://"+adm.Addr().String() {
		t.Fatalf("serving %s and %s, want the passed %s and %s", s.public, s.admin, pub.Addr(), adm.Addr())
	}
	if res, _ := fetch(t, "GET", s.public+"/x"); res.StatusCode != 200 || hits(counts, "/x") != 1 {
		t.Errorf("GET on the passed public listener: %d, origin hits %d", res.StatusCode, hits(counts, "/x"))
	}
	if res, _ := fetch(t, "GET", s.admin+"/healthz"); res.StatusCode != 200 {
		t.Errorf("GET /healthz on the passed admin listener: %d", res.StatusCode)
	}
	if _, err := New(Config{NoAdmin: true, AdminListener: adm, DB: filepath.Join(t.TempDir(), "x.db")}); err == nil || !strings.Contains(err.Error(), "NoAdmin") {
		t.Errorf("New with AdminListener and NoAdmin: %v, want a refusal", err)
	}
}

// TestCheck: Check validates without opening anything.
func TestCheck(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := Check(Config{DB: filepath.Join(dir, "ok.db")}); err != nil {
		t.Errorf("Check of a good config: %v", err)
	}
	err := Check(Config{DB: filepath.Join(dir, "missing", "x.db"), Listen: "nonsense"})
	var fe *FieldError
	if err == nil || !errors.As(err, &fe) {
		t.Fatalf("Check of a bad config: %v, want FieldErrors", err)
	}
	for _, want := range []string{"Listen nonsense: ", "directory " + filepath.Join(dir, "missing") + " does not exist: create it or choose another path"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Check error %q lacks %q", err, want)
		}
	}
	if n := strings.Count(err.Error(), filepath.Join(dir, "missing")); n > 2 {
		t.Errorf("the path appears %d times in %q; once as the value and once as the directory is enough", n, err)
	}
}

// TestServer_SocketVia: the handshakes the broker forwards name this
// gateway in Via as the proxy's requests do: Cache.Via, its default, or
// none for "-".
func TestServer_SocketVia(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ via, want string }{
		{"", "1.1 " + httpcache.CacheName},
		{"edge-1", "1.1 edge-1"},
		{"-", ""},
	} {
		t.Run("Via="+tc.via, func(t *testing.T) {
			t.Parallel()
			up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
			got := make(chan string, 1)
			origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got <- strings.Join(r.Header.Values("Via"), ", ")
				if c, err := up.Upgrade(w, r, nil); err == nil {
					c.Close()
				}
			}))
			t.Cleanup(origin.Close)
			s := startServer(t, Config{Upstream: mustURL(t, origin.URL), Cache: httpcache.Config{Via: tc.via}})
			c, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(s.public, "http")+"/live/websocket", http.Header{"Origin": {s.public}})
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
			if v := <-got; v != tc.want {
				t.Errorf("origin handshake Via = %q, want %q", v, tc.want)
			}
			if v := strings.Join(resp.Header.Values("Via"), ", "); v != tc.want {
				t.Errorf("client's 101 Via = %q, want %q", v, tc.want)
			}
		})
	}
}
