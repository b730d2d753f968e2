package hop

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// serveGuarded serves h on a guarded loopback listener.
func serveGuarded(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(GuardListener(ln))
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// roundTrip writes raw and reads one response, then reports whether the
// server closed the connection after it.
func roundTrip(t *testing.T, addr, raw string) (int, string, bool) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, raw)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("%q: reading the response: %v", raw, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	c.SetReadDeadline(time.Now().Add(time.Second))
	_, err = br.ReadByte()
	closed := err == io.EOF
	return resp.StatusCode, string(b), closed
}

// TestGuardListener checks over raw TCP what net/http alone accepts or
// rejects and what the guard adds: both Content-Length and
// Transfer-Encoding is refused with 400 and a closed connection (net/http
// would accept it); a chunk line ending in a bare LF fails the body
// (net/http rejects it too, the handler sees the error); honest requests,
// keep-alive and pipelining still work.
func TestGuardListener(t *testing.T) {
	var bodyErr error
	addr := serveGuarded(t, func(w http.ResponseWriter, r *http.Request) {
		_, bodyErr = io.ReadAll(r.Body)
		if bodyErr != nil {
			w.Header().Set("Connection", "close")
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		io.WriteString(w, "ok "+r.Method+" "+r.URL.Path)
	})
	for _, c := range []struct {
		name, raw string
		status    int
		closed    bool
	}{
		{"plain GET", "GET /a HTTP/1.1\r\nHost: x\r\n\r\n", 200, false},
		{"POST with Content-Length", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", 200, false},
		{"chunked POST", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 200, false},
		{"Content-Length and Transfer-Encoding", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, true},
		{"Transfer-Encoding and Content-Length, other case", "POST /a HTTP/1.1\r\nHost: x\r\ntransfer-encoding: chunked\r\ncontent-length: 0\r\n\r\n0\r\n\r\n", 400, true},
		{"conflicting Content-Lengths", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400, true},
		{"bare LF in a chunk size", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n", 400, true},
		{"bare LF after the last chunk", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\n\r\n", 400, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, body, closed := roundTrip(t, addr, c.raw)
			if status != c.status || closed != c.closed {
				t.Errorf("status %d (%q) closed %v, want %d closed %v", status, body, closed, c.status, c.closed)
			}
		})
	}
	t.Run("pipelined requests after a body", func(t *testing.T) {
		c, _ := net.Dial("tcp", addr)
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "POST /1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1;ext=a\r\nz\r\n0\r\nX-Trailer: 1\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n")
		br := bufio.NewReader(c)
		for _, want := range []string{"ok POST /1", "ok GET /2"} {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			if string(b) != want {
				t.Errorf("got %q, want %q", b, want)
			}
		}
	})
}

// TestGuardConn checks the origin side: a response with both
// Content-Length and Transfer-Encoding reads as ErrFraming; honest
// responses (lengths, chunks, HEAD, 304, 1xx) go through.
func TestGuardConn(t *testing.T) {
	for _, c := range []struct {
		name, method, resp string
		bad                bool
	}{
		{"length", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", false},
		{"chunked", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n", false},
		{"HEAD with a length", "HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n", false},
		{"interim then final", "GET", "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", false},
		{"both", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n", true},
		{"bare LF chunk", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\nhi\r\n0\r\n\r\n", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, b := net.Pipe()
			defer a.Close()
			go func() {
				br := bufio.NewReader(b)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					io.WriteString(b, c.resp)
				}
			}()
			gc := GuardConn(a)
			req, _ := http.NewRequest(c.method, "http://x/", nil)
			req.Write(gc)
			resp, err := http.ReadResponse(bufio.NewReader(gc), req)
			if err == nil {
				_, err = io.ReadAll(resp.Body)
			}
			if c.bad && !errors.Is(err, ErrFraming) {
				t.Errorf("err %v, want ErrFraming", err)
			}
			if !c.bad && err != nil {
				t.Errorf("err %v, want none", err)
			}
			b.Close()
		})
	}
}

func FuzzFraming(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, response bool) {
		fr := framer{response: response, methods: []string{"GET", "HEAD"}}
		n, err := fr.scan([]byte(s))
		if n < 0 || n > len(s) {
			t.Fatalf("scan(%q) = %d, out of range", s, n)
		}
		if err == nil && n > 0 {
			// What was checked scans again to the same point from the start.
			fr2 := framer{response: response, methods: []string{"GET", "HEAD"}}
			if m, err2 := fr2.scan([]byte(s[:n])); m != n || err2 != nil {
				t.Fatalf("scan(%q) = %d, but its prefix scans to %d, %v", s, n, m, err2)
			}
		}
	})
}

// FuzzFramingHeader holds the allocation-free header check to the first
// one (headerRef, which split a string copy of the block): the same
// error and the same state for any header block, request or response.
func FuzzFramingHeader(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: +3\r\ncontent-length:3 \r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: -0\r\n\r\n",
		"POST / HTTP/1.1\nTransfer-Encoding: gzip, chunked\n\n",
		"GET / HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\n\r\n",
		"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775808\r\n\r\n",
		"HTTP/1.1 200 OK\r\r\nContent-Length:\t12\r\n\r\n",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, response bool) {
		a := framer{response: response, methods: []string{"GET", "HEAD"}}
		b := a
		b.methods = []string{"GET", "HEAD"}
		errA := a.header([]byte(s))
		errB := b.headerRef([]byte(s))
		if errA != errB || a.state != b.state || a.n != b.n || a.finals != b.finals || len(a.methods) != len(b.methods) {
			t.Fatalf("header(%q): %v state %d n %d finals %d; the reference: %v state %d n %d finals %d",
				s, errA, a.state, a.n, a.finals, errB, b.state, b.n, b.finals)
		}
	})
}

// TestFramingHeaderAllocs checks that the request header check allocates
// nothing (it runs on every request of the public listener).
func TestFramingHeaderAllocs(t *testing.T) {
	block := []byte("GET /p/1 HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: x\r\nContent-Length: 0\r\nConnection: keep-alive\r\nAccept-Encoding: identity\r\n\r\n")
	var f framer
	if n := testing.AllocsPerRun(100, func() {
		f = framer{}
		if err := f.header(block); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("framer.header: %v allocations per request header, want 0", n)
	}
}

// headerRef is the header check's field parsing as it was written first
// (splitting a string copy of the block), sharing the body decision
// (frame): FuzzFramingHeader holds header's in-place parsing to it.
func (f *framer) headerRef(block []byte) error {
	lines := strings.Split(strings.ReplaceAll(string(block), "\r\n", "\n"), "\n")
	var cl, te, upgrade, connUpgrade bool
	var clen int64 = -1
	chunked := false
	for _, l := range lines[1:] {
		name, val, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		switch {
		case strings.EqualFold(name, "Content-Length"):
			cl = true
			if n, err := strconv.ParseInt(val, 10, 64); err == nil && n >= 0 {
				if clen >= 0 && clen != n {
					return ErrFraming
				}
				clen = n
			}
		case strings.EqualFold(name, "Transfer-Encoding"):
			te = true
			for c := range strings.SplitSeq(val, ",") {
				chunked = strings.EqualFold(strings.TrimSpace(c), "chunked")
			}
		case strings.EqualFold(name, "Upgrade"):
			upgrade = true
		case strings.EqualFold(name, "Connection"):
			for c := range strings.SplitSeq(val, ",") {
				connUpgrade = connUpgrade || strings.EqualFold(strings.TrimSpace(c), "upgrade")
			}
		}
	}
	if cl && te {
		return ErrFraming
	}
	return f.frame([]byte(lines[0]), clen, te, chunked, upgrade, connUpgrade)
}
