package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The load generator's client must read every framing the servers use,
// or the next request on the connection reads garbage.
func TestConnReadsFramings(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/len":
			w.Header().Set("Cache-Status", "up; fwd=miss, firstrender; hit; ttl=5")
			w.Write([]byte("hello"))
		case "/chunked":
			w.Header().Set("Cache-Status", "firstrender; hit; collapsed")
			w.Write([]byte(strings.Repeat("a", 10)))
			w.(http.Flusher).Flush()
			w.Write([]byte(strings.Repeat("b", 7)))
		case "/304":
			w.WriteHeader(http.StatusNotModified)
		default:
			w.Header().Set("Cache-Status", "firstrender; fwd=uri-miss; stored")
			http.NotFound(w, r)
		}
	}))
	defer ts.Close()
	c := &conn{addr: strings.TrimPrefix(ts.URL, "http://")}
	defer c.close()
	for range 2 { // twice: the connection stays usable
		for _, tc := range []struct {
			path   string
			status int
			body   int
			hit    bool
		}{{"/len", 200, 5, true}, {"/chunked", 200, 17, false}, {"/304", 304, 0, false}, {"/x", 404, 19, false}} {
			r, err := c.get(tc.path)
			if err != nil {
				t.Fatalf("GET %s: %v", tc.path, err)
			}
			if r.status != tc.status || r.body != tc.body || r.hit != tc.hit {
				t.Errorf("GET %s = status %d body %d hit %v, want %d %d %v", tc.path, r.status, r.body, r.hit, tc.status, tc.body, tc.hit)
			}
		}
	}
}

func TestRegistryNamesUnique(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range registry {
		if seen[s.Name] || s.Run == nil {
			t.Errorf("scenario %q registered twice or without Run", s.Name)
		}
		seen[s.Name] = true
	}
	defer func() {
		if recover() == nil {
			t.Error("Register of a duplicate name did not panic")
		}
	}()
	Register(Scenario{Name: "hot", Run: runHot})
}

// TestLoadBackground checks a load's side traffic: it runs for as long as
// the workers do, on connections of its own (none of its requests is in
// the result), and has returned when run does.
func TestLoadBackground(t *testing.T) {
	var side, main atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/side" {
			side.Add(1)
		} else {
			main.Add(1)
		}
	}))
	defer ts.Close()
	var running atomic.Bool
	l := &load{
		addr: strings.TrimPrefix(ts.URL, "http://"), conns: 2, duration: time.Minute, max: 400,
		next: func(context.Context, int, int64, *conn) (string, error) {
			if side.Load() == 0 {
				return "/wait", nil // until the side traffic has sent one
			}
			return "/main", nil
		},
		background: func(ctx context.Context, addr string) {
			running.Store(true)
			defer running.Store(false)
			c := &conn{addr: addr}
			defer c.close()
			for ctx.Err() == nil {
				if _, err := c.get("/side"); err != nil && ctx.Err() == nil {
					t.Errorf("side GET: %v", err)
					return
				}
			}
		},
	}
	res := l.run(context.Background())
	if running.Load() {
		t.Fatal("run returned while its background still ran")
	}
	if side.Load() == 0 || res.requests != main.Load() {
		t.Fatalf("side requests %d, result %d requests for %d main ones: want side traffic, none of it counted", side.Load(), res.requests, main.Load())
	}
}

// TestGrowthRows: a larger store's row is its round with the median ratio
// to that round's smallest store, against that round's figure; the
// reference is the smallest store's median round.
func TestGrowthRows(t *testing.T) {
	m := func(rps float64) Measurement { return Measurement{RPS: rps} }
	sizes := []int{1000, 100000}
	fills := []time.Duration{time.Second, 2 * time.Second}
	// Round 1 is slow for both sizes (a busy host): ratio 1.0. Round 0:
	// 0.5, round 2: 0.9. Median ratio: round 2 (0.9), though round 0 has
	// the median req/s of the larger store.
	ms := [][][2]Measurement{
		{{m(100), m(50)}, {m(50), m(50)}},
		{{m(40), m(40)}, {m(40), m(40)}},
		{{m(90), m(60)}, {m(81), m(30)}},
	}
	rows := growthRows(sizes, fills, ms)
	if len(rows) != 4 {
		t.Fatalf("%d rows, want 4", len(rows))
	}
	if r := rows[0]; r.Target != "memory tier" || r.M.RPS != 90 || r.Ref != nil || !strings.Contains(r.Note, "(reference)") {
		t.Errorf("memory-tier reference row = %+v, want round 2's 90 req/s (the median) as the reference", r)
	}
	if r := rows[2]; r.Scenario != "growth 100000" || r.M.RPS != 81 || r.Ref == nil || r.Ref.RPS != 90 || !strings.Contains(r.Note, "that round's 1000 (90 req/s)") {
		t.Errorf("memory-tier 100000 row = %+v (ref %+v), want round 2's 81 against its own 90", r, r.Ref)
	}
	// Store only: ratios 1.0, 1.0, 0.5; the median is a ratio of 1.0.
	if r := rows[3]; r.Target != "store only" || r.Ref == nil || r.M.RPS/r.Ref.RPS != 1 {
		t.Errorf("store-only 100000 row = %+v (ref %+v), want a round with ratio 1", r, r.Ref)
	}
	if rows := growthRows(sizes, fills, ms[:1]); strings.Contains(rows[2].Note, "median") || rows[2].Ref.RPS != 100 {
		t.Errorf("one round: row = %+v, want that round against its own reference, no median note", rows[2])
	}
	if rows := growthRows(sizes, fills, nil); rows != nil {
		t.Errorf("no rounds: %d rows", len(rows))
	}
}

func TestParseSteal(t *testing.T) {
	stat := func(steal0, total0extra, steal1 uint64) string {
		return fmt.Sprintf("cpu  10 0 10 10 0 0 0 %d 0 0\ncpu0 %d 0 5 5 0 0 0 %d 0 0\ncpu1 5 0 5 5 0 0 0 %d 0 0\nintr 1 2 3\n",
			steal0+steal1, 5+total0extra, steal0, steal1)
	}
	t0, ok := parseSteal(stat(0, 0, 0))
	if !ok || len(t0.total) != 2 {
		t.Fatalf("parseSteal = %+v, %v; want two CPUs", t0, ok)
	}
	// cpu0: 100 more ticks, 10 of them steal; cpu1: 5 ticks, all steal.
	t1, ok := parseSteal(stat(10, 90, 5))
	if !ok {
		t.Fatal("second parse failed")
	}
	got := t1.since(t0)
	if len(got) != 2 || got[0] != 0.1 || got[1] != 1 {
		t.Errorf("since = %v, want [0.1 1]", got)
	}
	if s := fmtSteal(got); s != "host steal: cpu0 10%, cpu1 100%" {
		t.Errorf("fmtSteal = %q", s)
	}
	if _, ok := parseSteal("cpu0 1 2 x 4 5 6 7 8\n"); ok {
		t.Error("a malformed line parsed")
	}
}

// checkStores accepts a cache that stores /u/ and not /ns/, and refuses
// one that stores neither, or both.
func TestCheckStores(t *testing.T) {
	for _, tc := range []struct {
		name          string
		storeU, store bool // stores /u/ paths; stores /ns/ paths
		wantErr       string
	}{
		{"right", true, false, ""},
		{"stores nothing", false, false, "GET /u/check-0 twice: second X-Cache hit=false, want true"},
		{"stores no-store", true, true, "GET /ns/check-0 twice: second X-Cache hit=true, want false"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			seen := map[string]bool{}
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				again := seen[r.URL.Path]
				seen[r.URL.Path] = true
				mu.Unlock()
				stores := tc.storeU
				if strings.HasPrefix(r.URL.Path, "/ns/") {
					stores = tc.store
				}
				if again && stores {
					w.Header().Set("X-Cache", "HIT")
				} else {
					w.Header().Set("X-Cache", "MISS")
				}
				w.Write([]byte("page"))
			}))
			defer ts.Close()
			err := checkStores(strings.TrimPrefix(ts.URL, "http://"))
			if got := fmt.Sprint(err); tc.wantErr == "" && err != nil || tc.wantErr != "" && got != tc.wantErr {
				t.Errorf("checkStores = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestParseTierFigures(t *testing.T) {
	text := `# HELP firstrender_memory_entries Entries in the memory tier.
# TYPE firstrender_memory_entries gauge
firstrender_memory_entries 12283
# TYPE firstrender_memory_admissions_total counter
firstrender_memory_admissions_total 14000
# TYPE firstrender_memory_rejections_total counter
firstrender_memory_rejections_total{reason="first_seen"} 14005
firstrender_memory_rejections_total{reason="frequency"} 7
firstrender_memory_evictions_total 1717
firstrender_requests_total{result="hit"} 99999
`
	got, ok := parseTierFigures(strings.NewReader(text))
	if want := (tierFigures{entries: 12283, reads: 28012}); !ok || got != want {
		t.Errorf("parseTierFigures = %+v, %v; want %+v, true", got, ok, want)
	}
	if _, ok := parseTierFigures(strings.NewReader("go_goroutines 12\n")); ok {
		t.Error("parseTierFigures found the memory tier in a text without it")
	}
}
