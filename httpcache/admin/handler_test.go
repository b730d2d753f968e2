package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/firstrender/firstrender/httpcache/liveview/phxtoken"
	"github.com/firstrender/firstrender/store"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func TestAuth(t *testing.T) {
	st := newTestStore(t)
	ts := newTestServer(t, st, func(c *HandlerConfig) { c.FailureBurst = 1000 })
	near := testToken[:len(testToken)-1] + "k"
	cases := []struct {
		name   string
		set    func(*http.Request)
		path   string
		status int
	}{
		{"no header", func(*http.Request) {}, "/admin/v1/stats", 401},
		{"wrong token", func(r *http.Request) { r.Header.Set("Authorization", "Bearer wrong-token-wrong-token") }, "/admin/v1/stats", 401},
		{"near miss: last byte", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+near) }, "/admin/v1/stats", 401},
		{"near miss: prefix", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+testToken[:20]) }, "/admin/v1/stats", 401},
		{"near miss: extra byte", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+testToken+"x") }, "/admin/v1/stats", 401},
		{"basic scheme", func(r *http.Request) { r.SetBasicAuth("admin", testToken) }, "/admin/v1/stats", 401},
		{"token as the scheme", func(r *http.Request) { r.Header.Set("Authorization", testToken) }, "/admin/v1/stats", 401},
		{"two headers", func(r *http.Request) {
			r.Header.Add("Authorization", "Bearer "+testToken)
			r.Header.Add("Authorization", "Bearer x")
		}, "/admin/v1/stats", 401},
		{"query string is never accepted", func(*http.Request) {}, "/admin/v1/stats?token=" + testToken + "&access_token=" + testToken, 401},
		{"cookie is never accepted", func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "token", Value: testToken}) }, "/admin/v1/stats", 401},
		{"PURGE needs it too", func(*http.Request) {}, "/page", 401},
		{"unknown path needs it too", func(*http.Request) {}, "/admin/v1/nothing", 401},
		{"right token", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+testToken) }, "/admin/v1/stats", 200},
		{"scheme is case-insensitive", func(r *http.Request) { r.Header.Set("Authorization", "bearer "+testToken) }, "/admin/v1/stats", 200},
	}
	wrong := 0
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			method := "GET"
			if tc.name == "PURGE needs it too" {
				method = "PURGE"
			}
			req, _ := http.NewRequest(method, ts.srv.URL+tc.path, nil)
			tc.set(req)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tc.status, body)
			}
			if tc.status == 401 {
				if string(body) != unauthorizedBody {
					t.Errorf("401 body %q, want the fixed %q", body, unauthorizedBody)
				}
				if resp.Header.Get("WWW-Authenticate") == "" {
					t.Errorf("401 without WWW-Authenticate")
				}
				if strings.Contains(tc.name, "near miss") || strings.Contains(tc.name, "wrong") {
					wrong++
				}
			}
		})
	}
	logs := ts.logs.String()
	if strings.Contains(logs, testToken) || strings.Contains(logs, testToken[:20]) {
		t.Errorf("the token (or a long part of it) is in the logs:\n%s", logs)
	}
	if !strings.Contains(logs, "admin: unauthorized request") || !strings.Contains(logs, "reason=wrong") || !strings.Contains(logs, "reason=missing") {
		t.Errorf("refusals not logged:\n%s", logs)
	}
	if got := counterValue(t, ts.h.authFailuresVec().WithLabelValues("wrong")); int(got) != wrong {
		t.Errorf("wrong-token counter = %v, want %d", got, wrong)
	}
	mfs, err := ts.reg.Gather()
	found := false
	for _, mf := range mfs {
		found = found || mf.GetName() == "firstrender_admin_auth_failures_total"
	}
	if err != nil || !found {
		t.Errorf("counter not registered: %v", err)
	}
}

func TestAuth_RateLimit(t *testing.T) {
	st := newTestStore(t)
	ts := newTestServer(t, st, func(c *HandlerConfig) { c.FailureBurst = 3; c.FailureEvery = time.Minute })
	try := func(tok string) int {
		req, _ := http.NewRequest("GET", ts.srv.URL+"/admin/v1/stats", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 429 && resp.Header.Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
		return resp.StatusCode
	}
	for i := range 3 {
		if got := try(fmt.Sprintf("guess-%020d", i)); got != 401 {
			t.Fatalf("failure %d: %d, want 401", i, got)
		}
	}
	if got := try("guess-another-guess-x"); got != 429 {
		t.Fatalf("4th failure: %d, want 429", got)
	}
	// Limited clients are refused before their token is checked, so
	// guessing learns nothing even when the guess is right.
	if got := try(testToken); got != 429 {
		t.Fatalf("right token while limited: %d, want 429", got)
	}
	ts.clk.Add(time.Minute)
	if got := try(testToken); got != 200 {
		t.Fatalf("right token after the refill: %d, want 200", got)
	}
	if got := counterValue(t, ts.h.authFailuresVec().WithLabelValues("rate_limited")); got != 2 {
		t.Errorf("rate_limited counter = %v, want 2", got)
	}
	if strings.Contains(ts.logs.String(), testToken) {
		t.Error("token in the logs")
	}
}

func TestNewHandler_Config(t *testing.T) {
	st := newTestStore(t)
	for _, cfg := range []HandlerConfig{
		{Store: st},
		{Store: st, Token: "short"},
		{Store: st, Token: testToken + " space"},
		{Token: testToken},
		{Store: st, Token: testToken, ScanBudget: -1},
	} {
		if _, err := NewHandler(cfg); err == nil {
			t.Errorf("NewHandler(%+v) accepted", cfg)
		} else if strings.Contains(err.Error(), testToken) {
			t.Errorf("error %q shows the token", err)
		}
	}
}

func TestRouting(t *testing.T) {
	ts := newTestServer(t, newTestStore(t), nil)
	for _, tc := range []struct {
		method, path string
		status       int
		code         string
	}{
		{"GET", "/admin/v1/nothing", 404, "not_found"},
		{"GET", "/admin/v2/stats", 404, "not_found"},
		{"POST", "/admin/v1/stats", 405, "method_not_allowed"},
		{"GET", "/admin/v1/purge", 405, "method_not_allowed"},
		{"DELETE", "/admin/v1/entries", 405, "method_not_allowed"},
	} {
		resp := ts.do(t, tc.method, tc.path, "")
		var e Error
		decodeJSON(t, resp, &e)
		if resp.StatusCode != tc.status || e.Code != tc.code {
			t.Errorf("%s %s = %d %+v, want %d %s", tc.method, tc.path, resp.StatusCode, e, tc.status, tc.code)
		}
	}
}

// detailStore holds one LiveView page (gzip, with tokens) and friends.
func detailStore(t *testing.T) (*store.Store, string, string) {
	st := newTestStore(t)
	signed := testNow.Add(-time.Hour)
	tok := liveToken(t, signed)
	html := fmt.Sprintf(`<html><head><meta name="csrf-token" content="%s"></head><body><div data-phx-main data-phx-session="%s" data-phx-static="%s">hi</div></body></html>`,
		"SFMyNTY.bm90LWEtdGVybQ.c2ln", tok, tok)
	put(t, st, []*store.Record{
		{
			Key: "https://a.test/live", Status: 200,
			Header:       map[string][]string{"Content-Type": {"text/html"}, "Content-Encoding": {"gzip"}, "Cache-Control": {"public, s-maxage=60"}},
			Body:         gz(t, []byte(html)),
			ResponseTime: testNow.Add(-10 * time.Second), StoredTime: testNow.Add(-10 * time.Second),
			Annotations: map[string]string{
				annPolicy:   "lifetime=60 age=0 swr=30 sie=0 flags=",
				annFindings: `[{"kind":"csrf-meta","severity":"error","action":"strip","message":"a csrf meta token"}]`,
			},
		},
		{Key: "https://a.test/live", Variant: "v2", Status: 200, Body: []byte("other")},
		{Key: "https://a.test/big", Status: 200, Body: []byte(strings.Repeat("é", MaxBody)),
			Annotations: map[string]string{annPolicy: "lifetime=600 age=0 swr=0 sie=0 flags=heuristic",
				annNotAfter: testNow.Add(time.Minute).Format(time.RFC3339Nano)}},
		{Key: "https://a.test/bin", Status: 200, Body: []byte{0xff, 0xfe, 0}},
		{Key: "https://a.test/br", Status: 200, Header: map[string][]string{"Content-Encoding": {"br"}}, Body: []byte{1, 2, 3}},
	})
	return st, html, tok
}

func TestEntry(t *testing.T) {
	st, html, tok := detailStore(t)
	signer, err := phxtoken.NewSigner(testSecret, testSalt)
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, st, func(c *HandlerConfig) { c.Signer = signer })
	ctx := context.Background()

	d, err := ts.c.Entry(ctx, "https://a.test/live", "", true)
	if err != nil {
		t.Fatal(err)
	}
	if d.Body != html || d.Decoded != "gzip" || d.BodyBase64 || d.Truncated {
		t.Errorf("decoded body: %q decoded=%q b64=%v", d.Body, d.Decoded, d.BodyBase64)
	}
	if !slices.Equal(d.Variants, []string{"", "v2"}) {
		t.Errorf("variants %q", d.Variants)
	}
	if d.Headers["Cache-Control"][0] != "public, s-maxage=60" {
		t.Errorf("headers %v", d.Headers)
	}
	if d.Expiry.Reason != "s-maxage" || d.Expiry.At == nil || !d.Expiry.At.Equal(testNow.Add(50*time.Second)) {
		t.Errorf("expiry %+v", d.Expiry)
	}
	if len(d.Findings) != 1 || d.Findings[0].Kind != "csrf-meta" || d.Findings[0].Explanation == "" || d.Findings[0].Action == "" || d.Findings[0].Policy != "strip" {
		t.Errorf("findings %+v", d.Findings)
	}
	if len(d.Tokens) != 3 {
		t.Fatalf("tokens: %d, want 3: %+v", len(d.Tokens), d.Tokens)
	}
	csrf, sess, static := d.Tokens[0], d.Tokens[1], d.Tokens[2]
	if csrf.Where != "csrf-meta" || csrf.Kind != "invalid" || csrf.Error == "" {
		t.Errorf("csrf token %+v", csrf)
	}
	for _, tk := range []Token{sess, static} {
		wantExp := testNow.Add(-time.Hour).Add(phxtoken.DefaultLiveViewMaxAge)
		if tk.Raw != tok || tk.Kind != "signed" || tk.Signature != "verified" || tk.SignedAt == nil || tk.Expires == nil || !tk.Expires.Equal(wantExp) ||
			tk.Expired || tk.MaxAgeS != 86400 || tk.VerifierMaxAgeS != 1209600 || !strings.Contains(tk.Elixir, "phx-1") || len(tk.JSON) == 0 {
			t.Errorf("token %+v", tk)
		}
		if tk.Offset <= 0 || !strings.HasPrefix(html[tk.Offset:], tok) {
			t.Errorf("token offset %d does not point at it", tk.Offset)
		}
	}
	if sess.Where != "data-phx-session" || static.Where != "data-phx-static" {
		t.Errorf("where: %q %q", sess.Where, static.Where)
	}

	// Not decoded: the stored bytes, base64 (gzip is not UTF-8); tokens still read.
	d, _ = ts.c.Entry(ctx, "https://a.test/live", "", false)
	if !d.BodyBase64 || d.Decoded != "" || len(d.Tokens) != 3 {
		t.Errorf("raw gzip body: b64=%v decoded=%q tokens=%d", d.BodyBase64, d.Decoded, len(d.Tokens))
	}
	d, _ = ts.c.Entry(ctx, "https://a.test/big", "", false)
	if !d.Truncated || len(d.Body) > MaxBody || !strings.HasPrefix(strings.Repeat("é", MaxBody), d.Body) || d.BodyBase64 {
		t.Errorf("big body: truncated=%v len=%d b64=%v", d.Truncated, len(d.Body), d.BodyBase64)
	}
	if d.Expiry.Reason != "token-cap" || !d.Expiry.At.Equal(testNow.Add(time.Minute)) {
		t.Errorf("token cap expiry %+v", d.Expiry)
	}
	d, _ = ts.c.Entry(ctx, "https://a.test/bin", "", false)
	if !d.BodyBase64 || d.Body != "//4A" {
		t.Errorf("binary body %q b64=%v", d.Body, d.BodyBase64)
	}
	d, _ = ts.c.Entry(ctx, "https://a.test/br", "", true)
	if d.DecodeError == "" || d.Decoded != "" {
		t.Errorf("br: decode_error %q decoded %q", d.DecodeError, d.Decoded)
	}
	_, err = ts.c.Entry(ctx, "https://a.test/none", "", false)
	if e := apiErr(err); e == nil || e.Status != 404 || e.Code != "not_found" {
		t.Errorf("missing entry: %v", err)
	}
	_, err = ts.c.Entry(ctx, "https://a.test/live", "nope", false)
	if e := apiErr(err); e == nil || e.Status != 404 {
		t.Errorf("missing variant: %v", err)
	}
	resp := ts.do(t, "GET", "/admin/v1/entry", "")
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("entry without key: %d", resp.StatusCode)
	}
}

func TestDecode(t *testing.T) {
	signer, _ := phxtoken.NewSigner(testSecret, testSalt)
	ts := newTestServer(t, newTestStore(t), func(c *HandlerConfig) { c.Signer = signer })
	ctx := context.Background()
	tok := liveToken(t, testNow.Add(-48*time.Hour))
	got, err := ts.c.Decode(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	// A posted token's verifier max age is the embedded one (86400 s):
	// signed 48 h ago, it has expired.
	if got.Where != "posted" || got.Signature != "verified" || !got.Expired || got.Expires == nil || !got.Expires.Equal(testNow.Add(-24*time.Hour)) {
		t.Errorf("decode %+v", got)
	}
	other, _ := phxtoken.Sign("another-secret-key-base-another-secret-key-base-another-secret", testSalt, phxtoken.StaticData("x"), testNow, time.Hour)
	if got, _ := ts.c.Decode(ctx, other); got.Signature != "invalid" {
		t.Errorf("foreign signature: %q", got.Signature)
	}
	for _, bad := range []string{"", "   ", "hello", "SFMyNTY.!!!.x"} {
		_, err := ts.c.Decode(ctx, bad)
		if e := apiErr(err); e == nil || (e.Status != 400 && e.Status != 422) {
			t.Errorf("decode %q: %v", bad, err)
		}
	}
	resp := ts.do(t, "POST", "/admin/v1/decode", `{"token":"x","extra":1}`)
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("unknown field: %d", resp.StatusCode)
	}
}

// purgeFixture stores keys under two hosts, two variants, two tags.
func purgeFixture(t *testing.T) *store.Store {
	st := newTestStore(t)
	var recs []*store.Record
	for i := range 50 {
		host := "a.test"
		if i%2 == 1 {
			host = "b.test"
		}
		k := fmt.Sprintf("http://%s/p%02d", host, i)
		for _, v := range []string{"", "gzip"} {
			recs = append(recs, &store.Record{Key: k, Variant: v, Status: 200, Body: []byte("x"), Tags: []string{fmt.Sprintf("tag%d", i%5)},
				Annotations: map[string]string{annPolicy: "lifetime=600 age=0 swr=0 sie=0 flags="}})
		}
	}
	put(t, st, recs)
	return st
}

func TestPurge_Selectors(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name string
		req  PurgeRequest
		want int
		gone func(k string) bool
	}{
		{"key: all variants", PurgeRequest{Key: "http://a.test/p00"}, 2, func(k string) bool { return k == "http://a.test/p00" }},
		{"keys", PurgeRequest{Keys: []string{"http://a.test/p00", "http://b.test/p01", "http://a.test/p00", "http://x.test/none"}}, 4,
			func(k string) bool { return k == "http://a.test/p00" || k == "http://b.test/p01" }},
		{"url, normalized like requests", PurgeRequest{URL: "http://A.TEST/p02"}, 2, func(k string) bool { return k == "http://a.test/p02" }},
		{"prefix", PurgeRequest{Prefix: "http://b.test/"}, 50, func(k string) bool { return strings.HasPrefix(k, "http://b.test/") }},
		{"tag", PurgeRequest{Tag: "tag3"}, 20, func(k string) bool { var i int; fmt.Sscanf(k[len(k)-2:], "%d", &i); return i%5 == 3 }},
		{"all", PurgeRequest{All: true, Confirm: "all"}, 100, func(string) bool { return true }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := purgeFixture(t)
			ts := newTestServer(t, st, nil)
			ev := ts.h.Events().Subscribe()
			defer ev.Close()
			dry := tc.req
			dry.DryRun = true
			res, err := ts.c.Purge(ctx, dry)
			if err != nil {
				t.Fatal(err)
			}
			if res.Count != tc.want || !res.DryRun || st.Stats().Records != 100 {
				t.Fatalf("dry run: %+v, %d records left; want count %d and nothing removed", res, st.Stats().Records, tc.want)
			}
			res, err = ts.c.Purge(ctx, tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if res.Count != tc.want || res.ID == "" {
				t.Fatalf("purge: %+v, want count %d", res, tc.want)
			}
			// Acknowledged means committed: the store agrees right away.
			for e, err := range ts.c.Entries(ctx, ListQuery{Limit: 1000}) {
				if err != nil {
					t.Fatal(err)
				}
				if tc.gone(e.Key) {
					t.Errorf("%s still stored after the purge", e.Key)
				}
			}
			if got := st.Stats().Records; got != int64(100-tc.want) {
				t.Errorf("%d records left, want %d", got, 100-tc.want)
			}
			log, _ := ts.c.Purges(ctx)
			if len(log) != 1 || log[0].ID != res.ID || log[0].Count != tc.want || log[0].Client == "" || log[0].Selector.Confirm != "" {
				t.Errorf("audit log %+v", log)
			}
			if !strings.Contains(ts.logs.String(), "admin: purge") || !strings.Contains(ts.logs.String(), "id="+res.ID) {
				t.Errorf("purge not logged:\n%s", ts.logs.String())
			}
			select {
			case e := <-ev.C:
				if e.Type != "purge" || e.Purge == nil || e.Purge.ID != res.ID {
					t.Errorf("event %+v", e)
				}
			default:
				t.Error("no purge event published")
			}
		})
	}
}

func TestPurge_Refusals(t *testing.T) {
	st := purgeFixture(t)
	ts := newTestServer(t, st, nil)
	for _, tc := range []struct {
		body   string
		status int
		code   string
	}{
		{`{}`, 400, "bad_request"},
		{`{"all":true}`, 400, "confirm_required"},
		{`{"all":true,"confirm":"yes"}`, 400, "confirm_required"},
		{`{"key":"a","prefix":"b"}`, 400, "bad_request"},
		{`{"prefix":"` + strings.Repeat("p", MaxPrefix+1) + `"}`, 400, "bad_request"},
		{`{"key":"a\u0000b"}`, 400, "bad_request"},
		{`{"keys":["a",""]}`, 400, "bad_request"},
		{`{"url":"/relative"}`, 400, "bad_request"},
		{`{"key":"a","confirm":"all"}`, 400, "bad_request"},
		{`{"key":"a","scope":"world"}`, 400, "bad_request"},
		{`{"key":"a","unknown":1}`, 400, "bad_request"},
		{`{"key":"a"} {"key":"b"}`, 400, "bad_request"},
		{`not json`, 400, "bad_request"},
		{``, 400, "bad_request"},
	} {
		resp := ts.do(t, "POST", "/admin/v1/purge", tc.body)
		var e Error
		decodeJSON(t, resp, &e)
		if resp.StatusCode != tc.status || e.Code != tc.code {
			t.Errorf("purge %.60s = %d %+v, want %d %s", tc.body, resp.StatusCode, e, tc.status, tc.code)
		}
	}
	if got := st.Stats().Records; got != 100 {
		t.Errorf("refused purges removed records: %d left", got)
	}
	ro := newTestServer(t, st, func(c *HandlerConfig) { c.Purger = nil; c.Key = nil })
	_, err := ro.c.Purge(context.Background(), PurgeRequest{Key: "http://a.test/p00"})
	if e := apiErr(err); e == nil || e.Status != 409 || e.Code != "read_only" {
		t.Errorf("read-only purge: %v", err)
	}
	if res, err := ro.c.Purge(context.Background(), PurgeRequest{Prefix: "http://a.test/", DryRun: true}); err != nil || res.Count != 50 {
		t.Errorf("read-only dry run: %+v %v", res, err)
	}
	_, err = ro.c.Purge(context.Background(), PurgeRequest{URL: "http://a.test/p00"})
	if e := apiErr(err); e == nil || e.Status != 501 {
		t.Errorf("url purge without Key: %v", err)
	}
}

func TestPurge_Soft(t *testing.T) {
	st := purgeFixture(t)
	ts := newTestServer(t, st, nil)
	ctx := context.Background()
	res, err := ts.c.Purge(ctx, PurgeRequest{Prefix: "http://a.test/", Soft: true})
	if err != nil || res.Count != 50 || !res.Soft {
		t.Fatalf("soft purge: %+v %v", res, err)
	}
	if st.Stats().Records != 100 {
		t.Fatalf("soft purge removed records")
	}
	n := 0
	for e, err := range ts.c.Entries(ctx, ListQuery{Limit: 1000}) {
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(e.Key, "http://a.test/") != e.Stale {
			t.Errorf("%s stale=%v after soft-purging a.test", e.Key, e.Stale)
		}
		n++
		rec, err := st.Get(ctx, e.Key, e.Variant)
		if err != nil {
			t.Fatal(err)
		}
		mark, ok := rec.Annotations[AnnotationSoftPurged]
		if ok != strings.HasPrefix(e.Key, "http://a.test/") || ok && mark != testNow.Format(time.RFC3339Nano) {
			t.Errorf("%s mark %q %v", e.Key, mark, ok)
		}
		if rec.Annotations[annPolicy] == "" {
			t.Errorf("%s lost its other annotations", e.Key)
		}
	}
	if n != 100 {
		t.Errorf("%d entries listed", n)
	}
	d, _ := ts.c.Entry(ctx, "http://a.test/p00", "", false)
	if !strings.Contains(d.Expiry.Detail, "soft-purged") {
		t.Errorf("expiry detail %q does not mention the soft purge", d.Expiry.Detail)
	}
}

func TestPurgeMethod(t *testing.T) {
	st := purgeFixture(t)
	ts := newTestServer(t, st, nil)
	send := func(host, path string, hdr map[string]string) (*http.Response, PurgeResult) {
		req, _ := http.NewRequest("PURGE", ts.srv.URL+path, nil)
		req.Host = host
		req.Header.Set("Authorization", "Bearer "+testToken)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var r PurgeResult
		if resp.StatusCode == 200 {
			decodeJSON(t, resp, &r)
		} else {
			resp.Body.Close()
		}
		return resp, r
	}
	resp, r := send("A.TEST", "/p04", map[string]string{"X-Purge-Dry-Run": "1"})
	if resp.StatusCode != 200 || r.Count != 2 || !r.DryRun || st.Stats().Records != 100 {
		t.Fatalf("dry PURGE: %d %+v", resp.StatusCode, r)
	}
	resp, r = send("A.TEST", "/p04", nil)
	if resp.StatusCode != 200 || r.Count != 2 {
		t.Fatalf("PURGE: %d %+v", resp.StatusCode, r)
	}
	if ms, _ := st.Variants(context.Background(), "http://a.test/p04"); len(ms) != 0 {
		t.Errorf("PURGE left %d variants", len(ms))
	}
	if _, r = send("a.test", "/p06", map[string]string{"X-Purge-Soft": "true"}); r.Count != 2 || !r.Soft || st.Stats().Records != 98 {
		t.Errorf("soft PURGE: %+v", r)
	}
	if resp, _ = send("a.test", "/p06", map[string]string{"X-Purge-Soft": "perhaps"}); resp.StatusCode != 400 {
		t.Errorf("bad flag: %d", resp.StatusCode)
	}
	// Through the client.
	res, err := ts.c.PurgeURL(context.Background(), "http://b.test/p07", false)
	if err != nil || res.Count != 2 {
		t.Errorf("client PurgeURL: %+v %v", res, err)
	}
	log := ts.h.Purges()
	if len(log) != 3 || log[0].Selector.Key != "http://b.test/p07" {
		t.Errorf("audit log %+v", log)
	}
}

func TestEnable(t *testing.T) {
	st := newTestStore(t)
	put(t, st, []*store.Record{{Key: "k", Status: 200, Annotations: map[string]string{annDisabled: "join-refused", "other": "x"}}})
	ts := newTestServer(t, st, nil)
	ctx := context.Background()
	p, _ := ts.c.List(ctx, ListQuery{Disabled: true})
	if len(p.Items) != 1 || p.Items[0].Disabled != "join-refused" {
		t.Fatalf("disabled list %+v", p.Items)
	}
	if err := ts.c.Enable(ctx, "k", ""); err != nil {
		t.Fatal(err)
	}
	rec, _ := st.Get(ctx, "k", "")
	if _, ok := rec.Annotations[annDisabled]; ok || rec.Annotations["other"] != "x" {
		t.Errorf("annotations after enable: %v", rec.Annotations)
	}
	err := ts.c.Enable(ctx, "missing", "")
	if e := apiErr(err); e == nil || e.Status != 404 {
		t.Errorf("enable missing: %v", err)
	}
}

func TestStats(t *testing.T) {
	st := purgeFixture(t)
	ts := newTestServer(t, st, func(c *HandlerConfig) {
		c.Stats = func() Stats { return Stats{Hits: 3, Misses: 1, OpenSockets: 2, Instance: "127.0.0.1:8080"} }
	})
	ts.clk.Add(90 * time.Second)
	s, err := ts.c.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s.Entries != 100 || s.Bytes <= 0 || s.FileSize <= 0 || s.StorePath != st.Path() || s.HitRatio != 0.75 || s.UptimeS != 90 ||
		s.OpenSockets != 2 || s.Version != "test" || s.ReadOnly || s.Instance != "127.0.0.1:8080" {
		t.Errorf("stats %+v", s)
	}
}

func TestCheckAndCompact(t *testing.T) {
	st := purgeFixture(t)
	ts := newTestServer(t, st, nil)
	ctx := context.Background()
	res, err := ts.c.Check(ctx)
	if err != nil || !res.OK || res.Records != 100 || res.Corrupt != 0 {
		t.Errorf("check %+v %v", res, err)
	}
	_, err = ts.c.Compact(ctx)
	if e := apiErr(err); e == nil || e.Status != 501 || e.Code != "unavailable" {
		t.Errorf("compact without a compactor: %v", err)
	}
	called := false
	ts2 := newTestServer(t, st, func(c *HandlerConfig) {
		c.Compact = func(context.Context) (CompactResult, error) {
			called = true
			return CompactResult{BeforeBytes: 10, AfterBytes: 5}, nil
		}
	})
	if r, err := ts2.c.Compact(ctx); err != nil || !called || r.AfterBytes != 5 {
		t.Errorf("compact %+v %v", r, err)
	}
}

func TestCompactFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	st, err := store.Open(path, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	var recs []*store.Record
	for i := range 3000 {
		recs = append(recs, &store.Record{Key: fmt.Sprintf("k%05d", i), Body: make([]byte, 2000)})
	}
	put(t, st, recs)
	if _, err := st.DeletePrefix(context.Background(), "k01"); err != nil {
		t.Fatal(err)
	}
	// A server holds the file: refused, nothing changes.
	if _, err := CompactFile(context.Background(), path, store.Options{Timeout: 50 * time.Millisecond}); !errors.Is(err, store.ErrLocked) {
		t.Errorf("compact of a held file: %v, want ErrLocked", err)
	}
	st.Close()
	res, err := CompactFile(context.Background(), path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.AfterBytes >= res.BeforeBytes {
		t.Errorf("compact %+v did not shrink", res)
	}
	st, err = store.Open(path, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if n := st.Stats().Records; n != 2000 {
		t.Errorf("%d records after compaction, want 2000", n)
	}
}

func TestEvents(t *testing.T) {
	ts := newTestServer(t, purgeFixture(t), func(c *HandlerConfig) { c.StatsInterval = time.Hour })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	es, err := ts.c.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer es.Close()
	first, err := es.Next()
	if err != nil || first.Type != "stats" || first.Stats == nil || first.Stats.Entries != 100 {
		t.Fatalf("first event %+v %v", first, err)
	}
	// The subscriber is registered once the first event arrived.
	ts.h.Events().Publish(Event{Type: "store", Key: "http://a.test/new"})
	if _, err := ts.c.Purge(ctx, PurgeRequest{Key: "http://a.test/p00"}); err != nil {
		t.Fatal(err)
	}
	e1, err := es.Next()
	if err != nil || e1.Type != "store" || e1.Key != "http://a.test/new" || e1.Time.IsZero() {
		t.Errorf("store event %+v %v", e1, err)
	}
	e2, err := es.Next()
	if err != nil || e2.Type != "purge" || e2.Purge == nil || e2.Purge.Count != 2 {
		t.Errorf("purge event %+v %v", e2, err)
	}
	cancel()
	if _, err := es.Next(); err == nil {
		t.Error("stream did not end with its context")
	}
}

func TestEvents_StatsSample(t *testing.T) {
	ts := newTestServer(t, newTestStore(t), func(c *HandlerConfig) { c.StatsInterval = 5 * time.Millisecond })
	es, err := ts.c.Events(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer es.Close()
	for i := range 3 {
		e, err := es.Next()
		if err != nil || e.Type != "stats" || e.Stats == nil {
			t.Fatalf("sample %d: %+v %v", i, e, err)
		}
	}
}

func TestEventsHub_SlowReaderDropped(t *testing.T) {
	hub := NewEvents(2)
	slow, fast := hub.Subscribe(), hub.Subscribe()
	defer fast.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 10 {
			hub.Publish(Event{Type: "store"})
			<-fast.C // the fast reader keeps up
		}
	}()
	<-done // the publisher never waited on the slow reader
	select {
	case <-slow.Dropped():
	default:
		t.Fatal("slow reader not dropped")
	}
	if len(slow.C) != 2 {
		t.Errorf("slow reader holds %d events, want its buffer of 2", len(slow.C))
	}
	select {
	case <-fast.Dropped():
		t.Error("fast reader dropped")
	default:
	}
	if hub.Subscribers() != 1 {
		t.Errorf("%d subscribers, want 1", hub.Subscribers())
	}
	slow.Close() // idempotent after the drop
}

// blockingWriter is a ResponseWriter whose writes wait for release: a
// reader that stopped reading.
type blockingWriter struct {
	h       http.Header
	release chan struct{}
	once    sync.Once
	entered chan struct{}
	mu      sync.Mutex
	buf     strings.Builder
}

func (w *blockingWriter) Header() http.Header { return w.h }
func (w *blockingWriter) WriteHeader(int)     {}
func (w *blockingWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.entered) })
	<-w.release
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}
func (w *blockingWriter) Flush() {}

func TestEvents_SlowSSEReaderGetsDropped(t *testing.T) {
	ts := newTestServer(t, newTestStore(t), func(c *HandlerConfig) { c.Events = NewEvents(1); c.StatsInterval = time.Hour })
	w := &blockingWriter{h: http.Header{}, release: make(chan struct{}), entered: make(chan struct{})}
	req := httptest.NewRequest("GET", "/admin/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	served := make(chan struct{})
	go func() { ts.h.ServeHTTP(w, req); close(served) }()
	<-w.entered // stuck writing the first sample
	for range 5 {
		ts.h.Events().Publish(Event{Type: "store"}) // never blocks
	}
	close(w.release)
	<-served
	if out := w.buf.String(); !strings.Contains(out, "event: dropped\n") {
		t.Errorf("stream did not end with a dropped event:\n%s", out)
	}
	if n := ts.h.Events().Subscribers(); n != 0 {
		t.Errorf("%d subscribers left", n)
	}
}

func TestClient_Errors(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	c, err := NewClient("http://"+addr, testToken)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Stats(context.Background())
	var ce *ConnError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "GET") || strings.Contains(err.Error(), testToken) {
		t.Errorf("conn error %v", err)
	}
	sock := filepath.Join(t.TempDir(), "none.sock")
	c, _ = NewClient("unix://"+sock, testToken)
	_, err = c.Stats(context.Background())
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "unix socket "+sock) {
		t.Errorf("unix conn error %v", err)
	}
	for _, bad := range []string{"ftp://x", "http://", "http://h/path", "unix://host/x", "::"} {
		if _, err := NewClient(bad, testToken); err == nil {
			t.Errorf("NewClient(%q) accepted", bad)
		}
	}
	// A wrong token is an *Error with status and code.
	ts := newTestServer(t, newTestStore(t), nil)
	wc, _ := NewClient(ts.srv.URL, "wrong-wrong-wrong-wrong")
	_, err = wc.Stats(context.Background())
	if e := apiErr(err); e == nil || e.Status != 401 || e.Code != "unauthorized" {
		t.Errorf("wrong token: %v", err)
	}
}

func TestClient_UnixSocket(t *testing.T) {
	st := purgeFixture(t)
	ts := newTestServer(t, st, nil)
	dir, err := os.MkdirTemp("", "adm") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "a.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: ts.h}
	go srv.Serve(ln)
	defer srv.Close()
	c, err := NewClient("unix://"+sock, testToken)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Purge(context.Background(), PurgeRequest{Key: "http://a.test/p00"})
	if err != nil || res.Count != 2 {
		t.Fatalf("purge over the socket: %+v %v", res, err)
	}
	if log := ts.h.Purges(); log[0].Client != "unix" {
		t.Errorf("audit client %q, want unix", log[0].Client)
	}
}

func TestTokenFile(t *testing.T) {
	path := TokenFile(filepath.Join(t.TempDir(), "cache.db"))
	tok, created, err := LoadOrCreateToken(path)
	if err != nil || !created || ValidateToken(tok) != nil || len(tok) != 43 {
		t.Fatalf("create: %q %v %v", Redact(tok), created, err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %o, want 600", fi.Mode().Perm())
	}
	again, created, err := LoadOrCreateToken(path)
	if err != nil || created || again != tok {
		t.Errorf("reuse: created=%v err=%v same=%v", created, err, again == tok)
	}
	os.Chmod(path, 0o644)
	if _, _, err := LoadOrCreateToken(path); err == nil || strings.Contains(err.Error(), tok) || !strings.Contains(err.Error(), path) {
		t.Errorf("group-readable file: %v", err)
	}
	os.Chmod(path, 0o600)
	os.WriteFile(path, []byte("short\n"), 0o600)
	if _, _, err := LoadOrCreateToken(path); err == nil {
		t.Error("short token accepted")
	}
	if r := Redact(tok); strings.Contains(r, tok[4:12]) || !strings.HasPrefix(r, tok[:4]) {
		t.Errorf("Redact = %q", r)
	}
	if Redact("") != "(none)" || strings.Contains(Redact("abcdefgh"), "abcd") {
		t.Error("Redact of short tokens")
	}
	// Racing creators agree on one token.
	p2 := TokenFile(filepath.Join(t.TempDir(), "x.db"))
	toks := make([]string, 8)
	var wg sync.WaitGroup
	for i := range toks {
		wg.Go(func() {
			tk, _, err := LoadOrCreateToken(p2)
			if err != nil {
				t.Error(err)
			}
			toks[i] = tk
		})
	}
	wg.Wait()
	for _, tk := range toks {
		if tk != toks[0] {
			t.Fatal("racing creators got different tokens")
		}
	}
}

func TestJSONErrors(t *testing.T) {
	ts := newTestServer(t, newTestStore(t), nil)
	resp := ts.do(t, "GET", "/admin/v1/entry?key=x", "")
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("content type %q", ct)
	}
	var raw map[string]any
	decodeJSON(t, resp, &raw)
	if len(raw) != 2 || raw["code"] != "not_found" || raw["error"] == "" {
		t.Errorf("error shape %v", raw)
	}
	b, _ := json.Marshal(&Error{Message: "m", Code: "c", Status: 500})
	if string(b) != `{"error":"m","code":"c"}` {
		t.Errorf("Error JSON %s", b)
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
