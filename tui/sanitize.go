package tui

import (
	"strings"
	"unicode/utf8"
)

// clean makes outside text safe to draw on one line: control characters
// become their visible Unicode "control pictures" (ESC becomes ␛, a
// newline ␊), C1 controls, bidi overrides and invalid UTF-8 become U+FFFD.
// Nothing clean returns can move the cursor or change the terminal's state.
func clean(s string) string { return sanitize(s, false) }

// cleanBlock is clean for multi-line text: newlines stay, a tab becomes
// spaces up to the next multiple of four columns of its line, \r is dropped
// before \n (CRLF line ends) and shown as ␍ elsewhere.
func cleanBlock(s string) string { return sanitize(s, true) }

func sanitize(s string, block bool) string {
	if isPlain(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	col := 0
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		switch {
		case r == utf8.RuneError && n <= 1:
			b.WriteRune('\uFFFD')
		case block && r == '\n':
			b.WriteByte('\n')
			col = 0
			continue
		case block && r == '\t':
			pad := 4 - col%4
			b.WriteString("    "[:pad])
			col += pad
			continue
		case block && r == '\r' && i < len(s) && s[i] == '\n':
			continue
		case r < 0x20:
			b.WriteRune(0x2400 + r)
		case r == 0x7f:
			b.WriteRune('\u2421') // ␡
		case r >= 0x80 && r < 0xa0, isBidiControl(r):
			b.WriteRune('\uFFFD')
		default:
			b.WriteRune(r)
		}
		col++
	}
	return b.String()
}

// isPlain is the fast path: printable ASCII only.
func isPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
}

// isBidiControl reports the explicit directional formatting characters
// (Unicode TR9) that can reorder what a terminal shows ("Trojan Source").
func isBidiControl(r rune) bool {
	return (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) || r == 0x200e || r == 0x200f || r == 0x061c
}
