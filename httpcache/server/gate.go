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

// acceptGate tracks the public listener's connections that were accepted
// but whose first request has not reached a handler yet, so the shutdown
// can wait for them before http.Server.Shutdown, which closes such a
// connection unanswered once its request has been read. Its methods are
// the http.Server's ConnContext and ConnState hooks and a handler
// wrapper; all are safe for concurrent use.
type acceptGate struct {
	mu      sync.Mutex
	pending map[net.Conn]struct{}
	changed chan struct{} // closed (and replaced) whenever pending shrinks
}

type gateConnKey struct{}

// gateConn is a connection in its context: settled once its first
// request reached a handler, so later requests on it take no lock.
type gateConn struct {
	c       net.Conn
	settled atomic.Bool
}

func (g *acceptGate) connContext(ctx context.Context, c net.Conn) context.Context {
	// hop.ConnContext lets the proxy send a response from memory in one
	// write (hop.CorkWrites).
	return context.WithValue(hop.ConnContext(ctx, c), gateConnKey{}, &gateConn{c: c})
}

func (g *acceptGate) connState(c net.Conn, st http.ConnState) {
	switch st {
	case http.StateNew:
		g.mu.Lock()
		if g.pending == nil {
			g.pending = map[net.Conn]struct{}{}
		}
		g.pending[c] = struct{}{}
		g.mu.Unlock()
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

// waitAccepted waits until every accepted connection has had its first
// request handed to a handler (or closed), at most max and until ctx
// ends: a client that connects and sends nothing is not waited for
// beyond that.
func (g *acceptGate) waitAccepted(ctx context.Context, max time.Duration) {
	t := time.NewTimer(max)
	defer t.Stop()
	for {
		g.mu.Lock()
		if len(g.pending) == 0 {
			g.mu.Unlock()
			return
		}
		if g.changed == nil {
			g.changed = make(chan struct{})
		}
		ch := g.changed
		g.mu.Unlock()
		select {
		case <-ch:
		case <-t.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// onceCloseListener lets Run close the public listener before
// http.Server.Shutdown closes it again: the second Close is a no-op
// instead of an error.
type onceCloseListener struct {
	net.Listener
	once sync.Once
	err  error
}

func (l *onceCloseListener) Close() error {
	l.once.Do(func() { l.err = l.Listener.Close() })
	return l.err
}
