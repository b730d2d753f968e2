package tui

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/firstrender/firstrender/httpcache/admin"
)

// fakeSource is an in-memory Source with the admin API's paging contract:
// key order (key NUL variant), exclusive cursors after/before, filters
// applied while scanning, a scan budget, Last, ApproxTotal, Done.
// Either entries (small, purgeable) or n+gen (large, generated on demand,
// so 2,000,000 keys cost no memory) holds the data.
type fakeSource struct {
	mu       sync.Mutex
	entries  []admin.Entry
	n        int
	gen      func(i int) admin.Entry
	details  map[string]admin.EntryDetail // by key NUL variant
	tokens   map[string]admin.Token       // Decode answers by raw token
	stats    admin.Stats
	statsErr error
	readOnly bool
	budget   int // records one List call examines; 0: no budget
	purges   []admin.PurgeRequest
	lists    []admin.ListQuery
	nextID   int
	statsN   int // Stats calls
}

func (f *fakeSource) size() int {
	if f.gen != nil {
		return f.n
	}
	return len(f.entries)
}

func (f *fakeSource) at(i int) admin.Entry {
	if f.gen != nil {
		return f.gen(i)
	}
	return f.entries[i]
}

func pos(e admin.Entry) string { return e.Key + "\x00" + e.Variant }

func fakeCursor(p string) string { return "k" + p }

func parseFakeCursor(c string) (string, error) {
	if !strings.HasPrefix(c, "k") {
		return "", &admin.Error{Status: 400, Code: "bad_request", Message: "invalid cursor"}
	}
	return c[1:], nil
}

// search returns the first index whose position is > p (after) or >= p.
func (f *fakeSource) search(p string, strict bool) int {
	return sort.Search(f.size(), func(i int) bool {
		q := pos(f.at(i))
		if strict {
			return q > p
		}
		return q >= p
	})
}

func matches(q admin.ListQuery, e admin.Entry) bool {
	if q.Prefix != "" && !strings.HasPrefix(e.Key, q.Prefix) {
		return false
	}
	if q.Contains != "" && !strings.Contains(e.Key, q.Contains) {
		return false
	}
	if q.Tag != "" && !hasString(e.Tags, q.Tag) {
		return false
	}
	if q.Status != "" {
		s := fmt.Sprint(e.Status)
		if strings.HasSuffix(q.Status, "xx") {
			if s[0] != q.Status[0] {
				return false
			}
		} else if s != q.Status {
			return false
		}
	}
	if q.Findings && len(e.Findings) == 0 {
		return false
	}
	if q.Disabled && e.Disabled == "" {
		return false
	}
	return true
}

func (f *fakeSource) List(ctx context.Context, q admin.ListQuery) (admin.Page, error) {
	if err := ctx.Err(); err != nil {
		return admin.Page{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lists = append(f.lists, q)
	limit := q.Limit
	if limit == 0 {
		limit = admin.DefaultLimit
	}
	budget := f.budget
	if budget == 0 {
		budget = int(^uint(0) >> 1)
	}
	p := admin.Page{ApproxTotal: int64(f.size())}
	var items []admin.Entry
	if q.Before != "" || q.Last {
		hi := f.size()
		if q.Before != "" {
			c, err := parseFakeCursor(q.Before)
			if err != nil {
				return admin.Page{}, err
			}
			hi = f.search(c, false)
		}
		i := hi - 1
		for ; i >= 0 && len(items) < limit && p.Scanned < budget; i-- {
			p.Scanned++
			if e := f.at(i); matches(q, e) {
				items = append(items, e)
			}
		}
		for l, r := 0, len(items)-1; l < r; l, r = l+1, r-1 {
			items[l], items[r] = items[r], items[l]
		}
		p.Done = i < 0
		// Like the API: Prev is the earliest record examined (the next
		// page backward starts below it), Next the last match.
		if len(items) > 0 {
			p.Next = fakeCursor(pos(items[len(items)-1]))
		}
		if i+1 < hi {
			p.Prev = fakeCursor(pos(f.at(i + 1)))
		}
		if hi >= f.size() {
			p.Next = ""
		}
	} else {
		lo := 0
		if q.After != "" {
			c, err := parseFakeCursor(q.After)
			if err != nil {
				return admin.Page{}, err
			}
			lo = f.search(c, true)
		}
		i := lo
		for ; i < f.size() && len(items) < limit && p.Scanned < budget; i++ {
			p.Scanned++
			if e := f.at(i); matches(q, e) {
				items = append(items, e)
			}
		}
		p.Done = i >= f.size()
		// Like the API: Next is the last record examined (the next page
		// starts after it), Prev the first match.
		if len(items) > 0 {
			p.Prev = fakeCursor(pos(items[0]))
		}
		if i > lo {
			p.Next = fakeCursor(pos(f.at(i - 1)))
		}
		if lo == 0 {
			p.Prev = ""
		}
		if p.Done {
			p.Next = ""
		}
	}
	if items == nil {
		items = []admin.Entry{}
	}
	p.Items = items
	return p, nil
}

func (f *fakeSource) Entry(ctx context.Context, key, variant string, decode bool) (admin.EntryDetail, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if d, ok := f.details[key+"\x00"+variant]; ok {
		return d, nil
	}
	i := f.search(key+"\x00"+variant, false)
	if i >= f.size() || pos(f.at(i)) != key+"\x00"+variant {
		return admin.EntryDetail{}, &admin.Error{Status: 404, Code: "not_found", Message: "no such entry"}
	}
	e := f.at(i)
	d := admin.EntryDetail{Entry: e, Variants: []string{e.Variant},
		Headers: map[string][]string{"Content-Type": {"text/html; charset=utf-8"}},
		Body:    "<html><body>" + e.Key + "</body></html>", Expiry: admin.Expiry{Reason: "max-age", At: e.Expires}}
	return d, nil
}

func (f *fakeSource) Decode(ctx context.Context, token string) (admin.Token, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t, ok := f.tokens[token]; ok {
		return t, nil
	}
	return admin.Token{}, &admin.Error{Status: 400, Code: "bad_request", Message: "not a Phoenix token"}
}

func (f *fakeSource) Purge(ctx context.Context, req admin.PurgeRequest) (admin.PurgeResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.purges = append(f.purges, req)
	if f.readOnly && !req.DryRun {
		return admin.PurgeResult{}, &admin.Error{Status: 409, Code: "read_only", Message: "read-only"}
	}
	if req.All && req.Confirm != "all" {
		return admin.PurgeResult{}, &admin.Error{Status: 400, Code: "confirm_required", Message: "confirm"}
	}
	sel := func(e admin.Entry) bool {
		switch {
		case req.Key != "":
			return e.Key == req.Key
		case len(req.Keys) > 0:
			return hasString(req.Keys, e.Key)
		case req.Prefix != "":
			return strings.HasPrefix(e.Key, req.Prefix)
		case req.Tag != "":
			return hasString(e.Tags, req.Tag)
		}
		return req.All
	}
	if f.gen != nil {
		return admin.PurgeResult{}, errors.New("fake: generated source cannot purge")
	}
	n := 0
	kept := f.entries[:0:0]
	for _, e := range f.entries {
		if sel(e) {
			n++
			continue
		}
		kept = append(kept, e)
	}
	res := admin.PurgeResult{Count: n, DryRun: req.DryRun}
	if !req.DryRun {
		f.entries = kept
		f.nextID++
		res.ID = fmt.Sprintf("p-%04d", f.nextID)
	}
	return res, nil
}

func (f *fakeSource) Stats(ctx context.Context) (admin.Stats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.statsN++
	if f.statsErr != nil {
		return admin.Stats{}, f.statsErr
	}
	s := f.stats
	s.Entries = int64(f.size())
	s.ReadOnly = s.ReadOnly || f.readOnly
	return s, nil
}

func (f *fakeSource) setStats(fn func(s *admin.Stats)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(&f.stats)
}

func (f *fakeSource) setStatsErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.statsErr = err
}

func (f *fakeSource) listCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.lists)
}

// bigSource generates n keys https://app.test/p/00000000.. in key order.
func bigSource(n int) *fakeSource {
	at := time.Date(2026, 11, 25, 11, 0, 0, 0, time.UTC)
	exp := at.Add(2 * time.Hour)
	return &fakeSource{n: n, gen: func(i int) admin.Entry {
		return admin.Entry{Key: fmt.Sprintf("https://app.test/p/%08d", i), Status: 200, Size: 4096 + int64(i%1000),
			BodySize: 4000, StoredAt: at, AgeS: 3600, Expires: &exp, Hits: int64(i % 97)}
	}, stats: admin.Stats{Instance: "127.0.0.1:8080", Version: "test", UptimeS: 100}}
}

func (f *fakeSource) statsCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.statsN
}

func (f *fakeSource) drop(keys ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	kept := f.entries[:0:0]
	for _, e := range f.entries {
		if !hasString(keys, e.Key) {
			kept = append(kept, e)
		}
	}
	f.entries = kept
}

// liveSource is a fakeSource with an event stream the test feeds: each
// openEvents makes a new fakeStream, sent on opened.
type liveSource struct {
	*fakeSource
	mu      sync.Mutex
	openErr error
	opens   int
	opened  chan *fakeStream
}

func newLive(f *fakeSource) *liveSource {
	return &liveSource{fakeSource: f, opened: make(chan *fakeStream, 16)}
}

func (l *liveSource) openEvents(ctx context.Context) (eventReader, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.opens++
	if l.openErr != nil {
		return nil, l.openErr
	}
	s := &fakeStream{ctx: ctx, ch: make(chan admin.Event), end: make(chan error, 1), closed: make(chan struct{})}
	l.opened <- s
	return s, nil
}

func (l *liveSource) setOpenErr(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.openErr = err
}

// fakeStream hands over events unbuffered: send returns once the TUI's
// reader goroutine took the event, so a reader that blocked would block
// the test (which send reports instead of hanging).
type fakeStream struct {
	ctx       context.Context
	ch        chan admin.Event
	end       chan error
	closed    chan struct{}
	closeOnce sync.Once
}

func (s *fakeStream) Next() (admin.Event, error) {
	select {
	case ev := <-s.ch:
		return ev, nil
	case err := <-s.end:
		return admin.Event{}, err
	case <-s.ctx.Done():
		return admin.Event{}, s.ctx.Err()
	}
}

func (s *fakeStream) Close() error {
	s.closeOnce.Do(func() { close(s.closed) })
	return nil
}

// send hands ev to the reader, failing the test if it is not taken
// within a generous bound (the reader must never wait on the TUI).
func (s *fakeStream) send(t testing.TB, ev admin.Event) {
	t.Helper()
	select {
	case s.ch <- ev:
	case <-time.After(20 * time.Second):
		t.Fatalf("the TUI's event reader did not take %s within 20s: it blocks", ev.Type)
	}
}

// fail ends the stream with err.
func (s *fakeStream) fail(err error) { s.end <- err }
