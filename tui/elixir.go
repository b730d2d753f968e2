package tui

import (
	"strings"

	"github.com/charmbracelet/x/ansi"
)

// Pretty-printing of a term in Elixir syntax (the one-line form
// erlterm.Format and the admin API produce) for the decode panel: containers
// that do not fit the width break one element per line, containers deeper
// than the depth cap print as %{…}, [] …, and long containers stop after
// maxTermItems elements with "...", as Elixir's inspect limit does.

// maxTermItems caps the elements shown of one container.
const maxTermItems = 50

// enode is a leaf text or a container of comma-separated elements.
type enode struct {
	text        string
	open, close string
	elems       [][]*enode
}

func (n *enode) container() bool { return n.open != "" }

// parseElixir reads s into a sequence of nodes. It never fails: a closer
// with no opener is text, an opener never closed ends at the end of s
// (printed without its closer), strings and #Name<...> are opaque.
func parseElixir(s string) []*enode {
	p := elixirParser{s: s}
	elems, _ := p.seq("")
	// The top level holds one term; if there were top-level commas, keep
	// them as text between the elements.
	var out []*enode
	for i, e := range elems {
		if i > 0 {
			out = append(out, &enode{text: ", "})
		}
		out = append(out, e...)
	}
	return out
}

type elixirParser struct {
	s string
	i int
}

// seq reads elements up to closer (not consumed by seq's caller; seq
// consumes it) or the end of input.
func (p *elixirParser) seq(closer string) (elems [][]*enode, closed bool) {
	var cur []*enode
	var text strings.Builder
	flush := func() {
		if text.Len() > 0 {
			cur = append(cur, &enode{text: text.String()})
			text.Reset()
		}
	}
	endElem := func() {
		flush()
		elems = append(elems, cur)
		cur = nil
	}
	for p.i < len(p.s) {
		rest := p.s[p.i:]
		if closer != "" && strings.HasPrefix(rest, closer) {
			p.i += len(closer)
			if text.Len() > 0 || len(cur) > 0 || len(elems) > 0 {
				endElem()
			}
			return elems, true
		}
		c := p.s[p.i]
		switch {
		case c == '"':
			j := skipElixirString(p.s, p.i)
			text.WriteString(p.s[p.i:j])
			p.i = j
		case c == ',' && closer != "":
			endElem()
			p.i++
			for p.i < len(p.s) && p.s[p.i] == ' ' {
				p.i++
			}
		case c == '#' && openerAt(rest) == "":
			// #PID<0.1.2>, #Reference<...>, #Function<... in Mod>: opaque.
			j := strings.IndexByte(rest, '>')
			if j < 0 {
				j = len(rest) - 1
			}
			text.WriteString(rest[:j+1])
			p.i += j + 1
		default:
			if op := openerAt(rest); op != "" {
				flush()
				p.i += len(op)
				n := &enode{open: op, close: closerOf(op)}
				var closed bool
				n.elems, closed = p.seq(n.close)
				if !closed {
					n.close = "" // input ended inside the container
				}
				cur = append(cur, n)
				continue
			}
			text.WriteByte(c)
			p.i++
		}
	}
	if text.Len() > 0 || len(cur) > 0 || len(elems) > 0 {
		endElem() // also the empty element after a trailing comma
	}
	return elems, false
}

// openerAt returns the container opener at the start of s: "%{", "%Name{",
// "{", "[", "<<", or "".
func openerAt(s string) string {
	switch {
	case strings.HasPrefix(s, "<<"):
		return "<<"
	case strings.HasPrefix(s, "{"), strings.HasPrefix(s, "["):
		return s[:1]
	case strings.HasPrefix(s, "%"):
		j := 1
		for j < len(s) && (isIdentByte(s[j]) || s[j] == '.') {
			j++
		}
		if j < len(s) && s[j] == '{' && (j == 1 || s[1] >= 'A' && s[1] <= 'Z') {
			return s[:j+1]
		}
	}
	return ""
}

func closerOf(op string) string {
	switch op {
	case "<<":
		return ">>"
	case "[":
		return "]"
	}
	return "}"
}

func isIdentByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// skipElixirString returns the index past the string literal at i (or the
// end of s when it is not terminated).
func skipElixirString(s string, i int) int {
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(s)
}

// prettyElixir lays s out in lines of at most width columns where the
// term's structure allows, capping nesting at maxDepth (containers at
// depth maxDepth print as open…close; the top level is depth 0). A
// maxDepth or width <= 0 means no cap. The lines are not yet sanitized.
func prettyElixir(s string, maxDepth, width int) []string {
	if maxDepth <= 0 {
		maxDepth = int(^uint(0) >> 1)
	}
	if width <= 0 {
		width = int(^uint(0) >> 1)
	}
	p := &termPrinter{width: width, maxDepth: maxDepth}
	p.elem(parseElixir(s), 0, 0)
	p.lines = append(p.lines, p.cur.String())
	return p.lines
}

type termPrinter struct {
	width, maxDepth int
	lines           []string
	cur             strings.Builder
	curW            int
}

func (p *termPrinter) write(s string) {
	p.cur.WriteString(s)
	p.curW += ansi.StringWidth(s)
}

func (p *termPrinter) newline(indent int) {
	p.lines = append(p.lines, p.cur.String())
	p.cur.Reset()
	p.curW = 0
	p.write(strings.Repeat(" ", indent))
}

func (p *termPrinter) elem(parts []*enode, indent, depth int) {
	for _, n := range parts {
		if !n.container() {
			p.write(n.text)
			continue
		}
		p.container(n, indent, depth)
	}
}

func (p *termPrinter) container(n *enode, indent, depth int) {
	f := p.flat(n, depth)
	if p.curW+ansi.StringWidth(f)+1 <= p.width || len(n.elems) == 0 || depth >= p.maxDepth {
		p.write(f)
		return
	}
	p.write(n.open)
	for i, e := range n.elems {
		p.newline(indent + 2)
		if i == maxTermItems {
			p.write("...")
			break
		}
		p.elem(e, indent+2, depth+1)
		if i < len(n.elems)-1 {
			p.write(",")
		}
	}
	p.newline(indent)
	p.write(n.close)
}

// flat renders n on one line with the caps applied.
func (p *termPrinter) flat(n *enode, depth int) string {
	var b strings.Builder
	p.flatTo(&b, n, depth)
	return b.String()
}

func (p *termPrinter) flatTo(b *strings.Builder, n *enode, depth int) {
	if !n.container() {
		b.WriteString(n.text)
		return
	}
	b.WriteString(n.open)
	if depth >= p.maxDepth && len(n.elems) > 0 {
		b.WriteString("…")
		b.WriteString(n.close)
		return
	}
	for i, e := range n.elems {
		if i > 0 {
			b.WriteString(", ")
		}
		if i == maxTermItems {
			b.WriteString("...")
			break
		}
		for _, part := range e {
			p.flatTo(b, part, depth+1)
		}
	}
	b.WriteString(n.close)
}
