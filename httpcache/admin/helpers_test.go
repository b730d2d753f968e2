package admin

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/firstrender/firstrender/httpcache/httpcachetest"
	"github.com/firstrender/firstrender/httpcache/liveview/phxtoken"
	"github.com/firstrender/firstrender/store"
	"github.com/prometheus/client_golang/prometheus"
)

const testToken = "test-token-0123456789abcdefghij"

// testNow is the fixed clock of the tests.
var testNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newTestStore opens a store in t.TempDir() and checks it on cleanup.
func newTestStore(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "cache.db"), store.Options{NoSync: true, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		res, err := st.Check(context.Background())
		if err != nil || len(res.Damaged) > 0 || len(res.Problems) > 0 {
			t.Errorf("store check after test: %v %+v", err, res)
		}
		st.Close()
	})
	return st
}

// testServer is a handler over a store behind httptest, with its client.
type testServer struct {
	st   *store.Store
	h    *Handler
	srv  *httptest.Server
	c    *Client
	logs *httpcachetest.SyncBuffer
	reg  *prometheus.Registry
	clk  *clock
}

// testKey is the normalization the tests give the handler: scheme from
// X-Forwarded-Proto (default http), lowercase host, the request URI.
func testKey(r *http.Request) (string, error) {
	if r.Host == "" {
		return "", fmt.Errorf("no host")
	}
	scheme := "http"
	if r.Header.Get("X-Forwarded-Proto") == "https" {
		scheme = "https"
	}
	return scheme + "://" + strings.ToLower(r.Host) + r.URL.RequestURI(), nil
}

func newTestServer(t testing.TB, st *store.Store, tweak func(*HandlerConfig)) *testServer {
	t.Helper()
	ts := &testServer{st: st, logs: &httpcachetest.SyncBuffer{}, reg: prometheus.NewRegistry(), clk: &clock{t: testNow}}
	cfg := HandlerConfig{
		Token:      testToken,
		Store:      st,
		Purger:     &StorePurger{Store: st, Now: ts.clk.Now},
		Key:        testKey,
		Registerer: ts.reg,
		Logger:     slog.New(slog.NewTextHandler(ts.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:        ts.clk.Now,
		Version:    "test",
	}
	if tweak != nil {
		tweak(&cfg)
	}
	h, err := NewHandler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts.h = h
	ts.srv = httptest.NewServer(h)
	t.Cleanup(ts.srv.Close)
	ts.c, err = NewClient(ts.srv.URL, testToken)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// do sends a raw request with the right token.
func (ts *testServer) do(t testing.TB, method, path string, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, ts.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// put stores records concurrently, so the store's group commit takes
// many per transaction (a fast bulk fill through the public API).
func put(t testing.TB, st *store.Store, recs []*store.Record) {
	t.Helper()
	const workers = 128
	ch := make(chan *store.Record)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for range workers {
		wg.Go(func() {
			for r := range ch {
				if err := st.Put(context.Background(), r); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		})
	}
	for _, r := range recs {
		ch <- r
	}
	close(ch)
	wg.Wait()
	if first != nil {
		t.Fatal(first)
	}
}

// bulkKey is the key of record i of the bulk fixture.
func bulkKey(i int) string { return fmt.Sprintf("https://bulk.test/s%d/p%06d", i%10, i) }

// bulkRecord is record i: section s<i%10>, status 404 for every 7th,
// findings on every 11th, disabled every 13th, tag t<i%3>.
func bulkRecord(i int) *store.Record {
	r := &store.Record{
		Key: bulkKey(i), Status: 200,
		Header:       map[string][]string{"Content-Type": {"text/html"}},
		Body:         []byte("<p>bulk</p>"),
		ResponseTime: testNow.Add(-time.Minute),
		StoredTime:   testNow.Add(-time.Minute),
		Tags:         []string{fmt.Sprintf("t%d", i%3)},
		Annotations:  map[string]string{annPolicy: "lifetime=600 age=0 swr=0 sie=0 flags="},
	}
	if i%7 == 0 {
		r.Status = 404
	}
	if i%11 == 0 {
		r.Annotations[annFindings] = `[{"kind":"csrf-meta","severity":"error","action":"strip","message":"m"}]`
	}
	if i%13 == 0 {
		r.Annotations[annDisabled] = "join-refused"
	}
	return r
}

var bulk struct {
	once sync.Once
	dir  string
	path string
	n    int
	err  error
}

// bulkStore opens (read-only) a store of n bulk records built once per
// test binary; n is fixed by the first caller.
func bulkStore(t testing.TB, n int) *store.Store {
	t.Helper()
	bulk.once.Do(func() {
		bulk.dir, bulk.err = os.MkdirTemp("", "admin-bulk")
		if bulk.err != nil {
			return
		}
		bulk.path = filepath.Join(bulk.dir, "bulk.db")
		bulk.n = n
		st, err := store.Open(bulk.path, store.Options{NoSync: true})
		if err != nil {
			bulk.err = err
			return
		}
		recs := make([]*store.Record, 0, 10000)
		for i := range n {
			recs = append(recs, bulkRecord(i))
			if len(recs) == cap(recs) || i == n-1 {
				put(t, st, recs)
				recs = recs[:0]
			}
		}
		bulk.err = st.Close()
	})
	if bulk.err != nil {
		t.Fatal(bulk.err)
	}
	if bulk.n != n {
		t.Fatalf("bulk store has %d records, want %d", bulk.n, n)
	}
	st, err := store.Open(bulk.path, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, d := range []string{bulk.dir, large.dir} {
		if d != "" {
			os.RemoveAll(d)
		}
	}
	os.Exit(code)
}

func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

const (
	testSecret = "a-secret-key-base-of-at-least-64-bytes-for-the-tests-0123456789abcdef"
	testSalt   = "lv-salt"
)

// liveToken signs a LiveView session token at signedAt.
func liveToken(t testing.TB, signedAt time.Time) string {
	t.Helper()
	tok, err := phxtoken.Sign(testSecret, testSalt, phxtoken.StaticData("phx-1"), signedAt, 86400*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func values(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

func decodeJSON(t testing.TB, resp *http.Response, v any) {
	t.Helper()
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("%s: decode reply: %v", resp.Request.URL, err)
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
