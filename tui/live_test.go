package tui

import (
	"context"
	"errors"
	"io"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/firstrender/firstrender/httpcache/admin"
)

// sortedSeeded is the seeded data in key order, which the fake's cursors
// need once a scan budget makes them matter (the goldens keep the
// seeded order).
func sortedSeeded() *fakeSource {
	f := seeded()
	sort.Slice(f.entries, func(i, j int) bool { return pos(f.entries[i]) < pos(f.entries[j]) })
	return f
}

func hasRow(h *harness, key string) bool {
	for _, k := range residentKeys(h) {
		if k == key {
			return true
		}
	}
	return false
}

func rowOf(h *harness, key string) *admin.Entry {
	for i := 0; i < h.m.list.win.len(); i++ {
		if e := h.m.list.win.row(i); e.Key == key && e.Variant == "" {
			return e
		}
	}
	return nil
}

// The position line's figures hold in every case. The report: a filtered
// list said "scanned 18 of ~3" (the scan count summed refreshes and was
// put against a record count that had since shrunk).
func TestPosition_FilteredScanNeverClaimsMoreThanTotal(t *testing.T) {
	f := sortedSeeded()
	f.budget = 5
	h := newHarness(t, f, Options{}, 120, 40)
	h.key("/")
	h.typ("disabled")
	h.key("enter")
	if got := h.m.position(); got != "matches 1-2 of 2 · scanned 15 of ~15" {
		t.Errorf("after the scan: %q, want %q", got, "matches 1-2 of 2 · scanned 15 of ~15")
	}
	// Refreshes examine records already counted: the count stays.
	for i := 0; i < 12; i++ {
		h.tick()
	}
	if h.m.list.scanned != 15 {
		t.Errorf("scanned %d after refreshes, want 15", h.m.list.scanned)
	}
	// Most entries are purged elsewhere: the store now holds 3 records.
	f.drop("https://app.test/", "https://app.test/about", "https://app.test/blog", "https://app.test/blog/caching-liveview",
		"https://app.test/blog/hello-world", "https://app.test/blog/phoenix-tokens", "https://app.test/docs",
		"https://app.test/docs/install", "https://app.test/docs/config", "https://app.test/docs/purge", "https://app.test/pricing",
		"https://app.test/search?q=cache")
	f.mu.Lock()
	f.entries = append(f.entries, admin.Entry{Key: "https://app.test/zzz", Status: 200}) // 3 records
	f.mu.Unlock()
	calls := f.listCalls()
	for i := 0; i < 5; i++ {
		h.tick()
	}
	if f.listCalls() == calls {
		t.Fatal("no refresh")
	}
	if h.m.list.total != 3 {
		t.Fatalf("total %d, want the server's new count 3", h.m.list.total)
	}
	got := h.m.position()
	if strings.Contains(got, "of ~3") || !strings.Contains(got, "scanned 15") {
		t.Errorf("position %q: 15 records were examined and the store holds ~3; it must not say 15 of ~3", got)
	}
	if !strings.Contains(h.view(), got) {
		t.Errorf("the status line does not show %q:\n%s", got, h.view())
	}
}

func TestPosition_Cases(t *testing.T) {
	for _, c := range []struct {
		scanned, total int64
		want           string
	}{
		{15, 15, "scanned 15 of ~15"},
		{3, 2418310, "scanned 3 of ~2,418,310"},
		{18, 3, "scanned 18"},
		{5, 0, "scanned 5"},
	} {
		if got := scanText(c.scanned, c.total); got != c.want {
			t.Errorf("scanText(%d, %d) = %q, want %q", c.scanned, c.total, got, c.want)
		}
	}

	f := bigSource(5000)
	h := newHarness(t, f, Options{PageSize: 50}, 80, 24)
	if got, want := h.m.position(), "rows 1-19 of ~5,000"; got != want {
		t.Errorf("first page: %q, want %q", got, want)
	}
	// The server's count lags behind what is resident: the total shown
	// is at least the rows known to exist (and one more, the end not
	// being resident).
	h.m.list.total = 10
	if got, want := h.m.position(), "rows 1-19 of ~51"; got != want {
		t.Errorf("stale total: %q, want %q", got, want)
	}
	h.key("G")
	if got, want := h.m.position(), "rows ~4,982-5,000 of ~5,000"; got != want {
		t.Errorf("after G: %q, want %q", got, want)
	}
	h.key("g")
	// Every row resident: the count is exact.
	s := sortedSeeded()
	h = newHarness(t, s, Options{}, 80, 24)
	h.m.list.total = 3 // a stale server count: the 15 resident rows win
	if got, want := h.m.position(), "rows 1-15 of ~15"; got != want {
		t.Errorf("whole list resident: %q, want %q", got, want)
	}
	s.budget = 2
	h.key("/")
	h.typ("tag:docs")
	h.key("enter")
	if got, want := h.m.position(), "matches 1-4 of 4 · scanned 15 of ~15"; got != want {
		t.Errorf("filtered, complete: %q, want %q", got, want)
	}
}

// After a purge the header's figures and the visible page are asked for
// again at once; the last figures stay until the answer, and a poll that
// was in flight across the purge (its figures from before) is dropped.
func TestFlow_PurgeRefreshesHeader(t *testing.T) {
	f := seeded()
	h := newHarness(t, f, Options{}, 120, 40)
	warm(h, f, 3)
	if !strings.Contains(h.view(), "15 entries") {
		t.Fatalf("header before:\n%s", h.view())
	}
	h.hold = true
	h.tick() // a stats poll goes out and answers with 15 entries, held
	h.key("d")
	h.releaseOne(purgeMsg{}) // the dry-run count
	h.keys("tab", "enter")
	statsBefore := f.statsCalls()
	h.releaseOne(purgeMsg{}) // the purge result
	if f.statsCalls() != statsBefore+1 {
		t.Errorf("stats calls %d after the purge result, want %d (asked again at once)", f.statsCalls(), statsBefore+1)
	}
	if v := h.view(); !strings.Contains(v, "15 entries") || strings.Contains(v, "connecting") {
		t.Errorf("while the poll is in flight the header should keep the last figures:\n%s", v)
	}
	dropped := h.m.dropped
	h.release() // the stale poll first, then the fresh one
	if v := h.view(); !strings.Contains(v, "14 entries") {
		t.Errorf("header after the purge does not say 14 entries:\n%s", v)
	}
	if h.m.dropped != dropped+1 {
		t.Errorf("dropped %d replies, want the stale poll (1)", h.m.dropped-dropped)
	}
}

func liveHarness(t *testing.T, opts Options) (*harness, *liveSource, *fakeStream) {
	t.Helper()
	src := newLive(seeded())
	h := newHarness(t, src, opts, 120, 40)
	var s *fakeStream
	select {
	case s = <-src.opened:
	default:
		t.Fatal("the stream was not opened at start")
	}
	if !h.m.stream.live() {
		t.Fatalf("stream not live: %+v", h.m.stream)
	}
	return h, src, s
}

// received waits until the model applied n events in all.
func received(h *harness, n int64) { h.events(func() bool { return h.m.stream.received >= n }) }

func TestEvents_LiveUpdates(t *testing.T) {
	h, src, s := liveHarness(t, Options{Refresh: -1})
	f := src.fakeSource
	n := int64(0)
	next := func(ev admin.Event) {
		t.Helper()
		s.send(t, ev)
		n++
		received(h, n)
	}
	st := f.stats
	st.Entries = 99
	next(admin.Event{Type: "stats", Stats: &st})
	if v := h.view(); !strings.Contains(v, "99 entries") || !strings.Contains(v, "◉ live") {
		t.Errorf("the stats event is not in the header:\n%s", strings.SplitN(v, "\n", 2)[0])
	}
	// While live, the figures come from the stream: no polling.
	polls := f.statsCalls()
	for i := 0; i < 5; i++ {
		h.tick()
	}
	if f.statsCalls() != polls {
		t.Errorf("%d stats polls while the stream is live", f.statsCalls()-polls)
	}
	lists := f.listCalls()

	next(admin.Event{Type: "evict", Key: "https://app.test/about"})
	if hasRow(h, "https://app.test/about") {
		t.Error("evicted /about still listed")
	}
	next(admin.Event{Type: "disable", Key: "https://app.test/docs", Reason: "join refused"})
	if e := rowOf(h, "https://app.test/docs"); e == nil || e.Disabled != "join refused" {
		t.Errorf("/docs after disable: %+v", e)
	}
	if !strings.Contains(h.view(), "⊘") {
		t.Error("no ⊘ drawn")
	}
	next(admin.Event{Type: "enable", Key: "https://app.test/docs"})
	if e := rowOf(h, "https://app.test/docs"); e == nil || e.Disabled != "" {
		t.Errorf("/docs after enable: %+v", e)
	}
	// Another operator purges: by prefix, by tag, by key.
	next(admin.Event{Type: "purge", Purge: &admin.PurgeRecord{ID: "x1", Count: 4, Selector: admin.PurgeRequest{Prefix: "https://app.test/docs"}}})
	next(admin.Event{Type: "purge", Purge: &admin.PurgeRecord{ID: "x2", Count: 5, Selector: admin.PurgeRequest{Tag: "blog"}}})
	next(admin.Event{Type: "purge", Key: "https://app.test/pricing", Purge: &admin.PurgeRecord{ID: "x3", Count: 1, Selector: admin.PurgeRequest{Key: "https://app.test/pricing"}}})
	for _, k := range residentKeys(h) {
		if strings.Contains(k, "/docs") || strings.Contains(k, "/blog") || strings.HasSuffix(k, "/pricing") {
			t.Errorf("%s still listed after the purges", k)
		}
	}
	if got := f.listCalls() - lists; got != 0 {
		t.Errorf("%d list calls: evictions, disables and purges apply in place", got)
	}
	// A store among the visible rows: the page is fetched again.
	f.mu.Lock()
	f.entries = append(f.entries[:1:1], append([]admin.Entry{{Key: "https://app.test/new", Status: 200}}, f.entries[1:]...)...)
	f.mu.Unlock()
	next(admin.Event{Type: "store", Key: "https://app.test/new"})
	if !h.m.list.dirty && f.listCalls() == lists {
		t.Fatal("a store among the visible rows neither refreshed nor marked the page")
	}
	h.tick()
	if !hasRow(h, "https://app.test/new") {
		t.Errorf("the stored entry did not appear: %q", residentKeys(h))
	}
}

func TestEvents_StoreOutsideFilterIgnored(t *testing.T) {
	h, src, s := liveHarness(t, Options{Refresh: -1})
	h.key("/")
	h.typ("prefix:https://app.test/docs")
	h.key("enter")
	lists := src.listCalls()
	s.send(t, admin.Event{Type: "store", Key: "https://app.test/blog/other"})
	received(h, 1)
	h.tick()
	if h.m.list.dirty || src.listCalls() != lists {
		t.Errorf("a store outside the prefix filter refreshed the page (dirty %v, %d calls)", h.m.list.dirty, src.listCalls()-lists)
	}
	s.send(t, admin.Event{Type: "store", Key: "https://app.test/docs/new"})
	received(h, 2)
	h.tick()
	if src.listCalls() != lists+1 {
		t.Errorf("a store inside the filter at the list's end: %d list calls, want 1", src.listCalls()-lists)
	}
}

func TestEvents_DropFallsBackToPolling(t *testing.T) {
	h, src, s := liveHarness(t, Options{Refresh: -1})
	polls := src.statsCalls()
	lists := src.listCalls()
	s.fail(io.ErrUnexpectedEOF)
	h.events(func() bool { return !h.m.stream.live() })
	// Resynchronised at once: the figures and the visible page.
	if src.statsCalls() != polls+1 || src.listCalls() != lists+1 {
		t.Errorf("after the drop: %d stats and %d list calls, want 1 and 1", src.statsCalls()-polls, src.listCalls()-lists)
	}
	if strings.Contains(h.view(), "◉ live") {
		t.Error("still drawn live")
	}
	h.tick() // polling again; the reopen waits for its backoff (1s)
	if src.statsCalls() != polls+2 {
		t.Errorf("no stats poll after the drop")
	}
	if src.opens != 2 {
		t.Errorf("%d opens after the backoff second, want 2", src.opens)
	}
	s2 := <-src.opened
	if !h.m.stream.live() {
		t.Fatalf("not live again: %+v", h.m.stream)
	}
	s2.send(t, admin.Event{Type: "evict", Key: "https://app.test/about"})
	received(h, 1)
	if hasRow(h, "https://app.test/about") {
		t.Error("the reopened stream is not applied")
	}
	// A server "dropped" event ends the stream the same way.
	s2.send(t, admin.Event{Type: "dropped", Reason: "reader fell behind"})
	h.events(func() bool { return !h.m.stream.live() })
	if h.m.stream.lastErr == nil || !strings.Contains(h.m.stream.lastErr.Error(), "fell behind") {
		t.Errorf("lastErr %v", h.m.stream.lastErr)
	}
}

func TestEvents_OpenFailures(t *testing.T) {
	src := newLive(seeded())
	src.setOpenErr(errors.New("connection refused"))
	h := newHarness(t, src, Options{}, 80, 24)
	if h.m.stream.live() || src.opens != 1 {
		t.Fatalf("opens %d live %v", src.opens, h.m.stream.live())
	}
	h.tick() // backoff 1s: retried
	h.tick() // backoff 2s: not yet
	if src.opens != 2 {
		t.Errorf("%d opens after 2s, want 2 (retry after 1s, then wait 2s)", src.opens)
	}
	h.tick()
	if src.opens != 3 {
		t.Errorf("%d opens after 3s, want 3", src.opens)
	}
	// An API without GET events: polling only, never asked again.
	src.setOpenErr(&admin.Error{Status: 404, Code: "not_found", Message: "no such endpoint"})
	for i := 0; i < 70; i++ {
		h.tick()
	}
	opens := src.opens
	for i := 0; i < 70; i++ {
		h.tick()
	}
	if src.opens != opens || !h.m.stream.off {
		t.Errorf("opens went on after a 404: %d -> %d (off %v)", opens, src.opens, h.m.stream.off)
	}
	if src.statsCalls() < 100 {
		t.Errorf("%d stats polls: polling must go on without a stream", src.statsCalls())
	}
}

// A TUI that does not read never slows the stream's reader: events beyond
// the buffer are counted lost, and the TUI resynchronises.
func TestEvents_SlowTUINeverBlocks(t *testing.T) {
	h, src, s := liveHarness(t, Options{EventBuffer: 8, Refresh: -1})
	for i := 0; i < 100; i++ {
		s.send(t, admin.Event{Type: "evict", Key: "https://app.test/none"}) // fails the test if the reader blocks
	}
	polls, lists := src.statsCalls(), src.listCalls()
	received(h, 8)
	if h.m.stream.resyncs != 1 {
		t.Errorf("resyncs %d, want 1", h.m.stream.resyncs)
	}
	if src.statsCalls() != polls+1 || src.listCalls() != lists+1 {
		t.Errorf("resync made %d stats and %d list calls, want 1 and 1", src.statsCalls()-polls, src.listCalls()-lists)
	}
	// End the stream: every event is then either applied or counted lost.
	// (The 100th may have found room once the first batch was taken.)
	s.fail(io.EOF)
	h.events(func() bool { return !h.m.stream.live() })
	if got := h.m.stream.received + h.m.stream.lost; got != 100 {
		t.Errorf("received %d + lost %d = %d, want the 100 sent", h.m.stream.received, h.m.stream.lost, got)
	}
	if h.m.stream.lost < 91 {
		t.Errorf("lost %d, want at least 91 (100 sent into a buffer of 8)", h.m.stream.lost)
	}
}

func TestEvents_QuitClosesStream(t *testing.T) {
	h, _, s := liveHarness(t, Options{})
	h.key("ctrl+c")
	if !h.quit {
		t.Fatal("no quit")
	}
	select {
	case <-s.closed:
	case <-time.After(20 * time.Second):
		t.Fatal("the stream was not closed when the TUI quit")
	}
}

// The real thing: admin.NewHandler's GET events over loopback through
// admin.Client.Events.
func TestHTTP_EventsLive(t *testing.T) {
	st := seedStore(t)
	a := newAPI(t, st, &admin.StorePurger{Store: st})
	h := newHarness(t, a.client, Options{Refresh: -1}, 120, 40)
	if !h.m.stream.live() {
		t.Fatalf("no live stream against the admin API: %+v", h.m.stream)
	}
	h.events(func() bool { return h.m.stream.received >= 1 }) // the first stats sample
	if h.m.conn.stats == nil || h.m.conn.stats.Entries != 30 {
		t.Fatalf("stats from the stream: %+v", h.m.conn.stats)
	}
	before := a.entries.Load()
	// Another operator purges through their own client.
	other, err := admin.NewClient(a.srv.URL, apiToken)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Purge(context.Background(), admin.PurgeRequest{Prefix: "https://app.test/docs/"}); err != nil {
		t.Fatal(err)
	}
	h.events(func() bool { return !hasRow(h, "https://app.test/docs/00") })
	for _, k := range residentKeys(h) {
		if strings.Contains(k, "/docs/") {
			t.Errorf("%s still listed after another client's purge", k)
		}
	}
	// The server publishes an eviction and a disable.
	a.handler.Events().Publish(admin.Event{Type: "evict", Key: "https://app.test/blog/01"})
	a.handler.Events().Publish(admin.Event{Type: "disable", Key: "https://app.test/blog/02", Reason: "join refused"})
	h.events(func() bool {
		e := rowOf(h, "https://app.test/blog/02")
		return !hasRow(h, "https://app.test/blog/01") && e != nil && e.Disabled != ""
	})
	if n := a.entries.Load() - before; n != 0 {
		t.Errorf("%d list requests; the events apply in place", n)
	}
	// The connection drops: polling takes over, then the stream reopens.
	a.srv.CloseClientConnections()
	h.events(func() bool { return !h.m.stream.live() })
	h.tick()
	h.tick()
	if !h.m.stream.live() {
		t.Fatalf("the stream did not reopen: %+v", h.m.stream)
	}
	if !h.m.conn.ok {
		t.Errorf("connection not ok after the reopen: %v", h.m.conn.lastErr)
	}
}
