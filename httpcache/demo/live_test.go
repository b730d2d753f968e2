package demo

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

var sessionAttr = regexp.MustCompile(`data-phx-session="([^"]+)"[^>]*id="([^"]+)"`)

// pageToken fetches path from the demo origin and returns its session token
// and view id.
func pageToken(t *testing.T, h http.Handler, path string) (token, id string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	m := sessionAttr.FindStringSubmatch(rec.Body.String())
	if m == nil {
		t.Fatalf("GET %s: no data-phx-session in %q", path, rec.Body.String())
	}
	return m[1], m[2]
}

func dialLive(t *testing.T, srv *httptest.Server, cookie string) *websocket.Conn {
	t.Helper()
	hdr := http.Header{}
	if cookie != "" {
		hdr.Set("Cookie", cookie)
	}
	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/live/websocket?vsn=2.0.0", hdr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func readMsg(t *testing.T, c *websocket.Conn) []json.RawMessage {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, p, err := c.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	var m []json.RawMessage
	if err := json.Unmarshal(p, &m); err != nil || len(m) != 5 {
		t.Fatalf("message %q is not a v2 array", p)
	}
	return m
}

func TestLiveHandler_Heartbeat(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(LiveHandler(LiveConfig{}))
	defer srv.Close()
	c := dialLive(t, srv, "")
	c.WriteMessage(websocket.TextMessage, []byte(`[null,"7","phoenix","heartbeat",{}]`))
	m := readMsg(t, c)
	if got := fmt.Sprintf("%s %s %s %s", m[0], m[1], m[2], m[3]); got != `null "7" "phoenix" "phx_reply"` {
		t.Errorf("heartbeat reply = %s, want null \"7\" \"phoenix\" \"phx_reply\"", got)
	}
	if !strings.Contains(string(m[4]), `"status":"ok"`) {
		t.Errorf("heartbeat payload = %s, want status ok", m[4])
	}
}

func TestLiveHandler_Join(t *testing.T) {
	t.Parallel()
	origin := New(Config{})
	now := time.Now()
	tests := []struct {
		name       string
		path       string
		cookie     string
		clock      time.Time
		tamper     bool
		wantStatus string
		wantReason string
	}{
		{"public page joins", "/", "", now, false, "ok", ""},
		{"expired token is stale", "/", "", now.Add(30 * 24 * time.Hour), false, "error", "stale"},
		{"tampered token is unauthorized", "/", "", now, true, "error", "unauthorized"},
		{"per-user session without cookie is stale (the seed's failure)", "/account", "", now, false, "error", "stale"},
		{"per-user session with its cookie joins", "/account", "_demo_key=visitor-1", now, false, "ok", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, id := pageToken(t, origin, tt.path)
			if tt.tamper {
				tok = tok[:len(tok)-2] + "AA"
			}
			clock := tt.clock
			srv := httptest.NewServer(LiveHandler(LiveConfig{Tick: 20 * time.Millisecond, Now: func() time.Time { return clock }}))
			defer srv.Close()
			c := dialLive(t, srv, tt.cookie)
			join := fmt.Sprintf(`["3","3","lv:%s","phx_join",{"url":"http://x/","params":{},"session":%q,"static":null}]`, id, tok)
			c.WriteMessage(websocket.TextMessage, []byte(join))
			m := readMsg(t, c)
			var p struct {
				Status   string `json:"status"`
				Response struct {
					Reason   string         `json:"reason"`
					Rendered map[string]any `json:"rendered"`
				} `json:"response"`
			}
			json.Unmarshal(m[4], &p)
			if string(m[1]) != `"3"` || string(m[3]) != `"phx_reply"` {
				t.Fatalf("reply = %s %s, want ref \"3\" phx_reply", m[1], m[3])
			}
			if p.Status != tt.wantStatus || p.Response.Reason != tt.wantReason {
				t.Fatalf("join reply = %s/%q, want %s/%q", p.Status, p.Response.Reason, tt.wantStatus, tt.wantReason)
			}
			if p.Status != "ok" {
				return
			}
			if _, ok := p.Response.Rendered["s"]; !ok {
				t.Errorf("rendered = %v, want statics \"s\"", p.Response.Rendered)
			}
			d := readMsg(t, c) // the ticking price
			if string(d[3]) != `"diff"` || string(d[2]) != fmt.Sprintf("%q", "lv:"+id) || !strings.Contains(string(d[4]), `"1"`) {
				t.Errorf("push = %s %s %s, want a diff of dynamic 1 on lv:%s", d[2], d[3], d[4], id)
			}
		})
	}
}

func TestLiveHandler_Assets(t *testing.T) {
	t.Parallel()
	h := LiveHandler(LiveConfig{NodeModules: t.TempDir()}) // no packages there
	for _, p := range []string{"/assets/app.js", "/assets/phoenix.js", "/assets/phoenix_live_view.js"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", p, nil))
		body, _ := io.ReadAll(rec.Body)
		if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/javascript") {
			t.Errorf("GET %s = %d %q, want 200 JavaScript", p, rec.Code, rec.Header().Get("Content-Type"))
		}
		if p == "/assets/app.js" && !strings.Contains(string(body), "LiveSocket") {
			t.Errorf("app.js does not start a LiveSocket")
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/live/websocket", nil))
	if rec.Code != http.StatusBadRequest {
		t.Errorf("plain GET /live/websocket = %d, want 400", rec.Code)
	}
}
