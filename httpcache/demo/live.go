package demo

// The demo origin's live socket: just enough of the Phoenix channel protocol
// (serializer v2, JSON arrays [join_ref, ref, topic, event, payload]) for the
// real phoenix and phoenix_live_view JavaScript clients to join a LiveView,
// keep the socket alive with heartbeats, and receive a diff every tick (the
// ticking price aside of the seed). It verifies the page's data-phx-session
// token like LiveView does and refuses a join the way LiveView does, so the
// join guard can be exercised against it.

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/firstrender/firstrender/httpcache/liveview/erlterm"
	"github.com/firstrender/firstrender/httpcache/liveview/phxtoken"
	"github.com/gorilla/websocket"
)

// LiveScripts is the HTML the demo pages put before </body> to go live:
// the phoenix and phoenix_live_view clients (served from the npm packages
// when installed) and a small app.js that starts a LiveSocket on /live.
// Without the npm packages, app.js falls back to a tiny built-in client
// that speaks the same protocol.
const LiveScripts = `<script defer src="/assets/phoenix.js"></script>
<script defer src="/assets/phoenix_live_view.js"></script>
<script defer src="/assets/app.js"></script>
`

// LiveConfig configures [LiveHandler]. The zero value is ready to use.
type LiveConfig struct {
	// SecretKeyBase and SigningSalt verify data-phx-session tokens. If
	// empty, DefaultSecretKeyBase and DefaultSigningSalt (as the pages).
	SecretKeyBase, SigningSalt string

	// MaxAge is the max age LiveView verifies a session token with; an
	// older token is refused with reason "stale". If zero,
	// phxtoken.DefaultLiveViewMaxAge.
	MaxAge time.Duration

	// Tick is how often the price diff is pushed. If zero, 1s; negative
	// pushes none.
	Tick time.Duration

	// NodeModules is a node_modules directory holding the phoenix and
	// phoenix_live_view npm packages. If empty, $FIRSTRENDER_NODE_MODULES,
	// else ./node_modules when it has them; if they are not found, app.js
	// runs the tiny built-in client.
	NodeModules string

	// Now is the clock (token expiry). If nil, time.Now.
	Now func() time.Time

	// Logger receives debug lines. If nil, nothing is logged.
	Logger *slog.Logger

	// session, when set (the phx.new mode), is the socket's
	// connect_info session store: joins without a loaded session fail.
	session *phxSession
}

type live struct {
	cfg    LiveConfig
	signer *phxtoken.Signer
	up     websocket.Upgrader
	assets map[string]string // /assets/x.js → file path; "version" → phoenix_live_view's
}

// LiveHandler returns the demo's live socket and its client assets:
// /live/websocket (any path ending in /websocket) answers the Phoenix channel
// protocol, and /assets/phoenix.js, /assets/phoenix_live_view.js and
// /assets/app.js serve the client. The server mounts it on both. It accepts
// any Origin: the broker in front checks it. Safe for concurrent use.
func LiveHandler(cfg LiveConfig) http.Handler {
	if cfg.SecretKeyBase == "" {
		cfg.SecretKeyBase = DefaultSecretKeyBase
	}
	if cfg.SigningSalt == "" {
		cfg.SigningSalt = DefaultSigningSalt
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = phxtoken.DefaultLiveViewMaxAge
	}
	if cfg.Tick == 0 {
		cfg.Tick = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	l := &live{cfg: cfg, assets: findAssets(cfg.NodeModules)}
	l.signer, _ = phxtoken.NewSigner(cfg.SecretKeyBase, cfg.SigningSalt)
	l.up = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	return l
}

// findAssets locates the npm packages' browser builds.
func findAssets(dir string) map[string]string {
	var dirs []string
	if dir != "" {
		dirs = []string{dir}
	} else {
		if env := os.Getenv("FIRSTRENDER_NODE_MODULES"); env != "" {
			dirs = append(dirs, env)
		}
		dirs = append(dirs, "node_modules")
	}
	for _, d := range dirs {
		ph := filepath.Join(d, "phoenix", "priv", "static", "phoenix.js")
		lv := filepath.Join(d, "phoenix_live_view", "priv", "static", "phoenix_live_view.js")
		if fileExists(ph) && fileExists(lv) {
			m := map[string]string{"/assets/phoenix.js": ph, "/assets/phoenix_live_view.js": lv}
			var pkg struct {
				Version string `json:"version"`
			}
			if b, err := os.ReadFile(filepath.Join(d, "phoenix_live_view", "package.json")); err == nil && json.Unmarshal(b, &pkg) == nil {
				m["version"] = pkg.Version
			}
			return m
		}
	}
	return nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

func (l *live) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch p := r.URL.Path; {
	case strings.HasSuffix(p, "/websocket"):
		l.socket(w, r)
	case p == "/assets/app.js":
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=300")
		fmt.Fprint(w, appJS)
	case p == "/assets/phoenix.js" || p == "/assets/phoenix_live_view.js":
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=300")
		if f, ok := l.assets[p]; ok {
			http.ServeFile(w, r, f)
			return
		}
		fmt.Fprintf(w, "/* %s: npm package not installed; app.js uses firstrender's tiny client */\n", p)
	default:
		http.NotFound(w, r)
	}
}

// conn is one client socket. Writes are serialized by mu (the ticker and
// the read loop both write).
type conn struct {
	l      *live
	c      *websocket.Conn
	r      *http.Request
	mu     sync.Mutex
	joined map[string]chan struct{} // topic → stop ticker
	// session is connect_info's session (phx.new mode): nil when the
	// handshake did not load one.
	session erlterm.Map
}

func (l *live) socket(w http.ResponseWriter, r *http.Request) {
	if !websocket.IsWebSocketUpgrade(r) {
		http.Error(w, "WebSocket upgrade required", http.StatusBadRequest)
		return
	}
	if vsn := r.URL.Query().Get("vsn"); vsn != "" && !strings.HasPrefix(vsn, "2.") {
		http.Error(w, "only the v2 JSON serializer is supported", http.StatusBadRequest)
		return
	}
	c, err := l.up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	cn := &conn{l: l, c: c, r: r, joined: map[string]chan struct{}{}}
	if l.cfg.session != nil {
		cn.session = l.cfg.session.connectSession(r)
	}
	defer func() {
		cn.mu.Lock()
		for t, stop := range cn.joined {
			close(stop)
			delete(cn.joined, t)
		}
		cn.mu.Unlock()
		c.Close()
	}()
	c.SetReadLimit(1 << 20)
	for {
		// Phoenix clients send a heartbeat every 30 s.
		c.SetReadDeadline(time.Now().Add(90 * time.Second))
		mt, data, err := c.ReadMessage()
		if err != nil {
			return
		}
		if mt != websocket.TextMessage {
			continue
		}
		var m []json.RawMessage
		if json.Unmarshal(data, &m) != nil || len(m) != 5 {
			continue
		}
		var topic, event string
		if json.Unmarshal(m[2], &topic) != nil || json.Unmarshal(m[3], &event) != nil {
			continue
		}
		joinRef, ref, payload := m[0], m[1], m[4]
		switch {
		case topic == "phoenix" && event == "heartbeat":
			cn.reply(joinRef, ref, topic, "ok", map[string]any{})
		case event == "phx_join" && strings.HasPrefix(topic, "lv:"):
			cn.join(joinRef, ref, topic, payload)
		case event == "phx_join":
			cn.reply(joinRef, ref, topic, "error", map[string]any{"reason": "unmatched topic"})
		case event == "phx_leave":
			cn.leave(topic)
			cn.reply(joinRef, ref, topic, "ok", map[string]any{})
		default: // events from the page: acknowledged, nothing changes
			cn.reply(joinRef, ref, topic, "ok", map[string]any{"diff": map[string]any{}})
		}
	}
}

func (cn *conn) send(joinRef, ref json.RawMessage, topic, event string, payload any) error {
	t, _ := json.Marshal(topic)
	e, _ := json.Marshal(event)
	p, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	if ref == nil {
		ref = json.RawMessage("null")
	}
	if joinRef == nil {
		joinRef = json.RawMessage("null")
	}
	msg := fmt.Appendf(nil, "[%s,%s,%s,%s,%s]", joinRef, ref, t, e, p)
	cn.mu.Lock()
	defer cn.mu.Unlock()
	cn.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return cn.c.WriteMessage(websocket.TextMessage, msg)
}

func (cn *conn) reply(joinRef, ref json.RawMessage, topic, status string, response any) {
	cn.send(joinRef, ref, topic, "phx_reply", map[string]any{"status": status, "response": response})
}

// joinReason returns "" when LiveView would accept the join, else the
// reason it would refuse it with.
func (cn *conn) joinReason(session string) string {
	l := cn.l
	if l.signer == nil || l.signer.Verify(session) != phxtoken.Valid {
		return "unauthorized" // LiveView: a session token it cannot verify
	}
	tok, err := phxtoken.ParseToken(session)
	if err != nil {
		return "unauthorized"
	}
	if exp := tok.ExpiresAfter(l.cfg.MaxAge); !exp.IsZero() && !l.cfg.Now().Before(exp) {
		return "stale" // the cached page outlived its token
	}
	if l.cfg.session != nil && cn.session == nil {
		// connect_info: [session: @session_options] without a session:
		// LiveView logs "LiveView session was misconfigured or the user
		// token is outdated" and answers stale.
		return "stale"
	}
	if sess, ok := phxtoken.UserSession(tok.Data); ok && len(sess) > 0 {
		// A per-user LiveView session needs the visitor's session cookie
		// (connect_info session); without it Phoenix logs "LiveView session
		// was misconfigured or the user token is outdated" and answers stale.
		if _, err := cn.r.Cookie(sessionCookie); err != nil {
			return "stale"
		}
	}
	return ""
}

func (cn *conn) join(joinRef, ref json.RawMessage, topic string, payload json.RawMessage) {
	l := cn.l
	var p struct {
		URL      string `json:"url"`
		Redirect string `json:"redirect"`
		Session  string `json:"session"`
	}
	if json.Unmarshal(payload, &p) != nil || p.Session == "" {
		cn.reply(joinRef, ref, topic, "error", map[string]any{"reason": "unauthorized"})
		return
	}
	if reason := cn.joinReason(p.Session); reason != "" {
		l.cfg.Logger.Debug("demo: live join refused", "topic", topic, "reason", reason, "url", p.URL)
		cn.reply(joinRef, ref, topic, "error", map[string]any{"reason": reason})
		return
	}
	now := l.cfg.Now()
	rendered := map[string]any{
		"0": "<h1>Firstrender Widget</h1>\n<p>This page went live over the Origin-checked socket at /live/websocket.</p>\n",
		"1": strconv.FormatFloat(price(now), 'f', 2, 64),
		"2": now.UTC().Format(time.RFC3339),
		"s": []string{"", `<aside id="price" class="price">Price: <span id="price-value">`,
			"</span> EUR (live)</aside>\n<p class=\"live\" id=\"live-since\">Live since ", ".</p>\n"},
	}
	l.cfg.Logger.Debug("demo: live join", "topic", topic, "url", p.URL)
	cn.mu.Lock()
	if old, ok := cn.joined[topic]; ok { // a rejoin replaces the old channel
		close(old)
	}
	stop := make(chan struct{})
	cn.joined[topic] = stop
	cn.mu.Unlock()
	if err := cn.replyRendered(joinRef, ref, topic, rendered); err != nil {
		return
	}
	if l.cfg.Tick > 0 {
		go cn.tick(joinRef, topic, stop)
	}
}

func (cn *conn) replyRendered(joinRef, ref json.RawMessage, topic string, rendered map[string]any) error {
	resp := map[string]any{"rendered": rendered}
	if v := cn.l.assets["version"]; v != "" {
		// The client compares it with its own and logs a mismatch.
		resp["liveview_version"] = v
	}
	return cn.send(joinRef, ref, topic, "phx_reply", map[string]any{"status": "ok", "response": resp})
}

func (cn *conn) leave(topic string) {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if stop, ok := cn.joined[topic]; ok {
		close(stop)
		delete(cn.joined, topic)
	}
}

// tick pushes the price diff until the channel is left or the socket ends.
func (cn *conn) tick(joinRef json.RawMessage, topic string, stop chan struct{}) {
	t := time.NewTicker(cn.l.cfg.Tick)
	defer t.Stop()
	var n int64
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			n++
			// The price moves every tick, so each diff shows on the page.
			v := price(cn.l.cfg.Now()) + float64(n%100)/100
			if cn.send(joinRef, nil, topic, "diff", map[string]any{"1": strconv.FormatFloat(v, 'f', 2, 64)}) != nil {
				return
			}
		}
	}
}

// appJS starts the LiveView client when the npm packages were served, else
// a tiny client: join every data-phx-main view over /live/websocket, answer
// heartbeats, apply the price diffs, and mark the view phx-connected, like
// the real one does.
const appJS = `(function () {
  "use strict";
  var meta = document.querySelector("meta[name='csrf-token']");
  var params = meta ? {_csrf_token: meta.getAttribute("content")} : {};
  if (window.Phoenix && window.LiveView && window.LiveView.LiveSocket) {
    var liveSocket = new window.LiveView.LiveSocket("/live", window.Phoenix.Socket, {params: params});
    liveSocket.connect();
    window.liveSocket = liveSocket;
    window.firstrenderClient = "phoenix_live_view";
    return;
  }
  window.firstrenderClient = "tiny";
  var el = document.querySelector("[data-phx-main]");
  if (!el) { return; }
  var q = new URLSearchParams(params); q.set("vsn", "2.0.0");
  var proto = location.protocol === "https:" ? "wss:" : "ws:";
  var ws = new WebSocket(proto + "//" + location.host + "/live/websocket?" + q.toString());
  var topic = "lv:" + el.id, ref = 0, statics = null, dyn = {};
  function send(m) { ws.send(JSON.stringify(m)); }
  function render() {
    var out = statics[0];
    for (var i = 1; i < statics.length; i++) { out += (dyn[String(i - 1)] || "") + statics[i]; }
    el.innerHTML = out;
  }
  ws.onopen = function () {
    ref++;
    send([String(ref), String(ref), topic, "phx_join", {url: location.href, params: params,
      session: el.getAttribute("data-phx-session"), static: el.getAttribute("data-phx-static")}]);
    setInterval(function () { ref++; send([null, String(ref), "phoenix", "heartbeat", {}]); }, 30000);
  };
  ws.onmessage = function (e) {
    var m = JSON.parse(e.data), ev = m[3], p = m[4];
    if (m[2] !== topic) { return; }
    if (ev === "phx_reply" && p.status === "ok" && p.response.rendered) {
      var r = p.response.rendered; statics = r.s;
      for (var k in r) { if (k !== "s") { dyn[k] = r[k]; } }
      render();
      el.classList.remove("phx-loading"); el.classList.add("phx-connected");
    } else if (ev === "phx_reply" && p.status === "error") {
      el.classList.add("phx-error");
    } else if (ev === "diff" && statics) {
      for (var d in p) { dyn[d] = p[d]; }
      render();
    }
  };
  ws.onclose = function () { el.classList.remove("phx-connected"); el.classList.add("phx-error"); };
})();
`
