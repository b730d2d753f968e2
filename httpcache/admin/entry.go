package admin

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/firstrender/firstrender/httpcache/liveview/phxtoken"
	"github.com/firstrender/firstrender/store"
)

// maxInflate bounds a decoded body (tokens are looked for in all of it,
// the reply shows MaxBody): a compression bomb stops there.
const maxInflate = 32 << 20

// maxTokens bounds the tokens one entry reply decodes.
const maxTokens = 256

// decoder is the read-side knowledge of Phoenix tokens.
type decoder struct {
	signer         *phxtoken.Signer
	liveViewMaxAge time.Duration // data-phx-session / data-phx-static
	tokenMaxAge    time.Duration // others: 0 = embedded
	now            func() time.Time
}

// detail builds GET entry for key and variant.
func (h *Handler) detail(ctx context.Context, key, variant string, decode bool) (*EntryDetail, error) {
	now := h.now()
	metas, err := h.cfg.Store.Variants(ctx, key)
	if err != nil {
		return nil, storeErr(err)
	}
	var meta *store.Meta
	variants := make([]string, 0, len(metas))
	for i := range metas {
		variants = append(variants, metas[i].Variant)
		if metas[i].Variant == variant {
			meta = &metas[i]
		}
	}
	if meta == nil {
		return nil, &Error{Status: http.StatusNotFound, Code: "not_found", Message: fmt.Sprintf("no entry for key %q variant %q (%d variants stored)", key, variant, len(metas))}
	}
	d := &EntryDetail{Entry: entryOf(meta, now, h.cfg.Hits), Variants: variants, Headers: map[string][]string{}}
	if meta.Corrupt {
		return d, nil
	}
	rec, err := h.cfg.Store.Get(ctx, key, variant)
	var ce *store.CorruptError
	switch {
	case errors.As(err, &ce):
		d.Entry = entryOf(&store.Meta{Key: key, Variant: variant, Size: meta.Size, Corrupt: true}, now, nil)
		return d, nil
	case err != nil:
		return nil, storeErr(err)
	}
	if rec.Header != nil {
		d.Headers = rec.Header
	}
	d.Annotations = rec.Annotations
	body := rec.Body
	plain, enc, derr := decodeBody(http.Header(rec.Header), body)
	if derr != nil {
		d.DecodeError = derr.Error()
	}
	shown := body
	if decode && derr == nil && enc != "" {
		shown = plain
		d.Decoded = enc
	}
	d.Body, d.BodyBase64, d.Truncated = bodyText(shown)
	for _, f := range parseFindings(rec.Annotations[annFindings]) {
		d.Findings = append(d.Findings, explain(f))
	}
	d.Expiry = expiryOf(rec, now)
	if derr == nil {
		d.Tokens = h.dec.scan(plain)
	}
	return d, nil
}

// decodeBody removes the body's Content-Encoding (gzip, x-gzip, deflate,
// or a list of them; identity is nothing to do). enc names what was
// removed ("" when nothing was). An encoding it cannot read (br, zstd) is
// an error, and so is a body that does not decode within maxInflate.
func decodeBody(h http.Header, body []byte) (plain []byte, enc string, err error) {
	var codings []string
	for _, v := range h.Values("Content-Encoding") {
		for c := range strings.SplitSeq(v, ",") {
			if c = strings.ToLower(strings.TrimSpace(c)); c != "" && c != "identity" {
				codings = append(codings, c)
			}
		}
	}
	plain = body
	// RFC 9110 §8.4: codings are listed in the order applied; undo from the end.
	for i := len(codings) - 1; i >= 0; i-- {
		var r io.Reader
		switch c := codings[i]; c {
		case "gzip", "x-gzip":
			zr, err := gzip.NewReader(bytes.NewReader(plain))
			if err != nil {
				return body, "", fmt.Errorf("body: %s: %v", c, err)
			}
			r = zr
		case "deflate":
			// RFC 9110 §8.4.1.2: zlib; some servers send raw deflate.
			if zr, err := zlib.NewReader(bytes.NewReader(plain)); err == nil {
				r = zr
			} else {
				r = flate.NewReader(bytes.NewReader(plain))
			}
		default:
			return body, "", fmt.Errorf("body: content-coding %q cannot be decoded here", c)
		}
		out, err := io.ReadAll(io.LimitReader(r, maxInflate+1))
		if err != nil {
			return body, "", fmt.Errorf("body: %s: %v", codings[i], err)
		}
		if len(out) > maxInflate {
			return body, "", fmt.Errorf("body: %s: decodes to more than %d bytes", codings[i], maxInflate)
		}
		plain = out
	}
	return plain, strings.Join(codings, ", "), nil
}

// bodyText caps b at MaxBody (on a rune boundary when it is text) and
// returns it as text, or base64 when it is not valid UTF-8.
func bodyText(b []byte) (s string, isBase64, truncated bool) {
	if len(b) > MaxBody {
		truncated = true
		cut := MaxBody
		for i := 0; i < utf8.UTFMax && cut > 0 && !utf8.RuneStart(b[cut]); i++ {
			cut--
		}
		if utf8.Valid(b[:cut]) {
			return string(b[:cut]), false, true
		}
		b = b[:MaxBody]
	}
	if utf8.Valid(b) {
		return string(b), false, truncated
	}
	return base64.StdEncoding.EncodeToString(b), true, truncated
}

// findingTexts explains each lint kind (docs/liveview.md has more).
var findingTexts = map[string][2]string{
	"csrf-meta": {"The page carries a per-session CSRF token in <meta name=\"csrf-token\">; served from a shared cache every visitor gets the same token, and their LiveView sockets or form posts fail.",
		"Set the csrf-meta policy to strip (the content is blanked), or render the page without the token for anonymous visitors."},
	"set-cookie": {"The response sets a cookie; a shared cache would hand one visitor's cookie (often a session) to everyone.",
		"Purge the entry; set the set-cookie policy to strip or refuse, and make the origin not set cookies on public pages."},
	"vary-cookie": {"The response varies on Cookie, so nearly every visitor gets a separate entry and the hit ratio collapses.",
		"Remove Vary: Cookie at the origin for public pages, or set the vary-cookie policy to strip."},
	"user-session": {"A data-phx-session token carries values from one visitor's session: this first render belongs to that visitor and must not be shared.",
		"Purge the entry now, then keep per-user data out of the LiveView session of public pages (policy refuse)."},
	"token-expiring": {"A Phoenix token in the page expires (minus the safety margin) before the page could be served; LiveView would refuse to join.",
		"Nothing to purge; check the origin's clock and token max age."},
	"bad-token": {"A data-phx-session/data-phx-static value or SFMyNTY. string does not parse as a Phoenix token, so its expiry is unknown.",
		"Check the page at the origin; purge the entry if its LiveView does not connect."},
	"encrypted-token": {"An encrypted Phoenix token: its expiry cannot be read without the secret, so the cache cannot cap the entry's life by it.",
		"Give the entry a short TTL, or render signed (not encrypted) tokens on cached pages."},
	"bad-signature": {"A token does not verify with the configured secret_key_base and salt: LiveView will refuse the join.",
		"Purge the entry; check that the configured secret and signing salt match the origin."},
	"encoded-body": {"The HTML body has a Content-Encoding the linter cannot read, so its tokens were not checked.",
		"Let the cache request identity or gzip from the origin."},
}

func explain(f lintFinding) Finding {
	out := Finding{Kind: f.Kind, Policy: f.Action, Detail: f.Message}
	if t, ok := findingTexts[f.Kind]; ok {
		out.Explanation, out.Action = t[0], t[1]
	} else {
		out.Explanation = "A lint finding this version of the admin API does not describe."
		out.Action = "See docs/liveview.md."
	}
	return out
}

// expiryOf says when rec stops being fresh and why.
func expiryOf(rec *store.Record, now time.Time) Expiry {
	ann := rec.Annotations
	respTime := rec.ResponseTime
	if respTime.IsZero() {
		respTime = rec.StoredTime
	}
	var ex Expiry
	p, ok := parsePolicy(ann[annPolicy])
	if ok {
		at := respTime.Add(p.lifetime - p.initialAge)
		ex.At = &at
		cc := strings.ToLower(strings.Join(http.Header(rec.Header).Values("Cache-Control"), ","))
		switch {
		case p.heuristic:
			ex.Reason = "heuristic"
			ex.Detail = "no explicit lifetime: a fraction of the time since Last-Modified"
		case strings.Contains(cc, "s-maxage"):
			ex.Reason = "s-maxage"
		case strings.Contains(cc, "max-age"):
			ex.Reason = "max-age"
		case http.Header(rec.Header).Get("Expires") != "":
			ex.Reason = "expires"
		default:
			ex.Reason = "default-ttl"
		}
		if ex.Detail == "" {
			ex.Detail = "lifetime " + strconv.FormatInt(int64(p.lifetime/time.Second), 10) + "s, initial age " + strconv.FormatInt(int64(p.initialAge/time.Second), 10) + "s"
		}
		if p.swr > 0 || p.sie > 0 {
			ex.Detail += fmt.Sprintf("; stale-while-revalidate %ds, stale-if-error %ds", int64(p.swr/time.Second), int64(p.sie/time.Second))
		}
		if p.noCache {
			ex.Detail += "; no-cache: validated before every use"
		}
	} else {
		ex.Reason = "none"
		if !rec.Expires.IsZero() {
			at := rec.Expires
			ex.At = &at
			ex.Detail = "no freshness policy recorded; the store's removal time"
		}
	}
	if na, ok := parseTime(ann[annNotAfter]); ok && (ex.At == nil || na.Before(*ex.At)) {
		ex.At = &na
		ex.Reason = "token-cap"
		ex.Detail = "the earliest Phoenix token in the page expires (minus the margin) before the HTTP lifetime ends"
	}
	if t, ok := ann[AnnotationSoftPurged]; ok {
		ex.Detail = strings.TrimPrefix(ex.Detail+"; soft-purged at "+t, "; ")
	}
	return ex
}

// scan decodes every Phoenix token in body: every SFMyNTY.-prefixed
// value, and the values of data-phx-session and data-phx-static (which
// may hold tokens of another shape), in page order, at most maxTokens.
func (d *decoder) scan(body []byte) []Token {
	type found struct {
		off   int
		where string
		raw   string
	}
	var fs []found
	seen := map[int]bool{}
	for _, attr := range []string{"data-phx-session", "data-phx-static"} {
		pat := []byte(attr + "=")
		for pos := 0; len(fs) < maxTokens; {
			i := bytes.Index(body[pos:], pat)
			if i < 0 {
				break
			}
			vs := pos + i + len(pat)
			pos = vs
			if vs >= len(body) || (body[vs] != '"' && body[vs] != '\'') {
				continue
			}
			ve := bytes.IndexByte(body[vs+1:], body[vs])
			if ve <= 0 {
				continue // unterminated or "" (nested LiveViews)
			}
			fs = append(fs, found{vs + 1, attr, string(body[vs+1 : vs+1+ve])})
			seen[vs+1] = true
		}
	}
	pfx := []byte(phxtoken.TokenPrefix)
	for pos := 0; len(fs) < maxTokens; {
		i := bytes.Index(body[pos:], pfx)
		if i < 0 {
			break
		}
		start := pos + i
		end := start + len(pfx)
		for end < len(body) && isTokenByte(body[end]) {
			end++
		}
		pos = end
		if seen[start] || (start > 0 && isTokenByte(body[start-1])) {
			continue
		}
		where := "body"
		if j := bytes.LastIndex(body[max(0, start-200):start], []byte("csrf-token")); j >= 0 {
			where = "csrf-meta"
		}
		fs = append(fs, found{start, where, string(body[start:end])})
	}
	// Page order.
	for i := 1; i < len(fs); i++ {
		for j := i; j > 0 && fs[j].off < fs[j-1].off; j-- {
			fs[j], fs[j-1] = fs[j-1], fs[j]
		}
	}
	out := make([]Token, 0, len(fs))
	for _, f := range fs {
		t := d.decode(f.raw, f.where)
		t.Offset = f.off
		out = append(out, t)
	}
	return out
}

func isTokenByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '='
}

// maxRawToken caps Token.Raw in replies.
const maxRawToken = 8 << 10

// decode describes one token found at where ("posted" for POST decode).
func (d *decoder) decode(raw, where string) Token {
	t := Token{Where: where, Raw: raw, Signature: "not-checked"}
	if len(t.Raw) > maxRawToken {
		t.Raw = t.Raw[:maxRawToken]
	}
	pt, err := phxtoken.ParseToken(raw)
	if err != nil {
		t.Kind = "invalid"
		t.Error = err.Error()
		return t
	}
	t.Algorithm = pt.Protected
	if pt.Encrypted {
		t.Kind = "encrypted"
		return t
	}
	t.Kind = "signed"
	sig := phxtoken.NotChecked
	if d.signer != nil {
		sig = d.signer.Verify(raw)
	}
	switch sig {
	case phxtoken.Valid:
		t.Signature = "verified"
	case phxtoken.Invalid:
		t.Signature = "invalid"
	}
	verifier := d.tokenMaxAge
	if where == "data-phx-session" || where == "data-phx-static" {
		verifier = d.liveViewMaxAge
	}
	desc := phxtoken.Describe(pt, sig, verifier)
	if !pt.SignedAt.IsZero() {
		sa := pt.SignedAt
		t.SignedAt = &sa
	}
	if !pt.NoExpiry {
		t.MaxAgeS = int64(pt.MaxAge / time.Second)
	}
	var exp time.Time
	if verifier > 0 {
		t.VerifierMaxAgeS = int64(verifier / time.Second)
		exp = pt.ExpiresAfter(verifier)
	} else {
		exp = pt.Expires()
	}
	if !exp.IsZero() {
		t.Expires = &exp
		t.Expired = !d.now().Before(exp)
	}
	t.Elixir = desc.Elixir
	t.JSON = desc.Data
	return t
}
