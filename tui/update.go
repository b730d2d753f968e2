package tui

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/spinner"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/firstrender/firstrender/httpcache/admin"
)

// Update handles one message. It never blocks: I/O happens in the
// commands it returns.
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	cmd := m.update(msg)
	m.syncKeys()
	return m, cmd
}

func (m *Model) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case initMsg:
		cmds := []tea.Cmd{m.statsCmd(), m.loadReset(dirFirst), m.after(time.Second, heartbeatMsg{})}
		if m.streamDue(m.now()) {
			cmds = append(cmds, m.openStreamCmd())
		}
		return tea.Batch(cmds...)
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.help.Width = msg.Width
		m.scrollIntoView()
		m.relayout()
		return m.ensureWindow()
	case heartbeatMsg:
		return m.heartbeat()
	case slowMsg:
		if msg.id == 0 || m.pending[msg.kind].id != msg.id {
			return nil
		}
		m.pending[msg.kind].slow = true
		if !m.spinning {
			m.spinning = true
			return m.after(m.spin.Spinner.FPS, spinMsg{})
		}
		return nil
	case spinMsg:
		if m.slowCall() == "" {
			m.spinning = false
			return nil
		}
		m.spin, _ = m.spin.Update(spinner.TickMsg{ID: m.spin.ID()})
		return m.after(m.spin.Spinner.FPS, spinMsg{})
	case statsMsg:
		return m.onStats(msg)
	case listMsg:
		return m.onList(msg)
	case detailMsg:
		return m.onDetail(msg)
	case decodeMsg:
		return m.onDecode(msg)
	case purgeMsg:
		return m.onPurge(msg)
	case streamOpenMsg:
		return m.onStreamOpen(msg)
	case eventsMsg:
		return m.onEvents(msg)
	case clusterMsg:
		return m.onCluster(msg)
	case tea.KeyMsg:
		if msg.Type == tea.KeyRunes && len(msg.Runes) > 1 && !msg.Paste {
			return m.typeahead(msg)
		}
		return m.onKey(msg)
	case tea.MouseMsg:
		return m.onMouse(msg)
	}
	return nil
}

// slowCall names a slow call in flight ("" when none).
func (m *Model) slowCall() string {
	for _, k := range []reqKind{reqList, reqDetail, reqDecode, reqPurge, reqCluster, reqStats} {
		if m.pending[k].id != 0 && m.pending[k].slow {
			return reqNames[k]
		}
	}
	return ""
}

func (m *Model) setStatus(format string, args ...any) {
	m.status = statusLine{text: fmt.Sprintf(format, args...)}
}

func (m *Model) setErr(err error) {
	m.status = statusLine{text: err.Error(), err: true}
}

// heartbeat runs once a second: the Stats poll (or the reconnection
// attempt when its countdown ran out) unless the event stream brings the
// figures, the (re)opening of the event stream, the refresh of the visible
// page (periodic, or because an event touched it), and a redraw for the
// countdowns.
func (m *Model) heartbeat() tea.Cmd {
	now := m.now()
	cmds := []tea.Cmd{m.after(time.Second, heartbeatMsg{})}
	if !m.stream.live() && m.pending[reqStats].id == 0 && (m.conn.failures == 0 || !now.Before(m.conn.retryAt)) {
		cmds = append(cmds, m.statsCmd())
	}
	if m.streamDue(now) {
		cmds = append(cmds, m.openStreamCmd())
	}
	if c := m.refreshIfDirty(true); c != nil {
		cmds = append(cmds, c)
	} else if m.opts.Refresh > 0 && m.top() == scrList && m.dialog == nil && m.prompt == promptNone &&
		m.conn.ok && m.list.loaded && m.pending[reqList].id == 0 && !m.list.resetting &&
		now.Sub(m.lastRefresh) >= m.opts.Refresh {
		cmds = append(cmds, m.refreshCmd())
	}
	if m.top() == scrDecode {
		m.relayout() // the countdown moves
	}
	if m.top() == scrCluster && m.pending[reqCluster].id == 0 && (m.clus == nil || !m.clus.off) {
		cmds = append(cmds, m.clusterCmd())
	}
	return tea.Batch(cmds...)
}

func (m *Model) onStats(msg statsMsg) tea.Cmd {
	if !m.accept(reqStats, msg.id) {
		return nil
	}
	now := m.now()
	if msg.err != nil || msg.stats == nil {
		err := msg.err
		if err == nil {
			err = errors.New("empty stats reply")
		}
		m.conn.ok = false
		m.conn.failures++
		m.conn.lastErr = err
		backoff := time.Second << min(m.conn.failures-1, 6)
		if backoff > m.opts.MaxRetry {
			backoff = m.opts.MaxRetry
		}
		m.conn.retryAt = now.Add(backoff)
		return nil
	}
	return m.applyStats(msg.stats)
}

// applyStats takes fresh figures, from a poll or the event stream.
func (m *Model) applyStats(s *admin.Stats) tea.Cmd {
	now := m.now()
	wasDown := m.conn.failures > 0
	m.conn.prevStats, m.conn.prevAt = m.conn.stats, m.conn.statsAt
	m.conn.stats, m.conn.statsAt = s, now
	m.conn.ok, m.conn.failures, m.conn.lastErr = true, 0, nil
	m.hist.add(sampleOf(now, s))
	if m.readOnly() {
		m.list.marks = map[string]struct{}{}
		if m.dialog != nil && !m.dialog.running {
			m.dialog = nil
			m.forget(reqPurge)
		}
	}
	if wasDown {
		m.setStatus("reconnected")
		if m.pending[reqList].id == 0 && (m.list.err != nil || !m.list.loaded) {
			return m.loadReset(dirFirst)
		}
	}
	return nil
}

// loadReset asks for the first or last page of the current filter; the
// window is replaced when it comes.
func (m *Model) loadReset(dir fetchDir) tea.Cmd {
	m.list.resetting = true
	m.list.scanned = 0
	m.list.dirty = false
	return m.listCmd(dir, origin{first: dir == dirFirst, last: dir == dirLast})
}

func (m *Model) refreshCmd() tea.Cmd {
	w := &m.list.win
	if w.len() == 0 {
		return m.loadReset(dirFirst)
	}
	m.lastRefresh = m.now()
	m.list.dirty = false
	return m.listCmd(dirRefresh, w.pages[w.pageOf(m.list.cur)].from)
}

func (m *Model) onList(msg listMsg) tea.Cmd {
	if !m.accept(reqList, msg.id) {
		return nil
	}
	l := &m.list
	if msg.err != nil || msg.page == nil {
		err := msg.err
		if err == nil {
			err = errors.New("empty reply")
		}
		l.resetting = false
		l.err = err
		m.setErr(fmt.Errorf("list: %w", err))
		return nil
	}
	p := msg.page
	l.err = nil
	l.total = p.ApproxTotal
	if msg.dir != dirRefresh {
		// A refresh examines records already counted.
		l.scanned += int64(p.Scanned)
	}
	pg := page{items: p.Items, prev: p.Prev, next: p.Next, from: msg.from}
	backward := msg.from.last || msg.from.before != ""
	if msg.from.first || msg.from.fromStart {
		pg.prev = ""
	}
	if msg.from.last || msg.from.toEnd {
		pg.next = ""
	}
	if p.Done {
		if backward {
			pg.prev = ""
		} else {
			pg.next = ""
		}
	}
	if len(pg.items) == 0 {
		// A filtered scan stopped at the server's budget: go on from its
		// cursor, showing the progress, unless it made none.
		cont, was := pg.next, msg.from.after
		if backward {
			cont, was = pg.prev, msg.from.before
		}
		if cont != "" && cont == was {
			l.resetting = false
			l.err = errors.New("the server returned the same cursor again")
			m.setErr(fmt.Errorf("list: %w", l.err))
			return nil
		}
		if cont != "" && msg.dir == dirRefresh {
			// The refresh ran out of scan budget before a match: it
			// proves nothing about the rows shown, which stay.
			return nil
		}
		if cont != "" {
			next := origin{after: cont, fromStart: msg.from.first || msg.from.fromStart}
			if backward {
				next = origin{before: cont, toEnd: msg.from.last || msg.from.toEnd}
			}
			return m.listCmd(msg.dir, next)
		}
		switch msg.dir {
		case dirFirst, dirLast, dirRefresh:
			l.win = window{baseKnown: true}
			l.cur, l.top = 0, 0
			l.loaded, l.resetting = true, false
			m.lastRefresh = m.now()
		case dirNext:
			if n := len(l.win.pages); n > 0 {
				l.win.pages[n-1].next = ""
			}
		case dirPrev:
			if len(l.win.pages) > 0 {
				// Nothing before the first resident row: it is row 1.
				l.win.pages[0].prev = ""
				l.win.base, l.win.baseKnown, l.win.approx = 0, true, false
			}
		}
		return m.ensureWindow()
	}
	rows := m.listRows()
	switch msg.dir {
	case dirFirst:
		w := window{baseKnown: true}
		w.push(pg)
		l.win, l.cur, l.top = w, 0, 0
	case dirLast:
		w := window{}
		w.push(pg)
		if pg.prev == "" {
			w.baseKnown = true
		} else if l.f.isZero() {
			w.base = max(0, l.total-int64(len(pg.items)))
			w.baseKnown, w.approx = true, true
		}
		l.win = w
		l.cur = w.len() - 1
		l.top = max(0, w.len()-rows)
	case dirNext:
		l.win.push(pg)
		for len(l.win.pages) > m.opts.MaxPages && l.top >= len(l.win.pages[0].items) {
			n := l.win.dropHead()
			l.cur -= n
			l.top -= n
		}
	case dirPrev:
		shift := l.win.unshift(pg)
		l.cur += shift
		l.top += shift
		for len(l.win.pages) > m.opts.MaxPages && l.win.len()-len(l.win.pages[len(l.win.pages)-1].items) >= l.top+rows {
			l.win.dropTail()
		}
	case dirRefresh:
		m.replacePage(pg)
	}
	if msg.dir == dirFirst || msg.dir == dirLast {
		l.resetting = false
		m.lastRefresh = m.now()
	}
	l.loaded = true
	m.scrollIntoView()
	return m.ensureWindow()
}

// replacePage puts a refreshed copy of a resident page in its place,
// keeping the cursor on the same entry (or the next one in key order).
// The side of the page its query fixed (the cursor it was asked from)
// stays joined to its neighbour; on the other side, neighbours that may no
// longer join are dropped, to be fetched again when needed.
func (m *Model) replacePage(pg page) {
	l := &m.list
	w := &l.win
	pi := -1
	for i := range w.pages {
		if w.pages[i].from == pg.from {
			pi = i
			break
		}
	}
	if pi < 0 {
		return // the window moved on since the refresh was asked
	}
	var curKey, curVar string
	hadCur := false
	if e := w.row(l.cur); e != nil {
		curKey, curVar, hadCur = e.Key, e.Variant, true
	}
	off := l.cur - l.top
	old := w.pages[pi]
	startFixed := !(pg.from.last || pg.from.before != "")
	before := 0
	for i := 0; i < pi; i++ {
		before += len(w.pages[i].items)
	}
	var pages []page
	base := w.base
	if startFixed {
		pages = append(pages, w.pages[:pi]...)
		pages = append(pages, pg)
		if pg.next == old.next {
			pages = append(pages, w.pages[pi+1:]...)
		}
	} else {
		if pg.prev == old.prev {
			pages = append(pages, w.pages[:pi]...)
		} else {
			base += int64(before + len(old.items) - len(pg.items))
		}
		pages = append(pages, pg)
		pages = append(pages, w.pages[pi+1:]...)
	}
	nw := window{base: base, baseKnown: w.baseKnown, approx: w.approx}
	if len(pages) > 0 && pages[0].prev == "" {
		nw.base, nw.baseKnown, nw.approx = 0, true, false
	}
	for _, p := range pages {
		nw.push(p)
	}
	*w = nw
	if w.len() == 0 {
		l.cur, l.top = 0, 0
		return
	}
	l.cur = w.len() - 1
	if hadCur {
		for i := 0; i < w.len(); i++ {
			e := w.row(i)
			if e.Key > curKey || e.Key == curKey && e.Variant >= curVar {
				l.cur = i
				break
			}
		}
	}
	l.top = max(0, l.cur-off)
}

// ensureWindow fetches the neighbouring page when the cursor comes within
// a margin of a resident end that is not the list's end.
func (m *Model) ensureWindow() tea.Cmd {
	l := &m.list
	if m.pending[reqList].id != 0 || l.resetting || l.win.len() == 0 {
		return nil
	}
	margin := max(m.listRows(), m.opts.PageSize/2)
	if !l.win.atEnd() && l.cur+margin >= l.win.len() {
		return m.listCmd(dirNext, origin{after: l.win.tailCursor()})
	}
	if !l.win.atStart() && l.cur-margin < 0 {
		return m.listCmd(dirPrev, origin{before: l.win.headCursor()})
	}
	return nil
}

// bodyHeight is what is left between the header (2 lines) and the status
// and help lines.
func (m *Model) bodyHeight() int { return max(1, m.height-4) }

// listRows is the number of entry rows the list shows.
func (m *Model) listRows() int { return max(1, m.bodyHeight()-1) }

func (m *Model) scrollIntoView() {
	l := &m.list
	n := l.win.len()
	if n == 0 {
		l.cur, l.top = 0, 0
		return
	}
	l.cur = min(max(l.cur, 0), n-1)
	rows := m.listRows()
	if l.cur < l.top {
		l.top = l.cur
	}
	if l.cur >= l.top+rows {
		l.top = l.cur - rows + 1
	}
	l.top = min(max(l.top, 0), max(0, n-rows))
	if l.cur < l.top {
		l.top = l.cur
	}
}

func (m *Model) moveList(delta int) tea.Cmd {
	if m.list.win.len() == 0 {
		return nil
	}
	m.list.cur += delta
	m.scrollIntoView()
	return m.ensureWindow()
}

// typeahead handles printable keys that bubbletea read together (typed
// ahead while the program was busy, or sent by a script): it reports them
// as one message with several runes, which would match no binding, so
// "/p=1" would lose its "/". Where keys are commands (no prompt open) each
// rune is a key of its own; once one opens a prompt, the rest is its text.
// Text typed into a prompt or a dialog stays one message, as before.
func (m *Model) typeahead(k tea.KeyMsg) tea.Cmd {
	var cmds []tea.Cmd
	for i, r := range k.Runes {
		if m.prompt != promptNone || m.dialog != nil {
			rest := k
			rest.Runes = k.Runes[i:]
			return tea.Batch(append(cmds, m.onKey(rest))...)
		}
		one := tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}, Alt: k.Alt}
		if r == ' ' {
			one.Type = tea.KeySpace
		}
		cmds = append(cmds, m.onKey(one))
	}
	return tea.Batch(cmds...)
}

func (m *Model) onKey(k tea.KeyMsg) tea.Cmd {
	if key.Matches(k, m.keys.Quit) {
		return m.quit()
	}
	if m.prompt != promptNone {
		return m.promptKey(k)
	}
	if m.dialog != nil {
		return m.dialogKey(k)
	}
	if m.showHelp {
		if key.Matches(k, m.keys.Help, m.keys.Back) || k.Type == tea.KeyEsc {
			m.showHelp = false
		}
		return nil
	}
	switch {
	case key.Matches(k, m.keys.Help):
		m.showHelp = true
		return nil
	case key.Matches(k, m.keys.Command):
		m.openPrompt(promptCommand, "")
		return nil
	case key.Matches(k, m.keys.Back):
		return m.back(true)
	}
	switch m.top() {
	case scrList:
		return m.listKey(k)
	case scrDetail:
		return m.detailKey(k)
	case scrDecode:
		return m.decodeKey(k)
	case scrStats:
		if key.Matches(k, m.keys.Refresh) && m.pending[reqStats].id == 0 {
			return m.statsCmd()
		}
		if k.Type == tea.KeyEsc {
			return m.back(false)
		}
	case scrCluster:
		if key.Matches(k, m.keys.Refresh) && m.pending[reqCluster].id == 0 {
			return m.clusterCmd()
		}
		if k.Type == tea.KeyEsc {
			return m.back(false)
		}
	}
	return nil
}

// back leaves the current screen; at the list it quits when quit is set
// (q) and does nothing otherwise (esc).
func (m *Model) back(quit bool) tea.Cmd {
	switch m.top() {
	case scrList:
		if quit {
			return m.quit()
		}
		return nil
	case scrDetail:
		m.forget(reqDetail)
		m.det = nil
	case scrDecode:
		m.forget(reqDecode)
		m.dec = nil
	case scrCluster:
		m.forget(reqCluster)
	}
	m.stack = m.stack[:len(m.stack)-1]
	// Going back to a detail under a decode panel: it is still there.
	if m.top() == scrDetail && m.det == nil {
		m.stack = m.stack[:len(m.stack)-1]
	}
	m.relayout()
	if m.top() == scrList {
		return m.ensureWindow()
	}
	return nil
}

// quit ends the program, closing the event stream first.
func (m *Model) quit() tea.Cmd {
	m.quitting = true
	m.stopStream()
	return tea.Quit
}

func (m *Model) push(s screen) {
	if m.top() != s {
		m.stack = append(m.stack, s)
	}
}

func (m *Model) listKey(k tea.KeyMsg) tea.Cmd {
	l := &m.list
	switch {
	case key.Matches(k, m.keys.Down):
		return m.moveList(1)
	case key.Matches(k, m.keys.Up):
		return m.moveList(-1)
	case key.Matches(k, m.keys.PageDown):
		return m.moveList(m.listRows())
	case key.Matches(k, m.keys.PageUp):
		return m.moveList(-m.listRows())
	case key.Matches(k, m.keys.Top):
		if l.win.atStart() && l.win.len() > 0 {
			l.cur = 0
			m.scrollIntoView()
			return m.ensureWindow()
		}
		return m.loadReset(dirFirst)
	case key.Matches(k, m.keys.Bottom):
		if l.win.atEnd() && l.win.len() > 0 {
			l.cur = l.win.len() - 1
			m.scrollIntoView()
			return m.ensureWindow()
		}
		return m.loadReset(dirLast)
	case key.Matches(k, m.keys.Open):
		e := l.win.row(l.cur)
		if l.win.len() == 0 || e == nil {
			return nil
		}
		m.det = &detailState{key: e.Key, variant: e.Variant}
		m.push(scrDetail)
		m.relayout()
		return m.detailCmd(e.Key, e.Variant)
	case key.Matches(k, m.keys.Filter):
		m.openPrompt(promptFilter, l.f.String())
		return nil
	case key.Matches(k, m.keys.ClearFilter):
		return m.clearFilter()
	case key.Matches(k, m.keys.Mark):
		if l.win.len() == 0 {
			return nil
		}
		e := l.win.row(l.cur)
		if _, ok := l.marks[e.Key]; ok {
			delete(l.marks, e.Key)
		} else {
			l.marks[e.Key] = struct{}{}
		}
		return m.moveList(1)
	case key.Matches(k, m.keys.Purge):
		if len(l.marks) > 0 {
			keys := make([]string, 0, len(l.marks))
			for k := range l.marks {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			set := make(map[string]struct{}, len(keys))
			for _, k := range keys {
				set[k] = struct{}{}
			}
			return m.openPurge(admin.PurgeRequest{Keys: keys}, fmt.Sprintf("%d marked keys", len(keys)),
				func(e *admin.Entry) bool { _, ok := set[e.Key]; return ok })
		}
		if l.win.len() == 0 {
			return nil
		}
		e := l.win.row(l.cur)
		return m.openPurgeKey(e.Key)
	case key.Matches(k, m.keys.Refresh):
		if m.pending[reqList].id != 0 {
			return nil
		}
		return m.refreshCmd()
	}
	return nil
}

func (m *Model) openPurgeKey(k string) tea.Cmd {
	return m.openPurge(admin.PurgeRequest{Key: k}, "key "+k+", all variants", func(e *admin.Entry) bool { return e.Key == k })
}

func (m *Model) clearFilter() tea.Cmd {
	l := &m.list
	if l.f.isZero() {
		return nil
	}
	l.f = filter{}
	m.forget(reqList)
	l.resetting = false
	if s := l.saved; s != nil {
		l.win, l.cur, l.top, l.total = s.win, s.cur, s.top, s.total
		l.saved = nil
		l.loaded = true
		m.scrollIntoView()
		return m.refreshCmd()
	}
	l.win = window{}
	l.cur, l.top = 0, 0
	l.loaded = false
	return m.loadReset(dirFirst)
}

func (m *Model) applyFilter(f filter) tea.Cmd {
	l := &m.list
	if f == l.f {
		return nil
	}
	if f.isZero() {
		return m.clearFilter()
	}
	if l.f.isZero() && l.loaded {
		l.saved = &listSnapshot{win: l.win, cur: l.cur, top: l.top, total: l.total}
	}
	l.f = f
	l.win = window{}
	l.cur, l.top = 0, 0
	l.loaded = false
	return m.loadReset(dirFirst)
}

func (m *Model) openPrompt(kind promptKind, value string) {
	m.prompt = kind
	m.input.SetValue(value)
	m.input.CursorEnd()
	m.input.Focus()
	switch kind {
	case promptFilter:
		m.input.Placeholder = "tag:blog status:2xx findings disabled prefix:https://… or text"
	case promptCommand:
		m.input.Placeholder = "decode TOKEN · purge prefix P · purge tag T · purge all · stats"
		if m.hasCluster() {
			m.input.Placeholder += " · cluster"
		}
	case promptSearch:
		m.input.Placeholder = "text in the body"
	case promptDecode:
		m.input.Placeholder = "paste a data-phx-session / data-phx-static token"
	}
}

func (m *Model) closePrompt() {
	m.prompt = promptNone
	m.input.Blur()
	m.input.SetValue("")
}

func (m *Model) promptKey(k tea.KeyMsg) tea.Cmd {
	switch k.Type {
	case tea.KeyEsc:
		kind := m.prompt
		m.closePrompt()
		if kind == promptDecode && m.dec != nil && m.dec.tok == nil {
			return m.back(false)
		}
		return nil
	case tea.KeyEnter:
		return m.submitPrompt()
	}
	var cmd tea.Cmd
	m.input, cmd = m.input.Update(k)
	return cmd
}

func (m *Model) submitPrompt() tea.Cmd {
	kind, val := m.prompt, m.input.Value()
	switch kind {
	case promptFilter:
		f, err := parseFilter(val)
		if err != nil {
			m.setErr(fmt.Errorf("filter: %w", err))
			return nil
		}
		m.closePrompt()
		m.status = statusLine{}
		return m.applyFilter(f)
	case promptCommand:
		m.closePrompt()
		c, err := parseCommand(val)
		if err != nil {
			m.setErr(err)
			return nil
		}
		return m.runCommand(c)
	case promptSearch:
		m.closePrompt()
		if m.det != nil {
			m.det.query = val
			m.det.match = 0
			m.relayout()
			m.gotoMatch()
		}
		return nil
	case promptDecode:
		tok := strings.Join(strings.Fields(val), "")
		if tok == "" {
			m.setErr(errors.New("decode: paste a token first"))
			return nil
		}
		m.closePrompt()
		if m.dec == nil {
			m.dec = &decodeState{depth: 4}
		}
		m.dec.pasting = false
		return m.decodeCmd(tok)
	}
	m.closePrompt()
	return nil
}

func (m *Model) runCommand(c command) tea.Cmd {
	switch c.name {
	case "decode":
		m.dec = &decodeState{depth: 4}
		m.push(scrDecode)
		m.relayout()
		if c.token == "" {
			m.dec.pasting = true
			m.openPrompt(promptDecode, "")
			return nil
		}
		return m.decodeCmd(c.token)
	case "purge":
		req := c.purge
		var match func(*admin.Entry) bool
		switch {
		case req.Key != "":
			return m.openPurgeKey(req.Key)
		case req.Prefix != "":
			p := req.Prefix
			match = func(e *admin.Entry) bool { return strings.HasPrefix(e.Key, p) }
		case req.Tag != "":
			t := req.Tag
			match = func(e *admin.Entry) bool { return hasString(e.Tags, t) }
		case req.All:
			req.Confirm = "all"
			match = func(*admin.Entry) bool { return true }
		}
		return m.openPurge(req, c.what, match)
	case "stats":
		m.push(scrStats)
		return nil
	case "cluster":
		return m.openCluster()
	case "help":
		m.showHelp = true
		return nil
	case "refresh":
		return m.onKey(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("r")})
	case "quit":
		return m.quit()
	}
	return nil
}

func hasString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// openPurge opens the purge dialog and asks for the dry-run count; the
// Purge button stays disabled until that count is in.
func (m *Model) openPurge(req admin.PurgeRequest, what string, match func(*admin.Entry) bool) tea.Cmd {
	if m.readOnly() {
		m.setErr(ErrReadOnly)
		return nil
	}
	m.dialog = &purgeDialog{req: req, what: what, match: match}
	return m.purgeCmd(req, true)
}

// confirmEnabled reports whether the dialog's Purge button works.
func (d *purgeDialog) confirmEnabled() bool {
	return d.counted && d.err == nil && d.count > 0 && !d.running && (!d.req.All || d.typed == "all")
}

func (m *Model) dialogKey(k tea.KeyMsg) tea.Cmd {
	d := m.dialog
	if d.running {
		return nil // the server acknowledges once it committed; wait for it
	}
	switch {
	case k.Type == tea.KeyEsc:
		m.dialog = nil
		m.forget(reqPurge)
		m.setStatus("purge cancelled")
		return nil
	case k.Type == tea.KeyEnter:
		if d.focus == 1 && d.confirmEnabled() {
			d.running = true
			d.started = m.now()
			return m.purgeCmd(d.req, false)
		}
		if d.focus == 0 {
			m.dialog = nil
			m.forget(reqPurge)
			m.setStatus("purge cancelled")
		}
		return nil
	case d.req.All && (k.Type == tea.KeyRunes || k.Type == tea.KeySpace):
		if len(d.typed) < 16 {
			d.typed += string(k.Runes)
		}
		return nil
	case d.req.All && k.Type == tea.KeyBackspace:
		if d.typed != "" {
			r := []rune(d.typed)
			d.typed = string(r[:len(r)-1])
		}
		return nil
	case key.Matches(k, m.keys.Focus):
		d.focus = 1 - d.focus
		return nil
	}
	return nil
}

func (m *Model) onPurge(msg purgeMsg) tea.Cmd {
	if !m.accept(reqPurge, msg.id) {
		return nil
	}
	d := m.dialog
	if d == nil {
		return nil
	}
	if msg.dry {
		if msg.err != nil || msg.res == nil {
			d.err = msg.err
			if d.err == nil {
				d.err = errors.New("empty reply")
			}
			return nil
		}
		d.counted, d.count = true, msg.res.Count
		return nil
	}
	m.dialog = nil
	if msg.err != nil || msg.res == nil {
		err := msg.err
		if err == nil {
			err = errors.New("empty reply")
		}
		m.setErr(fmt.Errorf("purge %s: %w", clean(d.what), err))
		return nil
	}
	res := msg.res
	m.setStatus("purged %s entries (%s) · audit id %s", group(int64(res.Count)), clean(d.what), clean(res.ID))
	l := &m.list
	l.total = max(0, l.total-int64(res.Count))
	if s := l.saved; s != nil {
		s.total = max(0, s.total-int64(res.Count))
	}
	var cmds []tea.Cmd
	if d.match != nil {
		cmds = append(cmds, m.dropRows(d.match, true))
	}
	for k := range l.marks {
		if hasString(d.req.Keys, k) {
			delete(l.marks, k)
		}
	}
	// The figures in the header and the rows on screen are from before
	// the purge: ask again now (a poll already in flight may have been
	// answered before the purge committed; its reply is dropped). The
	// last figures stay on screen until the answer comes.
	cmds = append(cmds, m.statsCmd())
	if m.pending[reqList].id == 0 && !l.resetting && l.win.len() > 0 {
		cmds = append(cmds, m.refreshCmd())
	}
	return tea.Batch(cmds...)
}

// dropRows takes the rows match selects out of the resident list (and the
// list saved under a filter) without a reload; with purged, their keys
// leave the marks, and a detail or decode panel open on one closes. When
// the window empties, the list loads again from the start.
func (m *Model) dropRows(match func(*admin.Entry) bool, purged bool) tea.Cmd {
	l := &m.list
	before, _ := l.win.remove(match, l.cur)
	l.cur -= before
	if s := l.saved; s != nil {
		b, _ := s.win.remove(match, s.cur)
		s.cur -= b
	}
	if purged {
		for k := range l.marks {
			if match(&admin.Entry{Key: k}) {
				delete(l.marks, k)
			}
		}
		if m.top() == scrDetail || m.top() == scrDecode {
			if m.det != nil && match(m.det.entry()) {
				m.stack = m.stack[:1]
				m.det, m.dec = nil, nil
				m.forget(reqDetail)
				m.forget(reqDecode)
			}
		}
	}
	m.scrollIntoView()
	if l.win.len() == 0 && !(l.win.atStart() && l.win.atEnd() && len(l.win.pages) > 0) {
		if !l.resetting {
			return m.loadReset(dirFirst)
		}
	}
	return m.ensureWindow()
}

func (m *Model) onDetail(msg detailMsg) tea.Cmd {
	if !m.accept(reqDetail, msg.id) || m.det == nil {
		return nil
	}
	if msg.err != nil || msg.detail == nil {
		m.det.err = msg.err
		if m.det.err == nil {
			m.det.err = errors.New("empty reply")
		}
		m.relayout()
		return nil
	}
	m.det.d, m.det.err = msg.detail, nil
	m.det.key, m.det.variant = msg.detail.Key, msg.detail.Variant
	m.det.tokCur = min(m.det.tokCur, max(0, len(msg.detail.Tokens)-1))
	m.relayout()
	return nil
}

func (m *Model) detailKey(k tea.KeyMsg) tea.Cmd {
	d := m.det
	if d == nil {
		return nil
	}
	switch {
	case k.Type == tea.KeyEsc:
		return m.back(false)
	case key.Matches(k, m.keys.NextTab):
		d.tab = (d.tab + 1) % numTabs
		m.relayout()
	case key.Matches(k, m.keys.PrevTab):
		d.tab = (d.tab + numTabs - 1) % numTabs
		m.relayout()
	case key.Matches(k, m.keys.PrevVariant, m.keys.NextVariant):
		if d.d == nil || len(d.d.Variants) < 2 {
			return nil
		}
		i := indexOf(d.d.Variants, d.variant)
		if key.Matches(k, m.keys.NextVariant) {
			i = (i + 1) % len(d.d.Variants)
		} else {
			i = (i + len(d.d.Variants) - 1) % len(d.d.Variants)
		}
		d.variant = d.d.Variants[i]
		return m.detailCmd(d.key, d.variant)
	case key.Matches(k, m.keys.Search):
		if d.tab == tabBody {
			m.openPrompt(promptSearch, d.query)
		}
	case key.Matches(k, m.keys.NextMatch):
		if len(d.matches) > 0 {
			d.match = (d.match + 1) % len(d.matches)
			m.relayout()
			m.gotoMatch()
		}
	case key.Matches(k, m.keys.PrevMatch):
		if len(d.matches) > 0 {
			d.match = (d.match + len(d.matches) - 1) % len(d.matches)
			m.relayout()
			m.gotoMatch()
		}
	case key.Matches(k, m.keys.Decode) && d.tab == tabTokens:
		if d.d == nil || len(d.d.Tokens) == 0 {
			return nil
		}
		t := d.d.Tokens[d.tokCur]
		m.dec = &decodeState{tok: &t, fromTab: true, depth: 4}
		m.push(scrDecode)
		m.relayout()
	case key.Matches(k, m.keys.Purge):
		return m.openPurgeKey(d.key)
	case key.Matches(k, m.keys.Refresh):
		return m.detailCmd(d.key, d.variant)
	case d.tab == tabTokens && key.Matches(k, m.keys.Down):
		if d.d != nil && d.tokCur < len(d.d.Tokens)-1 {
			d.tokCur++
			m.relayout()
		}
	case d.tab == tabTokens && key.Matches(k, m.keys.Up):
		if d.tokCur > 0 {
			d.tokCur--
			m.relayout()
		}
	default:
		scroll(&d.vp, k, m.keys)
	}
	return nil
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return 0
}

func (m *Model) decodeKey(k tea.KeyMsg) tea.Cmd {
	d := m.dec
	if d == nil {
		return nil
	}
	switch {
	case k.Type == tea.KeyEsc:
		return m.back(false)
	case key.Matches(k, m.keys.Deeper):
		d.depth = min(d.depth+1, 16)
		m.relayout()
	case key.Matches(k, m.keys.Shallower):
		d.depth = max(d.depth-1, 1)
		m.relayout()
	case key.Matches(k, m.keys.Refresh):
		if d.tok != nil && !d.fromTab && d.tok.Raw != "" {
			return m.decodeCmd(d.tok.Raw)
		}
	default:
		scroll(&d.vp, k, m.keys)
	}
	return nil
}

func (m *Model) onDecode(msg decodeMsg) tea.Cmd {
	if !m.accept(reqDecode, msg.id) || m.dec == nil {
		return nil
	}
	if msg.err != nil || msg.tok == nil {
		m.dec.err = msg.err
		if m.dec.err == nil {
			m.dec.err = errors.New("empty reply")
		}
	} else {
		m.dec.tok, m.dec.err = msg.tok, nil
	}
	m.relayout()
	return nil
}

func (m *Model) onMouse(msg tea.MouseMsg) tea.Cmd {
	if msg.Action != tea.MouseActionPress {
		return nil
	}
	delta := 0
	switch msg.Button {
	case tea.MouseButtonWheelUp:
		delta = -3
	case tea.MouseButtonWheelDown:
		delta = 3
	default:
		return nil
	}
	switch m.top() {
	case scrList:
		return m.moveList(delta)
	case scrDetail:
		if m.det != nil {
			m.det.vp.ScrollDown(delta)
		}
	case scrDecode:
		if m.dec != nil {
			m.dec.vp.ScrollDown(delta)
		}
	}
	return nil
}

// syncKeys enables the bindings that work now and records why the others
// do not, for the full help.
func (m *Model) syncKeys() {
	k := &m.keys
	k.reasons = nil
	for _, b := range []*key.Binding{&k.Quit, &k.Back, &k.Help, &k.Command, &k.Refresh, &k.Up, &k.Down,
		&k.PageDown, &k.PageUp, &k.Top, &k.Bottom, &k.Open, &k.Filter, &k.ClearFilter, &k.Mark, &k.Purge,
		&k.NextTab, &k.PrevTab, &k.PrevVariant, &k.NextVariant, &k.Search, &k.NextMatch, &k.PrevMatch,
		&k.Decode, &k.Deeper, &k.Shallower, &k.Focus, &k.Confirm, &k.Cancel} {
		b.SetEnabled(true)
	}
	k.screen = m.top()
	k.dialog = m.dialog != nil
	if m.readOnly() {
		why := "read-only"
		if m.conn.stats != nil && m.conn.stats.ReadOnly {
			why = "read-only: offline file"
		}
		k.disable(&k.Purge, why)
		k.disable(&k.Mark, why)
	}
	if m.list.f.isZero() {
		k.disable(&k.ClearFilter, "no filter set")
	}
	if d := m.det; d != nil {
		if d.d == nil || len(d.d.Variants) < 2 {
			k.disable(&k.PrevVariant, "one variant")
			k.disable(&k.NextVariant, "one variant")
		}
		if d.tab != tabBody {
			k.disable(&k.Search, "body tab only")
		}
		if len(d.matches) == 0 {
			k.disable(&k.NextMatch, "no search matches")
			k.disable(&k.PrevMatch, "no search matches")
		}
		if d.tab != tabTokens || d.d == nil || len(d.d.Tokens) == 0 {
			k.disable(&k.Decode, "tokens tab, on a token")
		}
	}
	if d := m.dialog; d != nil && !d.confirmEnabled() {
		k.disable(&k.Confirm, "waiting for the dry-run count")
	}
	if m.top() == scrList {
		k.Back.SetHelp("q", "quit")
	} else {
		k.Back.SetHelp("q", "back")
	}
}
