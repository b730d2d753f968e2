package demo

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/firstrender/firstrender/httpcache/liveview/plugsession"
	"github.com/gorilla/websocket"
)

var metaRE = regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)">`)

func phxCodec(t *testing.T) *plugsession.Codec {
	t.Helper()
	c, err := plugsession.NewCodec(plugsession.Config{SecretKeyBase: DefaultSecretKeyBase, SigningSalt: DefaultSessionSigningSalt})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// phxGet loads / in phx.new mode with cookie (may be empty) and returns
// the session cookie value the visitor holds afterwards, the session's
// token and the page's masked token.
func phxGet(t *testing.T, srv *httptest.Server, cookie string) (value, state, masked string, setCookie bool) {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.URL+"/", nil)
	if cookie != "" {
		req.Header.Set("Cookie", DefaultSessionCookie+"="+cookie)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	b := string(body)
	m := metaRE.FindStringSubmatch(b)
	if m == nil || !strings.Contains(b, `name="_csrf_token" type="hidden" hidden value="`+m[1]+`"`) {
		t.Fatalf("page lacks the csrf meta or the form with the same token:\n%s", b)
	}
	value = cookie
	if sc := res.Header.Get("Set-Cookie"); sc != "" {
		name, v, attrs, err := plugsession.ParseSetCookie(sc)
		if err != nil || name != DefaultSessionCookie || !attrs.HTTPOnly || attrs.SameSite != "Lax" || attrs.Path != "/" {
			t.Fatalf("Set-Cookie %q: %v", sc, err)
		}
		value, setCookie = v, true
	}
	sess, err := phxCodec(t).Decode(value)
	if err != nil {
		t.Fatalf("session cookie does not load: %v", err)
	}
	state, _ = plugsession.SessionToken(sess)
	if !plugsession.ValidMasked(state, m[1]) {
		t.Fatalf("page token is not bound to the session")
	}
	return value, state, m[1], setCookie
}

func TestPhxNew_SessionAndCSRF(t *testing.T) {
	srv := httptest.NewServer(New(Config{PhxNew: true, Tick: -1}))
	defer srv.Close()
	v, state, masked, set := phxGet(t, srv, "")
	if !set {
		t.Fatal("first visit: no session cookie set")
	}
	v2, state2, masked2, set2 := phxGet(t, srv, v)
	if set2 || v2 != v || state2 != state || masked2 == masked {
		t.Fatalf("second visit with the cookie: set-cookie %v, same session %v, token masked afresh %v", set2, state2 == state, masked2 != masked)
	}
	if _, _, _, set := phxGet(t, srv, v[:len(v)-3]+"abc"); !set {
		t.Error("a tampered cookie is an empty session: a new one must be set")
	}

	post := func(cookie, token string) int {
		req, _ := http.NewRequest("POST", srv.URL+"/contact", strings.NewReader(url.Values{"_csrf_token": {token}, "message": {"hi"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if cookie != "" {
			req.Header.Set("Cookie", DefaultSessionCookie+"="+cookie)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	other, _, otherMasked, _ := phxGet(t, srv, "")
	for _, tc := range []struct {
		name          string
		cookie, token string
		want          int
	}{
		{"own token", v, masked, 200},
		{"own token, other masking", v, masked2, 200},
		{"no cookie", "", masked, 403},
		{"another session's token", v, otherMasked, 403},
		{"own cookie, no token", v, "", 403},
		{"the other session with its token", other, otherMasked, 200},
	} {
		if got := post(tc.cookie, tc.token); got != tc.want {
			t.Errorf("POST /contact %s: %d, want %d", tc.name, got, tc.want)
		}
	}

	// The socket loads the session only with a valid _csrf_token param.
	tok, id := pageToken(t, New(Config{PhxNew: true}), "/")
	for _, tc := range []struct {
		name, cookie, param, want string
	}{
		{"cookie and its token", v, masked, "ok"},
		{"no _csrf_token", v, "", "error"},
		{"no cookie", "", masked, "error"},
		{"another session's token", v, otherMasked, "error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := http.Header{}
			if tc.cookie != "" {
				hdr.Set("Cookie", DefaultSessionCookie+"="+tc.cookie)
			}
			u := "ws" + strings.TrimPrefix(srv.URL, "http") + "/live/websocket?vsn=2.0.0&_csrf_token=" + url.QueryEscape(tc.param)
			c, _, err := websocket.DefaultDialer.Dial(u, hdr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `["3","3","lv:%s","phx_join",{"url":"http://x/","params":{},"session":%q,"static":null}]`, id, tok))
			m := readMsg(t, c)
			var p struct {
				Status   string `json:"status"`
				Response struct {
					Reason string `json:"reason"`
				} `json:"response"`
			}
			json.Unmarshal(m[4], &p)
			if p.Status != tc.want || (tc.want == "error" && p.Response.Reason != "stale") {
				t.Errorf("join: %s/%q, want %s (stale when refused)", p.Status, p.Response.Reason, tc.want)
			}
		})
	}
}
