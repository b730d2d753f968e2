package httpcache

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestOutcome checks that ServeHTTP reports its own result, detail, key
// and store decision through the request context.
func TestOutcome(t *testing.T) {
	r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/private" {
			w.Header().Set("Cache-Control", "private")
		} else {
			w.Header().Set("Cache-Control", "max-age=60")
		}
		w.Write([]byte("ok"))
	}, nil)
	serve := func(method, target string) Outcome {
		t.Helper()
		var req *http.Request
		if target == "bad-host" {
			req = httptest.NewRequest(method, "/", nil)
			req.Host = "a..b"
		} else {
			req = httptest.NewRequest(method, target, nil)
		}
		ctx, o := WithOutcome(req.Context())
		r.Proxy.ServeHTTP(httptest.NewRecorder(), req.WithContext(ctx))
		r.Settle()
		return *o
	}
	host := "http://localhost"
	tests := []struct {
		name, method, target string
		want                 Outcome
	}{
		{"a miss is stored", "GET", host + "/a", Outcome{Result: ResultMiss, Key: "http://localhost/a", Stored: true}},
		{"the next request is a hit", "GET", host + "/a", Outcome{Result: ResultHit, Key: "http://localhost/a"}},
		{"a private response is a pass with its reason", "GET", host + "/private", Outcome{Result: ResultPass, Detail: "private", Key: "http://localhost/private"}},
		{"an unsafe method passes", "POST", host + "/a", Outcome{Result: ResultPass, Key: "http://localhost/a"}},
		{"a bad target is an error", "GET", "bad-host", Outcome{Result: ResultError, Detail: "bad-request"}},
	}
	for _, tt := range tests {
		if got := serve(tt.method, tt.target); got != tt.want {
			t.Errorf("%s: %s %s: Outcome = %+v, want %+v", tt.name, tt.method, tt.target, got, tt.want)
		}
	}
	if o := OutcomeFrom(t.Context()); o != nil {
		t.Errorf("OutcomeFrom(context without one) = %+v, want nil", o)
	}
}

// TestCacheStatusOrder checks RFC 9211 §2: caches are listed in the order
// they handled the response, so firstrender (nearest the client) appends
// its member after the origin's own.
func TestCacheStatusOrder(t *testing.T) {
	r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Add("Cache-Status", "origin-cdn; hit")
		w.Header().Add("Cache-Status", `app; fwd=uri-miss; detail="x, y"`)
		w.Write([]byte("ok"))
	}, nil)
	got := r.Get("/").Header.Values("Cache-Status")
	want := `origin-cdn; hit, app; fwd=uri-miss; detail="x, y", firstrender; fwd=uri-miss; fwd-status=200; stored; ttl=60`
	if len(got) != 1 || got[0] != want {
		t.Errorf("Cache-Status = %q, want %q", got, want)
	}
}
