package livesocket

import (
	"bufio"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// corkSmall: messages smaller than this are batched.
const corkSmall = 2 << 10

// corkMax is the most a corked connection buffers before writing.
const corkMax = 16 << 10

var corkPool = sync.Pool{New: func() any { b := make([]byte, 0, corkMax); return &b }}

// corkConn batches the data frames a pump writes to this connection while
// the pump has more messages already read from the other side, and writes
// them in one system call when the pump is about to wait for the other side
// (its Read) or the batch is full. Small messages in a burst (LiveView diffs)
// then cost one write instead of one each. Anything written uncorked
// (control frames, big messages) goes out at once, after what is batched,
// so order is kept; a control frame that happens to be written while the
// pump is corking joins the batch, which is written before the pump waits.
// The batch buffer is pooled: an idle socket holds none.
//
// It also passes a write deadline on to the connection only when it
// changes (see SetWriteDeadline).
type corkConn struct {
	net.Conn
	peer *corkConn   // Read flushes the peer's batch first; set before the pumps start
	cork atomic.Bool // set by the pump around a message's final write

	mu  sync.Mutex
	buf *[]byte // nil when empty
	err error   // sticky write error
	// wd is the write deadline last set on Conn, valid when wdSet.
	wd    time.Time
	wdSet bool
}

// SetWriteDeadline sets Conn's write deadline unless t is the one set
// last. gorilla sets the connection's write deadline before every frame
// it writes (to the Conn's, which the pumps move only every
// WriteTimeout/2), and each call re-arms a runtime timer even when t is
// unchanged (internal/poll turns t into a duration from now): one timer
// update per relayed message, for nothing.
func (c *corkConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.wdSet && t.Equal(c.wd) {
		return nil
	}
	err := c.Conn.SetWriteDeadline(t)
	c.wd, c.wdSet = t, err == nil
	return err
}

// SetDeadline sets both deadlines of Conn (gorilla's client handshake
// uses it) and remembers the write deadline it set.
func (c *corkConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.Conn.SetDeadline(t)
	c.wd, c.wdSet = t, err == nil
	return err
}

func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if c.cork.Load() && len(p) < corkMax {
		if c.buf != nil && len(*c.buf)+len(p) > corkMax {
			if err := c.flushLocked(); err != nil {
				return 0, err
			}
		}
		if c.buf == nil {
			c.buf = corkPool.Get().(*[]byte)
		}
		*c.buf = append(*c.buf, p...)
		return len(p), nil
	}
	if err := c.flushLocked(); err != nil {
		return 0, err
	}
	n, err := c.Conn.Write(p)
	if err != nil {
		c.err = err
	}
	return n, err
}

func (c *corkConn) flushLocked() error {
	if c.buf == nil {
		return nil
	}
	b := c.buf
	c.buf = nil
	_, err := c.Conn.Write(*b)
	*b = (*b)[:0]
	corkPool.Put(b)
	if err != nil {
		c.err = err
	}
	return err
}

// Flush writes the batch. On error the connection is closed, so the pump
// reading it ends; the error is also returned by later writes.
func (c *corkConn) Flush() error {
	c.mu.Lock()
	err := c.flushLocked()
	c.mu.Unlock()
	if err != nil {
		c.Conn.Close()
	}
	return err
}

func (c *corkConn) Read(p []byte) (int, error) {
	if c.peer != nil {
		c.peer.Flush()
	}
	return c.Conn.Read(p)
}

// hijackCork hands gorilla's Upgrader a corkConn instead of the raw
// hijacked connection.
type hijackCork struct {
	http.ResponseWriter
	conn *corkConn
}

func (h *hijackCork) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	h.conn = &corkConn{Conn: c}
	return h.conn, brw, nil
}
