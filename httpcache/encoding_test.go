package httpcache

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"
)

func gzipped(t testing.TB, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(s))
	zw.Close()
	return b.Bytes()
}

// gzipOrigin answers gzip to any request that accepts it (and, when
// always, to every request: an origin that ignores Accept-Encoding), with
// Vary: Accept-Encoding when vary.
func gzipOrigin(t testing.TB, page string, always, vary bool) http.HandlerFunc {
	z := gzipped(t, page)
	return func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "public, max-age=600")
		h.Set("Content-Type", "text/html")
		h.Set("Etag", `"p1"`)
		if vary {
			h.Set("Vary", "Accept-Encoding")
		}
		if always || strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			h.Set("Content-Encoding", "gzip")
			w.Write(z)
			return
		}
		w.Write([]byte(page))
	}
}

// getRaw sends a GET with exactly the Accept-Encoding given ("" for none;
// the Go client then does not add its own) and returns the response with
// its body as received (not decoded).
func getRaw(t *testing.T, r *rig, path, ae string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, r.Front.URL+path, nil)
	if ae != "" {
		req.Header.Set("Accept-Encoding", ae)
	}
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	r.Settle()
	return resp, b
}

// TestEncoding_ServedByAcceptance: a gzip body, stored from a client that
// accepts gzip, is served encoded only to clients that accept gzip, and
// decoded for those that sent no Accept-Encoding, identity, or only a
// coding the cache does not serve; on hits and on misses, whether the
// origin varies on Accept-Encoding or not.
func TestEncoding_ServedByAcceptance(t *testing.T) {
	const page = "<html>hello hello hello</html>"
	for _, o := range []struct {
		name         string
		always, vary bool
	}{
		{"origin varies on Accept-Encoding", false, true},
		{"origin gzips without Vary", true, false},
	} {
		t.Run(o.name, func(t *testing.T) {
			r := newRig(t, gzipOrigin(t, page, o.always, o.vary), nil)
			for _, c := range []struct{ ae, want string }{
				{"gzip, deflate, br", "gzip"},
				{"", "identity"},
				{"identity", "identity"},
				{"br", "identity"},
				{"gzip;q=0, identity", "identity"},
				{"*", "gzip"},
				{"x-gzip", "gzip"},
			} {
				resp, body := getRaw(t, r, "/", c.ae)
				ce := resp.Header.Get("Content-Encoding")
				switch c.want {
				case "gzip":
					if ce != "gzip" || !bytes.Equal(body, gzipped(t, page)) && !isGzipOf(body, page) {
						t.Errorf("Accept-Encoding %q: Content-Encoding %q, body %q; want gzip of the page", c.ae, ce, body)
					}
				default:
					if ce != "" || string(body) != page {
						t.Errorf("Accept-Encoding %q: Content-Encoding %q, body %q; want the page decoded (Cache-Status %q)", c.ae, ce, body, resp.Header.Get("Cache-Status"))
					}
					if et := resp.Header.Get("Etag"); o.always && et != "" && !strings.HasPrefix(et, "W/") {
						t.Errorf("Accept-Encoding %q: decoded page keeps the strong ETag %s", c.ae, et)
					}
				}
				if !strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding") {
					t.Errorf("Accept-Encoding %q: Vary %q lacks Accept-Encoding", c.ae, resp.Header.Get("Vary"))
				}
			}
			if n := r.Origin.Count(); n > 2 {
				t.Errorf("origin asked %d times, want at most 2 (gzip and identity variants)", n)
			}
		})
	}
}

func isGzipOf(b []byte, page string) bool {
	plain, err := gunzipBytes(b, 1<<20)
	return err == nil && string(plain) == page
}

// TestPoison_AcceptEncodingVariants: a garbage or exotic Accept-Encoding
// makes no variant of its own, and the origin only ever sees the
// normalized field.
func TestPoison_AcceptEncodingVariants(t *testing.T) {
	r := newRig(t, gzipOrigin(t, "page", false, true), nil)
	getRaw(t, r, "/", "gzip")
	getRaw(t, r, "/", "")
	for _, ae := range []string{"garbage", "gzip, GZIP;q=1.0, x-whatever", "br, zstd", "deflate;q=0.5, gzip;q=0.9", strings.Repeat("a,", 200)} {
		resp, _ := getRaw(t, r, "/", ae)
		if !match(csOf(t, resp.Header), "hit") {
			t.Errorf("Accept-Encoding %q: Cache-Status %q, want a hit from one of the two variants", ae, resp.Header.Get("Cache-Status"))
		}
	}
	if n := r.Origin.Count(); n != 2 {
		t.Errorf("origin asked %d times, want 2", n)
	}
	metas, err := r.Store.Variants(t.Context(), "http://"+frontAddr(r)+"/")
	if err != nil || len(metas) != 2 {
		t.Errorf("stored variants %d (%v), want 2", len(metas), err)
	}
	getRaw(t, r, "/other", "br, gzip;q=0.1, zstd")
	if got := r.Origin.LastRequest().Header.Values("Accept-Encoding"); len(got) != 1 || got[0] != "gzip" {
		t.Errorf("origin saw Accept-Encoding %q, want [gzip]", got)
	}
	getRaw(t, r, "/other2", "br")
	if got := r.Origin.LastRequest().Header.Values("Accept-Encoding"); len(got) != 0 {
		t.Errorf("origin saw Accept-Encoding %q for a client that takes no gzip, want none", got)
	}
}

// TestEncoding_OtherCodingsNotStored: a response in a coding the cache
// cannot decode (br) is passed on, never stored.
func TestEncoding_OtherCodingsNotStored(t *testing.T) {
	r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=600")
		w.Header().Set("Content-Encoding", "br")
		w.Write([]byte("not really brotli"))
	}, nil)
	resp, _ := getRaw(t, r, "/", "br")
	if !match(csOf(t, resp.Header), "detail=content-encoding", "stored") {
		t.Errorf("br response: Cache-Status %q, want detail=content-encoding", resp.Header.Get("Cache-Status"))
	}
}

func TestAcceptsGzip(t *testing.T) {
	for _, c := range []struct {
		in   []string
		want bool
	}{
		{nil, false},
		{[]string{"gzip"}, true},
		{[]string{"GZip;q=0.001"}, true},
		{[]string{"gzip;q=0"}, false},
		{[]string{"gzip; q=0.000"}, false},
		{[]string{"*;q=0"}, false},
		{[]string{"*"}, true},
		{[]string{"*, gzip;q=0"}, false},
		{[]string{"br", "gzip"}, true},
		{[]string{"identity"}, false},
		{[]string{";;;,,,=="}, false},
	} {
		if got := acceptsGzip(c.in); got != c.want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}

// FuzzAcceptEncoding checks that normalization never panics, is
// idempotent and yields one of the two forms.
func FuzzAcceptEncoding(f *testing.F) {
	for _, s := range []string{"gzip", "", "gzip;q=0", "*", "br, gzip;q=0.5", "x-gzip;q=1", ";q=", "gzip;q=0.", "a,b,c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, _ := normalizeAcceptEncoding([]string{s})
		if n != "" && n != "gzip" {
			t.Fatalf("normalizeAcceptEncoding(%q) = %q", s, n)
		}
		var lines []string
		if n != "" {
			lines = []string{n}
		}
		if n2, change := normalizeAcceptEncoding(lines); n2 != n || change {
			t.Fatalf("not idempotent: %q -> %q -> %q (change %v)", s, n, n2, change)
		}
	})
}
