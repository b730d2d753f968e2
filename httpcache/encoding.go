package httpcache

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"strings"
)

// Content codings.
//
// firstrender serves two codings: gzip and identity (the standard library
// cannot decode br or zstd, and a cache must be able to decode whatever it
// stores for clients that do not accept it). So:
//
//   - the Accept-Encoding of every request that goes through the cache is
//     normalized before anything is keyed or forwarded: "gzip" when the
//     client accepts gzip (or x-gzip, or "*") with a non-zero q, else no
//     Accept-Encoding at all (identity). An origin that varies on
//     Accept-Encoding thus makes at most two variants, and a garbage
//     Accept-Encoding none of its own;
//   - a response in another coding (br, deflate, zstd...) is not stored
//     (detail=content-encoding);
//   - a gzip response, stored or fresh from the origin, is sent encoded
//     only to clients that accept gzip; others get it decoded (no
//     Content-Encoding, a weak ETag, Vary: Accept-Encoding), on hits and
//     on misses alike.

const reasonContentEncoding = "content-encoding"

// qualityZero reports whether an Accept-Encoding member's parameters give
// it q=0 (RFC 9110 §12.4.2: "q=0", "q=0.", "q=0.000").
func qualityZero(params string) bool {
	for p := range strings.SplitSeq(params, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		v = strings.TrimSpace(v)
		if v == "" || v[0] != '0' {
			return false
		}
		return strings.Trim(v[1:], ".0") == "" // "0", "0.", "0.00"
	}
	return false
}

// acceptsGzip reports whether Accept-Encoding field lines accept gzip
// (RFC 9110 §12.5.3): a gzip or x-gzip member with q > 0, or "*" with
// q > 0 when gzip is not named. No field accepts identity only.
func acceptsGzip(lines []string) bool {
	star, named := false, false
	for _, line := range lines {
		for m := range strings.SplitSeq(line, ",") {
			coding, params, _ := strings.Cut(m, ";")
			coding = strings.TrimSpace(coding)
			switch {
			case strings.EqualFold(coding, "gzip"), strings.EqualFold(coding, "x-gzip"):
				if qualityZero(params) {
					return false
				}
				named = true
			case coding == "*":
				star = !qualityZero(params)
			}
		}
	}
	return named || star
}

// normalizeAcceptEncoding returns the Accept-Encoding a request going
// through the cache is forwarded and keyed with ("gzip" or "" for none)
// and whether that differs from lines.
func normalizeAcceptEncoding(lines []string) (string, bool) {
	if len(lines) == 1 && lines[0] == "gzip" {
		return "gzip", false // the common case (Go clients, most caches): no allocation
	}
	if acceptsGzip(lines) {
		return "gzip", true
	}
	return "", len(lines) > 0
}

// isGzip reports whether a Content-Encoding field says gzip (and nothing
// else).
func isGzip(h http.Header) bool {
	v := h["Content-Encoding"]
	if len(v) != 1 {
		return false
	}
	ce := strings.TrimSpace(v[0])
	return strings.EqualFold(ce, "gzip") || strings.EqualFold(ce, "x-gzip")
}

// storableEncoding reports whether a response's Content-Encoding is one
// the cache can serve to every client: none, identity or gzip.
func storableEncoding(h http.Header) bool {
	v := h["Content-Encoding"]
	if len(v) == 0 {
		return true
	}
	if isGzip(h) {
		return true
	}
	return len(v) == 1 && (strings.TrimSpace(v[0]) == "" || strings.EqualFold(strings.TrimSpace(v[0]), "identity"))
}

// decodedLimit bounds what a gzip body may decode to when it is decoded
// for a client that does not accept gzip (a gzip bomb from the origin must
// not exhaust memory): eight times MaxObjectSize, at least 1 MiB.
func (p *Proxy) decodedLimit() int64 { return max(8*p.cfg.MaxObjectSize, 1<<20) }

var errDecodedTooLarge = errors.New("httpcache: gzip body decodes to more than the limit")

// gunzipBytes decodes a whole gzip body of at most limit decoded bytes.
func gunzipBytes(b []byte, limit int64) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	out, err := io.ReadAll(io.LimitReader(zr, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(out)) > limit {
		return nil, errDecodedTooLarge
	}
	return out, nil
}

// decodedHeader adjusts h, the header of a gzip response about to be sent
// decoded: no Content-Encoding or Content-Length (the caller sets the new
// one when it knows it), a weak ETag (RFC 9110 §8.8.3: the decoded
// representation is not byte-identical), and Vary: Accept-Encoding.
func decodedHeader(h http.Header) {
	delete(h, "Content-Encoding")
	delete(h, "Content-Length")
	if et := h.Get("Etag"); et != "" && !strings.HasPrefix(et, "W/") {
		h["Etag"] = []string{"W/" + et}
	}
	addVaryAcceptEncoding(h)
}

// addVaryAcceptEncoding makes h say Vary: Accept-Encoding (for caches
// downstream): the cache serves the response encoded or not by the
// request's Accept-Encoding. It does not modify the slices of h's values.
func addVaryAcceptEncoding(h http.Header) {
	names, star := parseVary(h)
	if star {
		return
	}
	for _, n := range names {
		if n == "Accept-Encoding" {
			return
		}
	}
	h["Vary"] = []string{strings.Join(append(names, "Accept-Encoding"), ", ")}
}

// encodeStored adapts a stored entry's body to the request r: a gzip
// entry for a client that does not accept gzip is decoded (and h
// adjusted, see decodedHeader); otherwise body is returned as it is. It
// fails when a gzip body cannot be decoded within the limit.
func (p *Proxy) encodeStored(h http.Header, r *http.Request, body []byte) ([]byte, error) {
	if !isGzip(h) {
		return body, nil
	}
	if acceptsGzip(r.Header["Accept-Encoding"]) {
		addVaryAcceptEncoding(h)
		return body, nil
	}
	plain, err := gunzipBytes(body, p.decodedLimit())
	if err != nil {
		return nil, err
	}
	decodedHeader(h)
	return plain, nil
}

// decodeForClient makes resp, an origin response for ex, fit ex's client:
// a gzip body for a client that does not accept gzip is decoded while it
// streams (the copy being stored, taken below, stays encoded).
func (p *Proxy) decodeForClient(resp *http.Response, ex *exchange) {
	if !isGzip(resp.Header) || resp.Body == nil || resp.Body == http.NoBody {
		return
	}
	if acceptsGzip(ex.in.Header["Accept-Encoding"]) {
		if ex.key != "" {
			addVaryAcceptEncoding(resp.Header)
		}
		return
	}
	decodedHeader(resp.Header)
	resp.ContentLength = -1
	resp.Uncompressed = true
	resp.Body = &gunzipBody{src: resp.Body, limit: p.decodedLimit()}
}

// gunzipBody decodes a gzip stream as it is read, failing beyond limit
// decoded bytes. Closing it closes the source.
type gunzipBody struct {
	src   io.ReadCloser
	zr    *gzip.Reader
	n     int64
	limit int64
	err   error
}

func (g *gunzipBody) Read(b []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	if g.zr == nil {
		zr, err := gzip.NewReader(g.src)
		if err != nil {
			g.err = err
			return 0, err
		}
		g.zr = zr
	}
	n, err := g.zr.Read(b)
	g.n += int64(n)
	if g.n > g.limit {
		g.err = errDecodedTooLarge
		return 0, g.err
	}
	if err == io.EOF {
		// Drain the source so a copy being stored sees its end.
		if _, derr := io.Copy(io.Discard, g.src); derr != nil {
			err = derr
		}
	}
	if err != nil {
		g.err = err
	}
	return n, err
}

func (g *gunzipBody) Close() error { return g.src.Close() }
