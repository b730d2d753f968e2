package httpcache

import (
	"net/http"
	"strings"
	"testing"
)

// TestProxy_H2CUpgradeIsDropped checks that an h2c upgrade is dropped
// like the hop-by-hop field it is (RFC 9110 §7.8 lets a proxy ignore it):
// tunnelling it would hand the client a raw HTTP/2 connection to the
// origin past the proxy's host policy and cache (h2c smuggling). Other
// upgrades are tunnelled (TestForwarding).
func TestProxy_H2CUpgradeIsDropped(t *testing.T) {
	tests := []struct {
		name        string
		hdr         []string
		wantUpgrade string // what the origin sees
	}{
		{"h2c upgrade is dropped", []string{"Connection", "Upgrade, HTTP2-Settings", "Upgrade", "h2c", "Http2-Settings", "AAMAAABkAAQAAP__"}, ""},
		{"h2c among other protocols is dropped", []string{"Connection", "keep-alive, Upgrade", "Upgrade", "foo/1, H2C"}, ""},
		{"websocket is tunnelled", []string{"Connection", "Upgrade", "Upgrade", "websocket", "Sec-Websocket-Version", "13", "Sec-Websocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}, "websocket"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
				w.Header().Set("Cache-Control", "no-store")
				w.Write([]byte("plain"))
			}, nil)
			got := r.Get("/h", tt.hdr...)
			seen := r.Origin.LastRequest().Header
			if up := seen.Get("Upgrade"); !strings.EqualFold(up, tt.wantUpgrade) {
				t.Errorf("origin saw Upgrade %q, want %q", up, tt.wantUpgrade)
			}
			if tt.wantUpgrade == "" && seen.Get("Http2-Settings") != "" {
				t.Errorf("origin saw HTTP2-Settings %q, want none", seen.Get("Http2-Settings"))
			}
			if got.Status != http.StatusOK || got.Body != "plain" {
				t.Errorf("got %d %q, want 200 plain", got.Status, got.Body)
			}
		})
	}
}
