package server

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestServer_HitsFromMemoryOnTheGuardedListener sends hits of several
// sizes (around net/http's 4 KB connection buffer and beyond), a HEAD, a
// conditional GET and a Range request, pipelined on one connection of
// the public listener, where a hit's header and body leave in one write
// (hop.CorkWrites): every response must arrive whole and in order.
func TestServer_HitsFromMemoryOnTheGuardedListener(t *testing.T) {
	body := func(n int) []byte { return bytes.Repeat([]byte("0123456789abcdef"), n/16+1)[:n] }
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/size/"))
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Etag", `"s`+strconv.Itoa(n)+`"`)
		w.Write(body(n))
	}))
	t.Cleanup(origin.Close)
	s := startServer(t, Config{Upstream: mustURL(t, origin.URL)})
	sizes := []int{100, 4000, 4096, 6000, 20480, 65536}
	for _, n := range sizes {
		for range 3 { // a miss, then two reads from the store: in memory
			fetch(t, http.MethodGet, s.public+"/size/"+strconv.Itoa(n))
			s.stored(t)
		}
	}

	type want struct {
		status int
		body   []byte
	}
	var raw bytes.Buffer
	var wants []want
	add := func(req string, w want) {
		raw.WriteString(req)
		wants = append(wants, w)
	}
	host := strings.TrimPrefix(s.public, "http://")
	for _, n := range sizes {
		add("GET /size/"+strconv.Itoa(n)+" HTTP/1.1\r\nHost: "+host+"\r\nAccept-Encoding: gzip, deflate, br\r\n\r\n", want{200, body(n)})
	}
	add("HEAD /size/20480 HTTP/1.1\r\nHost: "+host+"\r\n\r\n", want{200, nil})
	add("GET /size/20480 HTTP/1.1\r\nHost: "+host+"\r\nIf-None-Match: \"s20480\"\r\n\r\n", want{304, nil})
	add("GET /size/20480 HTTP/1.1\r\nHost: "+host+"\r\nRange: bytes=5000-14999\r\n\r\n", want{206, body(20480)[5000:15000]})
	add("GET /size/6000 HTTP/1.1\r\nHost: "+host+"\r\nAccept-Encoding: identity\r\n\r\n", want{200, body(6000)})

	c, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(raw.Bytes()); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	methods := []string{"GET", "GET", "GET", "GET", "GET", "GET", "HEAD", "GET", "GET", "GET"}
	for i, w := range wants {
		resp, err := http.ReadResponse(br, &http.Request{Method: methods[i]})
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != w.status || !bytes.Equal(got, w.body) {
			t.Fatalf("response %d: %d, %d bytes (%v); want %d, %d bytes", i, resp.StatusCode, len(got), err, w.status, len(w.body))
		}
		if cs := resp.Header.Get("Cache-Status"); !strings.Contains(cs, "hit") {
			t.Errorf("response %d: Cache-Status %q, want a hit", i, cs)
		}
	}
}
