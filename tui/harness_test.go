package tui

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"

	"github.com/firstrender/firstrender/httpcache/admin"
)

// -update rewrites the golden files. teatest's golden package already
// defines the flag, so this one is defined only when it is absent.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite the golden files under testdata/")
	}
}

func updating() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// t0 is the fixed clock's start.
var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// timerMsg is a timer the harness holds instead of sleeping.
type timerMsg struct {
	d   time.Duration
	msg tea.Msg
}

// harness drives a Model synchronously: each command runs at once on the
// test goroutine and its message goes back into Update; timers are held
// until the test fires them; with hold set, Source replies are held too,
// so a test can deliver them late or never.
type harness struct {
	t      testing.TB
	m      Model
	clock  *clock
	timers []timerMsg
	hold   bool
	held   []tea.Msg
	quit   bool
	waits  []tea.Cmd // blocking waits on the event stream, run by events()
}

// recvMsg is a wait on the event stream the harness holds.
type recvMsg struct{ cmd tea.Cmd }

func asciiRenderer() *lipgloss.Renderer {
	r := lipgloss.NewRenderer(io.Discard)
	r.SetColorProfile(termenv.Ascii)
	r.SetHasDarkBackground(true)
	return r
}

func newHarness(t testing.TB, src Source, opts Options, w, h int) *harness {
	t.Helper()
	c := &clock{t: t0}
	if opts.Now == nil {
		opts.Now = c.now
	}
	if opts.Renderer == nil {
		opts.Renderer = asciiRenderer()
	}
	hs := &harness{t: t, clock: c}
	hs.m = New(src, opts)
	hs.m.after = func(d time.Duration, msg tea.Msg) tea.Cmd {
		return func() tea.Msg { return timerMsg{d: d, msg: msg} }
	}
	hs.hookStream()
	hs.send(tea.WindowSizeMsg{Width: w, Height: h})
	hs.run(hs.m.Init())
	return hs
}

func isReply(msg tea.Msg) bool {
	switch msg.(type) {
	case statsMsg, listMsg, detailMsg, decodeMsg, purgeMsg:
		return true
	}
	return false
}

func (h *harness) send(msg tea.Msg) {
	nm, cmd := h.m.Update(msg)
	h.m = nm.(Model)
	h.run(cmd)
}

func (h *harness) run(cmd tea.Cmd) {
	if cmd == nil {
		return
	}
	switch msg := cmd().(type) {
	case nil:
	case tea.BatchMsg:
		for _, c := range msg {
			h.run(c)
		}
	case timerMsg:
		h.timers = append(h.timers, msg)
	case recvMsg:
		h.waits = append(h.waits, msg.cmd)
	case tea.QuitMsg:
		h.quit = true
	default:
		if h.hold && isReply(msg) {
			h.held = append(h.held, msg)
			return
		}
		h.send(msg)
	}
}

// hookStream makes the model's waits on the event stream come to the
// harness (events runs them) and ends the stream with the test.
func (h *harness) hookStream() {
	ctx, cancel := context.WithCancel(context.Background())
	h.t.Cleanup(cancel)
	h.m.ctx = ctx
	h.m.recv = func(c tea.Cmd) tea.Cmd { return func() tea.Msg { return recvMsg{cmd: c} } }
}

// events runs the held waits on the event stream until until reports
// true, delivering each batch to Update. A wait blocks until the stream's
// goroutine delivers (channel synchronisation, no sleeping); the test
// fails if nothing comes within a generous bound.
func (h *harness) events(until func() bool) {
	h.t.Helper()
	deadline := time.After(20 * time.Second)
	for !until() {
		if len(h.waits) == 0 {
			h.t.Fatal("no wait on the event stream is pending (stream closed or never opened)")
		}
		w := h.waits[0]
		h.waits = h.waits[1:]
		got := make(chan tea.Msg, 1)
		go func() { got <- w() }()
		select {
		case msg := <-got:
			h.send(msg)
		case <-deadline:
			h.t.Fatal("the event stream delivered nothing within 20s")
		}
	}
}

// releaseOne delivers the first held reply of like's type and keeps
// holding the others.
func (h *harness) releaseOne(like tea.Msg) {
	h.t.Helper()
	for i, m := range h.held {
		if fmt.Sprintf("%T", m) == fmt.Sprintf("%T", like) {
			h.held = append(h.held[:i:i], h.held[i+1:]...)
			h.send(m)
			return
		}
	}
	h.t.Fatalf("no held %T among %d held replies", like, len(h.held))
}

// release delivers the held replies in order and stops holding.
func (h *harness) release() {
	held := h.held
	h.held, h.hold = nil, false
	for _, m := range held {
		h.send(m)
	}
}

// fire delivers the held timers whose message has the type of like.
func (h *harness) fire(like tea.Msg) {
	var keep, due []timerMsg
	for _, tm := range h.timers {
		if fmt.Sprintf("%T", tm.msg) == fmt.Sprintf("%T", like) {
			due = append(due, tm)
		} else {
			keep = append(keep, tm)
		}
	}
	h.timers = keep
	for _, tm := range due {
		h.send(tm.msg)
	}
}

// tick moves the clock by a second and fires the heartbeat.
func (h *harness) tick() {
	h.clock.add(time.Second)
	h.fire(heartbeatMsg{})
}

// key sends one key by its bubbletea name ("enter", "ctrl+f", "G", " ").
func (h *harness) key(name string) {
	h.send(keyMsg(name))
}

func (h *harness) keys(names ...string) {
	for _, n := range names {
		h.key(n)
	}
}

// typ types text rune by rune.
func (h *harness) typ(s string) {
	for _, r := range s {
		if r == ' ' {
			h.send(tea.KeyMsg{Type: tea.KeySpace, Runes: []rune{' '}})
			continue
		}
		h.send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}})
	}
}

func keyMsg(name string) tea.KeyMsg {
	types := map[string]tea.KeyType{
		"enter": tea.KeyEnter, "esc": tea.KeyEsc, "tab": tea.KeyTab, "shift+tab": tea.KeyShiftTab,
		"up": tea.KeyUp, "down": tea.KeyDown, "left": tea.KeyLeft, "right": tea.KeyRight,
		"ctrl+f": tea.KeyCtrlF, "ctrl+b": tea.KeyCtrlB, "ctrl+c": tea.KeyCtrlC, "backspace": tea.KeyBackspace,
		"pgdown": tea.KeyPgDown, "pgup": tea.KeyPgUp, "home": tea.KeyHome, "end": tea.KeyEnd,
		" ": tea.KeySpace,
	}
	if t, ok := types[name]; ok {
		if t == tea.KeySpace {
			return tea.KeyMsg{Type: t, Runes: []rune{' '}}
		}
		return tea.KeyMsg{Type: t}
	}
	return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(name)}
}

func (h *harness) view() string { return h.m.View() }

// golden compares got with testdata/<TestName>/<subtest>.golden, or
// rewrites it with -update.
func golden(t *testing.T, got string) {
	t.Helper()
	name := strings.ReplaceAll(t.Name(), " ", "_")
	path := filepath.Join("testdata", filepath.FromSlash(name)+".golden")
	if updating() {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./tui -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("view differs from %s (go test ./tui -run '%s' -update rewrites it)\n--- got ---\n%s\n--- want ---\n%s", path, t.Name(), got, want)
	}
}

// seeded returns the fake with the data the goldens draw.
func seeded() *fakeSource {
	stored := t0.Add(-12 * time.Minute)
	exp := func(d time.Duration) *time.Time { t := t0.Add(d); return &t }
	f := &fakeSource{details: map[string]admin.EntryDetail{}, tokens: map[string]admin.Token{}}
	paths := []string{"", "about", "blog", "blog/caching-liveview", "blog/hello-world", "blog/phoenix-tokens",
		"docs", "docs/install", "docs/config", "docs/purge", "pricing", "users/42", "users/43", "search?q=cache"}
	for i, p := range paths {
		e := admin.Entry{Key: "https://app.test/" + p, Status: 200, Size: int64(3000 + 997*i), BodySize: int64(2800 + 990*i),
			StoredAt: stored, AgeS: int64(720 - 30*i), Expires: exp(time.Duration(50-i) * time.Minute), Hits: int64(1234 - 80*i)}
		switch {
		case strings.HasPrefix(p, "blog"):
			e.Tags = []string{"blog"}
			e.Vary = []string{"Accept-Encoding"}
		case strings.HasPrefix(p, "docs"):
			e.Tags = []string{"docs"}
		case strings.HasPrefix(p, "users"):
			e.Findings = []string{"liveview-user-session"}
			e.Disabled = "join refused: session needed"
			e.Status = 200
		case p == "pricing":
			e.Stale = true
			e.Expires = exp(-3 * time.Minute)
		case strings.HasPrefix(p, "search"):
			e.Status = 404
			e.Hits = -1
		}
		f.entries = append(f.entries, e)
		if p == "blog" {
			gz := e
			gz.Variant = "accept-encoding=gzip"
			gz.Size, gz.BodySize = 2100, 1900
			f.entries = append(f.entries, gz)
		}
	}
	signed := t0.Add(-2 * time.Hour)
	tokExp := signed.Add(14 * 24 * time.Hour)
	session := admin.Token{Where: "data-phx-session", Kind: "signed", Algorithm: "HS256", SignedAt: &signed,
		MaxAgeS: 1209600, VerifierMaxAgeS: 1209600, Expires: &tokExp, Signature: "not-checked",
		Raw:    "SFMyNTY.g2gDaAJhBXQAAAADZAAC.aWQ",
		Elixir: `%{id: "phx-F5UgOQKJJCK_shjD", session: %{"user_id" => 42, "prefs" => %{theme: "dark", lang: [en: 1, fr: 2]}}, view: MyAppWeb.PostLive.Show, router: MyAppWeb.Router, parent_pid: nil, root_pid: nil}`}
	static := session
	static.Where, static.Elixir, static.Signature = "data-phx-static", `%{assign_new: [], flash: %{}}`, "verified"
	f.tokens[session.Raw] = session
	blog := f.entries[2] // https://app.test/blog (default variant)
	f.details[pos(blog)] = admin.EntryDetail{
		Entry:    blog,
		Variants: []string{"", "accept-encoding=gzip"},
		Headers: map[string][]string{
			"Content-Type":  {"text/html; charset=utf-8"},
			"Cache-Control": {"public, s-maxage=3600"},
			"Vary":          {"Accept-Encoding"},
			"X-Evil":        {"\x1b[2Jcleared?"},
		},
		Body: "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n  <title>Blog</title>\n</head>\n<body>\n" +
			"  <div data-phx-main data-phx-session=\"SFMyNTY.g2gDaAJhBXQAAAADZAAC.aWQ\" data-phx-static=\"SFMyNTY.static\">\n" +
			"    <h1>Caching LiveView first renders</h1>\n    <p>Cache the first render, not the session.</p>\n" +
			"    <p>A cached first render must carry no per-user token.</p>\n  </div>\n</body>\n</html>\n",
		Expiry:   admin.Expiry{At: blog.Expires, Reason: "s-maxage", Detail: "s-maxage=3600, capped by nothing"},
		Tokens:   []admin.Token{session, static},
		Findings: []admin.Finding{{Kind: "csrf-meta", Policy: "strip", Detail: `<meta name="csrf-token" content="…">`, Explanation: "The CSRF token is per session: a cached copy would hand every visitor the first visitor's token, so their sockets fail.", Action: "Nothing: the token was blanked before storing. Render it client-side to silence this."}},
	}
	f.stats = admin.Stats{Instance: "app.test:8080", Version: "v0.9.0", StartedAt: t0.Add(-(3*24*time.Hour + 4*time.Hour)),
		UptimeS: 3*86400 + 4*3600, StorePath: "/var/lib/firstrender/cache.db", Bytes: 1288490189, FileSize: 1610612736,
		MaxSize: 4 << 30, OpenSockets: 17, Requests: 100000, Hits: 90000, Misses: 10000, Purged: 12, OriginRequests: 10500, OriginLatencyS: 0.042}
	return f
}

// warm feeds n seconds of stats samples with a varying request rate.
func warm(h *harness, f *fakeSource, n int) {
	for i := 0; i < n; i++ {
		f.setStats(func(s *admin.Stats) {
			r := int64(20 + (i*7)%30)
			s.Requests += r
			pc := int64(70 + (i/10)%25) // the hit ratio drifts
			s.Hits += r * pc / 100
			s.Misses += r - r*pc/100
			s.UptimeS++
		})
		h.tick()
	}
}

func sizeMsg(w, h int) tea.Msg { return tea.WindowSizeMsg{Width: w, Height: h} }
