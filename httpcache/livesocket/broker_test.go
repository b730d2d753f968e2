package livesocket

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
)

const allowedOrigin = "http://app.test"

// testOrigin is an httptest WebSocket origin. handle runs per socket.
type testOrigin struct {
	srv     *httptest.Server
	mu      sync.Mutex
	reqs    []*http.Request
	conns   chan *websocket.Conn
	dialled chan struct{}
}

func newTestOrigin(t testing.TB, handle func(c *websocket.Conn, r *http.Request)) *testOrigin {
	t.Helper()
	o := &testOrigin{conns: make(chan *websocket.Conn, 100), dialled: make(chan struct{}, 100)}
	up := websocket.Upgrader{
		CheckOrigin:  func(*http.Request) bool { return true },
		Subprotocols: []string{"phx.v2", "other"},
	}
	o.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.reqs = append(o.reqs, r.Clone(context.Background()))
		o.mu.Unlock()
		o.dialled <- struct{}{}
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		o.conns <- c
		handle(c, r)
	}))
	t.Cleanup(o.srv.Close)
	return o
}

func (o *testOrigin) url() *url.URL { u, _ := url.Parse(o.srv.URL); return u }

func (o *testOrigin) requests() []*http.Request {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]*http.Request(nil), o.reqs...)
}

// echo relays every message back unchanged until the client goes.
func echo(c *websocket.Conn, _ *http.Request) {
	for {
		mt, p, err := c.ReadMessage()
		if err != nil {
			return
		}
		if err := c.WriteMessage(mt, p); err != nil {
			return
		}
	}
}

type testBroker struct {
	b   *Broker
	srv *httptest.Server
	reg *prometheus.Registry
}

func newTestBroker(t testing.TB, origin *url.URL, mod func(*Config)) *testBroker {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg := Config{
		Origin:     origin,
		Policy:     mustPolicy(t, OriginConfig{Allowed: []string{"//app.test"}}),
		Registerer: reg,
		Logger:     quietLogger(),
	}
	if mod != nil {
		mod(&cfg)
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewServer(b.Wrap(http.NotFoundHandler()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		b.Shutdown(ctx)
		srv.Close()
	})
	return &testBroker{b: b, srv: srv, reg: reg}
}

func (tb *testBroker) wsURL(pathQuery string) string {
	return "ws" + strings.TrimPrefix(tb.srv.URL, "http") + pathQuery
}

func (tb *testBroker) dial(t testing.TB, pathQuery string, hdr http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	if hdr == nil {
		hdr = http.Header{}
	}
	if _, ok := hdr["Origin"]; !ok {
		hdr.Set("Origin", allowedOrigin)
	}
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	c, resp, err := d.Dial(tb.wsURL(pathQuery), hdr)
	if c != nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, resp, err
}

func (tb *testBroker) mustDial(t testing.TB, pathQuery string, hdr http.Header) *websocket.Conn {
	t.Helper()
	c, resp, err := tb.dial(t, pathQuery, hdr)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (status %d)", pathQuery, err, status)
	}
	return c
}

func closeCode(err error) int {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return -1
}

// readUntilClose reads until an error and returns it.
func readUntilClose(c *websocket.Conn, d time.Duration) error {
	c.SetReadDeadline(time.Now().Add(d))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			return err
		}
	}
}

func TestBroker_RelayBothWays(t *testing.T) {
	t.Parallel()
	origin := newTestOrigin(t, func(c *websocket.Conn, r *http.Request) {
		c.WriteMessage(websocket.BinaryMessage, []byte{0, 1, 2, 0xff}) // origin speaks first
		echo(c, r)
	})
	tb := newTestBroker(t, origin.url(), nil)
	hdr := http.Header{}
	hdr.Set("Cookie", "_app_key=abc")
	hdr.Set("User-Agent", "test-agent/1")
	hdr.Set("Sec-WebSocket-Protocol", "phx.v2")
	hdr.Set("X-Forwarded-For", "203.0.113.9") // untrusted: replaced
	c := tb.mustDial(t, "/live/websocket?_csrf_token=t0k&vsn=2.0.0", hdr)
	if got := c.Subprotocol(); got != "phx.v2" {
		t.Errorf("subprotocol = %q, want phx.v2 (the origin's choice)", got)
	}
	mt, p, err := c.ReadMessage()
	if err != nil || mt != websocket.BinaryMessage || string(p) != "\x00\x01\x02\xff" {
		t.Fatalf("first message = %d %q %v, want binary 00 01 02 ff", mt, p, err)
	}
	msgs := []struct {
		mt   int
		data string
	}{{websocket.TextMessage, `["1","1","phoenix","heartbeat",{}]`}, {websocket.BinaryMessage, "\x00bin\x01"}, {websocket.TextMessage, strings.Repeat("x", 100000)}, {websocket.TextMessage, ""}}
	for i := 0; i < 50; i++ { // order is kept
		for _, m := range msgs {
			if err := c.WriteMessage(m.mt, []byte(m.data)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := 0; i < 50; i++ {
		for _, m := range msgs {
			mt, p, err := c.ReadMessage()
			if err != nil {
				t.Fatal(err)
			}
			if mt != m.mt || string(p) != m.data {
				t.Fatalf("round %d: got type %d len %d, want type %d len %d", i, mt, len(p), m.mt, len(m.data))
			}
		}
	}
	reqs := origin.requests()
	if len(reqs) != 1 {
		t.Fatalf("origin saw %d handshakes, want 1", len(reqs))
	}
	r := reqs[0]
	checks := []struct{ name, got, want string }{
		{"path", r.URL.Path, "/live/websocket"},
		{"query", r.URL.RawQuery, "_csrf_token=t0k&vsn=2.0.0"},
		{"Cookie", r.Header.Get("Cookie"), "_app_key=abc"},
		{"User-Agent", r.Header.Get("User-Agent"), "test-agent/1"},
		{"Origin", r.Header.Get("Origin"), allowedOrigin},
		{"Sec-WebSocket-Protocol", r.Header.Get("Sec-WebSocket-Protocol"), "phx.v2"},
		{"X-Forwarded-For", r.Header.Get("X-Forwarded-For"), "127.0.0.1"},
		{"X-Forwarded-Proto", r.Header.Get("X-Forwarded-Proto"), "http"},
		{"X-Forwarded-Host", r.Header.Get("X-Forwarded-Host"), strings.TrimPrefix(tb.srv.URL, "http://")},
		{"Via (none configured)", r.Header.Get("Via"), ""},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("origin request %s = %q, want %q", ck.name, ck.got, ck.want)
		}
	}
	c.Close()
	if got := val(tb.b.m.msgTo); got != 200 {
		t.Errorf("messages to origin = %v, want 200", got)
	}
	if got := val(tb.b.m.accepted); got != 1 {
		t.Errorf("accepted = %v, want 1", got)
	}
}

func TestBroker_TrustForwarded(t *testing.T) {
	t.Parallel()
	origin := newTestOrigin(t, echo)
	tb := newTestBroker(t, origin.url(), func(c *Config) { c.TrustForwarded = true })
	hdr := http.Header{}
	hdr.Set("X-Forwarded-For", "203.0.113.9")
	hdr.Set("X-Forwarded-Proto", "https")
	hdr.Set("X-Forwarded-Host", "www.app.test")
	tb.mustDial(t, "/live/websocket", hdr)
	r := origin.requests()[0]
	if got, want := r.Header.Get("X-Forwarded-For"), "203.0.113.9, 127.0.0.1"; got != want {
		t.Errorf("X-Forwarded-For = %q, want %q", got, want)
	}
	if got := r.Header.Get("X-Forwarded-Proto"); got != "https" {
		t.Errorf("X-Forwarded-Proto = %q, want https", got)
	}
	if got := r.Header.Get("X-Forwarded-Host"); got != "www.app.test" {
		t.Errorf("X-Forwarded-Host = %q, want www.app.test", got)
	}
}

// TestBroker_Via: the forwarded handshake carries the client's Via with
// this gateway's member appended (RFC 9110 §7.6.3), in the version the
// client spoke.
func TestBroker_Via(t *testing.T) {
	t.Parallel()
	origin := newTestOrigin(t, echo)
	tb := newTestBroker(t, origin.url(), func(c *Config) { c.Via = "edge-1" })
	hdr := http.Header{}
	hdr.Set("Via", "1.1 lb")
	tb.mustDial(t, "/live/websocket", hdr)
	tb.mustDial(t, "/live/websocket", nil)
	reqs := origin.requests()
	if len(reqs) != 2 {
		t.Fatalf("origin saw %d handshakes, want 2", len(reqs))
	}
	for i, want := range []string{"1.1 lb, 1.1 edge-1", "1.1 edge-1"} {
		if got := strings.Join(reqs[i].Header.Values("Via"), ", "); got != want {
			t.Errorf("handshake %d: Via = %q, want %q", i+1, got, want)
		}
	}
}

// The responses the broker forwards carry Via too: the client's 101 and
// an origin refusal it relays, with the origin's own members first. An
// empty Config.Via adds none, and keeps the origin's.
func TestBroker_ResponseVia(t *testing.T) {
	t.Parallel()
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var h http.Header
		if v := r.URL.Query().Get("via"); v != "" {
			h = http.Header{"Via": {v}}
		}
		if r.URL.Query().Get("refuse") != "" {
			maps.Copy(w.Header(), h)
			http.Error(w, "not you", http.StatusForbidden)
			return
		}
		c, err := up.Upgrade(w, r, h)
		if err != nil {
			return
		}
		defer c.Close()
		echo(c, r)
	}))
	t.Cleanup(origin.Close)
	ou, _ := url.Parse(origin.URL)
	for _, tc := range []struct {
		name, via, query string
		status           int
		want             string
	}{
		{"101", "edge-1", "", http.StatusSwitchingProtocols, "1.1 edge-1"},
		{"101 after the origin's", "edge-1", "?via=1.1+app-lb", http.StatusSwitchingProtocols, "1.1 app-lb, 1.1 edge-1"},
		{"refusal relayed", "edge-1", "?via=1.1+app-lb&refuse=1", http.StatusForbidden, "1.1 app-lb, 1.1 edge-1"},
		{"none of ours", "", "?via=1.1+app-lb", http.StatusSwitchingProtocols, "1.1 app-lb"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb := newTestBroker(t, ou, func(c *Config) { c.Via = tc.via })
			_, resp, err := tb.dial(t, "/live/websocket"+tc.query, nil)
			if resp == nil {
				t.Fatalf("dial: %v, no response", err)
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d (%v), want %d", resp.StatusCode, err, tc.status)
			}
			if got := strings.Join(resp.Header.Values("Via"), ", "); got != tc.want {
				t.Errorf("Via = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestBroker_CloseCodeRelay(t *testing.T) {
	t.Parallel()
	t.Run("client closes", func(t *testing.T) {
		got := make(chan error, 1)
		origin := newTestOrigin(t, func(c *websocket.Conn, _ *http.Request) {
			_, _, err := c.ReadMessage() // gorilla echoes the close
			got <- err
		})
		tb := newTestBroker(t, origin.url(), nil)
		c := tb.mustDial(t, "/live/websocket", nil)
		c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4001, "bye now"))
		var ce *websocket.CloseError
		if err := <-got; !errors.As(err, &ce) || ce.Code != 4001 || ce.Text != "bye now" {
			t.Fatalf("origin read error = %v, want close 4001 \"bye now\"", err)
		}
		// The origin's close reply is relayed back as the answer.
		if err := readUntilClose(c, 5*time.Second); closeCode(err) != 4001 {
			t.Errorf("client got %v, want the close reply 4001", err)
		}
	})
	t.Run("origin closes", func(t *testing.T) {
		origin := newTestOrigin(t, func(c *websocket.Conn, _ *http.Request) {
			c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4002, "origin says bye"))
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			c.ReadMessage()
		})
		tb := newTestBroker(t, origin.url(), nil)
		c := tb.mustDial(t, "/live/websocket", nil)
		err := readUntilClose(c, 5*time.Second)
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != 4002 || ce.Text != "origin says bye" {
			t.Errorf("client read error = %v, want close 4002 \"origin says bye\"", err)
		}
	})
	t.Run("origin connection drops", func(t *testing.T) {
		origin := newTestOrigin(t, func(c *websocket.Conn, _ *http.Request) { c.NetConn().Close() })
		tb := newTestBroker(t, origin.url(), nil)
		c := tb.mustDial(t, "/live/websocket", nil)
		if err := readUntilClose(c, 5*time.Second); closeCode(err) != websocket.CloseGoingAway {
			t.Errorf("client got %v, want close 1001", err)
		}
	})
}

func TestBroker_OriginDown(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	tb := newTestBroker(t, &url.URL{Scheme: "http", Host: addr}, nil)
	_, resp, err := tb.dial(t, "/live/websocket", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("dial = %v, status %v, want 502", err, statusOf(resp))
	}
	if got := val(tb.b.m.refused.WithLabelValues(ReasonUpstreamDown)); got != 1 {
		t.Errorf("refused{origin_down} = %v, want 1", got)
	}
	if got, want := resp.Header.Get("Cache-Status"), "firstrender; fwd=bypass; detail=socket-path"; got != want {
		t.Errorf("Cache-Status = %q, want %q", got, want)
	}
}

func statusOf(r *http.Response) int {
	if r == nil {
		return 0
	}
	return r.StatusCode
}

func TestBroker_OriginTimeout(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	stop := make(chan struct{})
	defer close(stop)
	go func() { // accepts TCP, never answers the handshake
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { <-stop; c.Close() }()
		}
	}()
	tb := newTestBroker(t, &url.URL{Scheme: "http", Host: ln.Addr().String()}, func(c *Config) { c.DialTimeout = 200 * time.Millisecond })
	start := time.Now()
	_, resp, err := tb.dial(t, "/live/websocket", nil)
	if err == nil || statusOf(resp) != http.StatusGatewayTimeout {
		t.Fatalf("dial = %v, status %d, want 504", err, statusOf(resp))
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("refusal took %v, want about the 200ms dial timeout", el)
	}
}

func TestBroker_OriginRefusing(t *testing.T) {
	t.Parallel()
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "origin check failed", http.StatusForbidden) // Phoenix's check_origin
	}))
	defer origin.Close()
	u, _ := url.Parse(origin.URL)
	tb := newTestBroker(t, u, nil)
	_, resp, err := tb.dial(t, "/live/websocket", nil)
	if err == nil || statusOf(resp) != http.StatusForbidden {
		t.Fatalf("dial = %v, status %d, want the origin's 403", err, statusOf(resp))
	}
	if got := val(tb.b.m.refused.WithLabelValues(ReasonUpstreamDeny)); got != 1 {
		t.Errorf("refused{origin_refused} = %v, want 1", got)
	}
	if got, want := resp.Header.Get("Cache-Status"), "firstrender; fwd=bypass; fwd-status=403; detail=socket-path"; got != want {
		t.Errorf("Cache-Status = %q, want %q", got, want)
	}
}

func TestBroker_Refusals(t *testing.T) {
	t.Parallel()
	origin := newTestOrigin(t, echo)
	tb := newTestBroker(t, origin.url(), nil)
	tests := []struct {
		name   string
		path   string
		origin string // "-" = none
		status int
		reason string
	}{
		{"foreign origin is refused before dialling", "/live/websocket", "https://evil.test", 403, ReasonOriginDenied},
		{"null origin is refused", "/live/websocket", "null", 403, ReasonNullOrigin},
		{"missing origin is refused", "/live/websocket", "-", 403, ReasonNoOrigin},
		{"suffix attack is refused", "/live/websocket", "http://app.test.evil.test", 403, ReasonOriginDenied},
		{"other path is not tunnelled", "/other/websocket", allowedOrigin, 404, ReasonPath},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := http.Header{}
			if tt.origin != "-" {
				hdr.Set("Origin", tt.origin)
			} else {
				hdr["Origin"] = nil
			}
			d := websocket.Dialer{}
			_, resp, err := d.Dial(tb.wsURL(tt.path), hdr)
			if err == nil || statusOf(resp) != tt.status {
				t.Fatalf("dial with Origin %q = %v, status %d, want %d", tt.origin, err, statusOf(resp), tt.status)
			}
			if got := val(tb.b.m.refused.WithLabelValues(tt.reason)); got < 1 {
				t.Errorf("refused{%s} = %v, want >= 1", tt.reason, got)
			}
			want := "firstrender; fwd=bypass; detail=socket-path"
			if tt.path != "/live/websocket" {
				want = "firstrender; fwd=bypass; detail=upgrade"
			}
			if got := resp.Header.Get("Cache-Status"); got != want {
				t.Errorf("Cache-Status = %q, want %q", got, want)
			}
		})
	}
	if n := len(origin.requests()); n != 0 {
		t.Errorf("origin was dialled %d times for refused upgrades, want 0", n)
	}
	// A plain GET on the socket path never reaches the cache.
	resp, err := http.Get(tb.srv.URL + "/live/websocket")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("plain GET /live/websocket = %d, want 400", resp.StatusCode)
	}
	if got, want := resp.Header.Get("Cache-Status"), "firstrender; fwd=bypass; detail=socket-path"; got != want {
		t.Errorf("plain GET /live/websocket: Cache-Status = %q, want %q", got, want)
	}
	// An accepted upgrade says so too.
	_, resp, err = tb.dial(t, "/live/websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := resp.Header.Get("Cache-Status"), "firstrender; fwd=bypass; detail=socket-path"; got != want {
		t.Errorf("101: Cache-Status = %q, want %q", got, want)
	}
}

// TestBroker_HTTP10UpgradeRefused: a WebSocket handshake must be HTTP/1.1
// or later (RFC 6455 §4.1); one over HTTP/1.0 gets 400 and the origin is
// never dialled.
func TestBroker_HTTP10UpgradeRefused(t *testing.T) {
	t.Parallel()
	origin := newTestOrigin(t, echo)
	tb := newTestBroker(t, origin.url(), nil)
	conn, err := net.Dial("tcp", strings.TrimPrefix(tb.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "GET /live/websocket HTTP/1.0\r\nHost: %s\r\nOrigin: %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", strings.TrimPrefix(tb.srv.URL, "http://"), allowedOrigin)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "HTTP/1.1") {
		t.Errorf("HTTP/1.0 upgrade = %d %q, want 400 saying a handshake needs HTTP/1.1", resp.StatusCode, body)
	}
	if got := val(tb.b.m.refused.WithLabelValues(ReasonNotUpgrade)); got < 1 {
		t.Errorf("refused{%s} = %v, want >= 1", ReasonNotUpgrade, got)
	}
	if n := len(origin.requests()); n != 0 {
		t.Errorf("origin was dialled %d times for an HTTP/1.0 upgrade, want 0", n)
	}
}

func TestBroker_Tunnel(t *testing.T) {
	t.Parallel()
	origin := newTestOrigin(t, echo)
	tb := newTestBroker(t, origin.url(), func(c *Config) { c.Tunnel = true })
	c := tb.mustDial(t, "/other/websocket", nil)
	c.WriteMessage(websocket.TextMessage, []byte("hi"))
	if _, p, err := c.ReadMessage(); err != nil || string(p) != "hi" {
		t.Fatalf("tunnel echo = %q, %v; want hi", p, err)
	}
}

func TestBroker_OversizedMessage(t *testing.T) {
	t.Parallel()
	originErr := make(chan error, 1)
	origin := newTestOrigin(t, func(c *websocket.Conn, _ *http.Request) {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _, err := c.ReadMessage()
		originErr <- err
	})
	tb := newTestBroker(t, origin.url(), func(c *Config) { c.ReadLimit = 1024 })
	c := tb.mustDial(t, "/live/websocket", nil)
	c.WriteMessage(websocket.TextMessage, make([]byte, 1024)) // at the limit: relayed? (origin reads it)
	if err := <-originErr; err != nil {
		t.Fatalf("message at the limit: origin got %v, want it relayed", err)
	}
	origin2Err := make(chan error, 1)
	origin2 := newTestOrigin(t, func(c *websocket.Conn, _ *http.Request) {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _, err := c.ReadMessage()
		origin2Err <- err
	})
	tb2 := newTestBroker(t, origin2.url(), func(c *Config) { c.ReadLimit = 1024 })
	c2 := tb2.mustDial(t, "/live/websocket", nil)
	c2.WriteMessage(websocket.TextMessage, make([]byte, 1025))
	if err := readUntilClose(c2, 5*time.Second); closeCode(err) != websocket.CloseMessageTooBig {
		t.Errorf("client got %v, want close 1009", err)
	}
	if err := <-origin2Err; closeCode(err) != websocket.CloseGoingAway {
		t.Errorf("origin got %v, want close 1001", err)
	}
}

func TestBroker_IdleTimeout(t *testing.T) {
	t.Parallel()
	originErr := make(chan error, 1)
	origin := newTestOrigin(t, func(c *websocket.Conn, _ *http.Request) {
		originErr <- readUntilClose(c, 5*time.Second)
	})
	tb := newTestBroker(t, origin.url(), func(c *Config) { c.IdleTimeout = 300 * time.Millisecond })
	c := tb.mustDial(t, "/live/websocket", nil)
	start := time.Now()
	if err := readUntilClose(c, 5*time.Second); closeCode(err) != websocket.CloseGoingAway {
		t.Errorf("client got %v, want close 1001", err)
	}
	if el := time.Since(start); el < 250*time.Millisecond || el > 3*time.Second {
		t.Errorf("idle close after %v, want about 300ms", el)
	}
	if err := <-originErr; closeCode(err) != websocket.CloseGoingAway {
		t.Errorf("origin got %v, want close 1001", err)
	}
}

func TestBroker_DeadPeer(t *testing.T) {
	t.Parallel()
	originErr := make(chan error, 1)
	origin := newTestOrigin(t, func(c *websocket.Conn, _ *http.Request) {
		originErr <- readUntilClose(c, 10*time.Second) // reading answers pings
	})
	tb := newTestBroker(t, origin.url(), func(c *Config) {
		c.PingInterval = 100 * time.Millisecond
		c.PongTimeout = 200 * time.Millisecond
		c.WriteTimeout = 100 * time.Millisecond
	})
	c := tb.mustDial(t, "/live/websocket", nil)
	_ = c // never reads: never answers pings, like a dead peer
	start := time.Now()
	if err := <-originErr; closeCode(err) != websocket.CloseGoingAway {
		t.Errorf("origin got %v, want close 1001 after the client stopped answering pings", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("dead peer detected after %v, want < 5s", el)
	}
}

func TestBroker_PingKeepsAlive(t *testing.T) {
	t.Parallel()
	origin := newTestOrigin(t, echo)
	// A pong timeout well above the ping interval, so a loaded machine
	// (-race, shared cores) does not miss it; the socket must outlive
	// several pong timeouts, which only answered pings allow.
	const pongTimeout = time.Second
	tb := newTestBroker(t, origin.url(), func(c *Config) {
		c.PingInterval = 50 * time.Millisecond
		c.PongTimeout = pongTimeout
		c.WriteTimeout = 100 * time.Millisecond
	})
	c := tb.mustDial(t, "/live/websocket", nil)
	pings := make(chan struct{}, 1024)
	c.SetPingHandler(func(s string) error {
		pings <- struct{}{}
		return c.WriteControl(websocket.PongMessage, []byte(s), time.Now().Add(time.Second))
	})
	go c.ReadMessage()
	start := time.Now()
	for n := 0; time.Since(start) < 2*pongTimeout; n++ {
		select {
		case <-pings:
		case <-time.After(5 * time.Second):
			t.Fatalf("got %d pings in %v, want pings until %v", n, time.Since(start), 2*pongTimeout)
		}
	}
	if n := tb.b.Open(); n != 1 {
		t.Errorf("open sockets = %d, want 1 (pongs keep it alive)", n)
	}
}

func TestBroker_MaxSockets(t *testing.T) {
	t.Parallel()
	origin := newTestOrigin(t, echo)
	released := make(chan int, 8)
	tb := newTestBroker(t, origin.url(), func(c *Config) {
		c.MaxSockets = 2
		c.onRelease = func(open int) { released <- open }
	})
	tb.mustDial(t, "/live/websocket", nil)
	c2 := tb.mustDial(t, "/live/websocket", nil)
	_, resp, err := tb.dial(t, "/live/websocket", nil)
	if err == nil || statusOf(resp) != http.StatusServiceUnavailable {
		t.Fatalf("third socket: %v, status %d, want 503", err, statusOf(resp))
	}
	if got := val(tb.b.m.refused.WithLabelValues(ReasonMaxSockets)); got != 1 {
		t.Errorf("refused{max_sockets} = %v, want 1", got)
	}
	// A slot frees when a socket ends.
	c2.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
	readUntilClose(c2, 5*time.Second)
	select {
	case open := <-released: // the refused third socket took no slot
		if open != 1 {
			t.Fatalf("after one of two sockets ended: %d open, want 1", open)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the closed socket's slot was not released within 5s")
	}
	tb.mustDial(t, "/live/websocket", nil)
}

func TestBroker_ShutdownClosesWith1001(t *testing.T) {
	t.Parallel()
	const n = 5
	originErrs := make(chan error, n)
	origin := newTestOrigin(t, func(c *websocket.Conn, _ *http.Request) {
		originErrs <- readUntilClose(c, 10*time.Second)
	})
	running := make(chan struct{}, n)
	tb := newTestBroker(t, origin.url(), func(c *Config) { c.onRun = func() { running <- struct{}{} } })
	clients := make([]*websocket.Conn, n)
	for i := range clients {
		clients[i] = tb.mustDial(t, "/live/websocket", nil)
	}
	for range n {
		<-origin.dialled
	}
	clientErrs := make(chan error, n)
	for _, c := range clients {
		go func() { clientErrs <- readUntilClose(c, 10*time.Second) }()
	}
	for i := range n { // the gauge moves just after the 101 is written
		select {
		case <-running:
		case <-time.After(5 * time.Second):
			t.Fatalf("%d of %d sessions running after 5s", i, n)
		}
	}
	if got := val(tb.b.m.open); got != n {
		t.Errorf("open gauge = %v, want %d", got, n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	if err := tb.b.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("Shutdown took %v, want within the 3s bound", el)
	}
	for range n {
		if err := <-clientErrs; closeCode(err) != websocket.CloseGoingAway {
			t.Errorf("client got %v, want close 1001", err)
		}
		if err := <-originErrs; closeCode(err) != websocket.CloseGoingAway {
			t.Errorf("origin got %v, want close 1001", err)
		}
	}
	if _, resp, err := tb.dial(t, "/live/websocket", nil); err == nil || statusOf(resp) != 503 {
		t.Errorf("dial after shutdown: %v status %d, want 503", err, statusOf(resp))
	}
}

func TestBroker_ShutdownBoundedWhenPeersHang(t *testing.T) {
	t.Parallel()
	origin := newTestOrigin(t, func(c *websocket.Conn, _ *http.Request) {
		<-t.Context().Done() // never reads: never replies to close, until the test ends
	})
	tb := newTestBroker(t, origin.url(), func(c *Config) { c.CloseGrace = 200 * time.Millisecond })
	c := tb.mustDial(t, "/live/websocket", nil)
	_ = c // never reads either
	<-origin.dialled
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	tb.b.Shutdown(ctx)
	if el := time.Since(start); el > 1500*time.Millisecond {
		t.Errorf("Shutdown took %v with hung peers, want <= ~1s", el)
	}
	if n := tb.b.Open(); n != 0 {
		t.Errorf("open after Shutdown = %d, want 0", n)
	}
}

func TestBroker_SlowReaderIsCutOff(t *testing.T) {
	t.Parallel()
	// The client stops reading; the origin floods. The broker must not read
	// ahead without bound: the origin's writes stall, and after WriteTimeout
	// the broker drops the client and closes the origin with 1001.
	stalled := make(chan int64, 1)
	originErr := make(chan error, 1)
	msg := make([]byte, 64<<10)
	origin := newTestOrigin(t, func(c *websocket.Conn, _ *http.Request) {
		var sent int64
		for sent < 1<<30 {
			c.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
			if err := c.WriteMessage(websocket.BinaryMessage, msg); err != nil {
				break
			}
			sent += int64(len(msg))
		}
		stalled <- sent
		originErr <- readUntilClose(c, 10*time.Second)
	})
	tb := newTestBroker(t, origin.url(), func(c *Config) {
		c.WriteTimeout = 1500 * time.Millisecond
		c.PingInterval = -1
	})
	c := tb.mustDial(t, "/live/websocket", nil)
	_ = c // never reads
	sent := <-stalled
	if sent >= 1<<30 {
		t.Fatalf("origin wrote %d bytes to a client that reads nothing: the broker buffers without bound", sent)
	}
	t.Logf("origin stalled after %d KiB (kernel socket buffers + one message)", sent>>10)
	if err := <-originErr; err == nil {
		t.Errorf("origin: socket still open, want it closed after the client was cut off")
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	p := mustPolicy(t, OriginConfig{})
	u, _ := url.Parse("http://127.0.0.1:1")
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no origin", Config{Policy: p}},
		{"no policy", Config{Origin: u}},
		{"bad scheme", Config{Origin: &url.URL{Scheme: "ftp", Host: "x"}, Policy: p}},
		{"relative path", Config{Origin: u, Policy: p, Paths: []string{"live"}}},
		{"write timeout too long", Config{Origin: u, Policy: p, WriteTimeout: time.Minute, PingInterval: time.Second, PongTimeout: time.Second}},
		{"guard without cache", Config{Origin: u, Policy: p, Guard: &GuardConfig{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Logger = quietLogger()
			if _, err := New(tt.cfg); err == nil {
				t.Errorf("New(%s) = nil error, want one", tt.name)
			}
		})
	}
}

func TestBroker_TLSOrigin(t *testing.T) {
	t.Parallel()
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		echo(c, r)
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL) // https: dialled as wss
	tlsCfg := srv.Client().Transport.(*http.Transport).TLSClientConfig
	tb := newTestBroker(t, u, func(c *Config) { c.TLSClientConfig = tlsCfg })
	c := tb.mustDial(t, "/live/websocket", nil)
	for i := range 20 { // small messages are batched under TLS too
		c.WriteMessage(websocket.TextMessage, []byte(strconv.Itoa(i)))
	}
	for i := range 20 {
		_, p, err := c.ReadMessage()
		if err != nil || string(p) != strconv.Itoa(i) {
			t.Fatalf("message %d = %q, %v; want %q", i, p, err, strconv.Itoa(i))
		}
	}
}

func TestBroker_NoGoroutineLeak(t *testing.T) {
	// Not parallel: it counts the process's goroutines.
	origin := newTestOrigin(t, echo)
	released := make(chan int, 20)
	tb := newTestBroker(t, origin.url(), func(c *Config) {
		c.PingInterval = 20 * time.Millisecond
		c.WriteTimeout = 10 * time.Millisecond
		c.onRelease = func(open int) { released <- open }
	})
	base := runtime.NumGoroutine()
	for range 20 {
		c := tb.mustDial(t, "/live/websocket", nil)
		c.WriteMessage(websocket.TextMessage, []byte("x"))
		c.ReadMessage()
		c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
		readUntilClose(c, 5*time.Second)
		c.Close()
	}
	for i := range 20 {
		select {
		case <-released:
		case <-time.After(5 * time.Second):
			t.Fatalf("%d of 20 closed sockets released their slot within 5s", i)
		}
	}
	// Every socket's slot is free; what remains is each handler's return
	// and net/http's connection goroutine ending right after it, which no
	// hook can see: yield (no sleep) until they are gone, as goleak does.
	for i := 0; i < 10000 && runtime.NumGoroutine() > base+5; i++ {
		runtime.Gosched()
	}
	if n, g := tb.b.Open(), runtime.NumGoroutine(); n != 0 || g > base+5 {
		t.Errorf("after 20 closed sockets: open %d, goroutines %d (base %d); want 0 and about the base", n, g, base)
	}
}
