package tui

import (
	"encoding/base64"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/viewport"
	tea "github.com/charmbracelet/bubbletea"
)

// relayout sizes the viewports to the window and refills them from the
// state; Update calls it after anything that changes what they show.
func (m *Model) relayout() {
	h := m.bodyHeight()
	if d := m.det; d != nil {
		d.vp.Width, d.vp.Height = m.width, max(1, h-2)
		if d.d != nil {
			y := d.vp.YOffset
			d.vp.SetContent(strings.Join(m.detailLines(), "\n"))
			d.vp.SetYOffset(y)
		}
	}
	if d := m.dec; d != nil {
		d.vp.Width, d.vp.Height = m.width, max(1, h-1)
		if d.tok != nil {
			y := d.vp.YOffset
			d.vp.SetContent(strings.Join(m.decodeLines(), "\n"))
			d.vp.SetYOffset(y)
		}
	}
}

// scroll moves a viewport with the movement bindings.
func scroll(vp *viewport.Model, k tea.KeyMsg, km KeyMap) {
	switch {
	case key.Matches(k, km.Down):
		vp.ScrollDown(1)
	case key.Matches(k, km.Up):
		vp.ScrollUp(1)
	case key.Matches(k, km.PageDown):
		vp.PageDown()
	case key.Matches(k, km.PageUp):
		vp.PageUp()
	case key.Matches(k, km.Top):
		vp.GotoTop()
	case key.Matches(k, km.Bottom):
		vp.GotoBottom()
	}
}

// gotoMatch scrolls the body so the current match sits a third down.
func (m *Model) gotoMatch() {
	d := m.det
	if d == nil || len(d.matches) == 0 {
		if d != nil && d.query != "" {
			m.setErr(fmt.Errorf("search: %q not found in the body", clean(d.query)))
		}
		return
	}
	m.status = statusLine{text: fmt.Sprintf("match %d of %d for %q", d.match+1, len(d.matches), clean(d.query))}
	d.vp.SetYOffset(max(0, d.matches[d.match]-d.vp.Height/3))
}

func (m *Model) detailLines() []string {
	d := m.det
	switch d.tab {
	case tabHeaders:
		return m.headerLines()
	case tabBody:
		return m.bodyLines()
	case tabTokens:
		return m.tokenLines()
	case tabFindings:
		return m.findingLines()
	}
	return m.overviewLines()
}

func (m *Model) overviewLines() []string {
	st := m.st
	e := m.det.d
	now := m.now()
	w := max(20, m.width-14)
	var out []string
	row := func(k, v string) {
		for i, l := range wrapWords(v, w) {
			if i == 0 {
				out = append(out, st.Label.Render(pad(k, 14))+l)
			} else {
				out = append(out, strings.Repeat(" ", 14)+l)
			}
		}
	}
	row("key", clean(e.Key))
	v := variantName(e.Variant)
	if len(e.Variants) > 1 {
		v += fmt.Sprintf("  (%d of %d)", indexOf(e.Variants, e.Variant)+1, len(e.Variants))
	}
	row("variant", v)
	row("status", fmt.Sprint(e.Status))
	if !e.StoredAt.IsZero() {
		row("stored at", stamp(e.StoredAt)+" ("+durShort(now.Sub(e.StoredAt))+" ago)")
	}
	row("age", fmt.Sprintf("%ds", e.AgeS))
	ttl := "none"
	if e.Expiry.At != nil {
		left := e.Expiry.At.Sub(now)
		if left > 0 {
			ttl = durLong(left.Truncate(time.Second)) + " left, until " + stamp(*e.Expiry.At)
		} else {
			ttl = "stale since " + stamp(*e.Expiry.At) + " (" + durShort(-left) + " ago)"
		}
	} else if e.Expires != nil {
		ttl = "until " + stamp(*e.Expires)
	}
	row("ttl", ttl)
	why := clean(e.Expiry.Reason)
	if why == "" {
		why = "unknown"
	}
	if e.Expiry.Detail != "" {
		why += ": " + clean(e.Expiry.Detail)
	}
	row("why this ttl", why)
	if e.NotAfter != nil {
		row("not after", stamp(*e.NotAfter)+" (earliest LiveView token expiry: never served after)")
	}
	row("size", fmt.Sprintf("%s stored, %s body (%s bytes)", bytesShort(e.Size), bytesShort(e.BodySize), group(e.BodySize)))
	hits := "unknown"
	if e.Hits >= 0 {
		hits = group(e.Hits)
	}
	row("hits", hits)
	if len(e.Vary) > 0 {
		row("vary", clean(strings.Join(e.Vary, ", ")))
	}
	tags := "none"
	if len(e.Tags) > 0 {
		tags = clean(strings.Join(e.Tags, ", "))
	}
	row("tags", tags)
	var state []string
	switch {
	case e.Corrupt:
		state = append(state, st.Bad.Render("✗ corrupt record: purge it"))
	case e.Disabled != "":
		state = append(state, st.Bad.Render("⊘ disabled: "+clean(e.Disabled)))
	case e.Stale:
		state = append(state, st.Warn.Render("~ stale (may be served under stale-while-revalidate / stale-if-error)"))
	default:
		state = append(state, st.Good.Render("✓ served"))
	}
	row("state", strings.Join(state, " "))
	if n := len(e.Findings); n > 0 {
		row("findings", st.Warn.Render(fmt.Sprintf("! %d (see the findings tab)", n)))
	} else {
		row("findings", "none")
	}
	row("tokens", fmt.Sprintf("%d (see the tokens tab)", len(e.Tokens)))
	if len(e.Annotations) > 0 {
		keys := make([]string, 0, len(e.Annotations))
		for k := range e.Annotations {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			label := ""
			if i == 0 {
				label = "annotations"
			}
			row(label, clean(k)+"="+clean(e.Annotations[k]))
		}
	}
	return out
}

func (m *Model) headerLines() []string {
	e := m.det.d
	names := make([]string, 0, len(e.Headers))
	for k := range e.Headers {
		names = append(names, k)
	}
	sort.Strings(names)
	w := max(20, m.width)
	var out []string
	if len(names) == 0 {
		return []string{m.st.Dim.Render("no headers stored")}
	}
	for _, k := range names {
		for _, v := range e.Headers[k] {
			for i, l := range wrapLine(clean(k)+": "+clean(v), w) {
				if i > 0 {
					l = "    " + l
				}
				out = append(out, l)
			}
		}
	}
	return out
}

// bodyLines is the body, wrapped to the width, with a one-column gutter
// that marks search matches (▶ the current one, • the others) so they read
// without colour too. It also records the match line numbers.
func (m *Model) bodyLines() []string {
	st := m.st
	d := m.det
	e := d.d
	w := max(10, m.width-2)
	info := fmt.Sprintf("%s bytes", group(e.BodySize))
	if ct := e.Headers["Content-Type"]; len(ct) > 0 {
		info = clean(ct[0]) + " · " + info
	}
	if e.Decoded != "" {
		info += " · " + clean(e.Decoded) + " removed"
	}
	text := e.Body
	if e.BodyBase64 {
		info += " · binary, shown as base64"
		if raw, err := base64.StdEncoding.DecodeString(e.Body); err == nil {
			text = base64.StdEncoding.EncodeToString(raw)
		}
	}
	if e.Truncated {
		info += fmt.Sprintf(" · first %s shown", bytesShort(int64(len(e.Body))))
	}
	var lines []string
	for _, l := range strings.Split(cleanBlock(text), "\n") {
		lines = append(lines, wrapLine(l, w)...)
	}
	d.matches = d.matches[:0]
	q := strings.ToLower(d.query)
	if q != "" {
		for i, l := range lines {
			if strings.Contains(strings.ToLower(l), q) {
				d.matches = append(d.matches, i)
			}
		}
		if d.match >= len(d.matches) {
			d.match = 0
		}
	}
	out := make([]string, 0, len(lines)+1)
	out = append(out, st.Dim.Render(info))
	mi := 0
	for i, l := range lines {
		g := " "
		if mi < len(d.matches) && d.matches[mi] == i {
			g = "•"
			if mi == d.match {
				g = "▶"
			}
			l = highlight(l, d.query, st, mi == d.match)
			mi++
		}
		out = append(out, g+" "+l)
	}
	// Line numbers of matches count the info line.
	for i := range d.matches {
		d.matches[i]++
	}
	return out
}

// highlight styles every case-insensitive occurrence of q in plain l.
func highlight(l, q string, st styles, cur bool) string {
	if q == "" {
		return l
	}
	style := st.Match
	if cur {
		style = st.MatchCur
	}
	lower := strings.ToLower(l)
	lq := strings.ToLower(q)
	if len(lower) != len(l) {
		return l // case folding changed byte lengths; leave the line plain
	}
	var b strings.Builder
	for {
		i := strings.Index(lower, lq)
		if i < 0 {
			b.WriteString(l)
			return b.String()
		}
		b.WriteString(l[:i])
		b.WriteString(style.Render(l[i : i+len(lq)]))
		l, lower = l[i+len(lq):], lower[i+len(lq):]
	}
}

func (m *Model) tokenLines() []string {
	st := m.st
	d := m.det
	toks := d.d.Tokens
	if len(toks) == 0 {
		return []string{st.Dim.Render("no Phoenix tokens in this first render")}
	}
	now := m.now()
	var out []string
	for i, t := range toks {
		g := "  "
		if i == d.tokCur {
			g = "▸ "
		}
		where := clean(t.Where)
		if where == "" {
			where = "token"
		}
		line := g + pad(where, 18) + pad(clean(t.Kind), 10) + m.signatureShort(t.Signature)
		if i == d.tokCur {
			line = st.Cursor.Render(line)
		}
		out = append(out, line)
		var sub []string
		if t.SignedAt != nil {
			sub = append(sub, "signed "+stamp(*t.SignedAt))
		}
		if t.Expires != nil {
			if left := t.Expires.Sub(now); left > 0 && !t.Expired {
				sub = append(sub, "expires in "+durShort(left))
			} else {
				sub = append(sub, st.Bad.Render("✗ expired "+durShort(-left)+" ago"))
			}
		}
		if t.Error != "" {
			sub = append(sub, st.Bad.Render("✗ "+clean(t.Error)))
		}
		out = append(out, "    "+strings.Join(sub, " · "))
	}
	out = append(out, "", st.Dim.Render("enter opens the decode panel on the token under the cursor"))
	return out
}

func (m *Model) findingLines() []string {
	st := m.st
	fs := m.det.d.Findings
	if len(fs) == 0 {
		return []string{st.Good.Render("✓ no lint findings: nothing per-user was seen in this first render")}
	}
	w := max(20, m.width-8)
	var out []string
	for i, f := range fs {
		if i > 0 {
			out = append(out, "")
		}
		head := st.Warn.Render("! " + clean(f.Kind))
		if f.Policy != "" {
			head += st.Dim.Render("  policy: " + clean(f.Policy))
		}
		out = append(out, head)
		block := func(label, text string) {
			if text == "" {
				return
			}
			for j, l := range wrapWords(clean(text), w) {
				if j == 0 {
					out = append(out, "  "+st.Label.Render(pad(label, 6))+l)
				} else {
					out = append(out, "        "+l)
				}
			}
		}
		block("seen", f.Detail)
		block("why", f.Explanation)
		block("do", f.Action)
	}
	return out
}
