package tui

import "github.com/charmbracelet/lipgloss"

// styles is every style the views use, built on one renderer so a test
// (or NO_COLOR) pins the colour profile for the whole UI. Colours are
// adaptive (light and dark terminals); every state that colour shows is
// also shown by a glyph, so the UI reads the same without colour.
type styles struct {
	r *lipgloss.Renderer

	Title, Dim, Bold                       lipgloss.Style
	Good, Warn, Bad, Accent                lipgloss.Style
	Header, HeaderDim, Disconnected, Mode  lipgloss.Style
	ColHead, Row, Cursor, Marked           lipgloss.Style
	Tab, TabActive                         lipgloss.Style
	Status, StatusErr, Prompt              lipgloss.Style
	Dialog, Button, ButtonFocus, ButtonOff lipgloss.Style
	Match, MatchCur                        lipgloss.Style
	HelpKey, HelpDesc, HelpOff             lipgloss.Style
	Label                                  lipgloss.Style
}

func defaultStyles(r *lipgloss.Renderer) styles {
	if r == nil {
		r = lipgloss.DefaultRenderer()
	}
	c := func(light, dark string) lipgloss.AdaptiveColor {
		return lipgloss.AdaptiveColor{Light: light, Dark: dark}
	}
	var (
		fg     = c("#1a1a1a", "#dddddd")
		dim    = c("#8a8a8a", "#6c6c6c")
		accent = c("#5a3fd6", "#a48cff")
		good   = c("#0a7d2c", "#5fd787")
		warn   = c("#9a6700", "#ffd75f")
		bad    = c("#c0122a", "#ff5f5f")
		selBg  = c("#e4dcff", "#3a2f6b")
		markFg = c("#8a4b00", "#ffaf5f")
	)
	s := r.NewStyle
	return styles{
		r:            r,
		Title:        s().Bold(true).Foreground(accent),
		Dim:          s().Foreground(dim),
		Bold:         s().Bold(true),
		Good:         s().Foreground(good),
		Warn:         s().Foreground(warn),
		Bad:          s().Foreground(bad),
		Accent:       s().Foreground(accent),
		Header:       s().Foreground(fg),
		HeaderDim:    s().Foreground(dim).Faint(true),
		Disconnected: s().Bold(true).Foreground(c("#ffffff", "#ffffff")).Background(bad),
		Mode:         s().Bold(true).Foreground(accent),
		ColHead:      s().Bold(true).Foreground(dim),
		Row:          s().Foreground(fg),
		Cursor:       s().Bold(true).Background(selBg),
		Marked:       s().Foreground(markFg),
		Tab:          s().Foreground(dim),
		TabActive:    s().Bold(true).Foreground(accent).Underline(true),
		Status:       s().Foreground(fg),
		StatusErr:    s().Foreground(bad),
		Prompt:       s().Foreground(accent),
		Dialog:       s().Border(lipgloss.RoundedBorder()).BorderForeground(accent).Padding(0, 1),
		Button:       s().Foreground(fg),
		ButtonFocus:  s().Bold(true).Reverse(true),
		ButtonOff:    s().Foreground(dim).Strikethrough(true),
		Match:        s().Background(c("#fff3a0", "#5f5f00")),
		MatchCur:     s().Bold(true).Background(c("#ffd75f", "#af8700")),
		HelpKey:      s().Bold(true).Foreground(accent),
		HelpDesc:     s().Foreground(fg),
		HelpOff:      s().Foreground(dim).Faint(true),
		Label:        s().Foreground(dim),
	}
}
