// Package page is the page the load command's origin serves (and the
// baseline serves from memory): a LiveView-like first render of a given
// size and the response fields of a cacheable page. The load command and
// the in-process benchmarks of httpcache (BenchmarkMissStoreVsForward,
// BenchmarkServeHTTP_HitWorkingSet) and httpcache/server
// (BenchmarkServer_MemoryHit) all use it, so the benchmarks measure the
// page the load runs measure.
package page

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Body returns the body of page n: size bytes of LiveView-like HTML with
// empty data-phx-session and data-phx-static attributes (no token, nothing
// the lint refuses). Sizes below the fixed head and tail are cut.
func Body(size, n int) []byte {
	var b strings.Builder
	b.Grow(size)
	fmt.Fprintf(&b, "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Page %d</title></head><body>"+
		"<div id=\"phx-F1\" data-phx-main data-phx-static=\"\" data-phx-session=\"\"><main class=\"container\">", n)
	row := "<div class=\"row\"><span class=\"cell\">firstrender</span><span class=\"cell\">cached first render</span></div>\n"
	tail := "</main></div></body></html>\n"
	for b.Len()+len(row)+len(tail) <= size {
		b.WriteString(row)
	}
	for b.Len()+len(tail) < size {
		b.WriteByte(' ')
	}
	b.WriteString(tail)
	return []byte(b.String())[:size]
}

// Header sets the origin's response fields of cacheable page n in h.
func Header(h http.Header, n int) {
	h["Content-Type"] = []string{"text/html; charset=utf-8"}
	h["Cache-Control"] = []string{"public, max-age=86400"}
	h["Etag"] = []string{`"fr-` + strconv.Itoa(n) + `"`}
	h["Last-Modified"] = []string{"Tue, 24 Nov 2026 12:00:00 GMT"}
	h["Vary"] = []string{"Accept-Encoding"}
}

// Num returns N of the path /p/N, and whether it names one of pages pages.
func Num(path string, pages int) (int, bool) {
	n, err := strconv.Atoi(strings.TrimPrefix(path, "/p/"))
	return n, err == nil && n >= 0 && n < pages && strings.HasPrefix(path, "/p/")
}

// Origin serves page n at /p/N, bodies[n] with Header's fields and its
// Content-Length, and 404 for any other path: the working set's origin
// for in-process benchmarks (httpcache, httpcache/server).
func Origin(bodies [][]byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, ok := Num(r.URL.Path, len(bodies))
		if !ok {
			http.NotFound(w, r)
			return
		}
		Header(w.Header(), n)
		w.Header()["Content-Length"] = []string{strconv.Itoa(len(bodies[n]))}
		w.Write(bodies[n])
	})
}
