package livesocket

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/firstrender/firstrender/httpcache/liveview/phxtoken"
	"github.com/firstrender/firstrender/store"
	"github.com/gorilla/websocket"
)

// fakeCache is a Cache and Annotator over an in-memory list of entries.
type fakeCache struct {
	mu        sync.Mutex
	entries   map[string][]store.Meta // page URL → variants
	disabled  []string                // key|variant|reason
	annotated map[string]string       // key|variant → join-failures
}

func (f *fakeCache) Entries(_ context.Context, pageURL string) ([]store.Meta, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]store.Meta(nil), f.entries[pageURL]...), nil
}

func (f *fakeCache) Disable(_ context.Context, key, variant, reason string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.disabled = append(f.disabled, key+"|"+variant)
	return nil
}

func (f *fakeCache) Annotate(_ context.Context, key, variant string, set map[string]string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.annotated == nil {
		f.annotated = map[string]string{}
	}
	f.annotated[key+"|"+variant] = set[AnnotationJoinFailures]
	return nil
}

func (f *fakeCache) state() ([]string, map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := map[string]string{}
	for k, v := range f.annotated {
		a[k] = v
	}
	return append([]string(nil), f.disabled...), a
}

// lvOrigin answers phx_join on lv: topics with reply (nil = ok + rendered)
// and heartbeats, like a Phoenix LiveView endpoint.
func lvOrigin(reason string) func(c *websocket.Conn, r *http.Request) {
	return func(c *websocket.Conn, _ *http.Request) {
		for {
			_, p, err := c.ReadMessage()
			if err != nil {
				return
			}
			var m []json.RawMessage
			if json.Unmarshal(p, &m) != nil || len(m) != 5 {
				continue
			}
			var topic, event string
			json.Unmarshal(m[2], &topic)
			json.Unmarshal(m[3], &event)
			var payload string
			switch {
			case event == "phx_join" && reason != "":
				payload = fmt.Sprintf(`{"status":"error","response":{"reason":%q}}`, reason)
			case event == "phx_join":
				payload = `{"status":"ok","response":{"rendered":{"0":"1","s":["<b>","</b>"]}}}`
			default:
				payload = `{"status":"ok","response":{}}`
			}
			reply := fmt.Sprintf(`[%s,%s,%s,"phx_reply",%s]`, m[0], m[1], m[2], payload)
			if c.WriteMessage(websocket.TextMessage, []byte(reply)) != nil {
				return
			}
		}
	}
}

const pageURL = "http://app.test/prices"

func joinMsg(session string) []byte {
	return fmt.Appendf(nil, `["4","4","lv:phx-F5UgOQKJJCK_shjD","phx_join",{"url":%q,"params":{"_csrf_token":"x","_mounts":0},"session":%q,"static":"s","sticky":false}]`, pageURL, session)
}

// join opens a socket as client ip, joins, and returns the reply.
func join(t *testing.T, tb *testBroker, ip, session string) string {
	t.Helper()
	hdr := http.Header{}
	hdr.Set("X-Forwarded-For", ip)
	c := tb.mustDial(t, "/live/websocket?vsn=2.0.0", hdr)
	defer c.Close()
	c.WriteMessage(websocket.TextMessage, []byte(`["1","1","phoenix","heartbeat",{}]`))
	msg := joinMsg(session)
	c.WriteMessage(websocket.TextMessage, msg)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var last string
	for range 2 {
		_, p, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("read reply: %v", err)
		}
		last = string(p)
	}
	return last
}

func guardBroker(t *testing.T, reason string, fc *fakeCache, threshold int) *testBroker {
	origin := newTestOrigin(t, lvOrigin(reason))
	return newTestBroker(t, origin.url(), func(c *Config) {
		c.TrustForwarded = true // clients told apart by X-Forwarded-For
		c.Guard = &GuardConfig{Cache: fc, Annotator: fc, Threshold: threshold}
	})
}

func syncGuard(t *testing.T, tb *testBroker) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tb.b.guard.sync(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestJoinGuard(t *testing.T) {
	t.Parallel()
	const tokA, tokB = "SFMyNTY.tokenA.sig", "SFMyNTY.tokenB.sig"
	entries := func() map[string][]store.Meta {
		return map[string][]store.Meta{pageURL: {
			{Key: "http://app.test/prices", Variant: "a", Annotations: map[string]string{phxtoken.AnnotationTokens: phxtoken.TokenHash("other") + "," + phxtoken.TokenHash(tokA)}},
			{Key: "http://app.test/prices", Variant: "b", Annotations: map[string]string{phxtoken.AnnotationTokens: phxtoken.TokenHash(tokB)}},
		}}
	}
	tests := []struct {
		name         string
		reason       string   // origin's join error; "" accepts
		clients      []string // X-Forwarded-For per join
		session      string
		entries      map[string][]store.Meta
		wantDisabled []string
		wantAnnot    map[string]string
	}{
		{"accepting origin: nothing changes", "", []string{"198.51.100.1", "198.51.100.2", "198.51.100.3"}, tokA, entries(), nil, map[string]string{}},
		{"stale joins from two clients disable the token's entry", "stale", []string{"198.51.100.1", "198.51.100.2"}, tokA, entries(),
			[]string{"http://app.test/prices|a"}, map[string]string{"http://app.test/prices|a": "2"}},
		{"one client reloading in a loop is below the threshold", "unauthorized", []string{"198.51.100.1", "198.51.100.1", "198.51.100.1"}, tokA, entries(),
			nil, map[string]string{"http://app.test/prices|a": "3"}},
		{"unknown token leaves annotated entries alone", "stale", []string{"198.51.100.1", "198.51.100.2"}, "SFMyNTY.fresh-render", entries(), nil, map[string]string{}},
		{"entries without token annotation are matched by URL", "stale", []string{"198.51.100.1", "198.51.100.2"}, tokA,
			map[string][]store.Meta{pageURL: {{Key: "k", Variant: ""}}}, []string{"k|"}, map[string]string{"k|": "2"}},
		{"other error reasons are not counted", "join crashed", []string{"198.51.100.1", "198.51.100.2"}, tokA, entries(), nil, map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fc := &fakeCache{entries: tt.entries}
			tb := guardBroker(t, tt.reason, fc, 0)
			for _, ip := range tt.clients {
				reply := join(t, tb, ip, tt.session)
				if tt.reason != "" && !json.Valid([]byte(reply)) {
					t.Fatalf("reply %q is not JSON: the broker altered it", reply)
				}
			}
			syncGuard(t, tb)
			disabled, annot := fc.state()
			if fmt.Sprint(disabled) != fmt.Sprint(tt.wantDisabled) {
				t.Errorf("disabled = %q, want %q", disabled, tt.wantDisabled)
			}
			if fmt.Sprint(annot) != fmt.Sprint(tt.wantAnnot) {
				t.Errorf("annotations = %v, want %v", annot, tt.wantAnnot)
			}
		})
	}
}

func TestJoinGuard_MessagesUnchanged(t *testing.T) {
	t.Parallel()
	got := make(chan []byte, 1)
	origin := newTestOrigin(t, func(c *websocket.Conn, _ *http.Request) {
		_, p, _ := c.ReadMessage()
		got <- p
		c.WriteMessage(websocket.TextMessage, []byte(`  ["4","4","lv:x","phx_reply",{"status":"error","response":{"reason":"stale"}}]  `))
	})
	fc := &fakeCache{}
	tb := newTestBroker(t, origin.url(), func(c *Config) { c.Guard = &GuardConfig{Cache: fc, MaxMessage: 64} })
	c := tb.mustDial(t, "/live/websocket", nil)
	big := joinMsg(string(make([]byte, 200))) // over MaxMessage: relayed without a look
	c.WriteMessage(websocket.TextMessage, big)
	if p := <-got; string(p) != string(big) {
		t.Errorf("origin got %d bytes, want the %d sent, unchanged", len(p), len(big))
	}
	_, p, err := c.ReadMessage()
	if err != nil || string(p) != `  ["4","4","lv:x","phx_reply",{"status":"error","response":{"reason":"stale"}}]  ` {
		t.Errorf("client got %q %v, want the reply unchanged", p, err)
	}
	if v := val(tb.b.m.joinFailures); v != 0 {
		t.Errorf("join failures = %v, want 0 (the join was too big to inspect)", v)
	}
}

func TestParseMessage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in           string
		ok           bool
		topic, event string
	}{
		{`["4","4","lv:phx-1","phx_join",{"url":"u"}]`, true, "lv:phx-1", "phx_join"},
		{`[null,"5","phoenix","heartbeat",{}]`, true, "phoenix", "heartbeat"},
		{`{"topic":"lv:1","event":"phx_reply","payload":{},"ref":"1"}`, true, "lv:1", "phx_reply"},
		{`["4","4","lv:phx-1","phx_join"]`, false, "", ""},
		{`[1,2,3,4,5]`, false, "", ""},
		{`nonsense`, false, "", ""},
		{``, false, "", ""},
	}
	for _, tt := range tests {
		m, ok := parseMessage([]byte(tt.in))
		if ok != tt.ok || m.Topic != tt.topic || m.Event != tt.event {
			t.Errorf("parseMessage(%q) = %q %q %v, want %q %q %v", tt.in, m.Topic, m.Event, ok, tt.topic, tt.event, tt.ok)
		}
	}
}

func FuzzParseMessage(f *testing.F) {
	f.Add([]byte(`["4","4","lv:phx-1","phx_join",{"url":"u","session":"s"}]`))
	f.Add([]byte(`["4","4","lv:phx-1","phx_reply",{"status":"error","response":{"reason":"stale"}}]`))
	f.Add([]byte(`{"topic":"lv:1","event":"phx_reply","payload":{},"ref":"1"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, ok := parseMessage(data)
		if ok && (m.Topic == "" || m.Event == "") {
			t.Fatalf("parseMessage(%q) ok with empty topic/event", data)
		}
		// The watcher never panics on any pair of messages.
		g := &guard{cfg: GuardConfig{Reasons: []string{"stale"}, Window: 4, MaxMessage: 1 << 10}, q: make(chan joinFailure, 1), m: mustMetrics(), log: quietLogger()}
		w := &joinWatch{g: g}
		w.inspect(data, dirToOrigin)
		w.inspect(data, dirToClient)
	})
}

func mustMetrics() *metrics {
	m, _ := newMetrics(nil)
	return m
}

// TestJoinGuard_ForgedForwardedFor checks that one visitor cannot pass for
// many "distinct clients" (and so disable a cached page by itself) by
// making up the first X-Forwarded-For entries: behind a trusted proxy that
// appends, only the last entry is the proxy's own word.
func TestJoinGuard_ForgedForwardedFor(t *testing.T) {
	t.Parallel()
	fc := &fakeCache{entries: map[string][]store.Meta{pageURL: {{Key: "http://app.test/prices"}}}}
	tb := guardBroker(t, "stale", fc, 2)
	join(t, tb, "198.51.100.1, 203.0.113.5", "SFMyNTY.forged.sig")
	join(t, tb, "198.51.100.2, 203.0.113.5", "SFMyNTY.forged.sig")
	syncGuard(t, tb)
	if disabled, _ := fc.state(); len(disabled) != 0 {
		t.Fatalf("disabled = %v after two joins from one client with forged X-Forwarded-For, want none", disabled)
	}
	join(t, tb, "198.51.100.3, 203.0.113.6", "SFMyNTY.forged.sig")
	syncGuard(t, tb)
	if disabled, _ := fc.state(); len(disabled) != 1 {
		t.Errorf("disabled = %v after joins from two clients, want the entry", disabled)
	}
}

// TestJoinGuard_LintedPageWithoutTokens checks that a visitor cannot
// disable a cached page that has no LiveView tokens (a stylesheet, an
// article) by sending made-up joins naming its URL: the lint saw the page
// (liveview.tokens is present, empty), so no join can have come from it.
func TestJoinGuard_LintedPageWithoutTokens(t *testing.T) {
	t.Parallel()
	fc := &fakeCache{entries: map[string][]store.Meta{pageURL: {
		{Key: "http://app.test/prices", Annotations: map[string]string{phxtoken.AnnotationTokens: ""}},
	}}}
	tb := guardBroker(t, "stale", fc, 2)
	join(t, tb, "198.51.100.1", "SFMyNTY.forged.sig")
	join(t, tb, "198.51.100.2", "")
	syncGuard(t, tb)
	if disabled, annotated := fc.state(); len(disabled) != 0 || len(annotated) != 0 {
		t.Errorf("disabled = %v, annotated = %v after made-up joins for a page without tokens, want none", disabled, annotated)
	}
}

// TestJoinGuard_RefilledEntryDisabledAgain: after the guard disabled an
// entry, the proxy refills it with a new render (new tokens) under the
// same key and variant; when that render cannot go live either, it must be
// disabled again, not taken for the one disabled before.
func TestJoinGuard_RefilledEntryDisabledAgain(t *testing.T) {
	t.Parallel()
	const tokA, tokC = "SFMyNTY.renderA.sig", "SFMyNTY.renderC.sig"
	render := func(tok string) map[string][]store.Meta {
		return map[string][]store.Meta{pageURL: {{Key: "http://app.test/prices", Annotations: map[string]string{phxtoken.AnnotationTokens: phxtoken.TokenHash(tok)}}}}
	}
	fc := &fakeCache{entries: render(tokA)}
	tb := guardBroker(t, "stale", fc, 2)
	join(t, tb, "198.51.100.1", tokA)
	join(t, tb, "198.51.100.2", tokA)
	syncGuard(t, tb)
	if disabled, _ := fc.state(); len(disabled) != 1 {
		t.Fatalf("disabled = %v after two clients failed on render A, want it once", disabled)
	}
	fc.mu.Lock()
	fc.entries = render(tokC) // the refill
	fc.mu.Unlock()
	join(t, tb, "198.51.100.1", tokC)
	join(t, tb, "198.51.100.2", tokC)
	syncGuard(t, tb)
	disabled, annot := fc.state()
	if len(disabled) != 2 {
		t.Errorf("disabled = %v after two clients failed on the refilled render C, want a second disable", disabled)
	}
	if got := annot["http://app.test/prices|"]; got != "2" {
		t.Errorf("%s of render C = %q, want 2 (counted afresh)", AnnotationJoinFailures, got)
	}
}

// TestJoinWatch_EscapedEventNames: the watcher skips the decode of a
// message whose event name is not there literally, but a join and a reply
// written with JSON escapes (which decode to the same event) are still
// seen: the skip must not change what is counted.
func TestJoinWatch_EscapedEventNames(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name        string
		join, reply string
		want        bool
	}{
		{"plain", `["4","4","lv:phx-1","phx_join",{"url":"http://app.test/p","session":"s"}]`,
			`["4","4","lv:phx-1","phx_reply",{"status":"error","response":{"reason":"stale"}}]`, true},
		{"escaped", `["4","4","lv:phx-1","phx\u005fjoin",{"url":"http://app.test/p","session":"s"}]`,
			`["4","4","lv:phx-1","phx\u005Freply",{"status":"error","response":{"reason":"stale"}}]`, true},
		{"object form", `{"topic":"lv:phx-1","event":"phx_join","payload":{"url":"http://app.test/p"},"ref":"4","join_ref":"4"}`,
			`{"topic":"lv:phx-1","event":"phx_reply","payload":{"status":"error","response":{"reason":"stale"}},"ref":"4"}`, true},
		{"ok reply", `["4","4","lv:phx-1","phx_join",{"url":"http://app.test/p"}]`,
			`["4","4","lv:phx-1","phx_reply",{"status":"ok","response":{}}]`, false},
		{"not a join", `["4","4","lv:phx-1","event",{"url":"http://app.test/p","note":"phx_reply"}]`,
			`["4","4","lv:phx-1","phx_reply",{"status":"error","response":{"reason":"stale"}}]`, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := &guard{cfg: GuardConfig{Reasons: []string{"stale"}, Window: 16, MaxMessage: 1 << 10}, q: make(chan joinFailure, 1), m: mustMetrics(), log: quietLogger()}
			w := &joinWatch{g: g, client: "c"}
			w.inspect([]byte(tt.join), dirToOrigin)
			w.inspect([]byte(tt.reply), dirToClient)
			var got bool
			select {
			case f := <-g.q:
				got = true
				if f.url != "http://app.test/p" || f.reason != "stale" {
					t.Errorf("failure = %+v, want url http://app.test/p, reason stale", f)
				}
			default:
			}
			if got != tt.want {
				t.Errorf("join failure reported = %v, want %v", got, tt.want)
			}
			if w.toOrigin != 1 || w.toClient != 1 {
				t.Errorf("window counts = %d/%d, want 1/1 (every inspected message counts)", w.toOrigin, w.toClient)
			}
		})
	}
}

// BenchmarkJoinWatchCopy is the guard's cost per message inside its
// window for a LiveView event and its reply (neither a join): the copy
// through the watcher and the inspection.
func BenchmarkJoinWatchCopy(b *testing.B) {
	g, err := newGuard(GuardConfig{Cache: &fakeCache{}}, mustMetrics(), quietLogger())
	if err != nil {
		b.Fatal(err)
	}
	defer g.close()
	event := []byte(`["4","12","lv:phx-F1","event",{"type":"click","event":"inc","value":{"pad":"` +
		strings.Repeat("x", 176) + `"}}]`)
	reply := []byte(`["4","12","lv:phx-F1","phx_reply",{"status":"ok","response":{"diff":{"0":"` +
		strings.Repeat("7", 160) + `"}}}]`)
	w := &joinWatch{g: g, client: "c"}
	var r bytes.Reader
	b.ReportAllocs()
	for b.Loop() {
		w.toOrigin, w.toClient = 0, 0
		r.Reset(event)
		if _, err := w.copy(io.Discard, &r, dirToOrigin); err != nil {
			b.Fatal(err)
		}
		r.Reset(reply)
		if _, err := w.copy(io.Discard, &r, dirToClient); err != nil {
			b.Fatal(err)
		}
	}
}
