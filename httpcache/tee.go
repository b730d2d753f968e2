package httpcache

import (
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"time"
)

func (p *Proxy) newTeeBody(resp *http.Response, ex *exchange) *teeBody {
	t := new(teeBody)
	p.initTeeBody(t, resp, ex)
	return t
}

// initTeeBody makes t (a zero teeBody) pass resp's body through for ex,
// keeping no copy: the idle timeout and, for a client's response, the
// relayed bytes' count.
func (p *Proxy) initTeeBody(t *teeBody, resp *http.Response, ex *exchange) {
	*t = teeBody{rc: resp.Body, max: -1, idle: p.cfg.OriginIdleTimeout, expect: resp.ContentLength}
	if p.met != nil && !ex.background {
		t.counted = p.met.originBytes // served to a client
	}
	switch {
	case ex.call.hdrTimer != nil:
		// The header timer (rewrite), stopped by modifyResponse before
		// any body is wrapped, does what the idle timer does: re-armed,
		// it saves a timer and a closure per response. A second tee of
		// the same exchange (a spliced body after inspectNow's) comes
		// after the first finished, which stopped it.
		t.timer = ex.call.hdrTimer
		t.timer.Reset(p.cfg.OriginIdleTimeout)
	case ex.call.cancel != nil:
		t.timer = time.AfterFunc(p.cfg.OriginIdleTimeout, func() {
			ex.call.timedOut.Store(true)
			ex.call.cancel()
		})
	}
}

// wrapBody makes resp.Body enforce the origin idle timeout and, when ex's
// fill has a job whose body is still to come, copy the body for storing
// while it streams to the client (within the job's MaxBuffered share).
func (p *Proxy) wrapBody(resp *http.Response, ex *exchange) {
	var job *fillJob
	f := ex.fill
	if f != nil && f.job != nil && !f.job.inspected {
		job = f.job
	}
	if resp.Body == nil || resp.Body == http.NoBody && job == nil {
		return
	}
	if _, ok := resp.Body.(*memBody); ok {
		return // read already (inspectNow): no idle timeout, counted
	}
	t := p.newTeeBody(resp, ex)
	if job != nil {
		t.max = p.cfg.MaxObjectSize
		t.budget, t.limit = &p.buffered, p.cfg.MaxBuffered
		if f.prepaid > 0 {
			t.held, t.prepaid = f.prepaid, true
		}
		if resp.ContentLength > 0 {
			t.buf = make([]byte, 0, resp.ContentLength)
		}
		t.onComplete = func(body []byte) {
			// Stored by f.finish, when the handler is done writing.
			f.complete, f.body = true, body
		}
		t.onAbort = func() {
			if p.met != nil {
				p.met.aborted.Inc()
			}
		}
	}
	resp.Body = t
}

// teeBody passes an origin body through while keeping a copy of it (up
// to max bytes; max < 0 keeps nothing). onComplete runs once, with the
// copy, when the body ended cleanly (EOF with the announced length);
// a read error, an early Close or an overflow discard the copy.
type teeBody struct {
	rc         io.ReadCloser
	buf        []byte
	max        int64
	expect     int64
	n          int64
	idle       time.Duration
	timer      *time.Timer
	over       bool
	finished   bool
	onComplete func([]byte)
	onAbort    func()
	counted    interface{ Add(float64) } // bytes relayed, added at the end
	budget     *atomic.Int64             // bytes buffered by all transfers (Config.MaxBuffered)
	limit      int64
	held       int64 // this transfer's share of budget
	prepaid    bool  // held was reserved up front for the whole (known) length
	one        [1]byte
}

// readExactly reads exactly n bytes and then EOF from t, into a buffer
// from getBody: the body (capacity clipped to n, so an append elsewhere
// cannot write into the rest of the buffer) and the buffer's handle for
// putBody (nil: not pooled). On an error the buffer is recycled already.
func (t *teeBody) readExactly(n int64) (_ []byte, _ *[]byte, err error) {
	b, bp := getBody(int(n))
	defer func() {
		if err != nil {
			putBody(bp)
		}
	}()
	if _, err := io.ReadFull(t, b); err != nil {
		return nil, nil, err
	}
	for {
		m, err := t.Read(t.one[:])
		if m > 0 {
			return nil, nil, errors.New("body longer than its Content-Length")
		}
		if err == io.EOF {
			return b[:n:n], bp, nil
		}
		if err != nil {
			return nil, nil, err
		}
	}
}

// memBody is the body of an inspected response on its way to the
// client: the bytes inspectNow read (it only reads them). The bytes
// relayed are added to counted (if set) once, at EOF or Close.
type memBody struct {
	b       []byte
	off     int
	counted interface{ Add(float64) }
	done    bool
}

func (m *memBody) Read(p []byte) (int, error) {
	n := copy(p, m.b[m.off:])
	m.off += n
	if m.off == len(m.b) {
		m.count()
		return n, io.EOF
	}
	return n, nil
}

func (m *memBody) Close() error {
	m.count()
	return nil
}

func (m *memBody) count() {
	if !m.done {
		m.done = true
		if m.counted != nil {
			m.counted.Add(float64(m.off))
		}
	}
}

func (t *teeBody) release() {
	if t.budget != nil && t.held > 0 {
		t.budget.Add(-t.held)
		t.held = 0
	}
}

func (t *teeBody) Read(b []byte) (int, error) {
	if t.timer != nil && !t.finished {
		// Not once finished: net/http returns the last bytes of a body
		// of known length with io.EOF, and a read after that (the check
		// for a longer body in readExactly) re-armed the idle timer,
		// which then kept the exchange, its fill and entry reachable for
		// OriginIdleTimeout (30 s) after the response: under load, a
		// heap of every recent miss for the GC to mark.
		t.timer.Reset(t.idle)
	}
	n, err := t.rc.Read(b)
	t.n += int64(n)
	if t.max >= 0 && !t.over && n > 0 {
		over := int64(len(t.buf)+n) > t.max
		if !over && t.budget != nil && !t.prepaid && t.budget.Add(int64(n)) > t.limit {
			t.budget.Add(-int64(n))
			over = true
		}
		if over {
			t.over = true
			t.buf = nil
			t.release()
		} else {
			if !t.prepaid {
				t.held += int64(n)
			}
			t.buf = append(t.buf, b[:n]...)
		}
	}
	if err == io.EOF {
		t.finish(t.expect < 0 || t.n == t.expect)
	} else if err != nil {
		t.finish(false)
	}
	return n, err
}

func (t *teeBody) finish(complete bool) {
	if t.finished {
		return
	}
	t.finished = true
	t.release()
	if t.counted != nil {
		t.counted.Add(float64(t.n))
	}
	if t.timer != nil {
		t.timer.Stop()
	}
	if t.max < 0 {
		return
	}
	if complete && !t.over && t.onComplete != nil {
		t.onComplete(t.buf)
	} else if t.onAbort != nil {
		t.onAbort()
	}
	t.buf = nil
}

func (t *teeBody) Close() error {
	t.finish(false)
	return t.rc.Close()
}
