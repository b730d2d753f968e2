package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/firstrender/firstrender/httpcache/liveview/phxtoken"
	"github.com/firstrender/firstrender/store"
)

// TestDocExamples runs every endpoint once against a small store and, with
// ADMIN_API_DOC=path, writes each curl command and the reply it got there:
// the responses in docs/admin-api.md come from
//
//	ADMIN_API_DOC=/tmp/admin-api-examples.md go test -run TestDocExamples ./httpcache/admin
func TestDocExamples(t *testing.T) {
	st := newTestStore(t)
	signed := testNow.Add(-2 * time.Hour)
	tok := liveToken(t, signed)
	page := fmt.Sprintf(`<div data-phx-main data-phx-session="%s">Hello</div>`, tok)
	put(t, st, []*store.Record{
		{Key: "https://shop.test/", Status: 200, Header: map[string][]string{"Content-Type": {"text/html"}, "Cache-Control": {"public, s-maxage=300"}},
			Body: []byte(page), ResponseTime: testNow.Add(-40 * time.Second), StoredTime: testNow.Add(-40 * time.Second), Tags: []string{"home"},
			Annotations: map[string]string{annPolicy: "lifetime=300 age=0 swr=60 sie=0 flags=", annVary: "", phxtoken.AnnotationTokens: phxtoken.TokenHash(tok)}},
		{Key: "https://shop.test/cart", Status: 200, Header: map[string][]string{"Content-Type": {"text/html"}},
			Body: []byte("<p>cart</p>"), ResponseTime: testNow.Add(-time.Hour), StoredTime: testNow.Add(-time.Hour),
			Annotations: map[string]string{annPolicy: "lifetime=60 age=0 swr=0 sie=0 flags=", annDisabled: "join-refused",
				annFindings: `[{"kind":"user-session","severity":"error","action":"allow","message":"data-phx-session at byte 31 carries user session values (user_id): this render belongs to one visitor"}]`}},
		{Key: "https://shop.test/p/1", Status: 200, Body: []byte("<p>one</p>"), Tags: []string{"product", "p1"}, ResponseTime: testNow.Add(-time.Minute), StoredTime: testNow.Add(-time.Minute)},
		{Key: "https://shop.test/p/2", Status: 404, Body: []byte("<p>gone</p>"), Tags: []string{"product"}, ResponseTime: testNow.Add(-time.Minute), StoredTime: testNow.Add(-time.Minute)},
	})
	signer, _ := phxtoken.NewSigner(testSecret, testSalt)
	ts := newTestServer(t, st, func(c *HandlerConfig) {
		c.Signer = signer
		c.StatsInterval = time.Hour
		c.Compact = func(ctx context.Context) (CompactResult, error) { // what the server wires
			b, a, err := st.CompactInPlace(ctx)
			return CompactResult{BeforeBytes: b, AfterBytes: a}, err
		}
		c.Stats = func() Stats {
			return Stats{Instance: "127.0.0.1:8080", Requests: 1200, Hits: 1000, Misses: 150, Stale: 20, Revalidated: 10, Pass: 30,
				OriginRequests: 190, OriginLatencyS: 0.042, OpenSockets: 12, Disabled: 1}
		}
	})
	ts.clk.Add(0)
	type step struct {
		title, method, path, body string
		hdr                       map[string]string
		status                    int
	}
	var next string
	steps := []step{
		{"GET entries", "GET", "/admin/v1/entries?limit=2", "", nil, 200},
		{"GET entries (next page)", "GET", "", "", nil, 200},
		{"GET entries (filtered)", "GET", "/admin/v1/entries?prefix=https://shop.test/p/&status=4xx", "", nil, 200},
		{"GET entries (last page)", "GET", "/admin/v1/entries?last=1&limit=1", "", nil, 200},
		{"GET entry", "GET", "/admin/v1/entry?key=https://shop.test/&variant=", "", nil, 200},
		{"GET entry (findings, disabled)", "GET", "/admin/v1/entry?key=https://shop.test/cart", "", nil, 200},
		{"POST decode", "POST", "/admin/v1/decode", `{"token":"` + tok + `"}`, nil, 200},
		{"POST purge (dry run)", "POST", "/admin/v1/purge", `{"tag":"product","dry_run":true}`, nil, 200},
		{"POST purge (soft)", "POST", "/admin/v1/purge", `{"key":"https://shop.test/","soft":true}`, nil, 200},
		{"POST purge (prefix)", "POST", "/admin/v1/purge", `{"prefix":"https://shop.test/p/"}`, nil, 200},
		{"POST purge (all, unconfirmed)", "POST", "/admin/v1/purge", `{"all":true}`, nil, 400},
		{"PURGE", "PURGE", "/cart", "", map[string]string{"Host": "shop.test", "X-Forwarded-Proto": "https"}, 200},
		{"GET purges", "GET", "/admin/v1/purges", "", nil, 200},
		{"POST enable", "POST", "/admin/v1/enable", `{"key":"https://shop.test/","variant":""}`, nil, 200},
		{"GET stats", "GET", "/admin/v1/stats", "", nil, 200},
		{"POST check", "POST", "/admin/v1/check", "{}", nil, 200},
		{"POST compact", "POST", "/admin/v1/compact", "{}", nil, 200},
		{"Missing or wrong token", "GET", "/admin/v1/stats", "", map[string]string{"Authorization": "Bearer wrong-wrong-wrong-wrong"}, 401},
		{"Bad request", "GET", "/admin/v1/entries?limit=5000", "", nil, 400},
	}
	var doc strings.Builder
	for _, s := range steps {
		if s.path == "" {
			s.path = "/admin/v1/entries?limit=2&after=" + next
		}
		req, _ := http.NewRequest(s.method, ts.srv.URL+s.path, strings.NewReader(s.body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		curl := "curl -sS"
		if s.method != "GET" {
			curl += " -X " + s.method
		}
		auth := `-H "Authorization: Bearer $TOKEN"`
		for k, v := range s.hdr {
			if k == "Host" {
				req.Host = v
			} else {
				req.Header.Set(k, v)
			}
			if k == "Authorization" {
				auth = "-H '" + k + ": " + v + "'"
			} else {
				curl += " -H '" + k + ": " + v + "'"
			}
		}
		curl += " " + auth
		if s.body != "" {
			req.Header.Set("Content-Type", "application/json")
			b := s.body
			if len(b) > 120 {
				b = `{"token":"'"$PHX_TOKEN"'"}`
			}
			curl += " -H 'Content-Type: application/json' -d '" + b + "'"
		}
		curl += " 'http://127.0.0.1:9090" + s.path + "'"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != s.status {
			t.Fatalf("%s: %d, want %d: %s", s.title, resp.StatusCode, s.status, body)
		}
		if s.title == "GET entries" {
			var p Page
			if err := jsonUnmarshal(body, &p); err != nil {
				t.Fatal(err)
			}
			next = p.Next
		}
		fmt.Fprintf(&doc, "### %s\n\n```sh\n%s\n```\n\n```http\nHTTP/1.1 %s\n\n%s\n```\n\n", s.title, curl, resp.Status, strings.TrimSpace(string(body)))
	}
	// The event stream: the first sample, then a purge.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", ts.srv.URL+"/admin/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	var stream strings.Builder
	events := 0
	for events < 2 && sc.Scan() {
		stream.WriteString(sc.Text() + "\n")
		if sc.Text() == "" {
			events++
			if events == 1 {
				if _, err := ts.c.Purge(context.Background(), PurgeRequest{Key: "https://shop.test/cart"}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if events != 2 || !strings.Contains(stream.String(), "event: purge") {
		t.Fatalf("event stream: %q", stream.String())
	}
	fmt.Fprintf(&doc, "### GET events\n\n```sh\ncurl -sSN -H \"Authorization: Bearer $TOKEN\" 'http://127.0.0.1:9090/admin/v1/events'\n```\n\n```\n%s```\n", stream.String())
	if path := os.Getenv("ADMIN_API_DOC"); path != "" {
		if err := os.WriteFile(path, []byte(doc.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
