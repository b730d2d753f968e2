package httpcache

import (
	"net/http"
	"testing"
)

// TestPoison_ConnectionNominatedVaryHeader checks that a header the
// client names in Connection (so the origin never sees it) does not select
// the variant: otherwise a response rendered without it is stored under
// the variant of those who do send it.
func TestPoison_ConnectionNominatedVaryHeader(t *testing.T) {
	r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
		lang := req.Header.Get("Accept-Language")
		if lang == "" {
			lang = "en"
		}
		w.Header().Set("Cache-Control", "public, s-maxage=600")
		w.Header().Set("Vary", "Accept-Language")
		w.Write([]byte("lang=" + lang))
	}, nil)
	attacker := r.Get("/", "Accept-Language", "fr", "Connection", "Accept-Language")
	if attacker.Body != "lang=en" {
		t.Fatalf("attacker got %q, want lang=en (the origin never saw Accept-Language)", attacker.Body)
	}
	if got := r.Get("/", "Accept-Language", "fr"); got.Body != "lang=fr" {
		t.Errorf("French visitor got %q (Cache-Status %q), want lang=fr", got.Body, got.Header.Get("Cache-Status"))
	}
	if got := r.Get("/"); got.Body != "lang=en" {
		t.Errorf("visitor without Accept-Language got %q, want lang=en", got.Body)
	}
}
