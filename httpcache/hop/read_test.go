package hop

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// chunkConn is a net.Conn whose reads deliver a stream in the pieces
// given (each at most the reader's buffer; the rest of a piece comes
// with the next read), with a passing timeout error before the pieces
// marked so, then io.EOF.
type chunkConn struct {
	net.Conn // nil: only Read is used
	data     []byte
	pieces   []int  // sizes, in order; the last one repeats
	timeouts []bool // timeouts[i]: a timeout error before piece i
	i        int
	left     int // of the current piece; 0: take the next
	timedOut bool
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func (c *chunkConn) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	if c.left == 0 {
		k := min(c.i, len(c.pieces)-1)
		if c.i < len(c.timeouts) && c.timeouts[c.i] && !c.timedOut {
			c.timedOut = true
			return 0, timeoutErr{}
		}
		c.timedOut = false
		c.left = max(1, c.pieces[k])
		c.i++
	}
	n := copy(p, c.data[:min(len(c.data), c.left, len(p))])
	c.data, c.left = c.data[n:], c.left-n
	return n, nil
}

// readRef is guardedConn.Read as it was before reads went into the
// caller's buffer (readDirect): every read into buf, then copied out.
// The fuzz test below holds Read to it.
func (c *guardedConn) readRef(p []byte) (int, error) {
	for {
		if c.checked > 0 {
			n := copy(p, c.buf[:c.checked])
			c.buf = c.buf[n:]
			c.checked -= n
			return n, nil
		}
		if len(c.inject) > 0 {
			n := copy(p, c.inject)
			c.inject = c.inject[n:]
			return n, nil
		}
		if c.err != nil {
			return 0, c.err
		}
		if len(c.buf) == 0 && c.home != nil {
			c.buf = c.home
		}
		if cap(c.buf)-len(c.buf) < guardedReadMin && c.home != nil && len(c.buf)+guardedReadMin <= cap(c.home) {
			c.buf = c.home[:copy(c.home[:len(c.buf)], c.buf)]
		}
		if cap(c.buf)-len(c.buf) < guardedReadMin {
			nb := make([]byte, len(c.buf), max(guardedReadSize, 2*len(c.buf)))
			copy(nb, c.buf)
			c.buf, c.home = nb, nb[:0]
		}
		n, err := c.Conn.Read(c.buf[len(c.buf):cap(c.buf)])
		if n > 0 {
			c.buf = c.buf[:len(c.buf)+n]
			if c.f.response {
				c.f.methods = append(c.f.methods, c.queue...)
				c.queue = c.queue[:0]
			}
			finals := c.f.finals
			m, ferr := c.f.scan(c.buf)
			c.checked = m
			if ferr != nil {
				c.refuse()
			} else if c.f.finals != finals {
				c.expect = true
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				c.err = err
			}
			if c.checked > 0 || len(c.inject) > 0 {
				continue
			}
			if c.err == nil {
				return 0, err
			}
		}
	}
}

// readAll reads c to its end with buffers of the sizes given in turn
// (the last repeating), through read; it returns the bytes delivered,
// the passing errors seen and the final error.
func readAll(t *testing.T, read func([]byte) (int, error), sizes []int) ([]byte, int, error) {
	var out []byte
	passing := 0
	for i := 0; i < 100000; i++ {
		p := make([]byte, sizes[min(i, len(sizes)-1)])
		n, err := read(p)
		if n < 0 || n > len(p) {
			t.Fatalf("read returned %d for a %d-byte buffer", n, len(p))
		}
		out = append(out, p[:n]...)
		if err != nil {
			if _, ok := err.(timeoutErr); ok {
				passing++
				continue
			}
			return out, passing, err
		}
	}
	t.Fatal("no end after 100000 reads")
	return nil, 0, nil
}

// FuzzGuardedRead holds guardedConn.Read (which reads into the caller's
// buffer when nothing is held back) to the version that read everything
// through its own buffer (readRef): for any stream of requests or
// responses, any way the connection splits it, passing timeouts in
// between, and any sequence of buffer sizes (below and above the direct
// read's 4 KB), both deliver the same bytes, see the same timeouts and
// end with the same error; at the edge, a refused header block is
// followed by the same malformed request line.
func FuzzGuardedRead(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc",
		"GET / HTTP/1.1\r\nHost: x\r\n\r\nPOST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
		"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiHTTP/1.1 304 Not Modified\r\n\r\n",
		"\r\n\r\nGET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nraw bytes",
	} {
		f.Add(s, false, []byte{200, 3, 1}, []byte{0, 5, 4, 1}, []byte{0, 1})
		f.Add(s, true, []byte{7}, []byte{4}, []byte{1, 0, 1})
		f.Add(s, false, []byte{1}, []byte{5, 0}, []byte{})
	}
	readSizes := []int{1, 7, 100, 4095, 4096, 5000, 16 << 10}
	f.Fuzz(func(t *testing.T, s string, response bool, pieces, sizes, timeouts []byte) {
		if len(s) > 4000 {
			// Longer lines meet the framer's limits for a line still
			// incomplete (4 KB of a chunk-size line, 1 MB of a header
			// block), which depend on how much a read brought.
			t.Skip()
		}
		ps := []int{len(s)}
		if len(pieces) > 0 {
			ps = ps[:0]
			for _, b := range pieces {
				ps = append(ps, int(b)+1)
			}
		}
		rs := []int{4096}
		if len(sizes) > 0 {
			rs = rs[:0]
			for _, b := range sizes {
				rs = append(rs, readSizes[int(b)%len(readSizes)])
			}
		}
		var tos []bool
		for _, b := range timeouts {
			tos = append(tos, b%2 == 1)
		}
		mk := func() *guardedConn {
			cc := &chunkConn{data: []byte(s), pieces: ps, timeouts: tos}
			if response {
				return &guardedConn{Conn: cc, f: framer{response: true, methods: []string{"GET", "HEAD", "GET"}}, expect: true}
			}
			return &guardedConn{Conn: cc, edge: true}
		}
		a, b := mk(), mk()
		gotA, toA, errA := readAll(t, a.Read, rs)
		gotB, toB, errB := readAll(t, b.readRef, rs)
		if !bytes.Equal(gotA, gotB) || toA != toB || !errors.Is(errA, errB) {
			t.Fatalf("stream %q (pieces %v, reads %v, timeouts %v):\nRead:    %q, %d timeouts, %v\nreadRef: %q, %d timeouts, %v",
				s, ps, rs, tos, gotA, toA, errA, gotB, toB, errB)
		}
	})
}

// TestGuardedReadDirect checks that requests arriving whole, with
// net/http's one-byte background read between them ending in a
// deadline, are read into the caller's buffers, leaving the
// connection's own unallocated, and that a header block split across
// reads is held back until whole.
func TestGuardedReadDirect(t *testing.T) {
	req := "GET /p/1 HTTP/1.1\r\nHost: x\r\n\r\n"
	gc := &guardedConn{Conn: &chunkConn{data: []byte(req + req), pieces: []int{len(req)}, timeouts: []bool{false, true}}, edge: true}
	p := make([]byte, 4096)
	for i := range 2 {
		n, err := gc.Read(p)
		if err != nil || string(p[:n]) != req {
			t.Fatalf("read %d: %q, %v; want the request", i, p[:n], err)
		}
		if i == 0 {
			var one [1]byte
			if n, err := gc.Read(one[:]); n != 0 || !errors.Is(err, timeoutErr{}) {
				t.Fatalf("background read: %d, %v; want the deadline", n, err)
			}
		}
	}
	if gc.home != nil {
		t.Errorf("whole requests went through the connection's buffer (%d bytes allocated)", cap(gc.home))
	}
	gc = &guardedConn{Conn: &chunkConn{data: []byte(req), pieces: []int{10, 5}}, edge: true}
	n, err := gc.Read(p)
	if err != nil || string(p[:n]) != req {
		t.Fatalf("split request: %q, %v; want it whole", p[:n], err)
	}
}

// loopConn delivers the same request on every read, forever.
type loopConn struct {
	net.Conn
	req []byte
}

func (c *loopConn) Read(p []byte) (int, error) { return copy(p, c.req), nil }

// BenchmarkGuardedRead reads one keep-alive request per op through the
// public listener's guard into net/http's 4 KB buffer: "direct" is Read
// (into that buffer), "buffered" the former way through the guard's own
// buffer (readRef).
func BenchmarkGuardedRead(b *testing.B) {
	req := []byte("GET /g/1234 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: loadtest\r\nAccept: */*\r\nAccept-Encoding: identity\r\n\r\n")
	for _, c := range []struct {
		name string
		read func(*guardedConn, []byte) (int, error)
	}{{"direct", (*guardedConn).Read}, {"buffered", (*guardedConn).readRef}} {
		b.Run(c.name, func(b *testing.B) {
			gc := &guardedConn{Conn: &loopConn{req: req}, edge: true}
			p := make([]byte, 4096)
			b.ReportAllocs()
			b.SetBytes(int64(len(req)))
			for b.Loop() {
				if n, err := c.read(gc, p); n != len(req) || err != nil {
					b.Fatalf("read %d, %v", n, err)
				}
			}
		})
	}
}

// headerEndRef is headerEnd as first written, byte by byte.
func headerEndRef(b []byte) int {
	for i := 0; i < len(b); i++ {
		if b[i] != '\n' {
			continue
		}
		if i+1 < len(b) && b[i+1] == '\n' {
			return i + 2
		}
		if i+2 < len(b) && b[i+1] == '\r' && b[i+2] == '\n' {
			return i + 3
		}
	}
	return -1
}

// FuzzHeaderEnd holds headerEnd to headerEndRef.
func FuzzHeaderEnd(f *testing.F) {
	for _, s := range []string{"", "\n", "\n\n", "\r\n\r\n", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "a\nb\n\r", "a\n\r\n", "a\r\n\n", "\n\r"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := headerEnd([]byte(s)), headerEndRef([]byte(s)); got != want {
			t.Fatalf("headerEnd(%q) = %d, want %d", s, got, want)
		}
	})
}

// TestGuardedReadDirect_NetHTTP serves keep-alive GETs with net/http on
// a guarded listener, each sent once the previous one is done: every
// request is read into net/http's own buffer, and its one-byte read
// beside each handler ends in a deadline, so the guard's buffer is never
// allocated.
func TestGuardedReadDirect_NetHTTP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	idle := make(chan int, n+1) // cap(buf's array) at each StateIdle
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }),
		ConnState: func(c net.Conn, st http.ConnState) {
			// Called on the connection's serving goroutine once a request
			// is done (its background read ended): buf is not in use.
			if gc, ok := c.(*guardedConn); ok && st == http.StateIdle {
				idle <- cap(gc.home)
			}
		},
	}
	go srv.Serve(GuardListener(ln))
	t.Cleanup(func() { srv.Close() })
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	for i := range n {
		io.WriteString(c, "GET /"+strconv.Itoa(i)+" HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		select {
		case held := <-idle:
			if held != 0 {
				t.Fatalf("request %d: the guard's own buffer was allocated (%d bytes)", i, held)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("request %d: the connection did not go idle", i)
		}
	}
}
