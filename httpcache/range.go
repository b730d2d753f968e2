package httpcache

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Range requests (RFC 9110 §14).
//
// A Range GET is answered from a stored complete 200: 206 with
// Content-Range for one satisfiable range, multipart/byteranges for
// several, 416 with "Content-Range: bytes */len" when none is
// satisfiable. The range applies to the representation the client gets
// (decoded when it does not accept gzip). If-Range (§13.1.5) that does
// not match the entry (strong ETag comparison, or the exact Last-Modified
// date) means the whole 200. A Range in another unit, one that does not
// parse, one on HEAD, or more than maxRanges ranges is ignored (the whole
// 200), as §14.2 allows. On a miss the origin is asked for the whole
// response (Range is not forwarded, so nothing partial is ever stored:
// a 206 from the origin is not stored either), the
// client gets the whole 200, and the next request gets its range from
// the stored entry.

// maxRanges bounds the ranges of one request; more are ignored (many
// small or overlapping ranges are a known denial of service, §14.2).
const maxRanges = 32

// hasRange reports whether r asks for a range the cache may serve from a
// stored entry: a GET with a Range field.
func hasRange(r *http.Request) bool {
	return r.Method == http.MethodGet && len(r.Header["Range"]) > 0
}

type byteRange struct{ start, end int64 } // inclusive

// parseRange parses a bytes Range field for a representation of size n.
// ok is false when the field is to be ignored (another unit, bad syntax,
// too many ranges); an empty result with ok means none is satisfiable.
func parseRange(v string, n int64) (rs []byteRange, ok bool) {
	unit, set, found := strings.Cut(v, "=")
	if !found || !strings.EqualFold(strings.TrimSpace(unit), "bytes") {
		return nil, false
	}
	count := 0
	for spec := range strings.SplitSeq(set, ",") {
		spec = strings.TrimSpace(spec)
		if spec == "" {
			continue // RFC 9110 §5.6.1: empty list elements are ignored
		}
		if count++; count > maxRanges {
			return nil, false
		}
		first, last, found := strings.Cut(spec, "-")
		if !found {
			return nil, false
		}
		first, last = strings.TrimSpace(first), strings.TrimSpace(last)
		if first == "" {
			// suffix-range: the last N bytes.
			sfx, err := parseDigits(last)
			if err != nil {
				return nil, false
			}
			if sfx == 0 || n == 0 {
				continue // unsatisfiable
			}
			rs = append(rs, byteRange{max(n-sfx, 0), n - 1})
			continue
		}
		a, err := parseDigits(first)
		if err != nil {
			return nil, false
		}
		b := n - 1
		if last != "" {
			if b, err = parseDigits(last); err != nil || b < a {
				return nil, false
			}
			b = min(b, n-1)
		}
		if a >= n {
			continue // unsatisfiable
		}
		rs = append(rs, byteRange{a, b})
	}
	if count == 0 {
		return nil, false
	}
	return coalesce(rs), true
}

// parseDigits parses 1*DIGIT without sign or overflow.
func parseDigits(s string) (int64, error) {
	if s == "" || len(s) > 18 {
		return 0, strconv.ErrSyntax
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, strconv.ErrSyntax
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

// coalesce merges overlapping or adjacent ranges (in ascending order)
// when there are any; otherwise the client's order is kept.
func coalesce(rs []byteRange) []byteRange {
	if len(rs) < 2 {
		return rs
	}
	sorted := slices.Clone(rs)
	slices.SortFunc(sorted, func(a, b byteRange) int { return int(min(max(a.start-b.start, -1), 1)) })
	overlap := false
	for i := 1; i < len(sorted); i++ {
		if sorted[i].start <= sorted[i-1].end+1 {
			overlap = true
			break
		}
	}
	if !overlap {
		return rs
	}
	out := sorted[:1]
	for _, r := range sorted[1:] {
		if last := &out[len(out)-1]; r.start <= last.end+1 {
			last.end = max(last.end, r.end)
		} else {
			out = append(out, r)
		}
	}
	return out
}

// ifRangeMatches evaluates If-Range against the served header h
// (RFC 9110 §13.1.5): an entity-tag must match the ETag strongly; a date
// must equal Last-Modified exactly. No If-Range matches.
func ifRangeMatches(reqH, h http.Header) bool {
	v, ok := reqH["If-Range"]
	if !ok {
		return true
	}
	ir := strings.TrimSpace(strings.Join(v, ","))
	if strings.HasPrefix(ir, `"`) || strings.HasPrefix(ir, "W/") {
		et := h.Get("Etag")
		return !strings.HasPrefix(ir, "W/") && !strings.HasPrefix(et, "W/") && et != "" && ir == et
	}
	lm := h.Get("Last-Modified")
	if lm == "" {
		return false
	}
	t1, ok1 := parseHTTPDate(ir, time.Time{})
	t2, ok2 := parseHTTPDate(lm, time.Time{})
	return ok1 && ok2 && t1.Equal(t2)
}

// representation answers r from e when the stored body must be adapted:
// decoded for a client that does not accept gzip, and cut to r's Range.
// h already holds the entry's fields (and Age, Cache-Status); it is
// completed here (Content-Length, Content-Range, Content-Type of a
// multipart answer). A gzip body that cannot be decoded is a 502.
func (p *Proxy) representation(h http.Header, r *http.Request, e *entry, status int) (int, []byte) {
	body, err := p.encodeStored(h, r, e.rec.Body)
	if err != nil {
		p.log.Warn("httpcache: stored gzip body cannot be decoded", "key", e.rec.Key, "err", err)
		for k := range h {
			if k != "Cache-Status" {
				delete(h, k)
			}
		}
		msg := []byte("502 bad gateway: the stored response cannot be decoded\n")
		h["Content-Type"] = []string{"text/plain; charset=utf-8"}
		h["Content-Length"] = []string{strconv.Itoa(len(msg))}
		return http.StatusBadGateway, msg
	}
	if status == http.StatusOK && hasRange(r) {
		status, body = ranged(h, r, body)
	}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	if r.Method == http.MethodHead {
		return status, nil
	}
	return status, body
}

// ranged cuts body, the whole representation, to r's Range, setting h's
// Content-Range (and Content-Type for several ranges), and returns the
// status and the body to send.
func ranged(h http.Header, r *http.Request, body []byte) (int, []byte) {
	n := int64(len(body))
	rs, ok := parseRange(strings.Join(r.Header["Range"], ","), n)
	if !ok || !ifRangeMatches(r.Header, h) {
		return http.StatusOK, body
	}
	h["Accept-Ranges"] = []string{"bytes"}
	switch len(rs) {
	case 0:
		h["Content-Range"] = []string{fmt.Sprintf("bytes */%d", n)}
		delete(h, "Content-Encoding")
		h["Content-Type"] = []string{"text/plain; charset=utf-8"}
		return http.StatusRequestedRangeNotSatisfiable, []byte("416 range not satisfiable\n")
	case 1:
		rg := rs[0]
		h["Content-Range"] = []string{fmt.Sprintf("bytes %d-%d/%d", rg.start, rg.end, n)}
		return http.StatusPartialContent, body[rg.start : rg.end+1]
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	var rnd [12]byte
	rand.Read(rnd[:])
	mw.SetBoundary("firstrender-" + hex.EncodeToString(rnd[:]))
	ct := h.Get("Content-Type")
	for _, rg := range rs {
		ph := textproto.MIMEHeader{}
		if ct != "" {
			ph.Set("Content-Type", ct)
		}
		ph.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", rg.start, rg.end, n))
		pw, _ := mw.CreatePart(ph)
		pw.Write(body[rg.start : rg.end+1])
	}
	mw.Close()
	h["Content-Type"] = []string{"multipart/byteranges; boundary=" + mw.Boundary()}
	delete(h, "Content-Range")
	return http.StatusPartialContent, buf.Bytes()
}
