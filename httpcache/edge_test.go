package httpcache

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/firstrender/firstrender/httpcache/httpcachetest"
)

// rawExchange writes raw to addr over one TCP connection and reads the
// response to it, and (with probe) whether the server then closed the
// connection (an open one costs the probe's 2s).
func rawExchange(t *testing.T, addr, raw string, probe bool) (*http.Response, string, bool) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the response to %q: %v", raw, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !probe {
		return resp, string(b), false
	}
	// After the response, a closed connection reads EOF at once; an open
	// one would block until the deadline, so probe with a short one.
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err = br.ReadByte()
	closed := err == io.EOF || (err != nil && !isTimeout(err))
	return resp, string(b), closed
}

func frontAddr(r *rig) string { return strings.TrimPrefix(r.Front.URL, "http://") }

// TestEdge_Refusals checks the requests the proxy answers itself, before
// any origin sees them, over raw TCP (net/http's client cannot send most
// of them).
func TestEdge_Refusals(t *testing.T) {
	r := newRig(t, httpcachetest.Echo, nil)
	long := strings.Repeat("a", DefaultMaxHeaderValue+1)
	var many strings.Builder
	for i := range DefaultMaxHeaders {
		many.WriteString("X-H" + string(rune('a'+i%26)) + ": v\r\n")
	}
	for _, c := range []struct {
		name, raw string
		status    int
		detail    string
		close     bool
	}{
		{"CONNECT is refused", "CONNECT evil.test:443 HTTP/1.1\r\nHost: evil.test:443\r\n\r\n", 405, "connect", false},
		{"TRACE is refused", "TRACE / HTTP/1.1\r\nHost: localhost\r\n\r\n", 405, "trace", false},
		{"raw # in the request-target", "GET /page#frag HTTP/1.1\r\nHost: localhost\r\n\r\n", 400, "fragment", true},
		{"raw # in the query", "GET /page?a=1#x HTTP/1.1\r\nHost: localhost\r\n\r\n", 400, "fragment", true},
		{"a header value over 4 KB", "GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: " + long + "\r\n\r\n", 431, "header-too-large", true},
		{"more than 100 header lines", "GET / HTTP/1.1\r\nHost: localhost\r\n" + many.String() + "\r\n", 431, "too-many-headers", true},
		{"a host outside Hosts", "GET / HTTP/1.1\r\nHost: evil.test\r\n\r\n", 421, "host-not-cached", false},
		{"an absolute-form target naming another host", "GET http://evil.test/ HTTP/1.1\r\nHost: localhost\r\n\r\n", 421, "host-not-cached", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := r.Origin.Count()
			resp, body, closed := rawExchange(t, frontAddr(r), c.raw, c.close)
			if resp.StatusCode != c.status {
				t.Errorf("status %d, want %d (body %q)", resp.StatusCode, c.status, body)
			}
			if m := csOf(t, resp.Header); !match(m, "detail="+c.detail) {
				t.Errorf("Cache-Status %q, want detail=%s", resp.Header.Get("Cache-Status"), c.detail)
			}
			if c.close && !closed {
				t.Errorf("connection left open after %d", c.status)
			}
			if n := r.Origin.Count(); n != before {
				t.Errorf("origin asked %d times, want 0", n-before)
			}
		})
	}
	t.Run("limits at the edge are not below a normal request", func(t *testing.T) {
		resp, body, _ := rawExchange(t, frontAddr(r), "GET /ok HTTP/1.1\r\nHost: localhost\r\nX-Ok: "+strings.Repeat("a", DefaultMaxHeaderValue)+"\r\n\r\n", false)
		if resp.StatusCode != 200 {
			t.Errorf("a 4096-byte value: status %d (%q), want 200", resp.StatusCode, body)
		}
	})
}

// TestPoison_ErrorsFromUnkeyedInput: an attacker's request that makes the
// origin answer an error (its own limits, an override, a restart) never
// leaves the error for the next visitor.
func TestPoison_ErrorsFromUnkeyedInput(t *testing.T) {
	big := strings.Repeat("x", 20<<10)
	httpcachetest.Poison(t, build(nil), []httpcachetest.PoisonCase{
		{Name: "origin 503 during a restart", Path: "/", A: []string{httpcachetest.EchoStatus, "503"}},
		{Name: "origin 500 with public max-age", Path: "/", A: []string{httpcachetest.EchoStatus, "500", httpcachetest.EchoHeader, "Cache-Control: public, max-age=600"}},
		{Name: "origin 404 with public max-age", Path: "/", A: []string{httpcachetest.EchoStatus, "404"}},
		{Name: "origin 400 for a header it dislikes", Path: "/", A: []string{httpcachetest.EchoStatus, "400", "X-Evil", "1"}},
		{Name: "a 20 KB header", Path: "/", A: []string{"X-Big", big}},
		{Name: "method override to DELETE gets 405 at the origin", Path: "/", A: []string{"X-Http-Method-Override", "DELETE"}},
	})
}

// TestEdge_SocketPathsNeverCached: the live socket transports are never
// cached, under any spelling the application routes the same way.
func TestEdge_SocketPathsNeverCached(t *testing.T) {
	r := newRig(t, httpcachetest.Echo, nil)
	for _, p := range []string{"/live/longpoll", "/live//longpoll?vsn=2", "/live/./longpoll", "/live/%6Congpoll", "/live/websocket"} {
		for range 2 {
			got := r.Get(p)
			if !match(cs(t, got), "fwd=bypass; detail=socket-path", "stored", "hit") {
				t.Errorf("%s: Cache-Status %q, want fwd=bypass; detail=socket-path", p, got.Header.Get("Cache-Status"))
			}
		}
	}
}
