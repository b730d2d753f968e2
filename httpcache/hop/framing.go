package hop

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"
)

// Message framing on the wire (RFC 9112 §6).
//
// net/http accepts a message carrying both Content-Length and
// Transfer-Encoding: chunked (it drops Content-Length, as RFC 9112 §6.3
// allows), and nothing after it can tell: the field is gone. Such a
// message is the raw material of request smuggling and response
// splitting, so firstrender refuses it at both ends, below net/http, on
// the connection itself:
//
//   - [GuardListener] wraps the public listener: a request whose header
//     block carries both fields gets 400 and the connection is closed
//     (the header block is replaced by a malformed request line, which
//     net/http answers with "400 Bad Request" and closes on); a chunk-size
//     line ending in a bare LF fails the body's read (net/http rejects it
//     too) and the connection;
//   - [GuardConn] wraps a connection to the origin: a response with both
//     fields fails with [ErrFraming] before net/http sees it, so the
//     proxy answers 502 and the connection is not reused.
//
// A header block is held back until it is complete and checked (at most
// maxHeaderBlock bytes); bodies pass through as they arrive, tracked by
// their Content-Length or chunks so the next message is found.

// ErrFraming is the error a guarded connection reads when the peer sent
// an ambiguous or malformed message framing.
var ErrFraming = errors.New("hop: ambiguous or malformed HTTP message framing")

const maxHeaderBlock = 1 << 20

type framingState int

const (
	stHeader    framingState = iota // at a message's start (or inside its header block)
	stLen                           // n bytes of a Content-Length body left
	stChunkSize                     // at a chunk-size line
	stChunkData                     // n bytes of chunk data left, then CRLF
	stChunkCRLF                     // the CRLF after chunk data
	stTrailer                       // trailer fields, up to an empty line
	stRaw                           // no more framing: until close (upgrade, or a response without length)
)

// framer follows the framing of a stream of HTTP/1 messages.
type framer struct {
	response bool
	state    framingState
	n        int64
	methods  []string // responses: methods of the requests sent, oldest first
	finals   int      // responses: final response headers seen
}

var crlf = []byte("\r\n")

// scan advances over buf (bytes not yet scanned) and returns how many of
// them are checked and may be delivered, or ErrFraming. It returns fewer
// than len(buf) when it needs more bytes to go on (an incomplete header
// block or chunk-size line).
func (f *framer) scan(buf []byte) (int, error) {
	done := 0
	for done < len(buf) {
		b := buf[done:]
		switch f.state {
		case stRaw:
			return len(buf), nil
		case stLen, stChunkData:
			m := min(int64(len(b)), f.n)
			f.n -= m
			done += int(m)
			if f.n == 0 {
				if f.state == stLen {
					f.state = stHeader
				} else {
					f.state = stChunkCRLF
				}
			}
		case stChunkCRLF:
			if len(b) < 2 {
				return done, nil
			}
			if !bytes.HasPrefix(b, crlf) {
				return done, ErrFraming
			}
			done += 2
			f.state = stChunkSize
		case stChunkSize:
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				if len(b) > 4096 {
					return done, ErrFraming
				}
				return done, nil
			}
			line := b[:i+1]
			if i == 0 || line[i-1] != '\r' || bytes.IndexByte(line[:i-1], '\r') >= 0 {
				return done, ErrFraming // a bare LF (or a stray CR) ends the line
			}
			size, _, _ := bytes.Cut(line[:i-1], []byte(";"))
			n, err := strconv.ParseUint(strings.TrimRight(string(size), " \t"), 16, 62)
			if err != nil || len(size) == 0 {
				return done, ErrFraming
			}
			done += i + 1
			if n == 0 {
				f.state = stTrailer
			} else {
				f.state, f.n = stChunkData, int64(n)
			}
		case stTrailer:
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				if len(b) > maxHeaderBlock {
					return done, ErrFraming
				}
				return done, nil
			}
			done += i + 1
			if i == 0 || (i == 1 && b[0] == '\r') {
				f.state = stHeader
			}
		case stHeader:
			// Empty lines before a request line are ignored (RFC 9112 §2.2).
			if !f.response && (b[0] == '\r' || b[0] == '\n') {
				if b[0] == '\n' {
					done++
					continue
				}
				if len(b) < 2 {
					return done, nil
				}
				if b[1] == '\n' {
					done += 2
					continue
				}
			}
			end := headerEnd(b)
			if end < 0 {
				if len(b) > maxHeaderBlock {
					return done, ErrFraming
				}
				return done, nil
			}
			if err := f.header(b[:end]); err != nil {
				return done, err
			}
			done += end
		}
	}
	return done, nil
}

// headerEnd returns the length of the header block at the start of b
// (through its empty line; net/http accepts a bare LF in header lines),
// or -1 when it is not complete.
func headerEnd(b []byte) int {
	for i := 0; i < len(b); i++ {
		j := bytes.IndexByte(b[i:], '\n') // from line end to line end, not byte by byte
		if j < 0 {
			return -1
		}
		i += j
		if i+1 < len(b) && b[i+1] == '\n' {
			return i + 2
		}
		if i+2 < len(b) && b[i+1] == '\r' && b[i+2] == '\n' {
			return i + 3
		}
	}
	return -1
}

// header checks one header block and sets the state for its body. It
// reads the block in place, line by line (lines end at LF, one CR before
// it dropped), without allocating: it runs on every request the public
// listener reads.
func (f *framer) header(block []byte) error {
	var cl, te, upgrade, connUpgrade bool
	var clen int64 = -1
	chunked := false
	first, rest, _ := bytes.Cut(block, []byte("\n"))
	first = bytes.TrimSuffix(first, []byte("\r"))
	for len(rest) > 0 {
		var l []byte
		l, rest, _ = bytes.Cut(rest, []byte("\n"))
		l = bytes.TrimSuffix(l, []byte("\r"))
		name, val, ok := bytes.Cut(l, []byte(":"))
		if !ok {
			continue
		}
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			cl = true
			if n, ok := parseDecimal(bytes.TrimSpace(val)); ok {
				if clen >= 0 && clen != n {
					return ErrFraming
				}
				clen = n
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			te = true
			for c := range bytes.SplitSeq(val, []byte(",")) {
				chunked = bytes.EqualFold(bytes.TrimSpace(c), []byte("chunked"))
			}
		case bytes.EqualFold(name, []byte("Upgrade")):
			upgrade = true
		case bytes.EqualFold(name, []byte("Connection")):
			for c := range bytes.SplitSeq(val, []byte(",")) {
				connUpgrade = connUpgrade || bytes.EqualFold(bytes.TrimSpace(c), []byte("upgrade"))
			}
		}
	}
	if cl && te {
		return ErrFraming
	}
	return f.frame(first, clen, te, chunked, upgrade, connUpgrade)
}

// frame sets the state for the body of a header block whose first line
// is first and whose framing fields read as given (clen -1: no valid
// Content-Length).
func (f *framer) frame(first []byte, clen int64, te, chunked, upgrade, connUpgrade bool) error {
	noBody := false
	if f.response {
		status := 0
		if _, rest, ok := bytes.Cut(first, []byte(" ")); ok && len(rest) >= 3 {
			status, _ = strconv.Atoi(string(rest[:3]))
		}
		if status >= 100 && status < 200 {
			if status == 101 {
				f.state = stRaw
			}
			return nil // an interim response: the final one follows
		}
		f.finals++
		method := ""
		if len(f.methods) > 0 {
			method, f.methods = f.methods[0], f.methods[1:]
		}
		noBody = method == "HEAD" || status == 204 || status == 304
	} else if upgrade && connUpgrade {
		f.state = stRaw // the connection may switch protocols: stop reading it as HTTP
		return nil
	}
	switch {
	case noBody:
		f.state = stHeader
	case te && chunked:
		f.state = stChunkSize
	case te:
		if f.response {
			f.state = stRaw // read until close (RFC 9112 §6.3)
		} else {
			return ErrFraming // a request body without a length
		}
	case clen > 0:
		f.state, f.n = stLen, clen
	case clen == 0 || !f.response:
		f.state = stHeader
	default:
		f.state = stRaw
	}
	return nil
}

// parseDecimal reports what strconv.ParseInt(string(b), 10, 64) gives
// when it succeeds with n >= 0, without converting b: an optional sign,
// then decimal digits ("-0" is 0; anything else negative, an underscore,
// any other byte or an overflow fails).
func parseDecimal(b []byte) (int64, bool) {
	neg := false
	if len(b) > 0 && (b[0] == '+' || b[0] == '-') {
		neg, b = b[0] == '-', b[1:]
	}
	if len(b) == 0 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if n > (math.MaxInt64-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	if neg && n != 0 {
		return 0, false
	}
	return n, true
}

// guardedReadSize is the read buffer of a guarded connection; a read is
// given at least guardedReadMin bytes of room.
const (
	guardedReadSize = 16 << 10
	guardedReadMin  = 4 << 10
)

// guardedConn is a net.Conn whose reads go through a framer. Reads are
// not concurrent (net/http has one reader per connection at a time);
// Write, on a connection to the origin, runs beside them and shares only
// the method queue, under mu.
type guardedConn struct {
	net.Conn
	f       framer
	buf     []byte // read from the connection, not delivered yet
	home    []byte // buf's array from its start, length 0 (reused once buf is drained)
	checked int    // buf[:checked] is checked and may be delivered
	err     error  // sticky: ErrFraming, or the end of the stream
	inject  []byte // edge: what the server reads instead of a refused header block
	edge    bool

	mu     sync.Mutex
	queue  []string // methods written, not yet answered
	expect bool     // the next write starts a request

	// Write batching on an accepted connection (see Cork); used by the
	// connection's serving goroutine only, like net/http's own writes.
	corked  bool
	pending []byte      // a held write (a copy), sent with the next
	iov     [3][]byte   // pending and the next write, for one writev
	bufs    net.Buffers // over iov (a field: a local would escape)
	// Header lines for the response's header section (Cork.InsertFields):
	// fields is the buffer, insert whether the next write gets them.
	fields []byte
	insert bool
}

func (c *guardedConn) Read(p []byte) (int, error) {
	if c.checked == 0 && len(c.buf) == 0 && len(c.inject) == 0 && c.err == nil && len(p) > 0 && (len(p) >= guardedReadMin || c.home == nil) {
		// Nothing held back: read into p itself and check the bytes where
		// they lie. A request that arrives whole (the common case) is
		// delivered without a copy through buf. A smaller read goes
		// there only while buf was never needed: net/http's one-byte
		// read beside each handler, which a deadline ends, then needs no
		// buf; when it does get a byte (the next request came early),
		// the rest takes one more read into buf, and from then on small
		// reads go through buf, which takes whatever has arrived.
		if n, done, err := c.readDirect(p); done {
			return n, err
		}
	}
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
		// Read straight into buf's spare room. Once buf is drained it
		// starts over at the start of its array (home), so a connection
		// reuses one buffer instead of allocating per read (an 8 KB stack
		// array passed to Conn.Read escaped: 8 KB of garbage per read,
		// the largest allocation of the miss path; docs/performance.md).
		// Nothing keeps a slice of buf beyond a Read: scan only counts,
		// and Read copies out.
		if len(c.buf) == 0 && c.home != nil {
			c.buf = c.home
		}
		if cap(c.buf)-len(c.buf) < guardedReadMin && c.home != nil && len(c.buf)+guardedReadMin <= cap(c.home) {
			c.buf = c.home[:copy(c.home[:len(c.buf)], c.buf)] // compact (memmove)
		}
		if cap(c.buf)-len(c.buf) < guardedReadMin {
			nb := make([]byte, len(c.buf), max(guardedReadSize, 2*len(c.buf)))
			copy(nb, c.buf)
			c.buf, c.home = nb, nb[:0]
		}
		n, err := c.Conn.Read(c.buf[len(c.buf):cap(c.buf)])
		if n > 0 {
			c.buf = c.buf[:len(c.buf)+n]
			m, ferr := c.scanRead(c.buf)
			c.checked = m
			if ferr != nil {
				c.refuse()
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				c.err = err // the end: sticky
			}
			if c.checked > 0 || len(c.inject) > 0 {
				continue // deliver what was checked first
			}
			if c.err == nil {
				return 0, err // a deadline and the like: the caller may read again
			}
		}
	}
}

// readDirect is Read into p when buf holds nothing: it reads from the
// connection into p and scans the bytes there. When some of them are
// checked it returns their count and done (p holds them at its start;
// the unchecked rest is moved to buf, and a framing error or the end of
// the stream is recorded for the next Read, as Read does). Otherwise it
// moves what it read to buf and records a framing error or the end of
// the stream as Read does; it returns a passing read error (a deadline)
// with done, else not done: Read goes on as if it had read into buf.
func (c *guardedConn) readDirect(p []byte) (int, bool, error) {
	n, err := c.Conn.Read(p)
	m := 0
	if n > 0 {
		var ferr error
		m, ferr = c.scanRead(p[:n])
		switch {
		case ferr != nil:
			// refuse, with the checked bytes in p instead of buf.
			if c.edge && c.f.state == stHeader {
				c.inject = []byte("BAD FRAMING\r\n\r\n")
			}
			c.err = ErrFraming
		case m < n:
			c.hold(p[m:n]) // not checked yet: scanned again with what follows
		}
	}
	if err != nil && (errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed)) {
		c.err = err // the end: sticky
	}
	if m > 0 {
		return m, true, nil
	}
	if err != nil && c.err == nil && len(c.inject) == 0 {
		return 0, true, err // a deadline and the like: the caller may read again
	}
	return 0, false, nil
}

// scanRead checks b, the bytes read since the last check (with any held
// before them): on a response stream it first takes the methods of the
// requests written since (HEAD responses have no body), and when a final
// response completes it lets the next write start a request. It returns
// how many bytes of b are checked, and the framing error if b breaks the
// framing.
func (c *guardedConn) scanRead(b []byte) (int, error) {
	if c.f.response {
		c.mu.Lock()
		c.f.methods = append(c.f.methods, c.queue...)
		c.queue = c.queue[:0]
		c.mu.Unlock()
	}
	finals := c.f.finals
	m, err := c.f.scan(b)
	if err == nil && c.f.finals != finals {
		c.mu.Lock()
		c.expect = true // a final response came: the next write may start a request
		c.mu.Unlock()
	}
	return m, err
}

// hold puts b, bytes read but not yet checked, into buf, which is empty.
func (c *guardedConn) hold(b []byte) {
	if cap(c.home) < len(b)+guardedReadMin {
		c.home = make([]byte, 0, max(guardedReadSize, 2*len(b)))
	}
	c.buf = append(c.home[:0], b...)
}

// refuse ends the stream after what was checked: at the edge a refused
// header block becomes a malformed request line (net/http answers 400
// and closes); elsewhere reads fail with ErrFraming.
func (c *guardedConn) refuse() {
	c.buf = c.buf[:c.checked]
	if c.edge && c.f.state == stHeader {
		c.inject = []byte("BAD FRAMING\r\n\r\n")
	}
	c.err = ErrFraming
}

// Write records, on a connection to the origin, the method of each
// request it starts (a HEAD's response has no body). On a corked
// connection it holds a write of at most corkHold bytes back until the
// next write, which then sends both in one writev (see Cork).
func (c *guardedConn) Write(p []byte) (int, error) {
	if c.corked {
		return c.corkedWrite(p)
	}
	if c.f.response {
		c.mu.Lock()
		if c.expect {
			line, _, _ := bytes.Cut(p, []byte("\n"))
			if sp := bytes.IndexByte(line, ' '); sp > 0 && bytes.Contains(line, []byte(" HTTP/1.")) {
				c.queue = append(c.queue, string(p[:sp]))
				c.expect = false
			}
		}
		c.mu.Unlock()
	}
	return c.Conn.Write(p)
}

// corkHold is the largest write a corked connection holds back:
// net/http's connection buffer is 4 KB, so what it flushes ahead of a
// body is at most that.
const corkHold = 8 << 10

// errHeaderSection fails the write that should have started a response
// with the header section fields were to be inserted into (see
// Cork.InsertFields): net/http then closes the connection.
var errHeaderSection = errors.New("hop: a corked response's first write holds no complete header section for its fields")

func (c *guardedConn) corkedWrite(p []byte) (int, error) {
	if c.insert {
		return c.insertFields(p)
	}
	if len(c.pending) == 0 {
		if len(p) <= corkHold {
			c.pending = append(c.pending[:0], p...)
			return len(p), nil
		}
		return c.Conn.Write(p)
	}
	held := len(c.pending)
	c.iov[0], c.iov[1] = c.pending, p
	c.bufs = c.iov[:2]
	n, err := c.bufs.WriteTo(c.Conn) // writev on a *net.TCPConn
	c.iov, c.bufs = [3][]byte{}, nil
	c.pending = c.pending[:0]
	if err != nil {
		return max(0, int(n)-held), err
	}
	return len(p), nil
}

// insertFields writes p, the response's first write, with c.fields
// inserted at the end of its header section: before the empty line that
// ends the first header block (a header section holds no empty line, and
// net/http writes the status line first). A write of at most corkHold
// bytes is held, as corkedWrite holds one; a larger one leaves at once in
// one writev. A write without a complete header section fails
// (errHeaderSection) and nothing of it is sent.
func (c *guardedConn) insertFields(p []byte) (int, error) {
	c.insert = false
	fields := c.fields
	c.fields = c.fields[:0]
	end := bytes.Index(p, []byte("\r\n\r\n"))
	if end < 0 || len(c.pending) > 0 {
		return 0, errHeaderSection
	}
	end += 2 // after the last field line's CRLF
	if len(p) <= corkHold {
		c.pending = append(c.pending[:0], p[:end]...)
		c.pending = append(c.pending, fields...)
		c.pending = append(c.pending, p[end:]...)
		return len(p), nil
	}
	c.iov[0], c.iov[1], c.iov[2] = p[:end], fields, p[end:]
	c.bufs = c.iov[:]
	_, err := c.bufs.WriteTo(c.Conn)
	c.iov, c.bufs = [3][]byte{}, nil
	if err != nil {
		return 0, err // the connection is broken; net/http closes it
	}
	return len(p), nil
}

// uncork sends what a corked connection holds and ends the batching.
func (c *guardedConn) uncork() error {
	c.corked = false
	if c.insert { // nothing was written: the fields never went out
		c.insert = false
		c.fields = c.fields[:0]
		return errHeaderSection
	}
	if len(c.pending) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.pending)
	c.pending = c.pending[:0]
	return err
}

type connKey struct{}

// ConnContext is an [http.Server] ConnContext hook for a server on a
// [GuardListener]: it records the connection in ctx for [CorkWrites].
// Other connections leave ctx as it is.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if gc, ok := c.(*guardedConn); ok && gc.edge {
		return context.WithValue(ctx, connKey{}, gc)
	}
	return ctx
}

// Cork is a batch of writes on a guarded connection; see [CorkWrites].
// The zero Cork (no such connection) batches nothing.
type Cork struct{ c *guardedConn }

// CorkWrites starts batching the writes of the connection that ctx's
// request arrived on (recorded by [ConnContext]), until [Cork.Release]:
// one write of at most 8 KB is held back (copied) and sent together with
// the next one in a single writev. net/http sends a response whose body
// is larger than its 4 KB connection buffer in two writes (the buffer,
// holding the header and the body's start, then the rest), each a
// syscall and, on loopback, a wakeup of the reader; corked, it leaves in
// one. Use it only around writing a response that is complete in memory,
// from the handler's goroutine, and Release before the handler returns
// (after flushing the ResponseWriter if it is [Cork.Holding] a write):
// a held write waits for the next
// write or Release, so corking a streamed response would delay its
// start. Without a recorded connection it returns the zero Cork.
func CorkWrites(ctx context.Context) Cork {
	gc, _ := ctx.Value(connKey{}).(*guardedConn)
	if gc == nil {
		return Cork{}
	}
	gc.corked = true
	return Cork{gc}
}

// CorkWrite is [CorkWrites] for a single write of a streamed response:
// the caller writes, flushes its ResponseWriter and releases the Cork
// before it returns, so nothing is held past that call, and a write past
// net/http's 4 KB buffer leaves in one writev instead of two. When ctx's
// connection is corked already (a batch further up the stack that holds
// a whole response), it returns the zero Cork: the write joins that
// batch, which its owner releases.
func CorkWrite(ctx context.Context) Cork {
	gc, _ := ctx.Value(connKey{}).(*guardedConn)
	if gc == nil || gc.corked {
		return Cork{}
	}
	gc.corked = true
	return Cork{gc}
}

// Active reports whether k batches writes of a connection.
func (k Cork) Active() bool { return k.c != nil }

// Holding reports whether k holds a write back: the caller then flushes
// its ResponseWriter before Release, so that what net/http still buffers
// joins the held bytes in one write. Without one, nothing of the response
// has been written yet, and flushing early would only send it before the
// handler returns.
func (k Cork) Holding() bool { return k.c != nil && len(k.c.pending) > 0 }

// Fields returns k's buffer for header field lines, empty (nil without a
// connection), to append complete lines to ("Name: value\r\n" each) and
// hand back to [Cork.InsertFields]. Reusing it costs no allocation once
// the connection's buffer has grown to the fields' size.
func (k Cork) Fields() []byte {
	if k.c == nil {
		return nil
	}
	return k.c.fields[:0]
}

// InsertFields has k insert lines, complete header field lines, into the
// header section of the response being written, right before the empty
// line that ends it, and reports whether it will (false without a
// connection: the lines are then the caller's to send another way). Call
// it before the response's first write (before WriteHeader's flush): that
// write must begin with the header section, as net/http's does. The
// caller vouches for lines: they are sent as they are, so each name must
// be a token and no value may hold CR or LF (encode them as net/http's
// Header.Write does); a field net/http writes too is then sent twice. If
// the first write holds no complete header section, it fails and net/http
// closes the connection: nothing half-framed is sent. Flush the
// ResponseWriter before Release: fields not yet inserted then are
// dropped, and Release reports it.
func (k Cork) InsertFields(lines []byte) bool {
	if k.c == nil {
		return false
	}
	k.c.fields, k.c.insert = lines, true
	return true
}

// Release sends what k holds back and ends the batching; a write error
// is returned (net/http sees the connection fail on its next write).
func (k Cork) Release() error {
	if k.c == nil {
		return nil
	}
	return k.c.uncork()
}

// GuardConn wraps c, a connection to an origin, so that a response with
// ambiguous framing (Content-Length with Transfer-Encoding, conflicting
// Content-Lengths, a malformed chunk line) reads as [ErrFraming] instead
// of reaching net/http. Use it in a Transport's DialContext.
func GuardConn(c net.Conn) net.Conn {
	return &guardedConn{Conn: c, f: framer{response: true}, expect: true}
}

// GuardListener wraps ln so that every accepted connection refuses
// requests with ambiguous framing: both Content-Length and
// Transfer-Encoding, conflicting Content-Lengths, or a chunk-size line
// not ending in CRLF (see the package's framing notes).
func GuardListener(ln net.Listener) net.Listener { return guardListener{ln} }

type guardListener struct{ net.Listener }

func (l guardListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &guardedConn{Conn: c, edge: true}, nil
}
