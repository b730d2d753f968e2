package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/firstrender/firstrender/httpcache"
	"github.com/firstrender/firstrender/httpcache/demo"
	"github.com/firstrender/firstrender/httpcache/livesocket"
	"github.com/firstrender/firstrender/httpcache/liveview/phxtoken"
	"github.com/firstrender/firstrender/store"
	"github.com/gorilla/websocket"
)

// joinThrough opens a socket through the broker as client ip, joins the
// page's LiveView and returns the join reply's status and reason.
func joinThrough(t *testing.T, s *stack, p page, ip string) (status, reason string) {
	t.Helper()
	hdr := http.Header{}
	hdr.Set("Origin", s.front.URL)
	hdr.Set("X-Forwarded-For", ip)
	ws := "ws" + strings.TrimPrefix(s.front.URL, "http") + "/live/websocket?vsn=2.0.0"
	c, resp, err := websocket.DefaultDialer.Dial(ws, hdr)
	if err != nil {
		t.Fatalf("dial through broker: %v (status %v)", err, resp)
	}
	defer c.Close()
	join := fmt.Sprintf(`["4","4","lv:%s","phx_join",{"url":%q,"params":{"_mounts":0},"session":%q,"static":null}]`, p.id, p.url, p.token)
	c.WriteMessage(websocket.TextMessage, []byte(join))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, data, err := c.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	var m []json.RawMessage
	json.Unmarshal(data, &m)
	var r struct {
		Status   string `json:"status"`
		Response struct {
			Reason string `json:"reason"`
		} `json:"response"`
	}
	if len(m) == 5 {
		json.Unmarshal(m[4], &r)
	}
	return r.Status, r.Response.Reason
}

func TestJoinGuard_RealProxy(t *testing.T) {
	t.Parallel()
	// The refusing origin's clock is a month ahead: every token in a page is
	// past LiveView's max age, so every join is answered "stale" — a cached
	// first render that cannot go live.
	monthAhead := func() time.Time { return time.Now().Add(30 * 24 * time.Hour) }
	tests := []struct {
		name       string
		live       func() time.Time
		wantStatus string
		wantServed bool // after two clients failed/joined: still served from the store?
		// wantFailures is livesocket.AnnotationJoinFailures after two clients ("" absent).
		wantFailures string
	}{
		{"origin refusing joins: entry stops being served after the threshold", monthAhead, "error", false, "2"},
		{"origin accepting joins: nothing changes", nil, "ok", true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := stackOpts{threshold: 2}
			if tt.live != nil {
				opts.live = demo.LiveConfig{Now: tt.live}
			}
			s := newStack(t, opts)
			p := s.cachedPage(t, "/")
			if p.token == "" {
				t.Fatal("cached page has no data-phx-session")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			metas, err := s.proxy.Entries(ctx, p.url)
			if err != nil || len(metas) != 1 {
				t.Fatalf("Entries(%s) = %d entries, %v; want 1", p.url, len(metas), err)
			}
			// The guard must find the entry by the join's session token, not
			// by the URL fallback (meant for pages the lint never saw).
			if toks := metas[0].Annotations[phxtoken.AnnotationTokens]; !slices.Contains(strings.Split(toks, ","), phxtoken.TokenHash(p.token)) {
				t.Fatalf("entry's %s = %q does not list the page's session token %s: the guard would fall back to the URL",
					phxtoken.AnnotationTokens, toks, phxtoken.TokenHash(p.token))
			}

			// Client 1 fails (or joins): below the threshold the page is still served.
			if st, reason := joinThrough(t, s, p, "198.51.100.1"); st != tt.wantStatus {
				t.Fatalf("client 1 join = %s/%s, want %s", st, reason, tt.wantStatus)
			}
			if err := s.broker.FlushGuard(ctx); err != nil {
				t.Fatal(err)
			}
			if again := s.get(t, "/"); !again.hit() || again.render != p.render {
				t.Fatalf("after 1 client: Cache-Status %s render #%s, want a hit of render #%s", again.status, again.render, p.render)
			}
			// Client 2: the threshold.
			if st, reason := joinThrough(t, s, p, "198.51.100.2"); st != tt.wantStatus {
				t.Fatalf("client 2 join = %s/%s, want %s", st, reason, tt.wantStatus)
			}
			if err := s.broker.FlushGuard(ctx); err != nil {
				t.Fatal(err)
			}
			// The entry as the guard left it, before the GET below refetches.
			pg, err := s.store.Scan(ctx, store.ScanOptions{Limit: 10})
			if err != nil || len(pg.Entries) != 1 {
				t.Fatalf("store Scan = %d entries, %v; want 1", len(pg.Entries), err)
			}
			ann := pg.Entries[0].Annotations
			if got := ann[livesocket.AnnotationJoinFailures]; got != tt.wantFailures {
				t.Errorf("after 2 clients: %s = %q, want %q", livesocket.AnnotationJoinFailures, got, tt.wantFailures)
			}
			if _, disabled := ann[httpcache.AnnotationDisabled]; disabled == tt.wantServed {
				t.Errorf("after 2 clients: %s present = %v, want %v (annotations %v)", httpcache.AnnotationDisabled, disabled, !tt.wantServed, ann)
			}
			after := s.get(t, "/")
			served := after.hit() && after.render == p.render
			if served != tt.wantServed {
				t.Errorf("after 2 clients: Cache-Status %s render #%s (cached render #%s): served from store = %v, want %v",
					after.status, after.render, p.render, served, tt.wantServed)
			}
		})
	}
}
