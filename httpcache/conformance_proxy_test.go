package httpcache

// firstrender as an HTTP intermediary (RFC 9110 §7.6, §10.1, §6.6.1,
// §15.4.5; RFC 9112 §3.2, §6, §7, §9): what is not in the cache-tests
// suite but what an independent test suite, curl, a browser or another
// proxy in front of it exercises. Each row names the RFC requirement it
// checks. Requests that must reach the proxy byte for byte (HTTP/1.0,
// absolute-form, duplicate Host, Expect) are written on a raw connection
// to the proxy served as the server serves it (proxyFront).

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/firstrender/firstrender/store"
)

// proxyFront serves r's proxy as the server does (hop.GuardListener,
// corked hits) and returns its address.
func proxyFront(t *testing.T, r *rig) string {
	t.Helper()
	return guardedServer(t, r.Proxy)
}

// proxyConn is a raw client connection to a front.
type proxyConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func proxyDial(t *testing.T, addr string) *proxyConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &proxyConn{t: t, c: c, br: bufio.NewReader(c)}
}

// send writes raw (a request, CRLFs spelled out) as it is.
func (pc *proxyConn) send(raw string) {
	pc.t.Helper()
	if _, err := io.WriteString(pc.c, raw); err != nil {
		pc.t.Fatal(err)
	}
}

// read reads one response to a request of method, body included.
func (pc *proxyConn) read(method string) (*http.Response, string) {
	pc.t.Helper()
	resp, err := http.ReadResponse(pc.br, &http.Request{Method: method})
	if err != nil {
		pc.t.Fatalf("reading the response: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		pc.t.Fatalf("reading the body: %v", err)
	}
	resp.Body.Close()
	return resp, string(b)
}

// closed reports whether the server closes the connection now (EOF
// within the connection's deadline).
func (pc *proxyConn) closed() bool {
	pc.t.Helper()
	_, err := pc.br.ReadByte()
	return err == io.EOF
}

// proxyDo sends raw on a new connection and reads the response.
func proxyDo(t *testing.T, addr, method, raw string) (*http.Response, string) {
	t.Helper()
	pc := proxyDial(t, addr)
	pc.send(raw)
	return pc.read(method)
}

// proxyPage is an origin page: cacheable for 60s with a validator and a
// fixed body.
func proxyPage(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Cache-Control", "max-age=60")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("ETag", `"v1"`)
	io.WriteString(w, "<p>page</p>")
}

// proxyViaMembers splits Via field lines into members.
func proxyViaMembers(h http.Header) []string {
	var out []string
	for _, v := range h.Values("Via") {
		for m := range strings.SplitSeq(v, ",") {
			if m = strings.TrimSpace(m); m != "" {
				out = append(out, m)
			}
		}
	}
	return out
}

// TestConformance_ProxyVia: RFC 9110 §7.6.3. A gateway MUST send Via in
// each inbound request it forwards and MAY in responses; firstrender
// sends it both ways, on hits too (as Varnish does), with the pseudonym
// "firstrender" (never a host name), appended to what was there.
func TestConformance_ProxyVia(t *testing.T) {
	t.Run("request: appended to the client's, received-protocol of the client", func(t *testing.T) {
		r := newRig(t, proxyPage, nil)
		r.Get("/via", "Via", "1.1 front-cdn")
		got := proxyViaMembers(r.Origin.LastRequest().Header)
		if len(got) != 2 || got[0] != "1.1 front-cdn" || got[1] != "1.1 firstrender" {
			t.Errorf("origin got Via %q, want [1.1 front-cdn 1.1 firstrender]", got)
		}
	})
	t.Run("request: HTTP/1.0 client is received-protocol 1.0", func(t *testing.T) {
		r := newRig(t, proxyPage, nil)
		proxyDo(t, proxyFront(t, r), "GET", "GET /via10 HTTP/1.0\r\nHost: localhost\r\n\r\n")
		got := proxyViaMembers(r.Origin.LastRequest().Header)
		if len(got) != 1 || got[0] != "1.0 firstrender" {
			t.Errorf("origin got Via %q, want [1.0 firstrender]", got)
		}
	})
	t.Run("request: pass and unsafe methods carry it too", func(t *testing.T) {
		r := newRig(t, func(w http.ResponseWriter, _ *http.Request) { w.Header().Set("Cache-Control", "no-store") }, nil)
		for _, m := range []string{"GET", "POST", "DELETE", "OPTIONS"} {
			r.Do(m, "/via-"+m)
			if got := proxyViaMembers(r.Origin.LastRequest().Header); len(got) != 1 || got[0] != "1.1 firstrender" {
				t.Errorf("%s: origin got Via %q", m, got)
			}
		}
	})
	t.Run("response: miss, then hit from the store, then hit from memory, same Via", func(t *testing.T) {
		r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
			w.Header().Set("Via", "1.1 origin-lb")
			proxyPage(w, req)
		}, nil)
		addr := proxyFront(t, r)
		for i, want := range []string{"fwd=uri-miss", "hit", "hit", "hit"} {
			resp, _ := proxyDo(t, addr, "GET", "GET /viaresp HTTP/1.1\r\nHost: localhost\r\n\r\n")
			r.Settle()
			if m := csOf(t, resp.Header); !match(m, want) {
				t.Fatalf("request %d: Cache-Status %q, want %s", i, m, want)
			}
			got := proxyViaMembers(resp.Header)
			if len(got) != 2 || got[0] != "1.1 origin-lb" || got[1] != "1.1 firstrender" {
				t.Errorf("request %d (%s): Via %q, want [1.1 origin-lb 1.1 firstrender]", i, want, got)
			}
		}
		// The stored copy holds the member it was forwarded with, once:
		// hits add nothing per request.
		rec := proxyStored(t, r, "http://localhost/viaresp")
		if got := http.Header(rec.Header).Values("Via"); len(got) != 1 || got[0] != "1.1 origin-lb, 1.1 firstrender" {
			t.Errorf("stored Via %q", got)
		}
	})
	t.Run("response: a 304 refresh appends once, or keeps the stored Via", func(t *testing.T) {
		for _, tc := range []struct{ via304, want string }{
			{"", "1.1 origin-lb, 1.1 firstrender"},            // a 304 without Via changes nothing
			{"1.1 other-lb", "1.1 other-lb, 1.1 firstrender"}, // RFC 9111 §3.2: the 304's replaces it
		} {
			r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
				w.Header().Set("Cache-Control", "max-age=1")
				w.Header().Set("ETag", `"v1"`)
				if req.Header.Get("If-None-Match") == `"v1"` {
					if tc.via304 != "" {
						w.Header().Set("Via", tc.via304)
					}
					w.WriteHeader(http.StatusNotModified)
					return
				}
				w.Header().Set("Via", "1.1 origin-lb")
				io.WriteString(w, "x")
			}, nil)
			r.Get("/via304r")
			for i := range 2 {
				r.Clock.Advance(2 * time.Second)
				res := r.Get("/via304r")
				if m := cs(t, res); !match(m, "fwd=stale") || !match(m, "fwd-status=304") {
					t.Fatalf("%q: Cache-Status %q, want a revalidation", tc.via304, m)
				}
				if got := strings.Join(res.Header.Values("Via"), ", "); got != tc.want {
					t.Errorf("%q, refresh %d: Via %q, want %q", tc.via304, i, got, tc.want)
				}
			}
			if res := r.Get("/via304r"); strings.Join(res.Header.Values("Via"), ", ") != tc.want || !match(cs(t, res), "hit") {
				t.Errorf("%q: hit after refresh: %q Via %q", tc.via304, res.Header.Get("Cache-Status"), res.Header.Values("Via"))
			}
		}
	})
	t.Run("response: a HEAD's 200 freshening the entry without a Via keeps the stored one", func(t *testing.T) {
		r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
			w.Header().Set("Cache-Control", "max-age=1")
			w.Header().Set("ETag", `"v1"`)
			w.Header().Set("Content-Length", "1")
			if req.Method == http.MethodGet {
				w.Header().Set("Via", "1.1 origin-lb")
				io.WriteString(w, "x")
			}
		}, nil)
		r.Get("/viahead")
		r.Clock.Advance(2 * time.Second)
		head := r.Do(http.MethodHead, "/viahead")
		hit := r.Get("/viahead")
		const want = "1.1 origin-lb, 1.1 firstrender"
		if got := strings.Join(head.Header.Values("Via"), ", "); got != want {
			t.Errorf("HEAD: %q Via %q, want %q", head.Header.Get("Cache-Status"), got, want)
		}
		if got := strings.Join(hit.Header.Values("Via"), ", "); got != want || !match(cs(t, hit), "hit") {
			t.Errorf("GET after the HEAD: %q Via %q, want a hit with %q", hit.Header.Get("Cache-Status"), got, want)
		}
	})
	t.Run("Config.Via: another pseudonym, or none", func(t *testing.T) {
		r := newRig(t, proxyPage, func(c *Config) { c.Via = "edge" })
		res := r.Get("/vianame")
		if got := r.Origin.LastRequest().Header.Get("Via") + " | " + res.Header.Get("Via"); got != "1.1 edge | 1.1 edge" {
			t.Errorf("Via (request | response) %q", got)
		}
		for _, bad := range []string{"two words", "a,b", "host:80"} {
			if _, err := New(Config{Upstream: mustURL(t, "http://app.test"), Store: r.Store, Via: bad}); err == nil || !strings.Contains(err.Error(), "Via") {
				t.Errorf("Via %q: New error %v, want one naming Via", bad, err)
			}
		}
		r = newRig(t, proxyPage, func(c *Config) { c.Via = "-" })
		res = r.Get("/vianone")
		if _, ok := r.Origin.LastRequest().Header["Via"]; ok || res.Header.Get("Via") != "" {
			t.Errorf("Via sent with Config.Via \"-\"")
		}
	})
	t.Run("response: 304 to the client's conditional carries it", func(t *testing.T) {
		r := newRig(t, proxyPage, nil)
		r.Get("/via304")
		res := r.Get("/via304", "If-None-Match", `"v1"`)
		if res.Status != 304 {
			t.Fatalf("status %d, want 304", res.Status)
		}
		if got := proxyViaMembers(res.Header); len(got) != 1 || got[0] != "1.1 firstrender" {
			t.Errorf("Via %q", got)
		}
	})
}

// TestConformance_ProxyHopByHop: RFC 9110 §7.6.1. Connection, every field
// it names, and the hop-by-hop fields are removed before forwarding, both
// ways, and never stored. TE: trailers is the proxy's own (it relays
// trailers), the rest never reach the origin.
func TestConformance_ProxyHopByHop(t *testing.T) {
	hopResp := func(w http.ResponseWriter, req *http.Request) {
		h := w.Header()
		h.Set("Connection", "X-Origin-Hop, Keep-Alive")
		h.Set("X-Origin-Hop", "secret")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("Proxy-Connection", "keep-alive")
		h.Set("Proxy-Authenticate", `Basic realm="inner"`)
		h.Set("Upgrade", "h2c")
		h.Set("X-End-To-End", "kept")
		proxyPage(w, req)
	}
	gone := []string{"Connection", "X-Origin-Hop", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Upgrade", "Transfer-Encoding", "Trailer"}
	t.Run("request fields", func(t *testing.T) {
		r := newRig(t, proxyPage, nil)
		addr := proxyFront(t, r)
		proxyDo(t, addr, "GET", "GET /hopreq HTTP/1.1\r\nHost: localhost\r\n"+
			"Connection: X-Client-Hop, TE\r\nX-Client-Hop: 1\r\nKeep-Alive: 300\r\nProxy-Connection: keep-alive\r\n"+
			"Proxy-Authorization: Basic dTpw\r\nTE: gzip\r\nUpgrade: websocket\r\nTrailer: X-T\r\nX-End-To-End: kept\r\n\r\n")
		h := r.Origin.LastRequest().Header
		for _, k := range []string{"X-Client-Hop", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization", "Te", "Upgrade", "Trailer"} {
			if v, ok := h[k]; ok {
				t.Errorf("origin got %s: %q", k, v)
			}
		}
		if h.Get("X-End-To-End") != "kept" {
			t.Errorf("end-to-end field lost")
		}
	})
	t.Run("response fields, miss and hit, and the stored copy", func(t *testing.T) {
		r := newRig(t, hopResp, nil)
		addr := proxyFront(t, r)
		for i := range 3 {
			resp, _ := proxyDo(t, addr, "GET", "GET /hopresp HTTP/1.1\r\nHost: localhost\r\n\r\n")
			r.Settle()
			for _, k := range gone {
				if k == "Connection" {
					// net/http's own framing may say keep-alive/close, never
					// the origin's nominations.
					if v := resp.Header.Get(k); strings.Contains(strings.ToLower(v), "x-origin-hop") {
						t.Errorf("response %d: Connection %q", i, v)
					}
					continue
				}
				if v, ok := resp.Header[k]; ok {
					t.Errorf("response %d: %s: %q reached the client", i, k, v)
				}
			}
			if resp.Header.Get("X-End-To-End") != "kept" {
				t.Errorf("response %d: end-to-end field lost", i)
			}
		}
		if r.Origin.Count() != 1 {
			t.Errorf("origin count %d, want 1 (hits)", r.Origin.Count())
		}
		rec := proxyStored(t, r, "http://localhost/hopresp")
		for _, k := range gone {
			if v, ok := rec.Header[k]; ok {
				t.Errorf("stored %s: %q", k, v)
			}
		}
	})
	t.Run("407 from the origin: Proxy-Authenticate does not pass the gateway", func(t *testing.T) {
		r := newRig(t, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Proxy-Authenticate", `Basic realm="inner"`)
			w.WriteHeader(http.StatusProxyAuthRequired)
		}, nil)
		res := r.Get("/p407")
		if _, ok := res.Header["Proxy-Authenticate"]; ok || res.Status != 407 {
			t.Errorf("status %d Proxy-Authenticate %q", res.Status, res.Header.Get("Proxy-Authenticate"))
		}
	})
}

// TestConformance_ProxyPersistence: RFC 9112 §9 on HTTP/1.1. The
// client's Connection: close ends its connection after the response (a
// hit from memory too, whose header section the cork writes); the
// origin's Connection: close is hop-by-hop and leaves the client's
// connection open; pipelined requests are answered in order.
func TestConformance_ProxyPersistence(t *testing.T) {
	r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/closing" {
			w.Header().Set("Connection", "close")
		}
		proxyPage(w, req)
	}, nil)
	addr := proxyFront(t, r)
	for range 3 { // miss, store hit, memory hit
		proxyDo(t, addr, "GET", "GET /persist HTTP/1.1\r\nHost: localhost\r\n\r\n")
		r.Settle()
	}
	t.Run("client Connection: close on a hit from memory", func(t *testing.T) {
		pc := proxyDial(t, addr)
		pc.send("GET /persist HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
		resp, body := pc.read("GET")
		if !match(csOf(t, resp.Header), "hit") || body != "<p>page</p>" || !resp.Close {
			t.Errorf("%q body %q, Connection: close announced %v", resp.Header.Get("Cache-Status"), body, resp.Close)
		}
		if !pc.closed() {
			t.Errorf("connection left open after Connection: close")
		}
	})
	t.Run("origin Connection: close does not close the client's connection", func(t *testing.T) {
		pc := proxyDial(t, addr)
		for i := range 2 {
			pc.send("GET /closing HTTP/1.1\r\nHost: localhost\r\n\r\n")
			resp, body := pc.read("GET")
			r.Settle()
			if resp.Close || body != "<p>page</p>" {
				t.Fatalf("request %d: closing %v body %q", i, resp.Close, body)
			}
		}
	})
	t.Run("pipelined hits and a miss are answered in order", func(t *testing.T) {
		pc := proxyDial(t, addr)
		pc.send("GET /persist HTTP/1.1\r\nHost: localhost\r\n\r\n" +
			"HEAD /persist HTTP/1.1\r\nHost: localhost\r\n\r\n" +
			"GET /persist?other HTTP/1.1\r\nHost: localhost\r\n\r\n" +
			"GET /persist HTTP/1.1\r\nHost: localhost\r\n\r\n")
		for i, m := range []string{"GET", "HEAD", "GET", "GET"} {
			resp, body := pc.read(m)
			want := "<p>page</p>"
			if m == "HEAD" {
				want = ""
			}
			if resp.StatusCode != 200 || body != want {
				t.Errorf("response %d (%s): %d %q", i, m, resp.StatusCode, body)
			}
		}
		r.Settle()
	})
}

// TestConformance_ProxyMaxForwards: RFC 9110 §7.6.2 (an intermediary
// receiving OPTIONS or TRACE with Max-Forwards decrements it, and at 0
// answers itself), §9.3.7 (OPTIONS *), §9.3.8 (TRACE: refused with 405
// and Allow, documented in docs/proxy.md).
func TestConformance_ProxyMaxForwards(t *testing.T) {
	r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Allow", "GET, HEAD, OPTIONS")
		w.Header().Set("X-Max-Forwards-Seen", req.Header.Get("Max-Forwards"))
		w.WriteHeader(http.StatusNoContent)
	}, nil)
	addr := proxyFront(t, r)
	t.Run("OPTIONS Max-Forwards: 0 is answered by the proxy", func(t *testing.T) {
		before := r.Origin.Count()
		resp, body := proxyDo(t, addr, "OPTIONS", "OPTIONS /mf HTTP/1.1\r\nHost: localhost\r\nMax-Forwards: 0\r\n\r\n")
		if r.Origin.Count() != before {
			t.Errorf("forwarded with Max-Forwards: 0")
		}
		if resp.StatusCode != 200 || resp.Header.Get("Allow") == "" || body != "" {
			t.Errorf("got %d Allow %q body %q, want 200 with Allow and no body", resp.StatusCode, resp.Header.Get("Allow"), body)
		}
	})
	t.Run("OPTIONS Max-Forwards: 5 is forwarded as 4", func(t *testing.T) {
		resp, _ := proxyDo(t, addr, "OPTIONS", "OPTIONS /mf HTTP/1.1\r\nHost: localhost\r\nMax-Forwards: 5\r\n\r\n")
		if got := resp.Header.Get("X-Max-Forwards-Seen"); got != "4" {
			t.Errorf("origin saw Max-Forwards %q, want 4", got)
		}
	})
	for sent, want := range map[string]string{
		"1":                    "0",
		"007":                  "6",
		"18446744073709551615": "18446744073709551614",
		"18446744073709551616": "18446744073709551616", // beyond any count: not a number we read, as it came
		"-1":                   "-1",
		"three":                "three",
	} {
		t.Run("OPTIONS Max-Forwards: "+sent, func(t *testing.T) {
			resp, _ := proxyDo(t, addr, "OPTIONS", "OPTIONS /mf HTTP/1.1\r\nHost: localhost\r\nMax-Forwards: "+sent+"\r\n\r\n")
			if got := resp.Header.Get("X-Max-Forwards-Seen"); resp.StatusCode != 204 || got != want {
				t.Errorf("got %d, origin saw Max-Forwards %q, want %q", resp.StatusCode, got, want)
			}
		})
	}
	t.Run("OPTIONS without Max-Forwards is forwarded untouched", func(t *testing.T) {
		resp, _ := proxyDo(t, addr, "OPTIONS", "OPTIONS /mf HTTP/1.1\r\nHost: localhost\r\n\r\n")
		if resp.StatusCode != 204 || resp.Header.Get("X-Max-Forwards-Seen") != "" {
			t.Errorf("got %d, Max-Forwards seen %q", resp.StatusCode, resp.Header.Get("X-Max-Forwards-Seen"))
		}
	})
	t.Run("Max-Forwards on GET is end-to-end: not touched", func(t *testing.T) {
		proxyDo(t, addr, "GET", "GET /mfget HTTP/1.1\r\nHost: localhost\r\nMax-Forwards: 0\r\n\r\n")
		if got := r.Origin.LastRequest().Header.Get("Max-Forwards"); got != "0" {
			t.Errorf("origin saw Max-Forwards %q on a GET, want 0 as sent", got)
		}
	})
	t.Run("OPTIONS * is answered by the front itself (net/http), never forwarded", func(t *testing.T) {
		// RFC 9110 §9.3.7: "*" asks about the server in general; the
		// gateway answers for it (documented in docs/proxy.md).
		before := r.Origin.Count()
		resp, body := proxyDo(t, addr, "OPTIONS", "OPTIONS * HTTP/1.1\r\nHost: localhost\r\n\r\n")
		if resp.StatusCode != 200 || body != "" || r.Origin.Count() != before {
			t.Fatalf("got %d %q, origin %d→%d", resp.StatusCode, body, before, r.Origin.Count())
		}
	})
	t.Run("OPTIONS * with Max-Forwards: 0 is answered by the proxy", func(t *testing.T) {
		before := r.Origin.Count()
		resp, _ := proxyDo(t, addr, "OPTIONS", "OPTIONS * HTTP/1.1\r\nHost: localhost\r\nMax-Forwards: 0\r\n\r\n")
		if resp.StatusCode != 200 || r.Origin.Count() != before {
			t.Errorf("got %d, origin %d→%d", resp.StatusCode, before, r.Origin.Count())
		}
	})
	t.Run("TRACE: 405 with Allow, whatever Max-Forwards says, never forwarded", func(t *testing.T) {
		before := r.Origin.Count()
		for _, mf := range []string{"", "Max-Forwards: 0\r\n", "Max-Forwards: 3\r\n"} {
			resp, _ := proxyDo(t, addr, "TRACE", "TRACE /t HTTP/1.1\r\nHost: localhost\r\n"+mf+"\r\n")
			if resp.StatusCode != 405 || resp.Header.Get("Allow") == "" || strings.Contains(resp.Header.Get("Allow"), "TRACE") {
				t.Errorf("%q: got %d Allow %q", mf, resp.StatusCode, resp.Header.Get("Allow"))
			}
		}
		if r.Origin.Count() != before {
			t.Errorf("TRACE reached the origin")
		}
	})
}

// TestConformance_ProxyHTTP10: RFC 9112 §9.3 (persistence), §6.1 / §7
// (no chunked coding to an HTTP/1.0 recipient), §3.2 (Host).
func TestConformance_ProxyHTTP10(t *testing.T) {
	chunked := func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<p>one</p>")
		w.(http.Flusher).Flush() // no Content-Length: chunked to the proxy
		io.WriteString(w, "<p>two</p>")
	}
	const body = "<p>one</p><p>two</p>"
	r := newRig(t, chunked, nil)
	addr := proxyFront(t, r)
	t.Run("streamed miss: no chunked, connection closed to end the body", func(t *testing.T) {
		pc := proxyDial(t, addr)
		pc.send("GET /ten HTTP/1.0\r\nHost: localhost\r\n\r\n")
		resp, got := pc.read("GET")
		if len(resp.TransferEncoding) != 0 || got != body {
			t.Errorf("HTTP/1.0 got Transfer-Encoding %q body %q", resp.TransferEncoding, got)
		}
		if !pc.closed() {
			t.Errorf("connection left open without keep-alive")
		}
		r.Settle()
	})
	for _, tier := range []string{"store", "memory", "memory again"} {
		t.Run("hit from "+tier+": Content-Length, close without keep-alive", func(t *testing.T) {
			pc := proxyDial(t, addr)
			pc.send("GET /ten HTTP/1.0\r\nHost: localhost\r\n\r\n")
			resp, got := pc.read("GET")
			if !match(csOf(t, resp.Header), "hit") || resp.ContentLength != int64(len(body)) || len(resp.TransferEncoding) != 0 || got != body {
				t.Errorf("got %q CL %d TE %q body %q", resp.Header.Get("Cache-Status"), resp.ContentLength, resp.TransferEncoding, got)
			}
			if !pc.closed() {
				t.Errorf("connection left open without keep-alive")
			}
		})
	}
	t.Run("keep-alive only when asked: two hits on one connection", func(t *testing.T) {
		pc := proxyDial(t, addr)
		for i := range 2 {
			pc.send("GET /ten HTTP/1.0\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n")
			resp, got := pc.read("GET")
			if !strings.EqualFold(resp.Header.Get("Connection"), "keep-alive") || got != body {
				t.Fatalf("request %d: Connection %q body %q", i, resp.Header.Get("Connection"), got)
			}
		}
	})
	t.Run("keep-alive asked on a streamed miss: no chunked, closed", func(t *testing.T) {
		pc := proxyDial(t, addr)
		pc.send("GET /ten?fresh=1 HTTP/1.0\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n")
		resp, got := pc.read("GET")
		if len(resp.TransferEncoding) != 0 || got != body {
			t.Errorf("got TE %q body %q", resp.TransferEncoding, got)
		}
		if !pc.closed() {
			t.Errorf("no length and no chunked: the close ends the body")
		}
		r.Settle()
	})
	t.Run("trailers of a streamed miss are not sent to HTTP/1.0", func(t *testing.T) {
		r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
			w.Header().Set("Trailer", "X-Checksum")
			io.WriteString(w, "data")
			w.Header().Set("X-Checksum", "abc")
		}, nil)
		pc := proxyDial(t, proxyFront(t, r))
		pc.send("GET /trl HTTP/1.0\r\nHost: localhost\r\n\r\n")
		resp, got := pc.read("GET")
		if got != "data" || len(resp.TransferEncoding) != 0 || resp.Header.Get("Trailer") != "" {
			t.Errorf("got %q TE %q Trailer %q", got, resp.TransferEncoding, resp.Header.Get("Trailer"))
		}
	})
	t.Run("interim 103 from the origin: relayed to HTTP/1.1, not to HTTP/1.0", func(t *testing.T) {
		r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
			w.Header().Set("Link", "</app.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Set("Cache-Control", "no-store")
			io.WriteString(w, "done")
		}, nil)
		addr := proxyFront(t, r)
		for _, proto := range []string{"HTTP/1.1", "HTTP/1.0"} {
			pc := proxyDial(t, addr)
			pc.send("GET /hints " + proto + "\r\nHost: localhost\r\nConnection: close\r\n\r\n")
			line, err := pc.br.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			early := strings.Contains(line, " 103 ")
			if early != (proto == "HTTP/1.1") {
				t.Errorf("%s: first status line %q", proto, line)
			}
		}
	})
	t.Run("Upgrade in an HTTP/1.0 request is ignored: served as a plain request", func(t *testing.T) {
		// RFC 9110 §7.8: a server MUST ignore Upgrade received in an
		// HTTP/1.0 request; forwarding it would tunnel a protocol switch
		// the client cannot have asked for.
		r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
			if req.Header.Get("Upgrade") != "" {
				w.Header().Set("X-Upgrade-Seen", req.Header.Get("Upgrade"))
			}
			proxyPage(w, req)
		}, nil)
		resp, body := proxyDo(t, proxyFront(t, r), "GET", "GET /up10 HTTP/1.0\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
		if resp.StatusCode != 200 || body != "<p>page</p>" || resp.Header.Get("X-Upgrade-Seen") != "" || !match(csOf(t, resp.Header), "stored") {
			t.Errorf("got %d %q, origin saw Upgrade %q, Cache-Status %q", resp.StatusCode, body, resp.Header.Get("X-Upgrade-Seen"), resp.Header.Get("Cache-Status"))
		}
	})
	t.Run("Host-less HTTP/1.0 request: 400, documented", func(t *testing.T) {
		// Deliberately different (docs/proxy.md): a cache keyed by host
		// does not guess one.
		before := r.Origin.Count()
		resp, _ := proxyDo(t, addr, "GET", "GET /ten HTTP/1.0\r\n\r\n")
		if resp.StatusCode != 400 || r.Origin.Count() != before {
			t.Errorf("got %d, origin %d→%d", resp.StatusCode, before, r.Origin.Count())
		}
	})
	t.Run("Host-less HTTP/1.1 request: 400 (RFC 9112 §3.2 MUST)", func(t *testing.T) {
		resp, _ := proxyDo(t, addr, "GET", "GET /ten HTTP/1.1\r\n\r\n")
		if resp.StatusCode != 400 {
			t.Errorf("got %d", resp.StatusCode)
		}
	})
}

// TestConformance_ProxyExpect: RFC 9110 §10.1.1. A POST with
// Expect: 100-continue is forwarded before its body; the client gets the
// origin's 100 and then the final answer. An unknown expectation: 417.
func TestConformance_ProxyExpect(t *testing.T) {
	r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		w.Header().Set("X-Expect-Seen", req.Header.Get("Expect"))
		io.WriteString(w, "got:"+string(b))
	}, nil)
	addr := proxyFront(t, r)
	t.Run("100-continue: interim 100 before the body is sent, then 200", func(t *testing.T) {
		pc := proxyDial(t, addr)
		pc.send("POST /form HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
		line, err := pc.br.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
			t.Fatalf("first line %q %v, want a 100 before the body", line, err)
		}
		for {
			l, err := pc.br.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			if l == "\r\n" {
				break
			}
		}
		pc.send("hello")
		resp, body := pc.read("POST")
		if resp.StatusCode != 200 || body != "got:hello" {
			t.Errorf("got %d %q", resp.StatusCode, body)
		}
	})
	t.Run("HTTP/1.0: the expectation is ignored, not forwarded, no 1xx back", func(t *testing.T) {
		// RFC 9110 §10.1.1: a server MUST ignore 100-continue in an
		// HTTP/1.0 request; §15.2: no 1xx to an HTTP/1.0 client.
		pc := proxyDial(t, addr)
		pc.send("POST /form HTTP/1.0\r\nHost: localhost\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello")
		resp, body := pc.read("POST")
		if resp.StatusCode != 200 || body != "got:hello" || resp.Header.Get("X-Expect-Seen") != "" {
			t.Errorf("got %d %q, origin saw Expect %q", resp.StatusCode, body, resp.Header.Get("X-Expect-Seen"))
		}
	})
	t.Run("unknown expectation: 417, not forwarded", func(t *testing.T) {
		before := r.Origin.Count()
		resp, _ := proxyDo(t, addr, "POST", "POST /form HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nExpect: teapot\r\n\r\nhello")
		if resp.StatusCode != http.StatusExpectationFailed || r.Origin.Count() != before {
			t.Errorf("got %d, origin %d→%d", resp.StatusCode, before, r.Origin.Count())
		}
	})
	t.Run("refused before the body: a final status, no 100", func(t *testing.T) {
		pc := proxyDial(t, addr)
		pc.send("POST /form HTTP/1.1\r\nHost: elsewhere.test\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
		resp, _ := pc.read("POST")
		if resp.StatusCode != http.StatusMisdirectedRequest {
			t.Errorf("got %d, want 421 at once", resp.StatusCode)
		}
	})
}

// TestConformance_ProxyDate: RFC 9110 §6.6.1 (a response without Date
// gets one when it is cached or forwarded: the time it was received),
// RFC 9111 §4.2.3 / §5.1 (hits keep the stored Date and carry Age, never
// negative, never decreasing from one hit to the next).
func TestConformance_ProxyDate(t *testing.T) {
	noDate := func(w http.ResponseWriter, req *http.Request) {
		w.Header()["Date"] = nil // net/http adds none
		proxyPage(w, req)
	}
	t.Run("no Date from the origin: the miss and the stored copy get the receive time", func(t *testing.T) {
		r := newRig(t, noDate, nil)
		start := r.Clock.Now()
		res := r.Get("/nodate")
		d, err := http.ParseTime(res.Header.Get("Date"))
		if err != nil || d.Unix() != start.Unix() {
			t.Errorf("miss Date %q, want the proxy clock's %v", res.Header.Get("Date"), start.UTC())
		}
		r.Clock.Advance(10 * time.Second)
		res = r.Get("/nodate")
		if !match(cs(t, res), "hit") || res.Header.Get("Date") != start.UTC().Format(http.TimeFormat) || res.Header.Get("Age") != "10" {
			t.Errorf("hit: %q Date %q Age %q, want the stored receive time and Age 10", res.Header.Get("Cache-Status"), res.Header.Get("Date"), res.Header.Get("Age"))
		}
	})
	t.Run("hits keep the stored Date; Age grows, never negative", func(t *testing.T) {
		r := newRig(t, proxyPage, nil)
		addr := proxyFront(t, r)
		origDate := ""
		prev := -1
		for i := range 6 {
			resp, _ := proxyDo(t, addr, "GET", "GET /age HTTP/1.1\r\nHost: localhost\r\n\r\n")
			r.Settle()
			if i == 0 {
				origDate = resp.Header.Get("Date")
				continue
			}
			if resp.Header.Get("Date") != origDate {
				t.Errorf("hit %d: Date %q, want the stored %q", i, resp.Header.Get("Date"), origDate)
			}
			age, err := strconv.Atoi(resp.Header.Get("Age"))
			if err != nil || age < 0 || age < prev {
				t.Errorf("hit %d: Age %q after %d", i, resp.Header.Get("Age"), prev)
			}
			prev = age
			if i%2 == 0 {
				r.Clock.Advance(3 * time.Second)
			}
		}
	})
	t.Run("origin Date in the future: Age is 0, not negative", func(t *testing.T) {
		r := newRig(t, nil, nil)
		r = newRig(t, func(w http.ResponseWriter, req *http.Request) {
			w.Header().Set("Date", r.Clock.Now().Add(time.Hour).UTC().Format(http.TimeFormat))
			proxyPage(w, req)
		}, nil)
		r.Get("/future")
		res := r.Get("/future")
		if !match(cs(t, res), "hit") || res.Header.Get("Age") != "0" {
			t.Errorf("%q Age %q", res.Header.Get("Cache-Status"), res.Header.Get("Age"))
		}
	})
}

// TestConformance_ProxyRequestTarget: RFC 9112 §3.2 (Host: exactly one,
// valid, else 400), §3.2.2 (absolute-form: the target's authority wins
// over Host).
func TestConformance_ProxyRequestTarget(t *testing.T) {
	r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("X-Host-Seen", req.Header.Get("X-Forwarded-Host"))
		proxyPage(w, req)
	}, nil)
	addr := proxyFront(t, r)
	t.Run("absolute-form: keyed and forwarded by its authority, Host ignored", func(t *testing.T) {
		resp, _ := proxyDo(t, addr, "GET", "GET http://localhost/abs HTTP/1.1\r\nHost: elsewhere.test\r\n\r\n")
		r.Settle()
		if resp.StatusCode != 200 || resp.Header.Get("X-Host-Seen") != "localhost" {
			t.Fatalf("got %d, origin saw host %q; want 200 for localhost", resp.StatusCode, resp.Header.Get("X-Host-Seen"))
		}
		// The same entry as origin-form with Host: localhost.
		resp, _ = proxyDo(t, addr, "GET", "GET /abs HTTP/1.1\r\nHost: localhost\r\n\r\n")
		if !match(csOf(t, resp.Header), "hit") {
			t.Errorf("origin-form after absolute-form: %q, want hit", resp.Header.Get("Cache-Status"))
		}
	})
	t.Run("absolute-form https target on a plain connection: keyed and forwarded as http", func(t *testing.T) {
		// Deliberately (docs/proxy.md): the scheme is the connection's.
		resp, _ := proxyDo(t, addr, "GET", "GET https://localhost/abs HTTP/1.1\r\nHost: localhost\r\n\r\n")
		if !match(csOf(t, resp.Header), "hit") || r.Origin.LastRequest().Header.Get("X-Forwarded-Proto") != "http" {
			t.Errorf("got %q, want the http entry's hit", resp.Header.Get("Cache-Status"))
		}
	})
	t.Run("absolute-form naming another host: refused like its Host would be", func(t *testing.T) {
		resp, _ := proxyDo(t, addr, "GET", "GET http://elsewhere.test/abs HTTP/1.1\r\nHost: localhost\r\n\r\n")
		if resp.StatusCode != http.StatusMisdirectedRequest {
			t.Errorf("got %d, want 421", resp.StatusCode)
		}
	})
	t.Run("origin-form starting with // is a path, not an authority", func(t *testing.T) {
		resp, _ := proxyDo(t, addr, "GET", "GET //elsewhere.test/h HTTP/1.1\r\nHost: localhost\r\n\r\n")
		if resp.StatusCode != 200 || resp.Header.Get("X-Host-Seen") != "localhost" || r.Origin.LastRequest().URL.Path != "//elsewhere.test/h" {
			t.Errorf("got %d host %q path %q", resp.StatusCode, resp.Header.Get("X-Host-Seen"), r.Origin.LastRequest().URL.Path)
		}
	})
	for name, raw := range map[string]string{
		"duplicate Host":         "GET /h HTTP/1.1\r\nHost: localhost\r\nHost: localhost\r\n\r\n",
		"two Hosts that differ":  "GET /h HTTP/1.1\r\nHost: localhost\r\nHost: elsewhere.test\r\n\r\n",
		"Host with a space":      "GET /h HTTP/1.1\r\nHost: local host\r\n\r\n",
		"Host with a path":       "GET /h HTTP/1.1\r\nHost: localhost/x\r\n\r\n",
		"Host with userinfo":     "GET /h HTTP/1.1\r\nHost: u@localhost\r\n\r\n",
		"Host with a bad port":   "GET /h HTTP/1.1\r\nHost: localhost:80x\r\n\r\n",
		"empty Host on HTTP/1.1": "GET /h HTTP/1.1\r\nHost:\r\n\r\n",
		"absolute-form userinfo": "GET http://u@localhost/h HTTP/1.1\r\nHost: localhost\r\n\r\n",
		"absolute-form bad host": "GET http://bad..host/h HTTP/1.1\r\nHost: localhost\r\n\r\n",
	} {
		t.Run(name+": 400, not forwarded", func(t *testing.T) {
			before := r.Origin.Count()
			resp, _ := proxyDo(t, addr, "GET", raw)
			if resp.StatusCode != 400 || r.Origin.Count() != before {
				t.Errorf("got %d, origin %d→%d", resp.StatusCode, before, r.Origin.Count())
			}
		})
	}
}

// TestConformance_ProxyTrailers: RFC 9110 §6.5, RFC 9112 §7.1.2. Trailers
// of a streamed miss reach an HTTP/1.1 client; the stored copy is served
// with a Content-Length and no chunked framing or Trailer field.
func TestConformance_ProxyTrailers(t *testing.T) {
	r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Trailer", "X-Checksum")
		io.WriteString(w, "part1,")
		w.(http.Flusher).Flush()
		io.WriteString(w, "part2")
		w.Header().Set("X-Checksum", "c0ffee")
	}, nil)
	addr := proxyFront(t, r)
	pc := proxyDial(t, addr)
	pc.send("GET /trailers HTTP/1.1\r\nHost: localhost\r\nTE: trailers\r\n\r\n")
	resp, body := pc.read("GET")
	r.Settle()
	if body != "part1,part2" || resp.Trailer.Get("X-Checksum") != "c0ffee" {
		t.Errorf("miss: body %q trailers %v", body, resp.Trailer)
	}
	for i := range 2 {
		pc.send("GET /trailers HTTP/1.1\r\nHost: localhost\r\n\r\n")
		resp, body = pc.read("GET")
		if !match(csOf(t, resp.Header), "hit") || body != "part1,part2" || resp.ContentLength != int64(len(body)) ||
			len(resp.TransferEncoding) != 0 || resp.Header.Get("Trailer") != "" {
			t.Errorf("hit %d: %q CL %d TE %q Trailer %q body %q", i, resp.Header.Get("Cache-Status"), resp.ContentLength,
				resp.TransferEncoding, resp.Header.Get("Trailer"), body)
		}
	}
}

// TestConformance_ProxyHEAD: RFC 9110 §9.3.2. HEAD on a stored entry has
// the GET's header fields (Content-Length included) and no body; a HEAD
// miss does not fill an entry (only a complete GET does, docs/proxy.md).
func TestConformance_ProxyHEAD(t *testing.T) {
	const page = "<p>page</p>"
	t.Run("hit: GET's fields, no body", func(t *testing.T) {
		r := newRig(t, proxyPage, nil)
		addr := proxyFront(t, r)
		proxyDo(t, addr, "GET", "GET /head HTTP/1.1\r\nHost: localhost\r\n\r\n") // the miss fills
		r.Settle()
		getHit, _ := proxyDo(t, addr, "GET", "GET /head HTTP/1.1\r\nHost: localhost\r\n\r\n")
		pc := proxyDial(t, addr)
		pc.send("HEAD /head HTTP/1.1\r\nHost: localhost\r\n\r\n")
		head, body := pc.read("HEAD")
		if body != "" || !match(csOf(t, head.Header), "hit") {
			t.Fatalf("HEAD: %q body %q", head.Header.Get("Cache-Status"), body)
		}
		if head.Header.Get("Content-Length") != strconv.Itoa(len(page)) {
			t.Errorf("HEAD Content-Length %q, want %d", head.Header.Get("Content-Length"), len(page))
		}
		for _, k := range []string{"Content-Type", "Etag", "Cache-Control", "Date", "Content-Length", "Via"} {
			if head.Header.Get(k) != getHit.Header.Get(k) {
				t.Errorf("%s: HEAD %q, GET hit %q", k, head.Header.Get(k), getHit.Header.Get(k))
			}
		}
		// The connection stays usable: no body bytes were sent.
		pc.send("GET /head HTTP/1.1\r\nHost: localhost\r\n\r\n")
		if _, b := pc.read("GET"); b != page {
			t.Errorf("next response on the connection: %q", b)
		}
	})
	t.Run("hit, gzip entry, client without gzip: decoded length", func(t *testing.T) {
		r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
			w.Header().Set("Cache-Control", "max-age=60")
			w.Header().Set("Content-Type", "text/html")
			w.Header().Set("Content-Encoding", "gzip")
			w.Write(proxyGzip(t, page))
		}, nil)
		r.Get("/gzhead", "Accept-Encoding", "gzip")
		head := r.Do("HEAD", "/gzhead", "Accept-Encoding", "identity")
		get := r.Get("/gzhead", "Accept-Encoding", "identity")
		if !match(cs(t, head), "hit") || head.Body != "" || get.Body != page {
			t.Fatalf("HEAD %q body %q, GET body %q", head.Header.Get("Cache-Status"), head.Body, get.Body)
		}
		for _, k := range []string{"Content-Length", "Content-Encoding", "Etag", "Vary"} {
			if head.Header.Get(k) != get.Header.Get(k) {
				t.Errorf("%s: HEAD %q, GET %q", k, head.Header.Get(k), get.Header.Get(k))
			}
		}
	})
	t.Run("miss: forwarded, not stored", func(t *testing.T) {
		r := newRig(t, proxyPage, nil)
		r.Do("HEAD", "/headmiss")
		r.Do("HEAD", "/headmiss")
		if r.Origin.Count() != 2 {
			t.Errorf("origin %d, want 2: a HEAD miss fills nothing", r.Origin.Count())
		}
		if es, _ := r.Proxy.Entries(t.Context(), "http://"+strings.TrimPrefix(r.Front.URL, "http://")+"/headmiss"); len(es) != 0 {
			t.Errorf("a HEAD filled %d entries", len(es))
		}
		if res := r.Get("/headmiss"); !match(cs(t, res), "fwd=uri-miss") || res.Body == "" {
			t.Errorf("GET after HEAD: %q body %q", res.Header.Get("Cache-Status"), res.Body)
		}
	})
}

// TestConformance_Proxy304: RFC 9110 §15.4.5. A 304 answered from a fresh
// entry to the client's own conditional carries the fields the 200 would
// have (Cache-Control, Content-Location, Date, ETag, Expires, Vary), as
// that 200 would have had them for this client, and no body or fields
// that describe one.
func TestConformance_Proxy304(t *testing.T) {
	expires := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).Format(http.TimeFormat)
	page := func(gz bool) http.HandlerFunc {
		return func(w http.ResponseWriter, req *http.Request) {
			h := w.Header()
			h.Set("Cache-Control", "max-age=60")
			h.Set("Expires", expires)
			h.Set("Content-Location", "/canonical")
			h.Set("Vary", "Accept-Language")
			h.Set("ETag", `"v1"`)
			h.Set("Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT")
			h.Set("Content-Type", "text/html")
			if gz {
				h.Set("Content-Encoding", "gzip")
				w.Write(proxyGzip(t, "<p>page</p>"))
				return
			}
			io.WriteString(w, "<p>page</p>")
		}
	}
	required := []string{"Cache-Control", "Content-Location", "Date", "Etag", "Expires", "Vary"}
	for _, tc := range []struct {
		name string
		gz   bool
		ae   string // the client's Accept-Encoding
		cond []string
	}{
		{"If-None-Match", false, "", []string{"If-None-Match", `"v1"`}},
		{"If-None-Match weak", false, "", []string{"If-None-Match", `W/"v1"`}},
		{"If-None-Match list", false, "", []string{"If-None-Match", `"x", "v1"`}},
		{"If-Modified-Since", false, "", []string{"If-Modified-Since", "Mon, 01 Jan 2024 00:00:00 GMT"}},
		{"gzip entry, gzip client", true, "gzip", []string{"If-None-Match", `"v1"`}},
		{"gzip entry, identity client", true, "identity", []string{"If-None-Match", `W/"v1"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, page(tc.gz), nil)
			r.Get("/c", "Accept-Encoding", tc.ae)
			full := r.Get("/c", "Accept-Encoding", tc.ae)
			nm := r.Get("/c", append([]string{"Accept-Encoding", tc.ae}, tc.cond...)...)
			if nm.Status != 304 || nm.Body != "" || !match(cs(t, nm), "hit") {
				t.Fatalf("got %d %q body %q", nm.Status, nm.Header.Get("Cache-Status"), nm.Body)
			}
			for _, k := range required {
				if nm.Header.Get(k) == "" || nm.Header.Get(k) != full.Header.Get(k) {
					t.Errorf("%s: 304 %q, the 200 %q", k, nm.Header.Get(k), full.Header.Get(k))
				}
			}
			for _, k := range []string{"Content-Length", "Content-Encoding", "Content-Range", "Transfer-Encoding"} {
				if v, ok := nm.Header[k]; ok && !(k == "Content-Length" && v[0] == full.Header.Get(k)) {
					t.Errorf("304 carries %s: %q", k, v)
				}
			}
			if nm.Header.Get("Age") == "" {
				t.Errorf("304 from the store without Age")
			}
		})
	}
}

// proxyStored returns the one stored variant of pageURL.
func proxyStored(t *testing.T, r *rig, pageURL string) *store.Record {
	t.Helper()
	es, err := r.Proxy.Entries(t.Context(), pageURL)
	if err != nil || len(es) != 1 {
		t.Fatalf("entries of %s: %v %v", pageURL, es, err)
	}
	rec, err := r.Store.Get(t.Context(), es[0].Key, es[0].Variant)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// proxyGzip returns s gzip-encoded.
func proxyGzip(t *testing.T, s string) []byte {
	t.Helper()
	return gzipped(t, s)
}
