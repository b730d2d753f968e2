package tui

import (
	"context"
	"io"
	"time"

	"github.com/charmbracelet/bubbles/cursor"
	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/spinner"
	"github.com/charmbracelet/bubbles/textinput"
	"github.com/charmbracelet/bubbles/viewport"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/firstrender/firstrender/httpcache/admin"
)

// Options configures the TUI. The zero value is usable: every zero field
// takes the default its comment names.
type Options struct {
	// ReadOnly removes every purge binding and command (--read-only).
	// A Source whose Stats say ReadOnly (offline file access) is read-only
	// whatever this says.
	ReadOnly bool
	// Mouse turns on mouse reporting (wheel scrolls); off by default.
	Mouse bool
	// Instance names the server (or file) until the first Stats arrive.
	Instance string

	// PageSize is the Limit of each list call; zero means 100, at most
	// admin.MaxLimit.
	PageSize int
	// MaxPages bounds the list pages kept resident; zero means 4 (at
	// least 3: the page under the cursor and one each side).
	MaxPages int
	// Timeout bounds every call but a real purge; zero means 15 s.
	Timeout time.Duration
	// PurgeTimeout bounds a real purge; zero means 10 min.
	PurgeTimeout time.Duration
	// Refresh is how often the visible page is fetched again; zero means
	// 5 s, negative never.
	Refresh time.Duration
	// SlowAfter is how long a call runs before a spinner shows; zero
	// means 250 ms.
	SlowAfter time.Duration
	// MaxRetry caps the backoff between reconnection attempts (of the
	// Stats poll and of the event stream); zero means 30 s.
	MaxRetry time.Duration
	// EventBuffer is how many events from the stream (see EventSource)
	// wait for the TUI before further ones are counted as lost, which
	// makes the TUI fetch the figures and the visible page again; zero
	// means 1024.
	EventBuffer int

	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Renderer draws the styles; nil means lipgloss's default renderer,
	// whose colour profile follows the terminal (NO_COLOR turns colour off).
	Renderer *lipgloss.Renderer
	// Input and Output are Run's terminal; nil means stdin / stdout.
	Input  io.Reader
	Output io.Writer
}

func (o *Options) setDefaults() {
	if o.PageSize <= 0 {
		o.PageSize = 100
	}
	if o.PageSize > admin.MaxLimit {
		o.PageSize = admin.MaxLimit
	}
	if o.MaxPages <= 0 {
		o.MaxPages = 4
	}
	if o.MaxPages < 3 {
		o.MaxPages = 3
	}
	if o.Timeout <= 0 {
		o.Timeout = 15 * time.Second
	}
	if o.PurgeTimeout <= 0 {
		o.PurgeTimeout = 10 * time.Minute
	}
	if o.Refresh == 0 {
		o.Refresh = 5 * time.Second
	}
	if o.SlowAfter <= 0 {
		o.SlowAfter = 250 * time.Millisecond
	}
	if o.MaxRetry <= 0 {
		o.MaxRetry = 30 * time.Second
	}
	if o.EventBuffer <= 0 {
		o.EventBuffer = 1024
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// promptKind is the text input the status line holds, if any.
type promptKind int

const (
	promptNone promptKind = iota
	promptFilter
	promptCommand
	promptSearch
	promptDecode
	promptConfirm // typed confirmation in the purge-all dialog
)

// Model is the TUI's bubbletea model. Build it with New; its zero value is
// not usable. It is a value: Update returns the next Model.
type Model struct {
	src   Source
	opts  Options
	ctx   context.Context
	now   func() time.Time
	after func(d time.Duration, msg tea.Msg) tea.Cmd
	// recv wraps each blocking wait on the event stream (identity; tests
	// hold the waits instead of running them).
	recv func(tea.Cmd) tea.Cmd

	keys KeyMap
	st   styles
	help help.Model
	spin spinner.Model

	width, height int

	stack    []screen
	showHelp bool
	dialog   *purgeDialog
	prompt   promptKind
	input    textinput.Model

	seq      uint64
	pending  [numReqs]call
	spinning bool
	dropped  int // late or superseded replies dropped

	conn   conn
	hist   *history
	stream streamState

	list listState
	det  *detailState
	dec  *decodeState
	clus *clusterState

	status      statusLine
	lastRefresh time.Time
	quitting    bool
}

// conn is what the header knows of the server.
type conn struct {
	stats     *admin.Stats // last good Stats (nil before the first)
	statsAt   time.Time
	prevStats *admin.Stats // the one before, for per-second changes
	prevAt    time.Time
	ok        bool // the last poll answered
	failures  int
	lastErr   error
	retryAt   time.Time
	nextPoll  time.Time
}

// listState is the entry list: filter, resident window, cursor, marks.
type listState struct {
	f        filter
	win      window
	cur, top int
	marks    map[string]struct{} // marked keys (a purge takes all variants)
	total    int64               // approximate records in the store
	// scanned sums the records the server examined for the calls that
	// built this filter's window (refreshes excluded; a page fetched again
	// after it slid out counts again), so it can exceed total.
	scanned   int64
	loaded    bool // a first reply came for this filter
	resetting bool // a reset load (first/last/filter) is pending
	dirty     bool // an event changed rows on screen: refresh the page
	err       error
	saved     *listSnapshot // the unfiltered list to come back to on esc
}

type listSnapshot struct {
	win      window
	cur, top int
	total    int64
}

// detailState is the entry detail screen.
type detailState struct {
	key, variant string
	d            *admin.EntryDetail
	err          error
	tab          int
	vp           viewport.Model
	query        string
	matches      []int // body line numbers holding query
	match        int
	tokCur       int
}

// decodeState is the decode panel.
type decodeState struct {
	tok     *admin.Token
	err     error
	fromTab bool // opened on a detail's token (already server-decoded)
	depth   int
	vp      viewport.Model
	pasting bool
}

// purgeDialog is the purge confirmation.
type purgeDialog struct {
	req     admin.PurgeRequest
	what    string
	match   func(*admin.Entry) bool
	counted bool
	count   int
	err     error
	focus   int // 0 Cancel (default), 1 Purge
	running bool
	started time.Time
	typed   string // purge all: the typed confirmation
}

// statusLine is the last message: a result or an error.
type statusLine struct {
	text string
	err  bool
}

// Detail tabs.
const (
	tabOverview = iota
	tabHeaders
	tabBody
	tabTokens
	tabFindings
	numTabs
)

var tabNames = [numTabs]string{"overview", "headers", "body", "tokens", "findings"}

// New returns the model for src. The program it runs in must deliver a
// tea.WindowSizeMsg before anything is drawn (tea.Program does).
func New(src Source, opts Options) Model {
	opts.setDefaults()
	in := textinput.New()
	in.Prompt = ""
	in.CharLimit = 64 << 10 // tokens are pasted here
	in.Cursor.SetMode(cursor.CursorStatic)
	sp := spinner.New(spinner.WithSpinner(spinner.Line))
	m := Model{
		src:   src,
		opts:  opts,
		ctx:   context.Background(),
		now:   opts.Now,
		after: defaultAfter,
		recv:  func(c tea.Cmd) tea.Cmd { return c },
		keys:  DefaultKeyMap(),
		st:    defaultStyles(opts.Renderer),
		help:  help.New(),
		spin:  sp,
		stack: []screen{scrList},
		input: in,
		hist:  &history{},
	}
	m.list.marks = map[string]struct{}{}
	m.stream.open = eventsOf(src)
	m.applyHelpStyles()
	m.syncKeys()
	return m
}

func (m *Model) applyHelpStyles() {
	m.help.Styles.ShortKey = m.st.HelpKey
	m.help.Styles.ShortDesc = m.st.Dim
	m.help.Styles.ShortSeparator = m.st.Dim
	m.help.Styles.Ellipsis = m.st.Dim
	m.spin.Style = m.st.Accent
}

// Init starts the first Stats poll, the first page and the heartbeat.
func (m Model) Init() tea.Cmd {
	// Init's changes to m are lost (bubbletea keeps the value New gave),
	// so the calls it starts are registered by the first Update instead.
	return func() tea.Msg { return initMsg{} }
}

// initMsg makes the first Update start the calls Init cannot record.
type initMsg struct{}

func (m *Model) top() screen { return m.stack[len(m.stack)-1] }

// readOnly reports whether purging is off: by option, or because the
// source says so (offline file access).
func (m *Model) readOnly() bool {
	return m.opts.ReadOnly || (m.conn.stats != nil && m.conn.stats.ReadOnly)
}

// entry is what the detail shows, as a list row: the fetched entry, or
// just its key and variant before the reply.
func (d *detailState) entry() *admin.Entry {
	if d.d != nil {
		return &d.d.Entry
	}
	return &admin.Entry{Key: d.key, Variant: d.variant}
}
