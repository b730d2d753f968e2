package tui

import "github.com/charmbracelet/bubbles/key"

// screen is what fills the body.
type screen int

const (
	scrList screen = iota
	scrDetail
	scrDecode
	scrStats
	scrCluster
)

// KeyMap is every binding of the TUI. The same bindings feed the short help
// bar (ShortHelp) and the full help (FullHelp), so the two cannot disagree;
// the model enables only the bindings that work on the current screen and
// mode, and records why a binding is off (read-only) for the full help.
type KeyMap struct {
	// Global.
	Quit    key.Binding
	Back    key.Binding
	Help    key.Binding
	Command key.Binding
	Refresh key.Binding

	// Movement (list, viewports).
	Up       key.Binding
	Down     key.Binding
	PageDown key.Binding
	PageUp   key.Binding
	Top      key.Binding
	Bottom   key.Binding

	// Entry list.
	Open        key.Binding
	Filter      key.Binding
	ClearFilter key.Binding
	Mark        key.Binding
	Purge       key.Binding

	// Entry detail.
	NextTab     key.Binding
	PrevTab     key.Binding
	PrevVariant key.Binding
	NextVariant key.Binding
	Search      key.Binding
	NextMatch   key.Binding
	PrevMatch   key.Binding
	Decode      key.Binding

	// Decode panel.
	Deeper    key.Binding
	Shallower key.Binding

	// Purge dialog.
	Focus   key.Binding
	Confirm key.Binding
	Cancel  key.Binding

	screen  screen
	dialog  bool
	reasons map[string]string // help key -> why the binding is disabled
}

// DefaultKeyMap returns the bindings the issue lists (vim and arrow keys,
// ctrl-f/ctrl-b, g/G, enter, esc, q, ctrl-c, /, :, ?, space, d, r).
func DefaultKeyMap() KeyMap {
	return KeyMap{
		Quit:    key.NewBinding(key.WithKeys("ctrl+c"), key.WithHelp("ctrl+c", "quit")),
		Back:    key.NewBinding(key.WithKeys("q"), key.WithHelp("q", "back/quit")),
		Help:    key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "help")),
		Command: key.NewBinding(key.WithKeys(":"), key.WithHelp(":", "command")),
		Refresh: key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "refresh")),

		Up:       key.NewBinding(key.WithKeys("k", "up"), key.WithHelp("↑/k", "up")),
		Down:     key.NewBinding(key.WithKeys("j", "down"), key.WithHelp("↓/j", "down")),
		PageDown: key.NewBinding(key.WithKeys("ctrl+f", "pgdown"), key.WithHelp("ctrl+f", "page down")),
		PageUp:   key.NewBinding(key.WithKeys("ctrl+b", "pgup"), key.WithHelp("ctrl+b", "page up")),
		Top:      key.NewBinding(key.WithKeys("g", "home"), key.WithHelp("g", "first")),
		Bottom:   key.NewBinding(key.WithKeys("G", "end"), key.WithHelp("G", "last")),

		Open:        key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "open")),
		Filter:      key.NewBinding(key.WithKeys("/"), key.WithHelp("/", "filter")),
		ClearFilter: key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "clear filter")),
		Mark:        key.NewBinding(key.WithKeys(" "), key.WithHelp("space", "mark")),
		Purge:       key.NewBinding(key.WithKeys("d"), key.WithHelp("d", "purge")),

		NextTab:     key.NewBinding(key.WithKeys("tab", "l", "right"), key.WithHelp("tab/l", "next tab")),
		PrevTab:     key.NewBinding(key.WithKeys("shift+tab", "h", "left"), key.WithHelp("S-tab/h", "prev tab")),
		PrevVariant: key.NewBinding(key.WithKeys("["), key.WithHelp("[", "prev variant")),
		NextVariant: key.NewBinding(key.WithKeys("]"), key.WithHelp("]", "next variant")),
		Search:      key.NewBinding(key.WithKeys("/"), key.WithHelp("/", "search body")),
		NextMatch:   key.NewBinding(key.WithKeys("n"), key.WithHelp("n", "next match")),
		PrevMatch:   key.NewBinding(key.WithKeys("N"), key.WithHelp("N", "prev match")),
		Decode:      key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "decode token")),

		Deeper:    key.NewBinding(key.WithKeys("+", "="), key.WithHelp("+", "deeper term")),
		Shallower: key.NewBinding(key.WithKeys("-"), key.WithHelp("-", "shallower term")),

		Focus:   key.NewBinding(key.WithKeys("tab", "shift+tab", "left", "right", "h", "l"), key.WithHelp("tab/←→", "switch button")),
		Confirm: key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "press button")),
		Cancel:  key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "cancel")),
	}
}

// ShortHelp is the help bar of the current screen (enabled bindings only,
// as help.Model shows them).
func (k KeyMap) ShortHelp() []key.Binding {
	if k.dialog {
		return []key.Binding{k.Focus, k.Confirm, k.Cancel}
	}
	switch k.screen {
	case scrDetail:
		return []key.Binding{k.NextTab, k.PrevVariant, k.NextVariant, k.Search, k.NextMatch, k.Decode, k.Purge, k.Back, k.Help}
	case scrDecode:
		return []key.Binding{k.Down, k.Up, k.Deeper, k.Shallower, k.Back, k.Help}
	case scrStats, scrCluster:
		return []key.Binding{k.Refresh, k.Back, k.Help}
	}
	return []key.Binding{k.Down, k.Up, k.Open, k.Filter, k.ClearFilter, k.Mark, k.Purge, k.Top, k.Bottom, k.Command, k.Help, k.Back}
}

// FullHelp is every binding of the current screen, then the global ones,
// in columns. Disabled bindings are included; the help screen greys them
// and says why (see Reason).
func (k KeyMap) FullHelp() [][]key.Binding {
	global := []key.Binding{k.Help, k.Command, k.Refresh, k.Back, k.Quit}
	if k.dialog {
		return [][]key.Binding{{k.Focus, k.Confirm, k.Cancel}, global}
	}
	switch k.screen {
	case scrDetail:
		return [][]key.Binding{
			{k.NextTab, k.PrevTab, k.PrevVariant, k.NextVariant},
			{k.Down, k.Up, k.PageDown, k.PageUp, k.Top, k.Bottom},
			{k.Search, k.NextMatch, k.PrevMatch, k.Decode, k.Purge},
			global,
		}
	case scrDecode:
		return [][]key.Binding{{k.Down, k.Up, k.PageDown, k.PageUp, k.Deeper, k.Shallower}, global}
	case scrStats, scrCluster:
		return [][]key.Binding{global}
	}
	return [][]key.Binding{
		{k.Down, k.Up, k.PageDown, k.PageUp, k.Top, k.Bottom},
		{k.Open, k.Filter, k.ClearFilter, k.Mark, k.Purge},
		global,
	}
}

// Reason says why b is disabled ("" when it is enabled or simply not part
// of the current screen's state).
func (k KeyMap) Reason(b key.Binding) string {
	if b.Enabled() {
		return ""
	}
	return k.reasons[b.Help().Key+"\x00"+b.Help().Desc]
}

func (k *KeyMap) disable(b *key.Binding, why string) {
	b.SetEnabled(false)
	if k.reasons == nil {
		k.reasons = map[string]string{}
	}
	k.reasons[b.Help().Key+"\x00"+b.Help().Desc] = why
}
