package tui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/firstrender/firstrender/httpcache/admin"
	"github.com/firstrender/firstrender/store"
	"github.com/firstrender/firstrender/store/storetest"
)

// These flows run the TUI against the real admin API (admin.NewHandler
// behind httptest, on loopback) through the real Go client.

const apiToken = "tui-flow-test-token-0123456789"

type api struct {
	client  *admin.Client
	handler *admin.Handler
	srv     *httptest.Server
	entries atomic.Int64 // GET entries requests
}

func newAPI(t testing.TB, r admin.Reader, p admin.Purger) *api {
	t.Helper()
	h, err := admin.NewHandler(admin.HandlerConfig{Token: apiToken, Store: r, Purger: p,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	a := &api{handler: h}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if strings.HasSuffix(req.URL.Path, "/entries") {
			a.entries.Add(1)
		}
		h.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	a.srv = srv
	a.client, err = admin.NewClient(srv.URL, apiToken)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// seedStore writes n pages under /blog (tag blog) and /docs (tag docs).
func seedStore(t testing.TB) *store.Store {
	t.Helper()
	st := storetest.Open(t, store.Options{Now: func() time.Time { return t0 }})
	ctx := context.Background()
	for i := 0; i < 30; i++ {
		section := "blog"
		if i%3 == 0 {
			section = "docs"
		}
		rec := &store.Record{Key: fmt.Sprintf("https://app.test/%s/%02d", section, i), Status: 200,
			Header: map[string][]string{"Content-Type": {"text/html"}}, Body: []byte("<p>page</p>"),
			StoredTime: t0.Add(-time.Minute), Expires: t0.Add(time.Hour), Tags: []string{section}}
		if err := st.Put(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

func TestHTTP_FilterMarkPurge(t *testing.T) {
	st := seedStore(t)
	a := newAPI(t, st, &admin.StorePurger{Store: st})
	h := newHarness(t, a.client, Options{}, 120, 40)
	if n := h.m.list.win.len(); n != 30 {
		t.Fatalf("first page has %d rows, want 30:\n%s", n, h.view())
	}
	h.key("/")
	h.typ("tag:docs")
	h.key("enter")
	keys := residentKeys(h)
	if len(keys) != 10 {
		t.Fatalf("tag:docs shows %d rows, want 10: %q", len(keys), keys)
	}
	for _, k := range keys {
		if !strings.Contains(k, "/docs/") {
			t.Errorf("tag:docs shows %q", k)
		}
	}
	h.keys(" ", " ") // mark docs/00, docs/03
	h.keys("d")
	if h.m.dialog == nil || !h.m.dialog.counted || h.m.dialog.count != 2 {
		t.Fatalf("dialog %+v, want a dry-run count of 2", h.m.dialog)
	}
	h.key("esc") // cancel: nothing goes
	if _, err := st.Get(context.Background(), "https://app.test/docs/00", ""); err != nil {
		t.Fatalf("cancel purged: %v", err)
	}
	before := a.entries.Load()
	h.keys("d", "tab", "enter")
	for _, k := range []string{"https://app.test/docs/00", "https://app.test/docs/03"} {
		if _, err := st.Get(context.Background(), k, ""); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("after the purge Get(%s) = %v, want ErrNotFound", k, err)
		}
		for _, r := range residentKeys(h) {
			if r == k {
				t.Errorf("%s still listed", k)
			}
		}
	}
	if !strings.Contains(h.m.status.text, "purged 2 entries") || !strings.Contains(h.m.status.text, "audit id ") {
		t.Errorf("status %q, want count and audit id", h.m.status.text)
	}
	if n := a.entries.Load() - before; n != 1 {
		t.Errorf("purge cost %d list requests; want the rows removed in place and one refresh of the visible page", n)
	}
	h.key("esc")
	if n := h.m.list.win.len(); n != 28 {
		t.Errorf("unfiltered list after purge: %d rows, want 28", n)
	}
}

func TestHTTP_LateReplyDropped(t *testing.T) {
	st := seedStore(t)
	a := newAPI(t, st, &admin.StorePurger{Store: st})
	h := newHarness(t, a.client, Options{}, 80, 24)
	h.hold = true
	h.key("enter")
	h.key("q")
	h.key("/")
	h.typ("tag:blog")
	h.key("enter")
	h.key("esc") // the filtered page is now late too
	h.release()
	if h.m.top() != scrList || h.m.det != nil {
		t.Error("a late detail reply opened a screen")
	}
	if !h.m.list.f.isZero() {
		t.Errorf("filter %+v", h.m.list.f)
	}
	if n := h.m.list.win.len(); n != 30 {
		t.Errorf("the unfiltered list has %d rows, want 30 (a late filtered page replaced it?): %q", n, residentKeys(h))
	}
}

func TestHTTP_ReadOnlyAPI(t *testing.T) {
	st := seedStore(t)
	a := newAPI(t, st, nil) // no Purger: the API is read-only
	h := newHarness(t, a.client, Options{ReadOnly: true}, 80, 24)
	h.key("d")
	if h.m.dialog != nil {
		t.Fatal("purge dialog opened in read-only mode")
	}
}

// genReader is an admin.Reader over n generated keys, never held in
// memory: key i is https://app.test/p/%08d, so order is index order.
type genReader struct {
	n     int
	scans atomic.Int64
}

func (g *genReader) key(i int) string { return fmt.Sprintf("https://app.test/p/%08d", i) }

func (g *genReader) meta(i int) store.Meta {
	return store.Meta{Key: g.key(i), Status: 200, Size: 4096, BodySize: 4000, StoredTime: t0.Add(-time.Hour), Expires: t0.Add(time.Hour)}
}

func (g *genReader) Scan(ctx context.Context, o store.ScanOptions) (store.Page, error) {
	g.scans.Add(1)
	limit := o.Limit
	if limit <= 0 {
		limit = 100
	}
	i := 0
	if o.After != "" {
		i = sort.Search(g.n, func(i int) bool {
			k := g.key(i)
			if strings.IndexByte(o.After, 0) >= 0 {
				return k+"\x00" > o.After
			}
			return k > o.After
		})
	}
	var p store.Page
	for ; i < g.n && len(p.Entries) < limit; i++ {
		m := g.meta(i)
		if !strings.HasPrefix(m.Key, o.Prefix) {
			if m.Key > o.Prefix {
				break
			}
			continue
		}
		p.Entries = append(p.Entries, m)
	}
	if i < g.n && len(p.Entries) > 0 {
		last := p.Entries[len(p.Entries)-1]
		p.Next = last.Key + "\x00" + last.Variant
	}
	return p, nil
}

func (g *genReader) Get(ctx context.Context, key, variant string) (*store.Record, error) {
	return nil, store.ErrNotFound
}

func (g *genReader) Variants(ctx context.Context, key string) ([]store.Meta, error) {
	return nil, nil
}

func (g *genReader) Stats() store.Stats {
	return store.Stats{Records: int64(g.n), Bytes: int64(g.n) * 4096}
}
func (g *genReader) Path() string { return "generated" }

func TestHTTP_BottomOverTwoMillionKeys(t *testing.T) {
	g := &genReader{n: 2_000_000}
	a := newAPI(t, g, nil)
	h := newHarness(t, a.client, Options{}, 120, 40)
	before := a.entries.Load()
	h.key("G")
	if n := a.entries.Load() - before; n != 1 {
		t.Errorf("G made %d list requests, want 1", n)
	}
	if got, want := curKey(h), "https://app.test/p/01999999|"; got != want {
		t.Fatalf("G: cursor on %q, want %q\n%s", got, want, h.view())
	}
	if n := len(h.m.list.win.pages); n > h.m.opts.MaxPages {
		t.Errorf("%d pages resident", n)
	}
	for i := 0; i < 10; i++ {
		h.key("ctrl+b")
	}
	want := 1999999 - 10*h.m.listRows()
	if got := curKey(h); got != fmt.Sprintf("https://app.test/p/%08d|", want) {
		t.Errorf("10 pages up from the end: cursor on %q, want row %d", got, want)
	}
	if n := len(h.m.list.win.pages); n > h.m.opts.MaxPages {
		t.Errorf("%d pages resident after scrolling", n)
	}
	if rows := h.m.list.win.len(); rows > h.m.opts.MaxPages*h.m.opts.PageSize {
		t.Errorf("%d rows resident", rows)
	}
	if v := h.view(); !strings.Contains(v, "of ~2,000,000") {
		t.Errorf("no position:\n%s", v)
	}
}
