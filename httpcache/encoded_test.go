package httpcache

import (
	"bufio"
	"bytes"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rawResponse is one response read off a connection: its header section
// as sent, parsed, and its body.
type rawResponse struct {
	head   string // the header section, status line to the empty line
	status int
	header http.Header
	body   []byte
}

// connGet sends one request on a fresh connection to addr and reads the
// response.
func connGet(t *testing.T, addr, host, method, target string, hdr ...string) rawResponse {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	req := method + " " + target + " HTTP/1.1\r\nHost: " + host + "\r\n"
	for i := 0; i+1 < len(hdr); i += 2 {
		req += hdr[i] + ": " + hdr[i+1] + "\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	var head bytes.Buffer
	br := bufio.NewReader(io.TeeReader(c, &head))
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("%s %s: body: %v", method, target, err)
	}
	h, _, _ := strings.Cut(head.String(), "\r\n\r\n")
	return rawResponse{head: h, status: resp.StatusCode, header: resp.Header, body: body}
}

// TestServeEncoded_AsTheHeaderMap checks that a hit served with its
// fields inserted into net/http's header section (serveEncoded, on a
// guarded, corked connection) is the response the header map gives
// (entryResponse, on a plain connection): same status, the same fields
// with the same values in the same order per name, the same body; from
// the memory tier and from the store; and that the responses serveEncoded
// leaves to the map (conditional, Range, HEAD) are the map's on the
// guarded connection too.
func TestServeEncoded_AsTheHeaderMap(t *testing.T) {
	for _, tier := range []struct {
		name string
		size int64
	}{{"memory-tier", 0}, {"store", -1}} {
		t.Run(tier.name, func(t *testing.T) { testServeEncoded(t, tier.size) })
	}
}

func testServeEncoded(t *testing.T, hotSize int64) {
	big := bytes.Repeat([]byte("<p>0123456789</p>\n"), 1000) // past net/http's 4 KB buffer
	r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "public, max-age=600")
		h.Set("Etag", `"v1"`)
		h.Set("Last-Modified", "Tue, 24 Nov 2026 12:00:00 GMT")
		h.Set("Link", "</app.css>; rel=preload; as=style, </app.js>; rel=preload; as=script")
		h["X-Multi"] = []string{"one", "two, three"}
		h.Set("Age", "5") // the origin's own: each response sends its own age
		body := big
		if req.URL.Path == "/small" {
			body = big[:100]
		}
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	}, func(c *Config) { c.MemoryCacheSize = hotSize })
	guarded := guardedServer(t, r.Proxy)
	front := strings.TrimPrefix(r.Front.URL, "http://")
	host := front // the host the rig's proxy caches

	for _, path := range []string{"/big", "/small"} {
		for range 3 { // the fill, a first sighting, admission to the tier
			connGet(t, front, host, "GET", path)
			r.Settle()
		}
		r.Clock.Advance(7 * time.Second) // Age 7 + the origin's 5
		for _, tc := range []struct {
			name    string
			method  string
			hdr     []string
			encoded bool
		}{
			{"plain", "GET", nil, true},
			{"If-None-Match", "GET", []string{"If-None-Match", `"v1"`}, false},
			{"If-Modified-Since", "GET", []string{"If-Modified-Since", "Wed, 25 Nov 2026 12:00:00 GMT"}, false},
			{"Range", "GET", []string{"Range", "bytes=0-9"}, false},
			{"HEAD", "HEAD", nil, false},
		} {
			want := connGet(t, front, host, tc.method, path, tc.hdr...)
			got := connGet(t, guarded, host, tc.method, path, tc.hdr...)
			if !strings.Contains(want.header.Get("Cache-Status"), "hit") {
				t.Fatalf("%s %s: not a hit: Cache-Status %q", path, tc.name, want.header.Get("Cache-Status"))
			}
			if got.status != want.status || !maps.EqualFunc(got.header, want.header, slices.Equal) || !bytes.Equal(got.body, want.body) {
				t.Errorf("%s %s on the guarded connection:\n%s\n(%d body bytes)\nwant, as the header map gives it:\n%s\n(%d body bytes)", path, tc.name, got.head, len(got.body), want.head, len(want.body))
			}
			// net/http writes its map in name order, Age first; inserted
			// fields follow its Content-Length.
			_, fields, _ := strings.Cut(got.head, "\r\n")
			if enc := strings.HasPrefix(fields, "Content-Length: "); enc != tc.encoded {
				t.Errorf("%s %s: fields inserted by the cork: %v, want %v:\n%s", path, tc.name, enc, tc.encoded, got.head)
			}
		}
	}
}

// TestEncodeBlock_AsNetHTTP holds encodeBlock to net/http's own encoding
// of the same fields (Header.Write), less those each response sets.
func TestEncodeBlock_AsNetHTTP(t *testing.T) {
	for _, h := range []http.Header{
		{"Content-Type": {"text/html"}, "Etag": {`"x"`}, "Vary": {"Accept-Encoding"}},
		{"X-Multi": {"one", "two"}, "Content-Type": {"a"}, "Age": {"3"}, "Cache-Status": {"up; hit"}, "Content-Length": {"9"}},
		{"X-Space": {"  padded\t", "\t", ""}, "X-Newline": {"a\r\nInjected: yes", "\nb\r"}},
		{"Bad Name": {"v"}, "": {"v"}, "X:Colon": {"v"}, "x-lower": {"kept as written"}, "X-Ok!#$%&'*+-.^_`|~": {"v"}},
		{"X-Utf8": {"héllo wörld"}, "X-Empty": {}},
	} {
		if got, want := string(encodeBlock(nil, fieldsOf(h))), netHTTPBlock(h); got != want {
			t.Errorf("encodeBlock(%q):\n%q\nnet/http:\n%q", h, got, want)
		}
	}
	for _, name := range []string{"Connection", "Transfer-Encoding", "Trailer"} {
		if b := encodeBlock(nil, fieldsOf(http.Header{"Content-Type": {"a"}, name: {"x"}})); b != nil {
			t.Errorf("a stored %s was encoded (%q): it must go through net/http's map", name, b)
		}
	}
}

// fieldsOf is h as entry.prepare lists it: in name order.
func fieldsOf(h http.Header) []headerField {
	var fs []headerField
	for _, k := range slices.Sorted(maps.Keys(h)) {
		fs = append(fs, headerField{k, h[k]})
	}
	return fs
}

// netHTTPBlock is h as net/http writes it, less the fields encodeBlock
// leaves to each response.
func netHTTPBlock(h http.Header) string {
	h = h.Clone()
	for _, k := range []string{"Age", "Cache-Status", "Content-Length"} {
		delete(h, k)
	}
	var b strings.Builder
	h.Write(&b)
	return b.String()
}
