package hop

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// recConn is a net.Conn that records what reaches it, write by write.
type recConn struct {
	net.Conn // nil: only Write is used
	mu       sync.Mutex
	writes   [][]byte
	err      error
}

func (c *recConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	c.writes = append(c.writes, bytes.Clone(p))
	return len(p), nil
}

func (c *recConn) got() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Join(c.writes, nil)
}

// TestCorkHolds checks the batching itself: a corked connection holds
// one write of at most 8 KB back until the next write (which sends both,
// in order) or Release, passes larger writes through, and writes
// straight through again once released.
func TestCorkHolds(t *testing.T) {
	rc := &recConn{}
	gc := &guardedConn{Conn: rc, edge: true}
	ctx := ConnContext(context.Background(), gc)
	k := CorkWrites(ctx)
	if !k.Active() {
		t.Fatal("CorkWrites on a guarded connection's context: not active")
	}
	head := bytes.Repeat([]byte("h"), 4096)
	rest := bytes.Repeat([]byte("b"), 16<<10)
	if n, err := gc.Write(head); n != len(head) || err != nil {
		t.Fatalf("held write: %d, %v", n, err)
	}
	head[0] = 'X' // the caller reuses its buffer (bufio does): the held copy must not change
	if len(rc.got()) != 0 || !k.Holding() {
		t.Fatalf("a corked 4 KB write reached the connection before the next write (holding: %v)", k.Holding())
	}
	if n, err := gc.Write(rest); n != len(rest) || err != nil {
		t.Fatalf("second write: %d, %v", n, err)
	}
	if k.Holding() {
		t.Fatal("still holding after the next write")
	}
	want := append(bytes.Repeat([]byte("h"), 4096), rest...)
	if !bytes.Equal(rc.got(), want) {
		t.Fatalf("after the second write the connection has %d bytes, want the held 4 KB then the rest (%d)", len(rc.got()), len(want))
	}
	big := bytes.Repeat([]byte("B"), corkHold+1)
	gc.Write(big) // nothing held: larger than corkHold goes straight out
	want = append(want, big...)
	if !bytes.Equal(rc.got(), want) {
		t.Fatal("a write larger than corkHold, nothing held, was not passed through")
	}
	gc.Write([]byte("tail"))
	if !bytes.Equal(rc.got(), want) {
		t.Fatal("a small corked write was not held")
	}
	if err := k.Release(); err != nil {
		t.Fatal(err)
	}
	want = append(want, "tail"...)
	if !bytes.Equal(rc.got(), want) {
		t.Fatal("Release did not send the held write")
	}
	gc.Write([]byte("after"))
	if got := rc.got(); !bytes.HasSuffix(got, []byte("after")) {
		t.Fatal("a write after Release was held")
	}
	if err := k.Release(); err != nil { // idempotent
		t.Fatal(err)
	}
}

// CorkWrite corks an idle connection like CorkWrites, and leaves one
// that is corked already to its batch: the zero Cork, whose Release sends
// nothing, and the write joins the held bytes.
func TestCorkWrite(t *testing.T) {
	rc := &recConn{}
	gc := &guardedConn{Conn: rc, edge: true}
	ctx := ConnContext(context.Background(), gc)
	one := CorkWrite(ctx)
	if !one.Active() {
		t.Fatal("CorkWrite on an idle guarded connection: not active")
	}
	gc.Write([]byte("head"))
	if err := one.Release(); err != nil || string(rc.got()) != "head" {
		t.Fatalf("after Release: %q, %v", rc.got(), err)
	}
	outer := CorkWrites(ctx)
	gc.Write([]byte("-held"))
	inner := CorkWrite(ctx)
	if inner.Active() {
		t.Fatal("CorkWrite inside another batch: active")
	}
	if err := inner.Release(); err != nil || string(rc.got()) != "head" || !outer.Holding() {
		t.Fatalf("the zero Cork's Release sent %q (err %v, outer holding %v), want the outer batch kept", rc.got(), err, outer.Holding())
	}
	if err := outer.Release(); err != nil || string(rc.got()) != "head-held" {
		t.Fatalf("outer Release: %q, %v", rc.got(), err)
	}
	if k := CorkWrite(context.Background()); k.Active() {
		t.Error("CorkWrite without a guarded connection: active")
	}
}

// TestCorkErrors checks that a failing connection's error reaches the
// writer: on the write that sends the held bytes, or on Release.
func TestCorkErrors(t *testing.T) {
	boom := errors.New("boom")
	rc := &recConn{}
	gc := &guardedConn{Conn: rc, edge: true}
	k := CorkWrites(ConnContext(context.Background(), gc))
	gc.Write([]byte("held"))
	rc.err = boom
	if _, err := gc.Write(bytes.Repeat([]byte("x"), 100)); !errors.Is(err, boom) {
		t.Fatalf("write after a held one on a failed connection: %v, want boom", err)
	}
	gc.Write([]byte("held again"))
	if err := k.Release(); !errors.Is(err, boom) {
		t.Fatalf("Release on a failed connection: %v, want boom", err)
	}
}

// TestCorkWithoutGuardedConn checks that contexts without a guarded
// accepted connection (a plain listener, an origin connection, no
// ConnContext at all) give the zero Cork, which does nothing.
func TestCorkWithoutGuardedConn(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	for name, ctx := range map[string]context.Context{
		"no ConnContext":     context.Background(),
		"plain conn":         ConnContext(context.Background(), a),
		"origin (GuardConn)": ConnContext(context.Background(), GuardConn(a)),
	} {
		k := CorkWrites(ctx)
		if k.Active() {
			t.Errorf("%s: Cork active", name)
		}
		if err := k.Release(); err != nil {
			t.Errorf("%s: Release: %v", name, err)
		}
	}
}

// TestCorkedResponses serves over a real guarded loopback listener, with
// the ConnContext hook, responses the way the proxy's hit path does
// (corked, header and a 20 KB body, flushed, released) and checks that
// keep-alive and pipelined requests get every byte in order, and that a
// handler which does not cork on the same connection is unaffected.
func TestCorkedResponses(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 1280) // 20 KB
	sizes := []int{20480, 0, 100, 4000, 4096, 6000, 20480}
	paths := []string{"/c", "/c", "/plain", "/c", "/c", "/plain", "/c"}
	rs := pipelined(t, func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		b := body[:n]
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		if r.URL.Path == "/plain" {
			w.Write(b)
			return
		}
		k := CorkWrites(r.Context())
		if !k.Active() {
			t.Error("the handler's context has no guarded connection")
		}
		w.WriteHeader(http.StatusOK)
		w.Write(b)
		if k.Holding() {
			w.(http.Flusher).Flush()
		}
		if err := k.Release(); err != nil {
			t.Error(err)
		}
	}, paths, sizes)
	for i, n := range sizes {
		if !bytes.Equal(rs[i].body, body[:n]) {
			t.Fatalf("response %d (%s, %d bytes): got %d bytes", i, paths[i], n, len(rs[i].body))
		}
	}
}

// pipelinedResponse is a response read by pipelined, with its body.
type pipelinedResponse struct {
	*http.Response
	body []byte
}

// pipelined serves h on a guarded loopback listener with the ConnContext
// hook, as the proxy's server does, sends GET paths[i]?n=sizes[i] for
// every i on one connection before reading any answer (pipelined), and
// returns the responses in order, failing t on an unreadable one.
func pipelined(t *testing.T, h http.HandlerFunc, paths []string, sizes []int) []pipelinedResponse {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, ConnContext: ConnContext, Handler: h}
	go srv.Serve(GuardListener(ln))
	t.Cleanup(func() { srv.Close() })
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	var raw bytes.Buffer
	for i, n := range sizes {
		raw.WriteString("GET " + paths[i] + "?n=" + strconv.Itoa(n) + " HTTP/1.1\r\nHost: x\r\n\r\n")
	}
	if _, err := c.Write(raw.Bytes()); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	rs := make([]pipelinedResponse, len(sizes))
	for i := range sizes {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("response %d (%s): body: %v", i, paths[i], err)
		}
		rs[i] = pipelinedResponse{resp, b}
	}
	return rs
}

// TestCorkInsertFields checks the insertion itself on each shape of the
// response's first write: the header section alone (held, then sent with
// the body), header and body in one small write (held until Release), one
// larger than corkHold (sent at once), and one without a complete header
// section (refused, nothing sent).
func TestCorkInsertFields(t *testing.T) {
	const head = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n"
	const want = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nA: 1\r\nB: two\r\n\r\n"
	big := string(bytes.Repeat([]byte("b"), corkHold+1))
	for _, tc := range []struct {
		name   string
		writes []string
		want   string
		err    bool
	}{
		{"header alone", []string{head, "body"}, want + "body", false},
		{"header and body", []string{head + "body"}, want + "body", false},
		{"larger than held", []string{head + big}, want + big, false},
		{"no header section", []string{"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n"}, "", true},
		{"nothing written", nil, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := &recConn{}
			gc := &guardedConn{Conn: rc, edge: true}
			k := CorkWrites(ConnContext(context.Background(), gc))
			b := append(k.Fields(), "A: 1\r\nB: two\r\n"...)
			if !k.InsertFields(b) {
				t.Fatal("InsertFields on a guarded connection: false")
			}
			for i, w := range tc.writes {
				n, err := gc.Write([]byte(w))
				if tc.err {
					if !errors.Is(err, errHeaderSection) || n != 0 {
						t.Fatalf("write %d: %d, %v; want 0, errHeaderSection", i, n, err)
					}
					continue
				}
				if n != len(w) || err != nil {
					t.Fatalf("write %d: %d, %v", i, n, err)
				}
			}
			if err := k.Release(); (err != nil) != (tc.err && len(tc.writes) == 0) {
				t.Fatalf("Release: %v", err)
			}
			if got := string(rc.got()); got != tc.want {
				t.Fatalf("sent %q\nwant %q", got, tc.want)
			}
			// The fields were for that response only.
			k = CorkWrites(ConnContext(context.Background(), gc))
			gc.Write([]byte(head + "next"))
			k.Release()
			if got := string(rc.got()); got != tc.want+head+"next" {
				t.Fatalf("the next response was sent as %q", strings.TrimPrefix(got, tc.want))
			}
		})
	}
	if (Cork{}).InsertFields([]byte("A: 1\r\n")) || (Cork{}).Fields() != nil {
		t.Fatal("the zero Cork accepted fields")
	}
}

// TestCorkInsertFieldsServed checks InsertFields under net/http, over a
// pipelined keep-alive connection: the fields reach the response they
// were inserted into (flushed after WriteHeader, or not), a nil Date
// keeps net/http's own out, and the responses before and after are as
// net/http writes them.
func TestCorkInsertFieldsServed(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 1280) // 20 KB
	sizes := []int{20480, 0, 100, 4000, 20480, 6000, 100}
	paths := []string{"/flush", "/flush", "/plain", "/f", "/f", "/plain", "/flush"}
	rs := pipelined(t, func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		b := body[:n]
		h := w.Header()
		h.Set("Content-Length", strconv.Itoa(len(b)))
		if r.URL.Path == "/plain" {
			w.Write(b)
			return
		}
		k := CorkWrites(r.Context())
		f := append(k.Fields(), "Date: Tue, 24 Nov 2026 12:00:00 GMT\r\nX-Inserted: "...)
		f = append(f, r.URL.RawQuery...)
		f = append(f, "\r\n"...)
		k.InsertFields(f)
		h["Date"] = nil
		w.WriteHeader(http.StatusOK)
		if r.URL.Path == "/flush" {
			w.(http.Flusher).Flush()
		}
		w.Write(b)
		w.(http.Flusher).Flush() // always, with fields inserted
		if err := k.Release(); err != nil {
			t.Error(err)
		}
	}, paths, sizes)
	for i, n := range sizes {
		if !bytes.Equal(rs[i].body, body[:n]) {
			t.Fatalf("response %d (%s, %d bytes): got %d bytes", i, paths[i], n, len(rs[i].body))
		}
		ins, dates := rs[i].Header.Get("X-Inserted"), rs[i].Header.Values("Date")
		if paths[i] == "/plain" {
			if ins != "" || len(dates) != 1 {
				t.Fatalf("response %d (plain): X-Inserted %q, Date %q", i, ins, dates)
			}
			continue
		}
		if ins != "n="+strconv.Itoa(n) || len(dates) != 1 || dates[0] != "Tue, 24 Nov 2026 12:00:00 GMT" {
			t.Fatalf("response %d (%s): X-Inserted %q, Date %q; want n=%d and the inserted Date alone", i, paths[i], ins, dates, n)
		}
	}
}
