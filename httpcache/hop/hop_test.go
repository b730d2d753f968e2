package hop

import (
	"crypto/tls"
	"net/http"
	"reflect"
	"testing"
)

func TestRemoveHopByHop(t *testing.T) {
	tests := []struct {
		name string
		in   http.Header
		want http.Header
	}{
		{"standard hop-by-hop fields go", http.Header{
			"Connection": {"close"}, "Keep-Alive": {"timeout=5"}, "Transfer-Encoding": {"chunked"},
			"Te": {"trailers"}, "Trailer": {"X"}, "Upgrade": {"h2c"}, "Proxy-Authorization": {"x"},
			"Proxy-Connection": {"keep-alive"}, "Proxy-Authenticate": {"x"}, "Content-Type": {"text/html"},
		}, http.Header{"Content-Type": {"text/html"}}},
		{"fields named in Connection go", http.Header{
			"Connection": {"keep-alive, X-Secret", "x-other"}, "X-Secret": {"1"}, "X-Other": {"2"}, "X-Kept": {"3"},
		}, http.Header{"X-Kept": {"3"}}},
		{"hostile: keep-alive, Upgrade without Upgrade field", http.Header{
			"Connection": {"keep-alive, Upgrade"}, "Etag": {`"a"`},
		}, http.Header{"Etag": {`"a"`}}},
		{"hostile: empty and odd tokens", http.Header{
			"Connection": {" , ,\t"}, "Etag": {`"a"`},
		}, http.Header{"Etag": {`"a"`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.in.Clone()
			Remove(h)
			if !reflect.DeepEqual(h, tt.want) {
				t.Errorf("Remove(%v) = %v, want %v", tt.in, h, tt.want)
			}
		})
	}
}

func TestUpgradeType(t *testing.T) {
	tests := []struct {
		name string
		h    http.Header
		want string
	}{
		{"websocket", http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}}, "websocket"},
		{"token in a list", http.Header{"Connection": {"keep-alive, Upgrade"}, "Upgrade": {"websocket"}}, "websocket"},
		{"hostile: Connection names Upgrade but no Upgrade field", http.Header{"Connection": {"keep-alive, Upgrade"}}, ""},
		{"hostile: Upgrade field without Connection token", http.Header{"Upgrade": {"websocket"}}, ""},
		{"hostile: token substring is not a token", http.Header{"Connection": {"upgrade-insecure"}, "Upgrade": {"websocket"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := UpgradeType(tt.h); got != tt.want {
				t.Errorf("UpgradeType(%v) = %q, want %q", tt.h, got, tt.want)
			}
		})
	}
}

func TestSetForwarded(t *testing.T) {
	tests := []struct {
		name   string
		remote string
		host   string
		tls    bool
		in     http.Header // the client's request header
		trust  bool
		want   http.Header
	}{
		{"connection values", "192.0.2.1:5000", "app.test", false, nil, false,
			http.Header{"X-Forwarded-For": {"192.0.2.1"}, "X-Forwarded-Host": {"app.test"}, "X-Forwarded-Proto": {"http"}}},
		{"tls says https", "192.0.2.1:5000", "app.test", true, nil, false,
			http.Header{"X-Forwarded-For": {"192.0.2.1"}, "X-Forwarded-Host": {"app.test"}, "X-Forwarded-Proto": {"https"}}},
		{"hostile: untrusted client values are ignored", "192.0.2.1:5000", "app.test", false, http.Header{
			"X-Forwarded-For": {"203.0.113.9"}, "X-Forwarded-Host": {"evil.test"}, "X-Forwarded-Proto": {"https"},
		}, false, http.Header{"X-Forwarded-For": {"192.0.2.1"}, "X-Forwarded-Host": {"app.test"}, "X-Forwarded-Proto": {"http"}}},
		{"trusted client values are kept, peer appended", "192.0.2.1:5000", "app.test", false, http.Header{
			"X-Forwarded-For": {"203.0.113.9", "198.51.100.7"}, "X-Forwarded-Host": {"www.app.test"}, "X-Forwarded-Proto": {"https"},
		}, true, http.Header{"X-Forwarded-For": {"203.0.113.9, 198.51.100.7, 192.0.2.1"}, "X-Forwarded-Host": {"www.app.test"}, "X-Forwarded-Proto": {"https"}}},
		{"trusted but absent: connection values", "[2001:db8::1]:443", "app.test", true, nil, true,
			http.Header{"X-Forwarded-For": {"2001:db8::1"}, "X-Forwarded-Host": {"app.test"}, "X-Forwarded-Proto": {"https"}}},
		{"unparsable peer: no X-Forwarded-For", "@", "app.test", false, nil, false,
			http.Header{"X-Forwarded-Host": {"app.test"}, "X-Forwarded-Proto": {"http"}}},
		{"unparsable peer, trusted prior kept", "@", "app.test", false, http.Header{"X-Forwarded-For": {"203.0.113.9"}}, true,
			http.Header{"X-Forwarded-For": {"203.0.113.9"}, "X-Forwarded-Host": {"app.test"}, "X-Forwarded-Proto": {"http"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := &http.Request{RemoteAddr: tt.remote, Host: tt.host, Header: tt.in}
			if in.Header == nil {
				in.Header = http.Header{}
			}
			if tt.tls {
				in.TLS = &tls.ConnectionState{}
			}
			out := http.Header{"X-Forwarded-For": {"stale"}}
			SetForwarded(out, in, tt.trust)
			if !reflect.DeepEqual(out, tt.want) {
				t.Errorf("SetForwarded(remote %q, host %q, %v, trust=%v) = %v, want %v", tt.remote, tt.host, tt.in, tt.trust, out, tt.want)
			}
		})
	}
}
