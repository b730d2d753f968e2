package server

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// handoffListener hands out the connections sent on conns; Accept
// reports on entered each time it is called.
type handoffListener struct {
	net.Listener // for Addr; never accepted on
	entered      chan struct{}
	conns        chan net.Conn
	closed       chan struct{}
}

func (l *handoffListener) Accept() (net.Conn, error) {
	l.entered <- struct{}{}
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error { close(l.closed); return nil }

// TestAcceptGate_WaitsForAnAcceptInProgress: a connection the kernel
// hands over while the shutdown looks at the gate is waited for. The
// shutdown that dropped a request during a socket-activated restart
// looked at the gate after Accept had returned the connection but before
// net/http's StateNew hook registered it.
func TestAcceptGate_WaitsForAnAcceptInProgress(t *testing.T) {
	t.Parallel()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Close()
	hl := &handoffListener{Listener: inner, entered: make(chan struct{}), conns: make(chan net.Conn), closed: make(chan struct{})}
	waiting := make(chan struct{}, 4)
	g := &acceptGate{onWait: func() { waiting <- struct{}{} }}
	gl := g.listen(hl)

	accepted := make(chan net.Conn)
	go func() {
		c, err := gl.Accept()
		if err != nil {
			t.Error(err)
		}
		accepted <- c
	}()
	<-hl.entered

	var settled atomic.Bool
	done := make(chan bool)
	go func() {
		g.waitAccepted(context.Background(), time.Minute)
		done <- settled.Load()
	}()
	select {
	case <-waiting:
	case <-done:
		t.Fatal("waitAccepted returned while an Accept was in progress")
	}

	client, server := net.Pipe()
	defer client.Close()
	hl.conns <- server
	c := <-accepted
	if c != server {
		t.Fatalf("Accept returned %v, want the handed-over connection", c)
	}
	if !g.isPending(c) {
		t.Fatal("a connection Accept returned is not pending before net/http's hooks ran")
	}
	settled.Store(true)
	g.settle(c)
	if ok := <-done; !ok {
		t.Fatal("waitAccepted returned before the accepted connection's first request reached a handler")
	}
}

// TestAcceptGate_ClosedAndIdle: a connection closed before it sent a
// request ends the wait, and so does closing the listener under a
// blocked Accept.
func TestAcceptGate_ClosedAndIdle(t *testing.T) {
	t.Parallel()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Close()
	hl := &handoffListener{Listener: inner, entered: make(chan struct{}, 2), conns: make(chan net.Conn), closed: make(chan struct{})}
	g := &acceptGate{}
	gl := g.listen(hl)
	errs := make(chan error, 2)
	go func() {
		for {
			c, err := gl.Accept()
			if err != nil {
				errs <- err
				return
			}
			g.connState(c, http.StateClosed)
		}
	}()
	client, server := net.Pipe()
	defer client.Close()
	hl.conns <- server
	if err := gl.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gl.Close(); err != nil {
		t.Errorf("second Close: %v, want the first's (nil)", err)
	}
	if err := <-errs; err != net.ErrClosed {
		t.Fatalf("Accept after Close: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	g.waitAccepted(ctx, time.Minute)
	if ctx.Err() != nil || g.isPending(server) {
		t.Error("a closed connection is still pending")
	}
}

// isPending reports whether c waits for its first request.
func (g *acceptGate) isPending(c net.Conn) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	_, ok := g.pending[c]
	return ok
}
