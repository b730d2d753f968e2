package server

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// metricValue is the value of the series name whose labels include all
// of want (a counter, gauge or untyped); 0 when there is none.
func metricValue(t *testing.T, s *Server, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := s.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if got[k] != v {
					continue series
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.GetCounter().GetValue()
			case m.Gauge != nil:
				sum += m.GetGauge().GetValue()
			case m.Untyped != nil:
				sum += m.GetUntyped().GetValue()
			}
		}
	}
	return sum
}

// TestServer_MetricsAfterAKnownSequence drives a known sequence of
// requests and checks every series of the documented vocabulary
// (docs/operations.md) against what the sequence must have produced.
func TestServer_MetricsAfterAKnownSequence(t *testing.T) {
	t.Parallel()
	const (
		pub     = "<!doctype html><p>public page, the same for everyone, 73 bytes long!!</p>" // stored
		private = "per-user page\n"
		csrf    = `<!doctype html><meta name="csrf-token" content="one-visitors-token"><p>hi</p>`
		posted  = "ok\n"
	)
	if len(pub) != 73 {
		t.Fatalf("the public page is %d bytes, want 73 (the issue's figure)", len(pub))
	}
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPost:
			io.WriteString(w, posted)
		case r.URL.Path == "/pub":
			w.Header().Set("Cache-Control", "public, s-maxage=300")
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, pub)
		case r.URL.Path == "/private":
			w.Header().Set("Cache-Control", "private, max-age=60")
			io.WriteString(w, private)
		case r.URL.Path == "/csrf":
			w.Header().Set("Cache-Control", "public, s-maxage=300")
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, csrf)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(origin.Close)
	s := startServer(t, Config{Upstream: mustURL(t, origin.URL)})
	var wantResults []string
	get := func(path, wantResult string) {
		t.Helper()
		res, _ := fetch(t, "GET", s.public+path)
		if res.StatusCode != 200 {
			t.Fatalf("GET %s: status %d", path, res.StatusCode)
		}
		s.stored(t)
		wantResults = append(wantResults, "GET "+path+" "+wantResult)
	}
	get("/pub", "miss")     // stored
	get("/pub", "hit")      // from the store
	get("/private", "pass") // refused: private
	get("/private", "pass") // hit-for-pass, refused again
	get("/csrf", "pass")    // refused by the lint: liveview-csrf-meta
	fetch(t, "POST", s.public+"/pub")
	s.stored(t) // pass; invalidates /pub
	wantResults = append(wantResults, "POST /pub pass")
	get("/pub", "miss") // stored again
	// A socket from a foreign site is refused before the origin is dialled.
	ws := "ws" + strings.TrimPrefix(s.public, "http") + "/live/websocket"
	if _, res, err := websocket.DefaultDialer.Dial(ws, http.Header{"Origin": {"https://evil.example"}}); err == nil || res.StatusCode != 403 {
		t.Fatalf("foreign socket: %v, want 403", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if n, err := s.srv.Store().RemoveExpired(ctx, time.Now().Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("RemoveExpired in an hour: %d, %v; want the one stored page", n, err)
	}

	type L = map[string]string
	for _, c := range []struct {
		name   string
		labels L
		want   float64
	}{
		{"firstrender_requests_total", L{"cache": "hit"}, 1},
		{"firstrender_requests_total", L{"cache": "miss"}, 2},
		{"firstrender_requests_total", L{"cache": "pass"}, 4}, // private ×2, csrf, POST: uncacheable is not a miss
		{"firstrender_requests_total", L{"cache": "stale"}, 0},
		{"firstrender_requests_total", L{"cache": "error"}, 0},
		{"firstrender_request_duration_seconds", nil, 0}, // histogram: checked by count below
		{"firstrender_origin_requests_total", L{"code": "200"}, 6},
		{"firstrender_served_bytes_total", L{"source": "cache"}, 73},
		// Each origin body once: 73 twice (the two misses), not 146 per page.
		{"firstrender_served_bytes_total", L{"source": "origin"}, float64(2*len(pub) + 2*len(private) + len(csrf) + len(posted))},
		{"firstrender_refused_total", L{"reason": "private"}, 2},
		{"firstrender_refused_total", L{"reason": "liveview-csrf-meta"}, 1},
		{"firstrender_hit_for_pass_total", nil, 1},
		{"firstrender_invalidations_total", nil, 1},
		{"firstrender_store_aborted_total", nil, 0},
		{"firstrender_store_entries", nil, 0},
		{"firstrender_store_bytes", nil, 0},
		{"firstrender_store_expired_total", nil, 1},
		{"firstrender_store_evictions_total", nil, 0},
		{"firstrender_livesocket_upgrades_refused_total", L{"reason": "origin_denied"}, 1},
		{"firstrender_livesocket_upgrades_accepted_total", nil, 0},
		{"firstrender_livesocket_open", nil, 0},
	} {
		if c.name == "firstrender_request_duration_seconds" {
			continue
		}
		if got := metricValue(t, s.srv, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	mfs, _ := s.srv.Registry().Gather()
	var observed uint64
	for _, mf := range mfs {
		if mf.GetName() == "firstrender_request_duration_seconds" {
			for _, m := range mf.GetMetric() {
				observed += m.GetHistogram().GetSampleCount()
			}
		}
		if strings.HasPrefix(mf.GetName(), "firstrender_server_") {
			t.Errorf("the undocumented %s family is back", mf.GetName())
		}
	}
	if observed != 7 {
		t.Errorf("firstrender_request_duration_seconds observed %d requests, want the 7 the proxy answered", observed)
	}
	var got []string
	for _, l := range s.logs.lines(t) {
		if l["msg"] == "request" && l["cache"] != "none" {
			got = append(got, l["method"].(string)+" "+l["path"].(string)+" "+l["cache"].(string))
		}
	}
	if strings.Join(got, "; ") != strings.Join(wantResults, "; ") {
		t.Errorf("access log results:\n got %q\nwant %q", got, wantResults)
	}
}

// TestMetricsAreDocumented: every firstrender_* series the server
// registers has a row in the one table, in docs/operations.md and in the
// README, and the table names nothing the server does not register.
func TestMetricsAreDocumented(t *testing.T) {
	t.Parallel()
	s := startServer(t, Config{})
	// Labelled families show only once they have a series.
	fetch(t, "GET", s.public+"/account") // origin 200, refused set-cookie
	s.stored(t)
	websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(s.public, "http")+"/live/websocket", nil) // refused: no Origin
	mfs, err := s.srv.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	registered := map[string]bool{}
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "firstrender_") {
			registered[mf.GetName()] = true
		}
	}
	for _, doc := range []string{"../../docs/operations.md", "../../README.md"} {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		for name := range registered {
			if !strings.Contains(text, "| `"+name+"` |") {
				t.Errorf("%s: no metrics table row for %s", doc, name)
			}
		}
		for _, m := range regexp.MustCompile("(?m)^\\| `(firstrender_[a-z_]+)` \\|").FindAllStringSubmatch(text, -1) {
			if !registered[m[1]] {
				t.Errorf("%s documents %s, which the server does not register", doc, m[1])
			}
		}
	}
}
