package httpcache

import (
	"context"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"sync"
	"testing"

	"github.com/firstrender/firstrender/httpcache/httpcachetest"
)

// TestFraming_OriginResponses: an origin response with both
// Content-Length and Transfer-Encoding, in a transfer coding net/http
// does not implement (RFC 9112 §6.1: unreadable), or (read whole before
// its headers go out) shorter than its Content-Length, is a 502
// detail=origin-framing and never stored.
func TestFraming_OriginResponses(t *testing.T) {
	lint := InspectorFunc(func(*http.Request, *Response) Verdict { return Verdict{} })
	for _, c := range []struct {
		name, framing string
		inspector     Inspector
	}{
		{"Content-Length and Transfer-Encoding", "both", nil},
		{"shorter than Content-Length, inspected", "short", lint},
		{"a transfer coding net/http cannot decode", "coding", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t, httpcachetest.Echo, func(cfg *Config) { cfg.Inspector = c.inspector })
			got := r.Get("/", httpcachetest.EchoFraming, c.framing)
			if got.Status != http.StatusBadGateway || !match(cs(t, got), "detail=origin-framing", "stored") {
				t.Errorf("status %d Cache-Status %q, want 502 detail=origin-framing", got.Status, got.Header.Get("Cache-Status"))
			}
			if got = r.Get("/"); got.Status != 200 || match(cs(t, got), "hit") {
				t.Errorf("next request: %d %q, want a fresh 200 (nothing stored)", got.Status, got.Header.Get("Cache-Status"))
			}
		})
	}
	httpcachetest.Poison(t, build(nil), []httpcachetest.PoisonCase{
		{Name: "a truncated body never reaches the next visitor", Path: "/", A: []string{httpcachetest.EchoFraming, "short"}},
		{Name: "an ambiguous framing never reaches the next visitor", Path: "/", A: []string{httpcachetest.EchoFraming, "both"}},
		{Name: "an unknown transfer coding never reaches the next visitor", Path: "/", A: []string{httpcachetest.EchoFraming, "coding"}},
	})
}

// TestFraming_InterimHopByHop: the hop-by-hop fields of a 1xx response,
// and those its Connection names, are not relayed to the client.
func TestFraming_InterimHopByHop(t *testing.T) {
	r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
		h := w.Header()
		h.Set("Link", "</app.css>; rel=preload")
		h.Set("Connection", "X-Secret")
		h.Set("X-Secret", "1")
		h.Set("Keep-Alive", "timeout=5")
		w.WriteHeader(http.StatusEarlyHints)
		for k := range h {
			delete(h, k)
		}
		w.Write([]byte("page"))
	}, nil)
	var mu sync.Mutex
	var interim []textproto.MIMEHeader
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		mu.Lock()
		interim = append(interim, h)
		mu.Unlock()
		return nil
	}}
	r.DoWith(http.MethodGet, "/", func(req *http.Request) {
		*req = *req.WithContext(httptrace.WithClientTrace(context.Background(), trace))
	})
	mu.Lock()
	defer mu.Unlock()
	if len(interim) != 1 {
		t.Fatalf("got %d interim responses, want 1", len(interim))
	}
	h := interim[0]
	if h.Get("Link") == "" {
		t.Errorf("103 lost its Link field: %v", h)
	}
	for _, k := range []string{"Connection", "X-Secret", "Keep-Alive"} {
		if v := h.Get(k); v != "" {
			t.Errorf("103 relayed %s: %q", k, v)
		}
	}
}
