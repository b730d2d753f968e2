package httpcache

import (
	"net/http"
	"testing"
)

func TestProxy_Smoke(t *testing.T) {
	r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=60")
		w.Write([]byte("hello"))
	}, nil)
	a := r.get("/")
	b := r.get("/")
	t.Logf("%d %q %v", a.status, a.body, a.header)
	t.Logf("%d %q %v", b.status, b.body, b.header)
	if got := r.origin.count(); got != 1 {
		t.Errorf("origin asked %d times, want 1", got)
	}
}
