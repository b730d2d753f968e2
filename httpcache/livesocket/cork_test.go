package livesocket

import (
	"io"
	"net"
	"slices"
	"testing"
	"time"
)

func TestCorkConn_OrderAndFlush(t *testing.T) {
	t.Parallel()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	peerA, peerB := net.Pipe() // the other leg: reading it flushes c
	defer peerA.Close()
	defer peerB.Close()
	c := &corkConn{Conn: a}
	other := &corkConn{Conn: peerA, peer: c}

	got := make(chan string, 1)
	go func() {
		buf := make([]byte, 64)
		var all []byte
		for len(all) < 9 {
			n, err := b.Read(buf)
			if err != nil {
				break
			}
			all = append(all, buf[:n]...)
		}
		got <- string(all)
	}()
	c.cork.Store(true)
	c.Write([]byte("one"))
	c.Write([]byte("two"))
	c.cork.Store(false)
	if c.buf == nil || string(*c.buf) != "onetwo" {
		t.Fatalf("corked writes were not batched: buf %v", c.buf)
	}
	// An uncorked write (a control frame) goes out after the batch.
	go c.Write([]byte("333"))
	if s := <-got; s != "onetwo333" {
		t.Errorf("wire order = %q, want %q", s, "onetwo333")
	}

	// A read on the other leg flushes the batch before blocking.
	c.cork.Store(true)
	c.Write([]byte("four"))
	c.cork.Store(false)
	go func() { peerB.Write([]byte("x")) }()
	done := make(chan string, 1)
	go func() {
		buf := make([]byte, 4)
		io.ReadFull(b, buf)
		done <- string(buf)
	}()
	other.Read(make([]byte, 1))
	if s := <-done; s != "four" {
		t.Errorf("after the other leg's read, wire = %q, want %q", s, "four")
	}
	if c.buf != nil {
		t.Errorf("batch buffer kept after flush: an idle socket should hold none")
	}
}

// deadlineConn counts the write deadlines set on it.
type deadlineConn struct {
	net.Conn
	writeDLs []time.Time
	both     int
}

func (d *deadlineConn) SetWriteDeadline(t time.Time) error {
	d.writeDLs = append(d.writeDLs, t)
	return nil
}

func (d *deadlineConn) SetDeadline(t time.Time) error {
	d.both++
	return nil
}

func TestCorkConn_WriteDeadlineOnlyWhenChanged(t *testing.T) {
	t.Parallel()
	d := &deadlineConn{}
	c := &corkConn{Conn: d}
	t1 := time.Now().Add(time.Second)
	t2 := t1.Add(time.Second)
	c.SetWriteDeadline(t1)
	c.SetWriteDeadline(t1) // gorilla, before each frame: no timer update
	c.SetWriteDeadline(t1)
	c.SetWriteDeadline(t2) // moved: passed on
	c.SetWriteDeadline(time.Time{})
	c.SetWriteDeadline(time.Time{})
	if want := []time.Time{t1, t2, {}}; !slices.EqualFunc(d.writeDLs, want, time.Time.Equal) {
		t.Fatalf("write deadlines set on the conn = %v, want %v", d.writeDLs, want)
	}
	// SetDeadline sets the write deadline too: an equal write deadline
	// after it is already in place, a different one is not.
	c.SetDeadline(t1)
	c.SetWriteDeadline(t1)
	if d.both != 1 || len(d.writeDLs) != 3 {
		t.Fatalf("after SetDeadline(t1), SetWriteDeadline(t1) reached the conn: %v", d.writeDLs)
	}
	c.SetWriteDeadline(time.Time{})
	if len(d.writeDLs) != 4 {
		t.Fatalf("SetWriteDeadline(zero) after SetDeadline(t1) did not reach the conn: %v", d.writeDLs)
	}
}
