package tui

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
)

func curKey(h *harness) string {
	e := h.m.list.win.row(h.m.list.cur)
	if e == nil {
		return ""
	}
	return e.Key + "|" + e.Variant
}

func residentKeys(h *harness) []string {
	var out []string
	for i := 0; i < h.m.list.win.len(); i++ {
		out = append(out, h.m.list.win.row(i).Key)
	}
	return out
}

func TestFlow_FilterThenEscRestoresCursor(t *testing.T) {
	f := seeded()
	h := newHarness(t, f, Options{}, 120, 40)
	h.keys("j", "j", "j", "j", "j")
	before := curKey(h)
	h.key("/")
	h.typ("tag:docs")
	h.key("enter")
	last := f.lists[len(f.lists)-1]
	if last.Tag != "docs" {
		t.Fatalf("filter sent %+v, want Tag docs", last)
	}
	for _, k := range residentKeys(h) {
		if !strings.HasPrefix(k, "https://app.test/docs") {
			t.Errorf("filtered list shows %q, which has no tag docs", k)
		}
	}
	if n := h.m.list.win.len(); n != 4 {
		t.Errorf("filtered rows = %d, want 4", n)
	}
	// Open one and come back: filter and cursor stay.
	h.keys("j", "enter")
	if h.m.top() != scrDetail {
		t.Fatalf("enter did not open the detail")
	}
	inFilter := "https://app.test/docs/install|"
	h.key("q")
	if h.m.list.f.Tag != "docs" || curKey(h) != inFilter {
		t.Errorf("back: filter %+v cursor %q, want tag docs and %q", h.m.list.f, curKey(h), inFilter)
	}
	h.key("esc")
	if !h.m.list.f.isZero() {
		t.Errorf("esc left filter %+v", h.m.list.f)
	}
	if got := curKey(h); got != before {
		t.Errorf("after esc the cursor is on %q, want %q (where it was before filtering)", got, before)
	}
}

func TestFlow_FilterErrorsKeepPrompt(t *testing.T) {
	h := newHarness(t, seeded(), Options{}, 80, 24)
	h.key("/")
	h.typ("status:9xx")
	h.key("enter")
	if h.m.prompt != promptFilter || !h.m.status.err || !strings.Contains(h.m.status.text, "status:9xx") {
		t.Errorf("bad filter: prompt %v status %+v, want the prompt kept and an error naming status:9xx", h.m.prompt, h.m.status)
	}
}

func TestFlow_MarkPurgeWithConfirm(t *testing.T) {
	f := seeded()
	h := newHarness(t, f, Options{}, 120, 40)
	h.keys(" ", " ") // mark / and /about (space moves down)
	if len(h.m.list.marks) != 2 {
		t.Fatalf("marks = %v, want 2", h.m.list.marks)
	}
	h.key("d")
	if h.m.dialog == nil {
		t.Fatal("d with marks opened no dialog")
	}
	dry := f.purges[len(f.purges)-1]
	if !dry.DryRun || len(dry.Keys) != 2 {
		t.Fatalf("first request %+v, want a dry run of 2 keys", dry)
	}
	if !strings.Contains(h.view(), "dry run: 2 entries would be purged") {
		t.Errorf("dialog does not show the dry-run count:\n%s", h.view())
	}
	// Cancel is the default: enter cancels.
	h.key("enter")
	if h.m.dialog != nil || len(f.purges) != 1 {
		t.Fatalf("enter on the default button: dialog %v, purges %+v; want cancelled, nothing sent", h.m.dialog, f.purges)
	}
	listsBefore := f.listCalls()
	h.keys("d", "tab")
	h.hold = true
	h.key("enter")
	h.releaseOne(purgeMsg{})
	// The rows leave as the result comes, before any reply to the
	// follow-up calls (the stats and the visible page, asked again).
	real := f.purges[len(f.purges)-1]
	if real.DryRun || len(real.Keys) != 2 {
		t.Fatalf("confirmed request %+v, want a real purge of the 2 keys", real)
	}
	for _, k := range residentKeys(h) {
		if k == "https://app.test/" || k == "https://app.test/about" {
			t.Errorf("purged %q still listed", k)
		}
	}
	if len(h.m.list.marks) != 0 {
		t.Errorf("marks after purge = %v, want none", h.m.list.marks)
	}
	if !strings.Contains(h.m.status.text, "purged 2 entries") || !strings.Contains(h.m.status.text, "audit id p-0001") {
		t.Errorf("status %q, want the count and the audit id", h.m.status.text)
	}
	if n := f.listCalls() - listsBefore; n != 1 {
		t.Errorf("the purge cost %d list calls, want 1 (the visible page refreshed, no reload)", n)
	} else if q := f.lists[len(f.lists)-1]; q.Last || q.Before != "" {
		t.Errorf("follow-up list call %+v, want the refresh of the first page", q)
	}
	h.release()
	if n := h.m.list.win.len(); n != 13 {
		t.Errorf("%d rows after the refresh, want 13", n)
	}
}

func TestFlow_ConfirmWaitsForDryRun(t *testing.T) {
	f := seeded()
	h := newHarness(t, f, Options{}, 80, 24)
	h.hold = true
	h.keys("d", "tab", "enter", "enter")
	for _, p := range f.purges {
		if !p.DryRun {
			t.Fatalf("a real purge %+v was sent before the dry-run count arrived", p)
		}
	}
	if h.m.keys.Confirm.Enabled() {
		t.Error("confirm binding enabled before the count")
	}
	h.release()
	if !h.m.dialog.counted || h.m.dialog.count != 1 {
		t.Fatalf("dialog after the dry run: %+v", h.m.dialog)
	}
	h.key("enter") // focus is still on Purge
	if p := f.purges[len(f.purges)-1]; p.DryRun || p.Key != "https://app.test/" {
		t.Errorf("last request %+v, want the real purge of https://app.test/", p)
	}
}

func TestFlow_CancelWithEsc(t *testing.T) {
	f := seeded()
	h := newHarness(t, f, Options{}, 80, 24)
	n := h.m.list.win.len()
	h.keys("d", "tab", "esc")
	if h.m.dialog != nil {
		t.Fatal("esc left the dialog open")
	}
	for _, p := range f.purges {
		if !p.DryRun {
			t.Errorf("esc sent a real purge %+v", p)
		}
	}
	if h.m.list.win.len() != n {
		t.Errorf("rows %d after cancel, want %d", h.m.list.win.len(), n)
	}
}

func TestFlow_PurgeAllNeedsTypedConfirmation(t *testing.T) {
	f := seeded()
	h := newHarness(t, f, Options{}, 80, 24)
	h.key(":")
	h.typ("purge all")
	h.key("enter")
	h.keys("tab", "enter")
	h.typ("alx")
	h.key("enter")
	for _, p := range f.purges {
		if !p.DryRun {
			t.Fatalf("purge all went out without the typed confirmation: %+v", p)
		}
	}
	h.keys("backspace")
	h.typ("l")
	h.key("enter")
	last := f.purges[len(f.purges)-1]
	if last.DryRun || !last.All || last.Confirm != "all" {
		t.Fatalf("last request %+v, want the real purge of all", last)
	}
	if h.m.list.win.len() != 0 {
		t.Errorf("%d rows after purging all", h.m.list.win.len())
	}
}

func TestFlow_PurgePrefixCommand(t *testing.T) {
	f := seeded()
	h := newHarness(t, f, Options{}, 80, 24)
	h.key(":")
	h.typ("purge prefix https://app.test/docs")
	h.keys("enter", "tab", "enter")
	for _, k := range residentKeys(h) {
		if strings.HasPrefix(k, "https://app.test/docs") {
			t.Errorf("%q still listed after purging its prefix", k)
		}
	}
	if !strings.Contains(h.m.status.text, "purged 4 entries") {
		t.Errorf("status %q", h.m.status.text)
	}
}

func TestFlow_LateDetailReplyDropped(t *testing.T) {
	f := seeded()
	h := newHarness(t, f, Options{}, 80, 24)
	h.hold = true
	h.keys("j", "enter")
	if len(h.held) != 1 {
		t.Fatalf("held %d replies, want the detail", len(h.held))
	}
	h.key("q") // leave before the reply
	dropped := h.m.dropped
	h.release()
	if h.m.top() != scrList || h.m.det != nil {
		t.Errorf("a late detail reply changed the screen: top %v det %v", h.m.top(), h.m.det)
	}
	if h.m.dropped != dropped+1 {
		t.Errorf("dropped %d, want %d", h.m.dropped, dropped+1)
	}
}

func TestFlow_SupersededFilterReplyDropped(t *testing.T) {
	f := seeded()
	h := newHarness(t, f, Options{}, 80, 24)
	h.hold = true
	h.key("/")
	h.typ("tag:blog")
	h.key("enter")
	h.key("/")
	h.send(tea.KeyMsg{Type: tea.KeyCtrlU})
	h.typ("tag:docs")
	h.key("enter")
	h.release() // the blog reply comes first, then docs
	for _, k := range residentKeys(h) {
		if !strings.Contains(k, "/docs") {
			t.Errorf("list shows %q from the superseded filter", k)
		}
	}
	if h.m.dropped == 0 {
		t.Error("no reply dropped")
	}
}

func TestFlow_BottomOverTwoMillionKeys(t *testing.T) {
	f := bigSource(2_000_000)
	h := newHarness(t, f, Options{}, 120, 40)
	calls := f.listCalls()
	h.key("G")
	if got := f.listCalls() - calls; got != 1 {
		t.Errorf("G cost %d list calls, want 1 (the API's last page)", got)
	}
	if q := f.lists[len(f.lists)-1]; !q.Last {
		t.Errorf("G asked %+v, want Last", q)
	}
	if got, want := curKey(h), "https://app.test/p/01999999|"; got != want {
		t.Errorf("cursor on %q, want %q", got, want)
	}
	if !strings.Contains(h.view(), "of ~2,000,000") || !strings.Contains(h.view(), "2,000,000 of") {
		t.Errorf("position missing from the view:\n%s", h.view())
	}
	// Scroll up twenty screens: the window slides, a few pages stay.
	for i := 0; i < 20; i++ {
		h.key("ctrl+b")
		if n := len(h.m.list.win.pages); n > h.m.opts.MaxPages {
			t.Fatalf("%d pages resident, max %d", n, h.m.opts.MaxPages)
		}
	}
	want := 1999999 - 20*h.m.listRows()
	if got := curKey(h); got != fmt.Sprintf("https://app.test/p/%08d|", want) {
		t.Errorf("after 20 pages up the cursor is on %q, want row %d", got, want)
	}
	if n := f.listCalls() - calls; n > 1+(20*h.m.listRows())/h.m.opts.PageSize+2 {
		t.Errorf("%d list calls for %d rows", n, 20*h.m.listRows())
	}
	h.key("g")
	if got := curKey(h); got != "https://app.test/p/00000000|" {
		t.Errorf("g put the cursor on %q", got)
	}
	if !strings.Contains(h.view(), "rows 1-") {
		t.Errorf("after g the position is not exact:\n%s", h.view())
	}
}

func TestFlow_ScrollKeepsRowsContiguous(t *testing.T) {
	f := bigSource(5000)
	h := newHarness(t, f, Options{PageSize: 50, MaxPages: 3}, 80, 24)
	for i := 1; i <= 1200; i++ {
		h.key("j")
		if got, want := curKey(h), fmt.Sprintf("https://app.test/p/%08d|", i); got != want {
			t.Fatalf("after %d j the cursor is on %q, want %q", i, got, want)
		}
		if h.m.list.win.len() > 3*50 {
			t.Fatalf("%d rows resident", h.m.list.win.len())
		}
	}
	for i := 1199; i >= 900; i-- {
		h.key("k")
		if got, want := curKey(h), fmt.Sprintf("https://app.test/p/%08d|", i); got != want {
			t.Fatalf("going up: cursor on %q, want %q", got, want)
		}
	}
	keys := residentKeys(h)
	for i := 1; i < len(keys); i++ {
		if keys[i] <= keys[i-1] {
			t.Fatalf("resident rows out of order at %d: %q then %q", i, keys[i-1], keys[i])
		}
	}
}

func TestFlow_FilterScanContinues(t *testing.T) {
	f := seeded()
	f.budget = 2 // the server stops every call after 2 records
	h := newHarness(t, f, Options{}, 80, 24)
	h.key("/")
	h.typ("disabled")
	h.key("enter")
	if got := residentKeys(h); len(got) != 2 || got[0] != "https://app.test/users/42" {
		t.Errorf("disabled filter rows %q, want users/42 and users/43", got)
	}
	if h.m.list.scanned < 13 {
		t.Errorf("scanned %d, want the whole store counted", h.m.list.scanned)
	}
}

func TestFlow_ReadOnlyHasNoPurge(t *testing.T) {
	for _, c := range []struct {
		name string
		opts Options
		ro   bool
	}{{"option", Options{ReadOnly: true}, false}, {"offline source", Options{}, true}} {
		t.Run(c.name, func(t *testing.T) {
			f := seeded()
			f.readOnly = c.ro
			h := newHarness(t, f, c.opts, 80, 24)
			h.keys(" ", "d")
			h.key(":")
			h.typ("purge prefix https://app.test/")
			h.key("enter")
			if h.m.dialog != nil || len(f.purges) != 0 || len(h.m.list.marks) != 0 {
				t.Errorf("read-only: dialog %v purges %v marks %v", h.m.dialog, f.purges, h.m.list.marks)
			}
			if !h.m.status.err || !strings.Contains(h.m.status.text, "read-only") {
				t.Errorf("status %+v, want a read-only error", h.m.status)
			}
			if h.m.keys.Purge.Enabled() || h.m.keys.Reason(h.m.keys.Purge) == "" {
				t.Error("purge binding enabled or without a reason in read-only")
			}
		})
	}
}

func TestFlow_DisconnectAndReconnect(t *testing.T) {
	f := seeded()
	h := newHarness(t, f, Options{}, 120, 40)
	warm(h, f, 3)
	f.setStatsErr(errors.New("connection refused"))
	h.tick()
	if !strings.Contains(h.view(), "DISCONNECTED retry in 1s") {
		t.Fatalf("no DISCONNECTED state:\n%s", h.view())
	}
	if !strings.Contains(h.view(), "https://app.test/about") {
		t.Error("the last data left the screen")
	}
	h.tick() // retry 1: fails, backoff 2s
	if !strings.Contains(h.view(), "retry in 2s") {
		t.Errorf("backoff not doubled:\n%s", strings.SplitN(h.view(), "\n", 2)[0])
	}
	h.tick()
	if !strings.Contains(h.view(), "retry in 1s") {
		t.Errorf("countdown does not move:\n%s", strings.SplitN(h.view(), "\n", 2)[0])
	}
	f.setStatsErr(nil)
	h.tick()
	if strings.Contains(h.view(), "DISCONNECTED") || h.m.status.text != "reconnected" {
		t.Errorf("not reconnected: %q\n%s", h.m.status.text, h.view())
	}
}

func TestFlow_RefreshKeepsCursor(t *testing.T) {
	f := seeded()
	h := newHarness(t, f, Options{Refresh: 5 * time.Second}, 80, 24)
	h.keys("j", "j", "j", "j")
	k := curKey(h)
	calls := f.listCalls()
	for i := 0; i < 5; i++ {
		h.tick()
	}
	if f.listCalls() == calls {
		t.Fatal("the visible page was not refreshed")
	}
	if curKey(h) != k {
		t.Errorf("refresh moved the cursor from %q to %q", k, curKey(h))
	}
	// An entry purged elsewhere leaves on refresh.
	f.mu.Lock()
	f.entries = append(f.entries[:1], f.entries[2:]...) // /about
	f.mu.Unlock()
	for i := 0; i < 5; i++ {
		h.tick()
	}
	for _, key := range residentKeys(h) {
		if key == "https://app.test/about" {
			t.Error("refresh kept a row the server no longer has")
		}
	}
	if curKey(h) != k {
		t.Errorf("refresh moved the cursor from %q to %q", k, curKey(h))
	}
}

func TestFlow_ResizeAnyTime(t *testing.T) {
	f := seeded()
	h := newHarness(t, f, Options{}, 80, 24)
	steps := [][]string{{}, {"j", "enter"}, {"tab", "tab"}, {"?"}, {"esc", "q", "d"}, {"esc", ":"}}
	for _, s := range steps {
		h.keys(s...)
		for _, sz := range [][2]int{{40, 10}, {200, 60}, {80, 24}, {20, 5}} {
			h.send(tea.WindowSizeMsg{Width: sz[0], Height: sz[1]})
			v := h.view()
			if n := strings.Count(v, "\n") + 1; n != sz[1] {
				t.Errorf("after %v at %dx%d the view has %d lines", s, sz[0], sz[1], n)
			}
		}
	}
}

func TestFlow_HostileDataIsInert(t *testing.T) {
	f := seeded()
	f.entries[0].Key = "https://app.test/\x1b]0;pwned\x07\x1b[2J\u202eevil"
	f.entries[0].Tags = []string{"\x1b[31mred"}
	h := newHarness(t, f, Options{}, 120, 40)
	v := h.view()
	if strings.ContainsAny(v, "\x1b\x07\u202e") {
		t.Errorf("the view carries control characters from the data: %q", v)
	}
	if !strings.Contains(v, "␛]0;pwned") {
		t.Errorf("the hostile key is not shown visibly:\n%s", v)
	}
}

func TestFlow_DecodePastedToken(t *testing.T) {
	f := seeded()
	h := newHarness(t, f, Options{}, 120, 40)
	h.key(":")
	h.typ("decode")
	h.key("enter")
	h.typ("not-a-token")
	h.key("enter")
	if h.m.dec == nil || h.m.dec.err == nil {
		t.Fatalf("bad token: %+v", h.m.dec)
	}
	h.key("q")
	h.key(":")
	h.typ("decode SFMyNTY.g2gDaAJhBXQAAAADZAAC.aWQ")
	h.key("enter")
	v := h.view()
	for _, want := range []string{"not checked", "valid for 13d 22h 00m 00s", `"user_id" => 42`} {
		if !strings.Contains(v, want) {
			t.Errorf("decode panel lacks %q:\n%s", want, v)
		}
	}
	if strings.Contains(v, "verified") {
		t.Errorf("a not-checked token reads as verified:\n%s", v)
	}
	h.clock.add(5 * time.Second)
	h.fire(heartbeatMsg{})
	if !strings.Contains(h.view(), "valid for 13d 21h 59m 55s") {
		t.Errorf("the countdown does not move:\n%s", h.view())
	}
}

func TestFlow_UnknownSignatureIsNotValid(t *testing.T) {
	m := New(&fakeSource{}, Options{Renderer: asciiRenderer()})
	for _, s := range []string{"", "not-checked", "VERIFIED", "valid", "verified ", "invalid"} {
		if got := m.signature(s); strings.Contains(got, "✓") {
			t.Errorf("signature(%q) = %q, reads as good", s, got)
		}
	}
	if got := m.signature("verified"); !strings.Contains(got, "✓ verified by the server") {
		t.Errorf("signature(verified) = %q", got)
	}
}

// Keys read together arrive from bubbletea as one message with several
// runes (typed ahead on a busy terminal, or sent by tmux send-keys): at
// the list each is a key of its own, and once one opens the filter the
// rest is its text.
func TestFlow_TypeaheadKeysReadTogether(t *testing.T) {
	f := seeded()
	h := newHarness(t, f, Options{}, 120, 40)
	h.send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("jj")})
	if h.m.list.cur != 2 {
		t.Fatalf(`"jj" read together: cursor %d, want 2`, h.m.list.cur)
	}
	h.send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("/tag:docs")})
	if h.m.prompt != promptFilter {
		t.Fatalf(`"/tag:docs" read together did not open the filter (prompt %v)`, h.m.prompt)
	}
	h.key("enter")
	if last := f.lists[len(f.lists)-1]; last.Tag != "docs" {
		t.Fatalf("filter sent %+v, want Tag docs", last)
	}
	// Text pasted into an open prompt stays text.
	h.key("/")
	h.send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("qj")})
	if h.quit || h.m.prompt != promptFilter {
		t.Fatalf(`"qj" typed into the filter acted as keys (quit %v, prompt %v)`, h.quit, h.m.prompt)
	}
}
