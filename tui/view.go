package tui

import (
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

	"github.com/firstrender/firstrender/httpcache/admin"
)

// View draws the screen: header (2 lines), body, status line, help bar.
// It changes no state.
func (m Model) View() string {
	if m.width <= 0 || m.height <= 0 {
		return ""
	}
	if m.quitting {
		return ""
	}
	h := m.bodyHeight()
	var body string
	switch {
	case m.showHelp:
		body = m.viewHelp(h)
	case m.dialog != nil:
		body = m.st.r.Place(m.width, h, lipgloss.Center, lipgloss.Center, m.viewDialog())
	default:
		switch m.top() {
		case scrList:
			body = m.viewList(h)
		case scrDetail:
			body = m.viewDetail(h)
		case scrDecode:
			body = m.viewDecode(h)
		case scrStats:
			body = m.viewStats(h)
		case scrCluster:
			body = m.viewCluster(h)
		}
	}
	parts := []string{
		m.viewHeader(),
		fit(body, m.width, h),
		fit(m.viewStatus(), m.width, 1),
		fit(m.help.ShortHelpView(m.keys.ShortHelp()), m.width, 1),
	}
	return strings.Join(parts, "\n")
}

// fit cuts s to exactly h lines of at most w columns.
func fit(s string, w, h int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > h {
		lines = lines[:h]
	}
	for i, l := range lines {
		if ansi.StringWidth(l) > w {
			lines[i] = ansi.Truncate(l, w, "…")
		}
	}
	for len(lines) < h {
		lines = append(lines, "")
	}
	return strings.Join(lines, "\n")
}

// pad truncates or pads plain s to exactly w columns.
func pad(s string, w int) string {
	if w <= 0 {
		return ""
	}
	sw := ansi.StringWidth(s)
	if sw > w {
		return ansi.Truncate(s, w, "…")
	}
	return s + strings.Repeat(" ", w-sw)
}

// padLeft right-aligns plain s in w columns.
func padLeft(s string, w int) string {
	sw := ansi.StringWidth(s)
	if sw >= w {
		return ansi.Truncate(s, w, "…")
	}
	return strings.Repeat(" ", w-sw) + s
}

const sep = " │ "

func (m *Model) viewHeader() string {
	st := m.st
	c := &m.conn
	inst := m.opts.Instance
	if c.stats != nil && c.stats.Instance != "" {
		inst = c.stats.Instance
	}
	if inst == "" {
		inst = "?"
	}
	now := m.now()
	narrow := m.width < 100
	// Line 1: who and what (instance, uptime, mode, store figures); line
	// 2: what moves (hit ratios, request rate and its sparkline).
	line1 := []string{st.Title.Render("firstrender"), clean(inst)}
	var figures []string
	var line2 string
	if c.stats != nil {
		s := c.stats
		up := s.UptimeS + int64(now.Sub(c.statsAt)/time.Second)
		mode := st.Mode.Render("RW")
		if m.readOnly() {
			mode = st.Warn.Render("RO")
		}
		entries := group(s.Entries) + " entries"
		if narrow {
			entries = countShort(s.Entries) + " entries"
		}
		figures = []string{"up " + uptime(max(0, up)), mode, entries, bytesLong(s.Bytes), group(s.OpenSockets) + " sockets"}
		if m.stream.live() {
			figures = append(figures, st.Good.Render("◉ live"))
		}
		hits := "hit"
		for _, w := range []struct {
			label string
			d     time.Duration
		}{{"10s", 10 * time.Second}, {"100s", 100 * time.Second}, {"1000s", 1000 * time.Second}} {
			v := "–"
			if r, ok := m.hist.hitRatio(w.d); ok {
				v = pct(r)
			}
			hits += " " + w.label + " " + v
		}
		rate := "–"
		if r, ok := m.hist.rate(10 * time.Second); ok {
			rate = fmt.Sprintf("%.1f", r)
		}
		lead := hits + sep + "req/s " + rate + " "
		sparkW := min(60, max(8, m.width-ansi.StringWidth(lead)))
		line2 = lead + st.Accent.Render(sparkline(m.hist.rates(2*time.Minute, sparkW)))
		if !c.ok {
			// The last data stays, dimmed, under the DISCONNECTED line.
			line2 = st.HeaderDim.Render(ansi.Strip(strings.Join(figures, " · ") + sep + line2))
		}
	}
	switch {
	case c.stats == nil && c.failures == 0:
		line1 = append(line1, st.Dim.Render("connecting…"))
	case !c.ok:
		wait := c.retryAt.Sub(now)
		retry := "retrying now"
		if m.pending[reqStats].id == 0 && wait > 0 {
			retry = "retry in " + durLong(wait.Round(time.Second))
		}
		d := st.Disconnected.Render("✗ DISCONNECTED") + " " + retry
		if c.stats != nil {
			d += " · last data " + durShort(now.Sub(c.statsAt)) + " ago"
		}
		if c.lastErr != nil {
			d += " · " + clean(c.lastErr.Error())
		}
		line1 = append(line1, d)
	default:
		line1 = append(line1, figures...)
	}
	s1 := strings.Join(line1, sep)
	if narrow {
		s1 = line1[0] + " " + strings.Join(line1[1:], " · ")
	}
	return fit(s1, m.width, 1) + "\n" + fit(line2, m.width, 1)
}

func (m *Model) viewStatus() string {
	st := m.st
	var left string
	switch m.prompt {
	case promptFilter:
		left = st.Prompt.Render("/") + m.input.View()
	case promptCommand:
		left = st.Prompt.Render(":") + m.input.View()
	case promptSearch:
		left = st.Prompt.Render("search: ") + m.input.View()
	case promptDecode:
		left = st.Prompt.Render("token: ") + m.input.View()
	default:
		switch {
		case m.status.err:
			left = st.StatusErr.Render("✗ " + clean(m.status.text))
		case m.status.text != "":
			left = st.Status.Render("✓ " + clean(m.status.text))
		}
	}
	var right []string
	if slow := m.slowCall(); slow != "" {
		right = append(right, m.spin.View()+" "+slow+"…")
	}
	if m.top() == scrList && m.prompt == promptNone {
		if !m.list.f.isZero() {
			right = append(right, "filter "+clean(m.list.f.String()))
		}
		if n := len(m.list.marks); n > 0 {
			right = append(right, st.Marked.Render(fmt.Sprintf("● %d marked", n)))
		}
		if p := m.position(); p != "" {
			right = append(right, p)
		}
	}
	// The message (or prompt) has the line first; the figures on the right
	// give way, last ones first... except the position, which goes first.
	lw := ansi.StringWidth(left)
	for len(right) > 0 && lw+1+ansi.StringWidth(strings.Join(right, sep)) > m.width && lw > 0 {
		right = right[1:]
	}
	r := strings.Join(right, sep)
	gap := m.width - lw - ansi.StringWidth(r)
	if gap < 1 {
		return left
	}
	return left + strings.Repeat(" ", gap) + r
}

// position is "rows 201-240 of ~2,418,310" (or the filtered equivalent).
// Every figure in it holds: the unfiltered total is the server's
// approximate record count, raised to the rows known to exist (all of
// them when both ends are resident); a filtered total ("matches 1-5 of
// 5") shows only when both ends are resident; the scan count is compared
// with the record count only when it does not exceed it.
func (m *Model) position() string {
	l := &m.list
	n := l.win.len()
	if n == 0 {
		if !l.f.isZero() && l.scanned > 0 {
			return scanText(l.scanned, l.total)
		}
		return ""
	}
	first := l.top
	last := min(l.top+m.listRows(), n) - 1
	a, b := l.win.base+int64(first)+1, l.win.base+int64(last)+1
	approx := ""
	if l.win.approx {
		approx = "~"
	}
	// exact: the row numbers count from the start and the end is here.
	exact := l.win.atEnd() && l.win.baseKnown && !l.win.approx
	if l.f.isZero() {
		tot := l.win.base + int64(n) // rows known to exist
		switch {
		case exact:
			// Every row is resident: that is the count (still "~": the
			// store changes under the window).
		case !l.win.atEnd():
			tot = max(l.total, tot+1)
		default:
			tot = max(l.total, tot)
		}
		return fmt.Sprintf("rows %s%s-%s of ~%s", approx, group(a), group(b), group(tot))
	}
	scan := scanText(l.scanned, l.total)
	if !l.win.baseKnown {
		return "matches near the end · " + scan
	}
	if exact {
		return fmt.Sprintf("matches %s-%s of %s · %s", group(a), group(b), group(l.win.base+int64(n)), scan)
	}
	more := ""
	if !l.win.atEnd() {
		more = "+"
	}
	return fmt.Sprintf("matches %s%s-%s%s · %s", approx, group(a), group(b), more, scan)
}

// scanText says how many records a filtered scan examined. The count sums
// the calls behind the window (a page fetched again counts again) and
// total is the store's record count now (it may have shrunk since), so
// the count is put against the total only when it does not exceed it.
func scanText(scanned, total int64) string {
	if total > 0 && scanned <= total {
		return "scanned " + group(scanned) + " of ~" + group(total)
	}
	return "scanned " + group(scanned)
}

// list columns
type listCols struct {
	key, vary, tags int
}

func (m *Model) cols() listCols {
	c := listCols{}
	fixed := 2 + 4 + 7 + 7 + 7 + 6 + 3 // glyphs, status, age, ttl, size, hits, flags
	if m.width >= 110 {
		c.vary, c.tags = 16, 18
	}
	c.key = max(12, m.width-fixed-c.vary-c.tags-1)
	return c
}

func (m *Model) viewList(h int) string {
	st := m.st
	l := &m.list
	c := m.cols()
	head := "  " + pad("KEY", c.key) + " " + padLeft("ST", 3) + padLeft("AGE", 7) + padLeft("TTL", 7) +
		padLeft("SIZE", 7) + padLeft("HITS", 6) + "  F"
	if c.vary > 0 {
		head += " " + pad("VARY", c.vary-1) + " " + pad("TAGS", c.tags-1)
	}
	lines := []string{st.ColHead.Render(head)}
	rows := h - 1
	n := l.win.len()
	switch {
	case n == 0 && (!l.loaded || l.resetting):
		what := "loading entries…"
		if !l.f.isZero() {
			what = "scanning for " + clean(l.f.String()) + "…"
			if l.scanned > 0 {
				what += " " + group(l.scanned) + " records examined"
			}
		}
		if m.pending[reqList].slow {
			what = m.spin.View() + " " + what
		}
		lines = append(lines, "", "  "+st.Dim.Render(what))
	case n == 0 && l.err != nil:
		lines = append(lines, "", "  "+st.Bad.Render("✗ "+clean(l.err.Error())), "  "+st.Dim.Render("r to try again"))
	case n == 0:
		if l.f.isZero() {
			lines = append(lines, "", "  "+st.Dim.Render("the cache is empty"))
		} else {
			lines = append(lines, "", "  "+st.Dim.Render(fmt.Sprintf("no entries match %s (%s records examined) · esc clears the filter",
				clean(l.f.String()), group(l.scanned))))
		}
	}
	now := m.now()
	dim := !m.conn.ok && m.conn.failures > 0
	for i := l.top; i < min(n, l.top+rows); i++ {
		e := l.win.row(i)
		lines = append(lines, m.viewRow(e, i == l.cur, c, now, dim))
	}
	return strings.Join(lines, "\n")
}

func (m *Model) viewRow(e *admin.Entry, isCur bool, c listCols, now time.Time, dim bool) string {
	st := m.st
	g := " "
	if isCur {
		g = "▸"
	}
	mark := " "
	_, marked := m.list.marks[e.Key]
	if marked {
		mark = "●"
	}
	k := clean(e.Key)
	if e.Variant != "" {
		k += " ⟨" + clean(e.Variant) + "⟩"
	}
	status, age, ttl := fmt.Sprint(e.Status), durShort(time.Duration(e.AgeS)*time.Second), "–"
	if e.Expires != nil {
		ttl = durShort(e.Expires.Sub(now))
	}
	if e.Stale {
		ttl = "stale"
	}
	flags := ""
	if len(e.Findings) > 0 {
		flags += "!"
	}
	if e.Disabled != "" {
		flags += "⊘"
	}
	if e.Corrupt {
		flags, status, age, ttl = flags+"✗", "✗", "", "corrupt"
	}
	hits := countShort(e.Hits)
	row := g + mark + pad(k, c.key) + " " + padLeft(status, 3) + padLeft(age, 7) + padLeft(ttl, 7) +
		padLeft(bytesShort(e.Size), 7) + padLeft(hits, 6) + "  " + pad(flags, 2)
	if c.vary > 0 {
		row += " " + pad(clean(strings.Join(e.Vary, ",")), c.vary-1) + " " + pad(clean(strings.Join(e.Tags, ",")), c.tags-1)
	}
	switch {
	case dim:
		return st.HeaderDim.Render(row)
	case isCur:
		return st.Cursor.Render(row)
	case marked:
		return st.Marked.Render(row)
	case e.Corrupt || e.Disabled != "":
		return st.Bad.Render(row)
	case e.Stale:
		return st.Warn.Render(row)
	}
	return st.Row.Render(row)
}

func (m *Model) viewDetail(h int) string {
	st := m.st
	d := m.det
	if d == nil {
		return ""
	}
	var tabs []string
	for i, name := range tabNames {
		label := name
		if dd := d.d; dd != nil {
			switch i {
			case tabTokens:
				label += fmt.Sprintf(" %d", len(dd.Tokens))
			case tabFindings:
				label += fmt.Sprintf(" %d", len(dd.Findings))
				if len(dd.Findings) > 0 {
					label += "!"
				}
			}
		}
		if i == d.tab {
			tabs = append(tabs, st.TabActive.Render("["+label+"]"))
		} else {
			tabs = append(tabs, st.Tab.Render(" "+label+" "))
		}
	}
	title := st.Bold.Render(clean(d.key))
	if dd := d.d; dd != nil && len(dd.Variants) > 1 {
		title += st.Dim.Render(fmt.Sprintf("  variant %d/%d %s  [ ] switch", indexOf(dd.Variants, d.variant)+1, len(dd.Variants), variantName(d.variant)))
	} else if d.variant != "" {
		title += st.Dim.Render("  variant " + variantName(d.variant))
	}
	lines := []string{strings.Join(tabs, " "), title}
	switch {
	case d.d == nil && d.err != nil:
		lines = append(lines, "", st.Bad.Render("✗ "+clean(d.err.Error())), st.Dim.Render("r to try again, q to go back"))
	case d.d == nil:
		w := "loading entry…"
		if m.pending[reqDetail].slow {
			w = m.spin.View() + " " + w
		}
		lines = append(lines, "", st.Dim.Render(w))
	default:
		lines = append(lines, d.vp.View())
	}
	return strings.Join(lines, "\n")
}

func variantName(v string) string {
	if v == "" {
		return "(default)"
	}
	return clean(v)
}

func (m *Model) viewDecode(h int) string {
	d := m.dec
	if d == nil {
		return ""
	}
	st := m.st
	lines := []string{st.Bold.Render("Decode a Phoenix token")}
	switch {
	case d.pasting:
		lines = append(lines, "", "Paste the token on the status line and press enter (esc goes back).",
			st.Dim.Render("Nothing is trusted until the server checked the signature with the secret."))
	case d.tok == nil && d.err != nil:
		lines = append(lines, "", st.Bad.Render("✗ "+clean(d.err.Error())))
	case d.tok == nil:
		w := "decoding…"
		if m.pending[reqDecode].slow {
			w = m.spin.View() + " " + w
		}
		lines = append(lines, "", st.Dim.Render(w))
	default:
		lines = append(lines, d.vp.View())
	}
	return strings.Join(lines, "\n")
}

// decodeLines is the decode panel's scrollable content.
func (m *Model) decodeLines() []string {
	d := m.dec
	t := d.tok
	st := m.st
	now := m.now()
	w := max(20, m.width)
	var out []string
	row := func(k, v string) { out = append(out, st.Label.Render(pad(k, 12))+v) }
	where := t.Where
	if where == "" {
		where = "pasted"
	}
	kind := clean(t.Kind)
	if t.Algorithm != "" {
		kind += " (" + clean(t.Algorithm) + ")"
	}
	row("token", clean(where)+" · "+kind)
	if d.err != nil {
		row("error", st.Bad.Render(clean(d.err.Error())))
	}
	if t.Error != "" {
		row("error", st.Bad.Render("✗ "+clean(t.Error)))
	}
	if t.SignedAt != nil {
		row("signed at", stamp(*t.SignedAt)+st.Dim.Render(" ("+durShort(now.Sub(*t.SignedAt))+" ago)"))
	}
	if t.MaxAgeS > 0 {
		row("max age", fmt.Sprintf("%ds (%s), embedded in the token", t.MaxAgeS, durLong(time.Duration(t.MaxAgeS)*time.Second)))
	} else if t.Kind == "signed" && t.SignedAt != nil {
		row("max age", "none embedded")
	}
	if t.VerifierMaxAgeS > 0 {
		row("verifier", fmt.Sprintf("%ds (%s), what the application verifies with; it wins", t.VerifierMaxAgeS, durLong(time.Duration(t.VerifierMaxAgeS)*time.Second)))
	}
	if t.Expires != nil {
		row("expires", stamp(*t.Expires))
		left := t.Expires.Sub(now)
		if left > 0 && !t.Expired {
			row("countdown", st.Good.Render("valid for "+durLong(left.Truncate(time.Second))))
		} else {
			row("countdown", st.Bad.Render("✗ EXPIRED "+durLong(left.Truncate(time.Second))+" ago"))
		}
	}
	row("signature", m.signature(t.Signature))
	if t.Kind == "encrypted" {
		out = append(out, "", st.Dim.Render("encrypted: the payload cannot be read without the application's secret"))
	}
	if t.Elixir != "" {
		out = append(out, "", st.Label.Render(fmt.Sprintf("term (Elixir syntax, depth %d; + deeper, - shallower)", d.depth)))
		for _, l := range prettyElixir(t.Elixir, d.depth, w-2) {
			for _, wl := range wrapLine(clean(l), w-2) {
				out = append(out, "  "+wl)
			}
		}
	}
	return out
}

// signature describes a token's signature status. Only "verified" (the
// server checked it with the secret) reads as good; anything else,
// including values this version does not know, is not.
func (m *Model) signature(s string) string {
	switch s {
	case "verified":
		return m.st.Good.Render("✓ verified by the server")
	case "invalid":
		return m.st.Bad.Render("✗ INVALID: not signed with the application's secret")
	case "not-checked", "":
		return m.st.Warn.Render("? not checked (the server has no secret): do not trust the content")
	}
	return m.st.Warn.Render("? unknown status " + clean(s) + ": not verified")
}

// signatureShort is signature for a list row.
func (m *Model) signatureShort(s string) string {
	switch s {
	case "verified":
		return m.st.Good.Render("✓ signature verified")
	case "invalid":
		return m.st.Bad.Render("✗ signature INVALID")
	}
	return m.st.Warn.Render("? signature not checked")
}

// wrapLine breaks plain s into lines of at most w columns.
func wrapLine(s string, w int) []string {
	if w <= 0 || ansi.StringWidth(s) <= w {
		return []string{s}
	}
	return strings.Split(ansi.Hardwrap(s, w, true), "\n")
}

// wrapWords breaks prose s at spaces into lines of at most w columns
// (a word longer than w is broken).
func wrapWords(s string, w int) []string {
	if w <= 0 || ansi.StringWidth(s) <= w {
		return []string{s}
	}
	return strings.Split(ansi.Wrap(s, w, ""), "\n")
}

func (m *Model) viewStats(h int) string {
	st := m.st
	s := m.conn.stats
	if s == nil {
		return st.Dim.Render("no stats yet")
	}
	p := m.conn.prevStats
	dt := m.conn.statsAt.Sub(m.conn.prevAt).Seconds()
	up := float64(max(1, s.UptimeS))
	type ctr struct {
		name      string
		cur, prev int64
	}
	pv := func(f func(*admin.Stats) int64) int64 {
		if p == nil {
			return -1
		}
		return f(p)
	}
	counters := []ctr{
		{"requests", s.Requests, pv(func(x *admin.Stats) int64 { return x.Requests })},
		{"hits", s.Hits, pv(func(x *admin.Stats) int64 { return x.Hits })},
		{"misses", s.Misses, pv(func(x *admin.Stats) int64 { return x.Misses })},
		{"stale", s.Stale, pv(func(x *admin.Stats) int64 { return x.Stale })},
		{"revalidated", s.Revalidated, pv(func(x *admin.Stats) int64 { return x.Revalidated })},
		{"pass", s.Pass, pv(func(x *admin.Stats) int64 { return x.Pass })},
		{"errors", s.Errors, pv(func(x *admin.Stats) int64 { return x.Errors })},
		{"origin requests", s.OriginRequests, pv(func(x *admin.Stats) int64 { return x.OriginRequests })},
		{"evictions", s.Evictions, pv(func(x *admin.Stats) int64 { return x.Evictions })},
		{"expired", s.Expired, pv(func(x *admin.Stats) int64 { return x.Expired })},
		{"purged", s.Purged, pv(func(x *admin.Stats) int64 { return x.Purged })},
		{"store errors", s.StoreErrors, pv(func(x *admin.Stats) int64 { return x.StoreErrors })},
	}
	left := []string{st.ColHead.Render(pad("counter", 16) + padLeft("value", 12) + padLeft("now/s", 9) + padLeft("avg/s", 9))}
	for _, c := range counters {
		rate := "–"
		if c.prev >= 0 && dt > 0 {
			rate = fmt.Sprintf("%.1f", float64(c.cur-c.prev)/dt)
		}
		left = append(left, pad(c.name, 16)+padLeft(group(c.cur), 12)+padLeft(rate, 9)+padLeft(fmt.Sprintf("%.2f", float64(c.cur)/up), 9))
	}
	ratio := func(d time.Duration) string {
		if r, ok := m.hist.hitRatio(d); ok {
			return pct(r)
		}
		return "–"
	}
	right := []string{
		st.ColHead.Render(pad("gauge", 15) + padLeft("value", 11)),
		pad("entries", 15) + padLeft(group(s.Entries), 11),
		pad("bytes", 15) + padLeft(bytesLong(s.Bytes), 11),
		pad("file size", 15) + padLeft(bytesLong(s.FileSize), 11),
		pad("max size", 15) + padLeft(maxSize(s.MaxSize), 11),
		pad("disabled", 15) + padLeft(group(s.Disabled), 11),
		pad("open sockets", 15) + padLeft(group(s.OpenSockets), 11),
		pad("origin latency", 15) + padLeft(fmt.Sprintf("%.1f ms", s.OriginLatencyS*1000), 11),
		"",
		st.ColHead.Render("hit ratio"),
		pad("since start", 15) + padLeft(pct(s.HitRatio), 11),
		pad("last 10s", 15) + padLeft(ratio(10*time.Second), 11),
		pad("last 100s", 15) + padLeft(ratio(100*time.Second), 11),
		pad("last 1000s", 15) + padLeft(ratio(1000*time.Second), 11),
	}
	lines := []string{
		st.Bold.Render("Server counters") + st.Dim.Render(fmt.Sprintf("  %s %s · started %s", clean(s.Instance), clean(s.Version), stamp(s.StartedAt))),
	}
	for i := 0; i < max(len(left), len(right)); i++ {
		var l, r string
		if i < len(left) {
			l = left[i]
		}
		if i < len(right) {
			r = right[i]
		}
		lines = append(lines, l+strings.Repeat(" ", max(0, 46-ansi.StringWidth(l)))+"  "+r)
	}
	lines = append(lines, "", st.Dim.Render("now/s: change since the previous poll · avg/s: since start · store "+clean(s.StorePath)))
	return strings.Join(lines, "\n")
}

func maxSize(n int64) string {
	if n <= 0 {
		return "none"
	}
	return bytesLong(n)
}

func (m *Model) viewDialog() string {
	st := m.st
	d := m.dialog
	w := min(max(40, m.width-10), 72)
	var lines []string
	lines = append(lines, st.Bold.Render(pad("Purge "+clean(d.what), w)))
	lines = append(lines, "")
	switch {
	case d.err != nil:
		lines = append(lines, st.Bad.Render("✗ dry run failed: "+clean(d.err.Error())))
	case !d.counted:
		s := "counting (dry run)…"
		if m.pending[reqPurge].slow {
			s = m.spin.View() + " " + s
		}
		lines = append(lines, s)
	case d.count == 0:
		lines = append(lines, "dry run: nothing matches; nothing to purge")
	default:
		what := "entries"
		if d.count == 1 {
			what = "entry"
		}
		lines = append(lines, fmt.Sprintf("dry run: %s %s would be purged", group(int64(d.count)), what))
	}
	if d.req.All {
		lines = append(lines, "", st.Warn.Render("This empties the whole cache."),
			fmt.Sprintf("type all to confirm: %s▏", clean(d.typed)))
	}
	lines = append(lines, "")
	if d.running {
		lines = append(lines, m.spin.View()+fmt.Sprintf(" purging… %s (the server answers once it committed)", durShort(m.now().Sub(d.started))))
	} else {
		cancel := button("Cancel", d.focus == 0, true, st)
		label := "Purge"
		if d.counted && d.count > 0 {
			label = fmt.Sprintf("Purge %s", group(int64(d.count)))
		}
		purge := button(label, d.focus == 1, d.confirmEnabled(), st)
		lines = append(lines, cancel+"   "+purge)
		if !d.confirmEnabled() {
			why := "waiting for the dry-run count"
			switch {
			case d.err != nil:
				why = "the dry run failed"
			case d.counted && d.count == 0:
				why = "nothing to purge"
			case d.counted && d.req.All:
				why = "type all first"
			}
			lines = append(lines, st.Dim.Render("Purge is disabled: "+why))
		} else {
			lines = append(lines, st.Dim.Render("tab switches · enter presses · esc cancels"))
		}
	}
	return st.Dialog.Render(strings.Join(lines, "\n"))
}

// button draws [ Label ]; the focused one carries arrows (readable without
// colour), a disabled one parentheses.
func button(label string, focus, enabled bool, st styles) string {
	switch {
	case !enabled && focus:
		return st.ButtonOff.Render("▸( " + label + " )◂")
	case !enabled:
		return st.ButtonOff.Render(" ( " + label + " ) ")
	case focus:
		return st.ButtonFocus.Render("▸[ " + label + " ]◂")
	}
	return st.Button.Render(" [ " + label + " ] ")
}

func (m *Model) viewHelp(h int) string {
	st := m.st
	names := map[screen]string{scrList: "entry list", scrDetail: "entry detail", scrDecode: "decode panel", scrStats: "stats", scrCluster: "cluster"}
	title := "Keys · " + names[m.top()]
	if m.dialog != nil {
		title = "Keys · purge dialog"
	}
	groups := m.keys.FullHelp()
	var cols []string
	for _, g := range groups {
		var lines []string
		for _, b := range g {
			hk := b.Help()
			if hk.Key == "" {
				continue
			}
			line := pad(hk.Key, 8) + " " + hk.Desc
			if !b.Enabled() {
				why := m.keys.Reason(b)
				if why == "" {
					why = "off"
				}
				lines = append(lines, st.HelpOff.Render(line+" ("+why+")"))
				continue
			}
			lines = append(lines, st.HelpKey.Render(pad(hk.Key, 8))+" "+st.HelpDesc.Render(hk.Desc))
		}
		cols = append(cols, strings.Join(lines, "\n"))
	}
	// Columns side by side while they fit the width, then a new row.
	var rows []string
	var row []string
	used := 0
	for _, c := range cols {
		w := lipgloss.Width(c) + 3
		if len(row) > 0 && used+w > m.width {
			rows = append(rows, lipgloss.JoinHorizontal(lipgloss.Top, row...))
			row, used = nil, 0
		}
		row = append(row, m.st.r.NewStyle().Width(w).Render(c))
		used += w
	}
	if len(row) > 0 {
		rows = append(rows, lipgloss.JoinHorizontal(lipgloss.Top, row...))
	}
	body := strings.Join(rows, "\n\n")
	return st.Bold.Render(title) + st.Dim.Render("  greyed: off now (why) · esc closes") + "\n\n" + body
}
