package page

import (
	"io"
	"net/http/httptest"
	"strconv"
	"testing"
)

func TestNum(t *testing.T) {
	for _, c := range []struct {
		path string
		n    int
		ok   bool
	}{
		{"/p/0", 0, true}, {"/p/9", 9, true}, {"/p/10", 10, false}, {"/p/-1", -1, false},
		{"/p/x", 0, false}, {"/x/3", 0, false}, {"3", 3, false}, {"/p/", 0, false},
	} {
		n, ok := Num(c.path, 10)
		if ok != c.ok || (ok && n != c.n) {
			t.Errorf("Num(%q, 10) = %d, %v; want %d, %v", c.path, n, ok, c.n, c.ok)
		}
	}
}

func TestOrigin(t *testing.T) {
	bodies := [][]byte{Body(1024, 0), Body(2048, 1)}
	h := Origin(bodies)
	for i, b := range bodies {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/p/"+strconv.Itoa(i), nil))
		got, _ := io.ReadAll(w.Result().Body)
		if w.Code != 200 || string(got) != string(b) || w.Header().Get("Content-Length") != strconv.Itoa(len(b)) || w.Header().Get("Etag") != `"fr-`+strconv.Itoa(i)+`"` {
			t.Errorf("/p/%d: %d, %d bytes, Content-Length %q, ETag %q", i, w.Code, len(got), w.Header().Get("Content-Length"), w.Header().Get("Etag"))
		}
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/p/2", nil))
	if w.Code != 404 {
		t.Errorf("/p/2 of 2 pages: %d, want 404", w.Code)
	}
}
