package livesocket

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// TestWrap_LongpollOriginChecked: every request to the long-poll
// transport, the Phoenix client's fallback, is Origin-checked on every
// method before it reaches the cache, under every spelling of its path.
func TestWrap_LongpollOriginChecked(t *testing.T) {
	b, err := New(Config{
		Origin: &url.URL{Scheme: "http", Host: "127.0.0.1:1"},
		Policy: mustPolicy(t, OriginConfig{PublicURL: "https://app.test"}),
		Paths:  []string{"/live/websocket", "/admin/live/websocket"},
		Logger: quietLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	reached := 0
	h := b.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached++ }))
	for _, c := range []struct {
		name, method, path string
		hdr                []string
		allowed            bool
	}{
		{"GET with the public origin", "GET", "/live/longpoll?vsn=2.0.0", []string{"Origin", "https://app.test"}, true},
		{"POST with the public origin", "POST", "/live/longpoll", []string{"Origin", "https://app.test"}, true},
		{"GET from another site", "GET", "/live/longpoll", []string{"Origin", "https://evil.test"}, false},
		{"POST from another site", "POST", "/live/longpoll", []string{"Origin", "https://evil.test"}, false},
		{"PUT from another site", "PUT", "/live/longpoll", []string{"Origin", "https://evil.test"}, false},
		{"OPTIONS from another site", "OPTIONS", "/live/longpoll", []string{"Origin", "https://evil.test"}, false},
		{"same-origin GET without Origin", "GET", "/live/longpoll", nil, true},
		{"same-origin GET with Sec-Fetch-Site", "GET", "/live/longpoll", []string{"Sec-Fetch-Site", "same-origin"}, true},
		{"cross-site GET without Origin", "GET", "/live/longpoll", []string{"Sec-Fetch-Site", "cross-site"}, false},
		{"POST without Origin", "POST", "/live/longpoll", nil, false},
		{"null Origin", "POST", "/live/longpoll", []string{"Origin", "null"}, false},
		{"other scheme of the public host", "POST", "/live/longpoll", []string{"Origin", "http://app.test"}, false},
		{"double slash spelling", "POST", "/live//longpoll", []string{"Origin", "https://evil.test"}, false},
		{"dot segment spelling", "POST", "/x/../live/longpoll", []string{"Origin", "https://evil.test"}, false},
		{"a sub-path", "POST", "/live/longpoll/x", []string{"Origin", "https://evil.test"}, false},
		{"derived from another socket path", "POST", "/admin/live/longpoll", []string{"Origin", "https://evil.test"}, false},
		{"an ordinary page is not checked", "POST", "/live/longpollx", []string{"Origin", "https://evil.test"}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := reached
			req := httptest.NewRequest(c.method, c.path, nil)
			for i := 0; i+1 < len(c.hdr); i += 2 {
				req.Header.Set(c.hdr[i], c.hdr[i+1])
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if got := reached > before; got != c.allowed {
				t.Errorf("reached the cache: %v, want %v (status %d)", got, c.allowed, rec.Code)
			}
			if !c.allowed && rec.Code != http.StatusForbidden {
				t.Errorf("status %d, want 403", rec.Code)
			}
		})
	}
}
