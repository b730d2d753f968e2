package tui

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/firstrender/firstrender/httpcache/admin"
)

// EventSource is the optional part of a Source that streams what happens
// on the server (GET events): stores, purges, evictions, disables and
// enables, and a figures sample once a second. *admin.Client has it.
//
// While a stream is open the TUI stops polling Stats (the samples carry
// them) and applies the changes to the visible rows as they come; when the
// source has no stream, or the stream drops, it polls as before and tries
// to reopen the stream with a backoff. The stream must end (Next fail)
// once ctx is done.
type EventSource interface {
	Events(ctx context.Context) (*admin.EventStream, error)
}

var _ EventSource = (*admin.Client)(nil)

// eventReader is what the model reads events from: *admin.EventStream, or
// a test's fake. Next must return once the context the reader was opened
// with is done.
type eventReader interface {
	Next() (admin.Event, error)
	Close() error
}

// eventOpener lets tests feed events without HTTP; a Source that has it
// wins over EventSource.
type eventOpener interface {
	openEvents(ctx context.Context) (eventReader, error)
}

// eventsOf returns how to open src's event stream, or nil when it has none.
func eventsOf(src Source) func(ctx context.Context) (eventReader, error) {
	if o, ok := src.(eventOpener); ok {
		return o.openEvents
	}
	if es, ok := src.(EventSource); ok {
		return func(ctx context.Context) (eventReader, error) {
			s, err := es.Events(ctx)
			if err != nil {
				return nil, err
			}
			if s == nil {
				return nil, errors.New("no event stream")
			}
			return s, nil
		}
	}
	return nil
}

// maxEventBatch bounds the events one message carries to Update.
const maxEventBatch = 256

// eventPipe is one open stream: a goroutine reads it into ch, a bounded
// buffer, and never waits for the TUI. When ch is full the event is
// counted in lost instead, and the model resynchronises (stats and the
// visible page) when it learns of it. ch is closed when the stream ends;
// err then says why.
type eventPipe struct {
	ch     chan admin.Event
	lost   atomic.Int64
	cancel context.CancelFunc

	mu  sync.Mutex
	err error
}

func (p *eventPipe) setErr(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.err = err
}

func (p *eventPipe) failure() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// pump reads r into p until the stream ends or p is cancelled. It runs on
// its own goroutine and never blocks on the TUI.
func (p *eventPipe) pump(r eventReader) {
	defer close(p.ch)
	defer r.Close()
	for {
		ev, err := r.Next()
		if err != nil {
			p.setErr(err)
			return
		}
		select {
		case p.ch <- ev:
		default:
			p.lost.Add(1)
		}
		if ev.Type == "dropped" {
			// The server disconnects a reader that fell behind.
			p.setErr(errors.New("the server dropped the event stream: " + ev.Reason))
			return
		}
	}
}

// streamState is the model's view of the event stream.
type streamState struct {
	open     func(ctx context.Context) (eventReader, error) // nil: the source has none
	gen      uint64                                         // the current attempt; replies of others are dropped
	pipe     *eventPipe                                     // the live stream (nil when none)
	opening  bool
	off      bool // the server has no event stream: polling only
	failures int
	retryAt  time.Time
	lastErr  error
	received int64 // events applied since start
	lost     int64 // events lost to a full buffer since start
	resyncs  int   // resynchronisations after a loss or a drop
}

func (s *streamState) live() bool { return s.pipe != nil }

type (
	// streamOpenMsg answers an attempt to open the stream.
	streamOpenMsg struct {
		gen  uint64
		pipe *eventPipe
		err  error
	}
	// eventsMsg carries what the stream delivered since the last one.
	eventsMsg struct {
		gen  uint64
		evs  []admin.Event
		lost int64
		end  bool  // the stream ended after evs
		err  error // why it ended
	}
)

// openStreamCmd starts an attempt to open the stream. The open is bounded
// by the call timeout; the stream itself lives until m.ctx ends or the
// model stops it.
func (m *Model) openStreamCmd() tea.Cmd {
	s := &m.stream
	s.gen++
	s.opening = true
	gen, open, base, timeout, buf := s.gen, s.open, m.ctx, m.opts.Timeout, m.opts.EventBuffer
	return func() tea.Msg {
		ctx, cancel := context.WithCancel(base)
		timer := time.AfterFunc(timeout, cancel)
		r, err := open(ctx)
		if !timer.Stop() && err == nil {
			r.Close()
			err = context.DeadlineExceeded
		}
		if err != nil {
			cancel()
			return streamOpenMsg{gen: gen, err: err}
		}
		p := &eventPipe{ch: make(chan admin.Event, buf), cancel: cancel}
		go p.pump(r)
		return streamOpenMsg{gen: gen, pipe: p}
	}
}

// waitEvents blocks (in its command's goroutine, never in Update) until
// the pipe delivers, then takes what else is buffered, up to a batch.
func waitEvents(gen uint64, p *eventPipe) tea.Cmd {
	return func() tea.Msg {
		ev, ok := <-p.ch
		if !ok {
			return eventsMsg{gen: gen, end: true, err: p.failure(), lost: p.lost.Swap(0)}
		}
		msg := eventsMsg{gen: gen, evs: []admin.Event{ev}}
	drain:
		for len(msg.evs) < maxEventBatch {
			select {
			case ev, ok := <-p.ch:
				if !ok {
					msg.end, msg.err = true, p.failure()
					break drain
				}
				msg.evs = append(msg.evs, ev)
			default:
				break drain
			}
		}
		msg.lost = p.lost.Swap(0)
		return msg
	}
}

// recvCmd is the next wait on the live pipe.
func (m *Model) recvCmd() tea.Cmd {
	return m.recv(waitEvents(m.stream.gen, m.stream.pipe))
}

// stopStream closes the live stream, if any; its goroutines end.
func (m *Model) stopStream() {
	s := &m.stream
	if s.pipe != nil {
		s.pipe.cancel()
		s.pipe = nil
	}
	s.gen++ // whatever is in flight for the old one is dropped
	s.opening = false
}

// streamDue reports whether the heartbeat should try to open the stream.
func (m *Model) streamDue(now time.Time) bool {
	s := &m.stream
	return s.open != nil && !s.off && s.pipe == nil && !s.opening && !now.Before(s.retryAt)
}

func (m *Model) streamBackoff(err error) {
	s := &m.stream
	s.failures++
	s.lastErr = err
	backoff := time.Second << min(s.failures-1, 6)
	if backoff > m.opts.MaxRetry {
		backoff = m.opts.MaxRetry
	}
	s.retryAt = m.now().Add(backoff)
}

func (m *Model) onStreamOpen(msg streamOpenMsg) tea.Cmd {
	s := &m.stream
	if msg.gen != s.gen {
		if msg.pipe != nil {
			msg.pipe.cancel()
		}
		return nil
	}
	s.opening = false
	if msg.err != nil {
		var ae *admin.Error
		if errors.As(msg.err, &ae) && (ae.Status == 404 || ae.Status == 501 || ae.Code == "not_found") {
			s.off = true // an API without GET events: poll
		}
		m.streamBackoff(msg.err)
		return nil
	}
	s.pipe, s.failures, s.lastErr = msg.pipe, 0, nil
	return m.recvCmd()
}

func (m *Model) onEvents(msg eventsMsg) tea.Cmd {
	s := &m.stream
	if msg.gen != s.gen || s.pipe == nil {
		return nil
	}
	var cmds []tea.Cmd
	for i := range msg.evs {
		if c := m.applyEvent(&msg.evs[i]); c != nil {
			cmds = append(cmds, c)
		}
	}
	s.received += int64(len(msg.evs))
	resync := msg.lost > 0
	s.lost += msg.lost
	if msg.end {
		s.pipe.cancel()
		s.pipe = nil
		err := msg.err
		if err == nil {
			err = errors.New("the event stream ended")
		}
		m.streamBackoff(err)
		resync = true
	} else {
		cmds = append(cmds, m.recvCmd())
	}
	if resync {
		// Something happened that the TUI did not see: ask again.
		s.resyncs++
		m.list.dirty = true
		if m.pending[reqStats].id == 0 {
			cmds = append(cmds, m.statsCmd())
		}
	}
	if c := m.refreshIfDirty(resync); c != nil {
		cmds = append(cmds, c)
	}
	return tea.Batch(cmds...)
}

// applyEvent makes one event's change to the model.
func (m *Model) applyEvent(ev *admin.Event) tea.Cmd {
	switch ev.Type {
	case "stats":
		if ev.Stats != nil {
			st := *ev.Stats
			return m.applyStats(&st)
		}
	case "purge":
		return m.applyPurgeEvent(ev)
	case "evict":
		k, v := ev.Key, ev.Variant
		return m.dropRows(func(e *admin.Entry) bool { return e.Key == k && e.Variant == v }, false)
	case "disable", "enable":
		return m.applyDisable(ev)
	case "store":
		if m.affectsView(ev.Key) {
			m.list.dirty = true
		}
	}
	return nil
}

// applyPurgeEvent removes the rows a purge (by anyone) took. A purge whose
// selector cannot be matched here (a page URL, a cut key list, a soft or
// failed purge) makes the visible page refresh instead.
func (m *Model) applyPurgeEvent(ev *admin.Event) tea.Cmd {
	rec := ev.Purge
	if rec == nil {
		m.list.dirty = true
		return nil
	}
	sel := rec.Selector
	if rec.Error != "" || sel.Soft {
		m.list.dirty = true
		return nil
	}
	var match func(*admin.Entry) bool
	switch {
	case sel.Key != "" || (sel.URL != "" && ev.Key != ""):
		k := sel.Key
		if k == "" {
			k = ev.Key
		}
		match = func(e *admin.Entry) bool { return e.Key == k }
	case len(sel.Keys) > 0:
		keys := sel.Keys
		if last := keys[len(keys)-1]; strings.HasPrefix(last, "... ") {
			keys = keys[:len(keys)-1] // the audit record lists only the first keys
			m.list.dirty = true
		}
		set := make(map[string]struct{}, len(keys))
		for _, k := range keys {
			set[k] = struct{}{}
		}
		match = func(e *admin.Entry) bool { _, ok := set[e.Key]; return ok }
	case sel.Prefix != "":
		p := sel.Prefix
		match = func(e *admin.Entry) bool { return strings.HasPrefix(e.Key, p) }
	case sel.Tag != "":
		t := sel.Tag
		match = func(e *admin.Entry) bool { return hasString(e.Tags, t) }
	case sel.All:
		match = func(*admin.Entry) bool { return true }
	default:
		m.list.dirty = true
		return nil
	}
	return m.dropRows(match, true)
}

// applyDisable marks or unmarks a resident row; a row that no longer
// matches the "disabled" filter leaves the list.
func (m *Model) applyDisable(ev *admin.Event) tea.Cmd {
	l := &m.list
	reason := ""
	if ev.Type == "disable" {
		reason = ev.Reason
		if reason == "" {
			reason = "disabled"
		}
	}
	found := false
	for i := 0; i < l.win.len(); i++ {
		if e := l.win.row(i); e.Key == ev.Key && e.Variant == ev.Variant {
			e.Disabled = reason
			found = true
		}
	}
	if l.f.Disabled && reason == "" && found {
		k, v := ev.Key, ev.Variant
		return m.dropRows(func(e *admin.Entry) bool { return e.Key == k && e.Variant == v }, false)
	}
	if !found && m.affectsView(ev.Key) {
		l.dirty = true // a disabled row may now match the filter
	}
	return nil
}

// affectsView reports whether a change to key can change the rows on
// screen: it sorts among them, or before them at the list's start, or
// after them at its end (or the list is empty), and it passes the key
// part of the filter.
func (m *Model) affectsView(key string) bool {
	l := &m.list
	if !l.loaded || l.resetting {
		return false // the load under way sees it
	}
	if l.f.Prefix != "" && !strings.HasPrefix(key, l.f.Prefix) {
		return false
	}
	if l.f.Contains != "" && !strings.Contains(key, l.f.Contains) {
		return false
	}
	n := l.win.len()
	if n == 0 {
		return true
	}
	lastVis := min(l.top+m.listRows(), n) - 1
	first, last := l.win.row(l.top).Key, l.win.row(lastVis).Key
	switch {
	case key >= first && key <= last:
		return true
	case key < first:
		return l.top == 0 && l.win.atStart()
	default:
		return lastVis == n-1 && l.win.atEnd()
	}
}

// refreshIfDirty refreshes the visible page when an event left it out of
// date, at most once a second (force: whatever the last refresh).
func (m *Model) refreshIfDirty(force bool) tea.Cmd {
	l := &m.list
	if !l.dirty || !l.loaded || l.resetting || m.pending[reqList].id != 0 {
		return nil
	}
	if !force && m.now().Sub(m.lastRefresh) < time.Second {
		return nil
	}
	return m.refreshCmd()
}
