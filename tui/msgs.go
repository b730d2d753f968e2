package tui

import (
	"context"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/firstrender/firstrender/httpcache/admin"
)

// reqKind names a slot of in-flight calls: the model waits for at most one
// reply per slot, identified by its request id.
type reqKind int

const (
	reqStats reqKind = iota
	reqList
	reqDetail
	reqDecode
	reqPurge
	reqCluster
	numReqs
)

var reqNames = [numReqs]string{"stats", "page", "entry", "token", "purge", "cluster"}

// call is the in-flight request of one slot (id 0: none).
type call struct {
	id      uint64
	started time.Time
	slow    bool
}

// fetchDir says what a list reply does to the window.
type fetchDir int

const (
	dirFirst   fetchDir = iota // replaces the window by the first page (g, new filter)
	dirLast                    // replaces the window by the last page (G)
	dirNext                    // appends after the last page
	dirPrev                    // prepends before the first page
	dirRefresh                 // replaces the page under the cursor by a fresh copy
)

// Messages. Every reply carries the id of the call it answers; Update drops
// a reply whose id is not the one its slot waits for.
type (
	statsMsg struct {
		id    uint64
		stats *admin.Stats
		err   error
	}
	listMsg struct {
		id   uint64
		dir  fetchDir
		from origin
		page *admin.Page
		err  error
	}
	detailMsg struct {
		id     uint64
		detail *admin.EntryDetail
		err    error
	}
	decodeMsg struct {
		id  uint64
		tok *admin.Token
		err error
	}
	purgeMsg struct {
		id  uint64
		dry bool
		res *admin.PurgeResult
		err error
	}
	// heartbeatMsg is the once-a-second tick: stats poll (one a second),
	// retry countdown,
	// decode countdown, periodic refresh of the visible page.
	heartbeatMsg struct{}
	// slowMsg says a call has been in flight for SlowAfter.
	slowMsg struct {
		kind reqKind
		id   uint64
	}
	// spinMsg advances the spinner while a slow call is in flight.
	spinMsg struct{}
)

// start registers a call in slot k and returns the command that runs it
// (with the call timeout) plus the timer that marks it slow.
func (m *Model) start(k reqKind, timeout time.Duration, run func(ctx context.Context, id uint64) tea.Msg) tea.Cmd {
	m.seq++
	id := m.seq
	m.pending[k] = call{id: id, started: m.now()}
	base := m.ctx
	do := func() tea.Msg {
		ctx, cancel := context.WithTimeout(base, timeout)
		defer cancel()
		return run(ctx, id)
	}
	return tea.Batch(do, m.after(m.opts.SlowAfter, slowMsg{kind: k, id: id}))
}

// accept reports whether id answers the call slot k waits for, and clears
// the slot if so. A late or superseded reply is counted and dropped.
func (m *Model) accept(k reqKind, id uint64) bool {
	if id == 0 || m.pending[k].id != id {
		m.dropped++
		return false
	}
	m.pending[k] = call{}
	return true
}

// forget stops waiting on slot k (the screen that asked was left); its
// reply, if it comes, is dropped.
func (m *Model) forget(k reqKind) { m.pending[k] = call{} }

func (m *Model) statsCmd() tea.Cmd {
	src := m.src
	return m.start(reqStats, m.opts.Timeout, func(ctx context.Context, id uint64) tea.Msg {
		s, err := src.Stats(ctx)
		if err != nil {
			return statsMsg{id: id, err: err}
		}
		return statsMsg{id: id, stats: &s}
	})
}

func (m *Model) listCmd(dir fetchDir, from origin) tea.Cmd {
	src := m.src
	q := m.list.f.query()
	q.Limit = m.opts.PageSize
	q.After, q.Before, q.Last = from.after, from.before, from.last
	return m.start(reqList, m.opts.Timeout, func(ctx context.Context, id uint64) tea.Msg {
		p, err := src.List(ctx, q)
		if err != nil {
			return listMsg{id: id, dir: dir, from: from, err: err}
		}
		return listMsg{id: id, dir: dir, from: from, page: &p}
	})
}

func (m *Model) detailCmd(key, variant string) tea.Cmd {
	src := m.src
	return m.start(reqDetail, m.opts.Timeout, func(ctx context.Context, id uint64) tea.Msg {
		d, err := src.Entry(ctx, key, variant, true)
		if err != nil {
			return detailMsg{id: id, err: err}
		}
		return detailMsg{id: id, detail: &d}
	})
}

func (m *Model) decodeCmd(token string) tea.Cmd {
	src := m.src
	return m.start(reqDecode, m.opts.Timeout, func(ctx context.Context, id uint64) tea.Msg {
		t, err := src.Decode(ctx, token)
		if err != nil {
			return decodeMsg{id: id, err: err}
		}
		return decodeMsg{id: id, tok: &t}
	})
}

func (m *Model) purgeCmd(req admin.PurgeRequest, dry bool) tea.Cmd {
	src := m.src
	req.DryRun = dry
	timeout := m.opts.PurgeTimeout
	if dry {
		timeout = m.opts.Timeout
	}
	return m.start(reqPurge, timeout, func(ctx context.Context, id uint64) tea.Msg {
		r, err := src.Purge(ctx, req)
		if err != nil {
			return purgeMsg{id: id, dry: dry, err: err}
		}
		return purgeMsg{id: id, dry: dry, res: &r}
	})
}

// defaultAfter is the real timer; tests replace Model.after to hold timers.
func defaultAfter(d time.Duration, msg tea.Msg) tea.Cmd {
	return tea.Tick(d, func(time.Time) tea.Msg { return msg })
}
