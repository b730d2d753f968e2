package httpcache

import (
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
)

const rangePage = "0123456789abcdefghij" // 20 bytes

func rangeOrigin(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=600")
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Etag", `"r1"`)
	w.Header().Set("Last-Modified", "Mon, 02 Jan 2006 15:04:05 GMT")
	if r.Header.Get("Range") != "" {
		// An origin that honours ranges: the cache must never store this.
		w.Header().Set("Content-Range", "bytes 0-0/20")
		w.WriteHeader(http.StatusPartialContent)
		w.Write([]byte("0"))
		return
	}
	w.Write([]byte(rangePage))
}

// TestRange_FromStoredEntry checks RFC 9110 §14 ranges served from a
// stored complete response: single, suffix, open, multiple
// (multipart/byteranges), unsatisfiable (416), ignored forms, and
// If-Range.
func TestRange_FromStoredEntry(t *testing.T) {
	r := newRig(t, rangeOrigin, nil)
	if first := r.Get("/f", "Range", "bytes=0-3"); first.Status != 200 || first.Body != rangePage {
		t.Fatalf("miss with Range: %d %q, want the whole 200 (nothing partial is fetched or stored)", first.Status, first.Body)
	}
	if got := r.Origin.LastRequest().Header.Get("Range"); got != "" {
		t.Errorf("origin was sent Range %q on a miss", got)
	}
	for _, c := range []struct {
		name       string
		hdr        []string
		status     int
		body, crng string
	}{
		{"single range", []string{"Range", "bytes=0-3"}, 206, "0123", "bytes 0-3/20"},
		{"open range", []string{"Range", "bytes=15-"}, 206, "fghij", "bytes 15-19/20"},
		{"suffix range", []string{"Range", "bytes=-3"}, 206, "hij", "bytes 17-19/20"},
		{"end past the length is cut", []string{"Range", "bytes=18-100"}, 206, "ij", "bytes 18-19/20"},
		{"overlapping ranges coalesce", []string{"Range", "bytes=0-4,3-6"}, 206, "0123456", "bytes 0-6/20"},
		{"unsatisfiable", []string{"Range", "bytes=20-30"}, 416, "", "bytes */20"},
		{"another unit is ignored", []string{"Range", "items=0-3"}, 200, rangePage, ""},
		{"bad syntax is ignored", []string{"Range", "bytes=3-1"}, 200, rangePage, ""},
		{"If-Range with the ETag", []string{"Range", "bytes=0-1", "If-Range", `"r1"`}, 206, "01", "bytes 0-1/20"},
		{"If-Range with another ETag", []string{"Range", "bytes=0-1", "If-Range", `"old"`}, 200, rangePage, ""},
		{"If-Range with a weak ETag never matches", []string{"Range", "bytes=0-1", "If-Range", `W/"r1"`}, 200, rangePage, ""},
		{"If-Range with the date", []string{"Range", "bytes=0-1", "If-Range", "Mon, 02 Jan 2006 15:04:05 GMT"}, 206, "01", "bytes 0-1/20"},
		{"If-Range with another date", []string{"Range", "bytes=0-1", "If-Range", "Tue, 03 Jan 2006 15:04:05 GMT"}, 200, rangePage, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := r.Get("/f", c.hdr...)
			if got.Status != c.status || (c.status != 416 && got.Body != c.body) || got.Header.Get("Content-Range") != c.crng {
				t.Errorf("%v: %d %q Content-Range %q, want %d %q %q", c.hdr, got.Status, got.Body, got.Header.Get("Content-Range"), c.status, c.body, c.crng)
			}
			if !match(cs(t, got), "hit") {
				t.Errorf("Cache-Status %q, want a hit", got.Header.Get("Cache-Status"))
			}
		})
	}
	t.Run("multiple ranges", func(t *testing.T) {
		got := r.Get("/f", "Range", "bytes=0-1, 10-11, -1")
		mt, params, err := mime.ParseMediaType(got.Header.Get("Content-Type"))
		if got.Status != 206 || err != nil || mt != "multipart/byteranges" {
			t.Fatalf("status %d Content-Type %q, want 206 multipart/byteranges", got.Status, got.Header.Get("Content-Type"))
		}
		mr := multipart.NewReader(strings.NewReader(got.Body), params["boundary"])
		var parts []string
		for {
			part, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(part)
			parts = append(parts, part.Header.Get("Content-Range")+"="+string(b)+";"+part.Header.Get("Content-Type"))
		}
		want := "bytes 0-1/20=01;text/plain|bytes 10-11/20=ab;text/plain|bytes 19-19/20=j;text/plain"
		if strings.Join(parts, "|") != want {
			t.Errorf("parts %q, want %q", strings.Join(parts, "|"), want)
		}
	})
	t.Run("HEAD ignores Range", func(t *testing.T) {
		if got := r.Do(http.MethodHead, "/f", "Range", "bytes=0-1"); got.Status != 200 || got.Header.Get("Content-Length") != "20" {
			t.Errorf("HEAD with Range: %d Content-Length %q, want 200 and 20", got.Status, got.Header.Get("Content-Length"))
		}
	})
	if n := r.Origin.Count(); n != 1 {
		t.Errorf("origin asked %d times, want 1", n)
	}
}

// TestRange_PartialNeverStored: a 206 from the origin (answering a
// request the cache passed on) is never stored as a full entry.
func TestRange_PartialNeverStored(t *testing.T) {
	r := newRig(t, rangeOrigin, nil)
	// A bypassed request forwards Range as sent (here: with a cookie).
	got := r.Get("/p", "Range", "bytes=0-0", "Cookie", "sid=1")
	if got.Status != 206 {
		t.Fatalf("bypassed Range: %d, want the origin's 206", got.Status)
	}
	if got = r.Get("/p"); got.Status != 200 || got.Body != rangePage {
		t.Errorf("next plain GET: %d %q, want the whole page", got.Status, got.Body)
	}
}

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"bytes=0-1", "bytes=-5", "bytes=3-", "bytes=0-1,2-3", "bytes=", "items=1-2", "bytes=,,", "bytes=9999999999999999999-"} {
		f.Add(s, int64(20))
	}
	f.Fuzz(func(t *testing.T, v string, n int64) {
		if n < 0 || n > 1<<40 {
			return
		}
		rs, ok := parseRange(v, n)
		if !ok {
			return
		}
		for _, r := range rs {
			if r.start < 0 || r.end < r.start || r.end >= n {
				t.Fatalf("parseRange(%q, %d) = %v: out of bounds", v, n, rs)
			}
		}
	})
}
