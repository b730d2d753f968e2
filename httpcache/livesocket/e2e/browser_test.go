package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// The npm packages the browser test loads: the real JavaScript clients.
const (
	phoenixVersion   = "1.8.16"
	liveViewVersion  = "1.2.12"
	chromiumPath     = "/usr/bin/chromium"
	browserTestLimit = 60 * time.Second
)

// needed fails under CI=true (the CI installs chromium and has npm) and
// skips locally.
func needed(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// npmModules installs the phoenix and phoenix_live_view npm packages into a
// cache directory (once; not in the repository) and returns its
// node_modules.
func npmModules(t *testing.T) string {
	t.Helper()
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	dir := filepath.Join(base, "firstrender-test", "npm-phoenix-"+phoenixVersion+"-lv-"+liveViewVersion)
	nm := filepath.Join(dir, "node_modules")
	if _, err := os.Stat(filepath.Join(nm, "phoenix_live_view", "priv", "static", "phoenix_live_view.js")); err == nil {
		return nm
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		needed(t, "npm not found: %v", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "package.json"), []byte(`{"name":"firstrender-e2e","private":true}`), 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "install", "--no-audit", "--no-fund", "--no-save", "--prefix", dir,
		"phoenix@"+phoenixVersion, "phoenix_live_view@"+liveViewVersion)
	if out, err := cmd.CombinedOutput(); err != nil {
		needed(t, "npm install: %v\n%s", err, out)
	}
	return nm
}

// cdp is a minimal Chrome DevTools Protocol client (flattened sessions).
type cdp struct {
	c       *websocket.Conn
	wmu     sync.Mutex
	id      atomic.Int64
	mu      sync.Mutex
	pending map[int64]chan cdpReply
}

type cdpReply struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error"`
}

func startChromium(t *testing.T) *cdp {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		needed(t, "chromium not installed (%v): apt-get install -y chromium", err)
	}
	// Not t.TempDir: chromium's helper processes may still write there
	// while the test's cleanup removes it.
	profile, err := os.MkdirTemp("", "firstrender-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(chromiumPath, "--headless", "--no-sandbox", "--disable-gpu",
		"--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check", "--remote-debugging-port=0",
		"--user-data-dir="+profile, "about:blank")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // one group: chromium and its helpers
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(profile)
		needed(t, "start chromium: %v", err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // the group we started, by its id
		cmd.Wait()
		os.RemoveAll(profile)
	})
	wsURL := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		re := regexp.MustCompile(`DevTools listening on (ws://\S+)`)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				wsURL <- m[1]
			}
		}
	}()
	var u string
	select {
	case u = <-wsURL:
	case <-time.After(30 * time.Second):
		t.Fatal("chromium did not print its DevTools URL within 30s")
	}
	c, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatalf("dial DevTools: %v", err)
	}
	c.SetReadLimit(64 << 20)
	b := &cdp{c: c, pending: map[int64]chan cdpReply{}}
	go b.readLoop()
	t.Cleanup(func() { c.Close() })
	return b
}

func (b *cdp) readLoop() {
	for {
		_, data, err := b.c.ReadMessage()
		if err != nil {
			b.mu.Lock()
			for id, ch := range b.pending {
				close(ch)
				delete(b.pending, id)
			}
			b.mu.Unlock()
			return
		}
		var m struct {
			ID int64 `json:"id"`
			cdpReply
		}
		if json.Unmarshal(data, &m) != nil || m.ID == 0 {
			continue // an event
		}
		b.mu.Lock()
		ch := b.pending[m.ID]
		delete(b.pending, m.ID)
		b.mu.Unlock()
		if ch != nil {
			ch <- m.cdpReply
		}
	}
}

func (b *cdp) call(session, method string, params any, out any) error {
	id := b.id.Add(1)
	ch := make(chan cdpReply, 1)
	b.mu.Lock()
	b.pending[id] = ch
	b.mu.Unlock()
	msg := map[string]any{"id": id, "method": method, "params": params}
	if session != "" {
		msg["sessionId"] = session
	}
	b.wmu.Lock()
	err := b.c.WriteJSON(msg)
	b.wmu.Unlock()
	if err != nil {
		return err
	}
	select {
	case r, ok := <-ch:
		if !ok {
			return errors.New("cdp: connection closed")
		}
		if r.Error != nil {
			return fmt.Errorf("cdp %s: %s", method, r.Error.Message)
		}
		if out != nil {
			return json.Unmarshal(r.Result, out)
		}
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("cdp %s: no reply in 30s", method)
	}
}

// tab is a page in its own browser context (its own cookie jar).
type tab struct {
	b       *cdp
	session string
}

func (b *cdp) newTab(t *testing.T, url string) *tab {
	t.Helper()
	var bc struct {
		BrowserContextID string `json:"browserContextId"`
	}
	if err := b.call("", "Target.createBrowserContext", map[string]any{"disposeOnDetach": true}, &bc); err != nil {
		t.Fatal(err)
	}
	var tg struct {
		TargetID string `json:"targetId"`
	}
	if err := b.call("", "Target.createTarget", map[string]any{"url": url, "browserContextId": bc.BrowserContextID}, &tg); err != nil {
		t.Fatal(err)
	}
	var at struct {
		SessionID string `json:"sessionId"`
	}
	if err := b.call("", "Target.attachToTarget", map[string]any{"targetId": tg.TargetID, "flatten": true}, &at); err != nil {
		t.Fatal(err)
	}
	return &tab{b: b, session: at.SessionID}
}

// eval evaluates a JavaScript expression in the tab and decodes its value.
func (tb *tab) eval(expr string, out any) error {
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	if err := tb.b.call(tb.session, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}, &r); err != nil {
		return err
	}
	if r.ExceptionDetails != nil {
		return fmt.Errorf("js exception: %s", r.ExceptionDetails.Text)
	}
	if len(r.Result.Value) == 0 {
		return errors.New("no value")
	}
	return json.Unmarshal(r.Result.Value, out)
}

// waitFor polls expr (a JSON-returning expression) in the browser until
// ok(value) or the deadline; it returns the last value.
func (tb *tab) waitFor(t *testing.T, what, expr string, ok func(string) bool) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		var v string
		if err := tb.eval(expr, &v); err == nil {
			last = v
			if ok(v) {
				return v
			}
		}
		time.Sleep(100 * time.Millisecond) // polling the external browser process
	}
	t.Fatalf("browser: %s: never happened (last state %q)", what, last)
	return last
}

const stateJS = `JSON.stringify({
  client: window.firstrenderClient || "",
  connected: !!(document.querySelector("[data-phx-main]") || {classList: {contains: () => false}}).classList.contains("phx-connected"),
  price: (document.getElementById("price-value") || {}).textContent || "",
  live: !!document.getElementById("live-since")
})`

type pageState struct {
	Client    string `json:"client"`
	Connected bool   `json:"connected"`
	Price     string `json:"price"`
	Live      bool   `json:"live"`
}

func parseState(s string) pageState {
	var p pageState
	json.Unmarshal([]byte(s), &p)
	return p
}

func TestBrowser_LiveViewThroughBroker(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped in -short")
	}
	nm := npmModules(t)
	browser := startChromium(t)
	s := newStack(t, stackOpts{scripts: true, nodeMods: nm, live: liveTick(200 * time.Millisecond)})

	// Browser A (its own context) loads the page: a miss, stored by the proxy.
	a := browser.newTab(t, s.front.URL+"/")
	stA := parseState(a.waitFor(t, "LiveView connects in browser A", "("+stateJS+")", func(v string) bool {
		p := parseState(v)
		return p.Connected && p.Live
	}))
	if stA.Client != "phoenix_live_view" {
		t.Errorf("browser A used client %q, want the real phoenix_live_view npm client", stA.Client)
	}
	// Messages flow through the broker: the price ticks (origin → client diffs).
	a.waitFor(t, "price diff arrives in browser A", "("+stateJS+")", func(v string) bool {
		p := parseState(v)
		return p.Price != "" && p.Price != stA.Price
	})
	if n := s.broker.Open(); n < 1 {
		t.Errorf("broker open sockets = %d, want >= 1", n)
	}
	// Both directions went through the broker: the join (client → origin),
	// the join reply and the diffs (origin → client).
	if to, from := s.counter("firstrender_livesocket_messages_total", "direction", "to_origin"),
		s.counter("firstrender_livesocket_messages_total", "direction", "to_client"); to < 1 || from < 2 {
		t.Errorf("brokered messages: %v to the origin, %v to the client; want >= 1 and >= 2", to, from)
	}

	// The page is now in the store; a second, cookie-less browser context
	// gets it from the store (the origin renders nothing) and goes live:
	// the seed's failure does not happen.
	s.cachedPage(t, "/")
	rendersBefore := s.originRenders.Load()
	b := browser.newTab(t, s.front.URL+"/")
	stB := parseState(b.waitFor(t, "LiveView connects in cookie-less browser B from the cached page", "("+stateJS+")", func(v string) bool {
		p := parseState(v)
		return p.Connected && p.Live
	}))
	if got := s.originRenders.Load(); got != rendersBefore {
		t.Errorf("origin rendered / %d more times while browser B loaded it, want 0 (served from the store)", got-rendersBefore)
	}
	var cookies string
	b.eval("document.cookie", &cookies)
	if cookies != "" {
		t.Errorf("browser B has cookies %q, want none", cookies)
	}
	if stB.Client != "phoenix_live_view" {
		t.Errorf("browser B used client %q, want phoenix_live_view", stB.Client)
	}
	if got := s.refused("origin_denied"); got != 0 {
		t.Errorf("refused{origin_denied} = %v before the foreign page, want 0", got)
	}

	// A page from another loopback origin (other port) opens a socket to
	// firstrender: the broker refuses it with 403 before dialling the origin.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!DOCTYPE html><html><body><script>
window.result = "pending";
var ws = new WebSocket(%q);
ws.onopen = function () { window.result = "open"; };
ws.onclose = function (e) { if (window.result !== "open") { window.result = "closed " + e.code; } };
</script></body></html>`, "ws"+strings.TrimPrefix(s.front.URL, "http")+"/live/websocket?vsn=2.0.0")
	}))
	defer evil.Close()
	e := browser.newTab(t, evil.URL+"/")
	res := e.waitFor(t, "foreign page's socket settles", `String(window.result)`, func(v string) bool {
		return v != "" && v != "pending" && v != "undefined"
	})
	if res == "open" {
		t.Errorf("socket from %s opened through the broker, want it refused", evil.URL)
	}
	if got := s.refused("origin_denied"); got != 1 {
		t.Errorf("refused{origin_denied} = %v after the foreign page (%s), want 1", got, res)
	}
	t.Logf("browser A: %+v; browser B: %+v; foreign page: %s", stA, stB, res)
}
