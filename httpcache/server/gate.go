package server

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/firstrender/firstrender/httpcache/hop"
)

// acceptGate tracks a listener's connections that were accepted but
// whose first request has not reached a handler yet, so a shutdown can
// wait for them before http.Server.Shutdown, which closes such a
// connection unanswered once its request has been read (net/http's
// conn.serve returns when it finds the server shutting down after
// reading a request).
//
// A connection is pending from the moment the gated listener's Accept
// returns it, not from net/http's StateNew hook: between the two,
// http.Server.Serve runs ConnContext, and a shutdown that looked at the
// gate in that window would miss the connection. An Accept still in
// progress also holds the wait, because the kernel may have handed it a
// connection just as the listener closed.
//
// Its methods are the http.Server's ConnContext and ConnState hooks, a
// listener wrapper and a handler wrapper; all are safe for concurrent
// use.
type acceptGate struct {
	mu        sync.Mutex
	pending   map[net.Conn]struct{}
	accepting int           // Accept calls in progress
	changed   chan struct{} // closed (and replaced) whenever the wait may end

	// onWait, when set (tests), is called each time waitAccepted is
	// about to block.
	onWait func()
}

type gateConnKey struct{}

// gateConn is a connection in its context: settled once its first
// request reached a handler, so later requests on it take no lock.
type gateConn struct {
	c       net.Conn
	settled atomic.Bool
}

// listen returns ln with its accepted connections registered with g.
// Its Close closes ln once; later calls (http.Server.Shutdown closes it
// again) return the first call's error.
func (g *acceptGate) listen(ln net.Listener) net.Listener {
	return &gatedListener{Listener: ln, g: g}
}

type gatedListener struct {
	net.Listener
	g    *acceptGate
	once sync.Once
	err  error
}

func (l *gatedListener) Accept() (net.Conn, error) {
	g := l.g
	g.mu.Lock()
	g.accepting++
	g.mu.Unlock()
	c, err := l.Listener.Accept()
	g.mu.Lock()
	g.accepting--
	if err == nil {
		if g.pending == nil {
			g.pending = map[net.Conn]struct{}{}
		}
		g.pending[c] = struct{}{}
	}
	g.signalLocked()
	g.mu.Unlock()
	return c, err
}

func (l *gatedListener) Close() error {
	l.once.Do(func() { l.err = l.Listener.Close() })
	return l.err
}

// connContext is the http.Server's ConnContext hook: it lets handler
// find the request's connection.
func (g *acceptGate) connContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, gateConnKey{}, &gateConn{c: c})
}

// publicConnContext is connContext for the public listener: it also
// lets the proxy send a response from memory in one write
// (hop.CorkWrites).
func (g *acceptGate) publicConnContext(ctx context.Context, c net.Conn) context.Context {
	return g.connContext(hop.ConnContext(ctx, c), c)
}

func (g *acceptGate) connState(c net.Conn, st http.ConnState) {
	switch st {
	case http.StateClosed, http.StateHijacked:
		g.settle(c)
	}
}

// settle removes c from the pending connections.
func (g *acceptGate) settle(c net.Conn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.pending[c]; !ok {
		return
	}
	delete(g.pending, c)
	g.signalLocked()
}

// signalLocked wakes a waitAccepted; g.mu is held.
func (g *acceptGate) signalLocked() {
	if g.changed != nil {
		close(g.changed)
		g.changed = nil
	}
}

// handler settles a connection as its first request reaches h.
func (g *acceptGate) handler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if gc, ok := r.Context().Value(gateConnKey{}).(*gateConn); ok && !gc.settled.Load() {
			gc.settled.Store(true) // requests on one connection are not concurrent
			g.settle(gc.c)
		}
		h.ServeHTTP(w, r)
	})
}

// waitAccepted waits until no Accept is in progress and every accepted
// connection has had its first request handed to a handler (or closed),
// at most max and until ctx ends: a client that connects and sends
// nothing is not waited for beyond that. The listener is closed first,
// or an Accept blocked on it holds the wait for the whole of max.
func (g *acceptGate) waitAccepted(ctx context.Context, max time.Duration) {
	t := time.NewTimer(max)
	defer t.Stop()
	for {
		g.mu.Lock()
		if len(g.pending) == 0 && g.accepting == 0 {
			g.mu.Unlock()
			return
		}
		if g.changed == nil {
			g.changed = make(chan struct{})
		}
		ch := g.changed
		g.mu.Unlock()
		if g.onWait != nil {
			g.onWait()
		}
		select {
		case <-ch:
		case <-t.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// drain stops srv serving gl, answering first what was already
// accepted: it closes the listener, waits for the accepted connections'
// first requests to reach a handler (at most srv.ReadHeaderTimeout), then
// shuts srv down, which waits for the requests in flight.
func (g *acceptGate) drain(ctx context.Context, srv *http.Server, gl net.Listener) error {
	gl.Close()
	g.waitAccepted(ctx, srv.ReadHeaderTimeout)
	return srv.Shutdown(ctx)
}

// drained is an http.Server serving a listener of its own gate (listen),
// so that gate.drain stops it answering what it accepted.
type drained struct {
	srv  *http.Server
	gate acceptGate
	ln   net.Listener
}
