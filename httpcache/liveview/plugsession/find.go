package plugsession

import (
	"bytes"
	"errors"
	"fmt"
	"html"
	"strings"
)

// SpanKind says where in the page a CSRF token occurrence is.
type SpanKind uint8

const (
	// InMeta is the content of <meta name="csrf-token" content="…">
	// (Phoenix layouts: get_csrf_token/0).
	InMeta SpanKind = iota + 1
	// InDataCSRF is a data-csrf="…" attribute (Phoenix.HTML and
	// Phoenix.Component links with a non-GET method).
	InDataCSRF
	// InFormInput is the value of <input name="_csrf_token" value="…">
	// (Phoenix.HTML.Form and Phoenix.Component forms).
	InFormInput
)

func (k SpanKind) String() string {
	switch k {
	case InMeta:
		return "meta csrf-token"
	case InDataCSRF:
		return "data-csrf"
	case InFormInput:
		return "_csrf_token input"
	}
	return "unknown"
}

// Span is one occurrence of the CSRF token in a page: body[Start:End] is
// the token text.
type Span struct {
	Start, End int
	Kind       SpanKind
}

// Errors of [FindTokens] and [NewPage]; a [*FindError] wraps one of them.
var (
	// ErrNoToken: the page has no CSRF token occurrence.
	ErrNoToken = errors.New("plugsession: no CSRF token in the page")
	// ErrInconsistent: occurrences differ from each other or from the
	// expected token, or the token is not bound to the origin's session.
	ErrInconsistent = errors.New("plugsession: inconsistent CSRF tokens")
	// ErrUnaccounted: the token text (or the session's unmasked token)
	// appears outside the recognised places, where a splice would miss it.
	ErrUnaccounted = errors.New("plugsession: CSRF token text outside the recognised places")
	// ErrEscaped: a recognised place holds the token with HTML character
	// references, which no splice of the raw bytes can reproduce.
	ErrEscaped = errors.New("plugsession: HTML-escaped CSRF token")
	// ErrHostToken: the page holds a per-host token
	// (get_csrf_token_for/1 with a URL that has a host), which this
	// package does not splice.
	ErrHostToken = errors.New("plugsession: per-host CSRF token")
)

// FindError reports why a page's token occurrences cannot be spliced.
type FindError struct {
	Offset int // byte offset in the body of the offending text, or -1
	Msg    string
	Err    error // one of the sentinels above, or ErrMalformedToken
}

func (e *FindError) Error() string {
	if e.Offset < 0 {
		return e.Err.Error() + ": " + e.Msg
	}
	return fmt.Sprintf("%s: at byte %d: %s", e.Err.Error(), e.Offset, e.Msg)
}

// Unwrap returns the sentinel.
func (e *FindError) Unwrap() error { return e.Err }

func findErr(err error, off int, format string, args ...any) *FindError {
	return &FindError{Offset: off, Msg: fmt.Sprintf(format, args...), Err: err}
}

// FindOptions tell [FindTokens] what the origin rendered.
type FindOptions struct {
	// Token is the masked token the origin rendered. If empty, it is the
	// content of the first csrf-token meta tag, else of the first
	// recognised place.
	Token string
	// SessionToken, when set, is the unmasked token of the session the
	// origin created with the page (from its Set-Cookie). Token must then be
	// a masking of it, and the unmasked text must not appear in the page.
	SessionToken string
}

// FindTokens returns every occurrence of the page's CSRF token, in order:
// the content of <meta name="csrf-token">, data-csrf attributes and the
// value of <input name="_csrf_token">, found by an HTML tag scan (comments,
// and the contents of script, style, textarea, title and similar raw-text
// elements, are not markup). It refuses, with a [*FindError], a page where
// the occurrences are not one and the same well-formed masked token
// ([ErrInconsistent], [ErrMalformedToken], [ErrHostToken]), where the token
// text also appears elsewhere (in a script, a comment, an attribute of
// another name: [ErrUnaccounted]), or where a recognised place spells it
// with character references ([ErrEscaped]). A page without any occurrence
// gives [ErrNoToken]. body is not modified or retained.
func FindTokens(body []byte, opt FindOptions) ([]Span, error) {
	var spans []Span
	var vals []string
	err := scanTags(body, func(t *tag) error {
		add := func(a *attr, kind SpanKind) error {
			raw := string(body[a.start:a.end])
			if strings.IndexByte(raw, '&') >= 0 {
				if un := html.UnescapeString(raw); un != raw {
					return findErr(ErrEscaped, a.start, "%s value %q uses character references", kind, raw)
				}
			}
			spans = append(spans, Span{Start: a.start, End: a.end, Kind: kind})
			vals = append(vals, raw)
			return nil
		}
		if a := t.get("data-csrf"); a != nil {
			if err := add(a, InDataCSRF); err != nil {
				return err
			}
		}
		switch t.name {
		case "meta":
			if n := t.get("name"); n != nil && strings.EqualFold(html.UnescapeString(string(body[n.start:n.end])), "csrf-token") {
				c := t.get("content")
				if c == nil {
					return findErr(ErrMalformedToken, t.start, "csrf-token meta tag without content")
				}
				return add(c, InMeta)
			}
		case "input":
			if n := t.get("name"); n != nil && html.UnescapeString(string(body[n.start:n.end])) == SessionKey {
				v := t.get("value")
				if v == nil {
					return findErr(ErrMalformedToken, t.start, "_csrf_token input without value")
				}
				return add(v, InFormInput)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Spans from one tag (data-csrf plus meta content) may come out of
	// order; keep them sorted by offset.
	sortSpans(spans, vals)
	token := opt.Token
	if token == "" {
		for i, s := range spans {
			if s.Kind == InMeta {
				token = vals[i]
				break
			}
		}
		if token == "" && len(spans) > 0 {
			token = vals[0]
		}
	}
	if token == "" {
		return nil, findErr(ErrNoToken, -1, "no csrf-token meta tag, data-csrf attribute or _csrf_token input")
	}
	if IsHostToken(token) {
		return nil, findErr(ErrHostToken, -1, "the page's token is per-host (get_csrf_token_for/1 with a host)")
	}
	if _, err := Unmask(token); err != nil {
		return nil, findErr(ErrMalformedToken, -1, "%v", err)
	}
	for i, s := range spans {
		if vals[i] == token {
			continue
		}
		if IsHostToken(vals[i]) {
			return nil, findErr(ErrHostToken, s.Start, "%s holds a per-host token (get_csrf_token_for/1 with a host)", s.Kind)
		}
		return nil, findErr(ErrInconsistent, s.Start, "%s holds a token different from %q", s.Kind, token)
	}
	if len(spans) == 0 {
		return nil, findErr(ErrNoToken, -1, "token %q does not occur in a recognised place", token)
	}
	if opt.SessionToken != "" {
		if !ValidMasked(opt.SessionToken, token) {
			return nil, findErr(ErrInconsistent, spans[0].Start, "the page's token is not a masking of the session's token")
		}
		if i := bytes.Index(body, []byte(opt.SessionToken)); i >= 0 {
			return nil, findErr(ErrUnaccounted, i, "the session's unmasked token appears in the page")
		}
	}
	// Every occurrence of the token text must be one of the spans.
	tb := []byte(token)
	next := 0
	for from := 0; ; {
		i := bytes.Index(body[from:], tb)
		if i < 0 {
			break
		}
		i += from
		for next < len(spans) && spans[next].Start < i {
			next++
		}
		if next >= len(spans) || spans[next].Start != i {
			return nil, findErr(ErrUnaccounted, i, "the token appears outside a csrf-token meta tag, data-csrf attribute or _csrf_token input (%q)", context(body, i, len(tb)))
		}
		from = i + 1
	}
	return spans, nil
}

func context(body []byte, at, n int) string {
	lo, hi := max(0, at-40), min(len(body), at+n+20)
	return string(body[lo:hi])
}

func sortSpans(spans []Span, vals []string) {
	// Insertion sort: spans are nearly sorted and few.
	for i := 1; i < len(spans); i++ {
		for j := i; j > 0 && spans[j].Start < spans[j-1].Start; j-- {
			spans[j], spans[j-1] = spans[j-1], spans[j]
			vals[j], vals[j-1] = vals[j-1], vals[j]
		}
	}
}

// tag is a start tag found by scanTags; attribute values are byte ranges
// of the body (without quotes).
type tag struct {
	name  string // lower case
	start int
	attrs []attr
}

type attr struct {
	name       string // lower case
	start, end int    // value range; start == end for an empty or missing value
}

// get returns the first attribute called name (HTML: later duplicates are
// ignored), or nil.
func (t *tag) get(name string) *attr {
	for i := range t.attrs {
		if t.attrs[i].name == name {
			return &t.attrs[i]
		}
	}
	return nil
}

// rawText are elements whose content is not markup (HTML §13.1.2: raw text
// and escapable raw text elements, plus noscript, iframe, noembed,
// noframes, xmp and plaintext as the tokenizer treats them).
var rawText = map[string]bool{
	"script": true, "style": true, "textarea": true, "title": true,
	"xmp": true, "iframe": true, "noembed": true, "noframes": true, "noscript": true, "plaintext": true,
}

// scanTags calls fn for each start tag of an HTML document, following the
// HTML tokenizer closely enough for attribute values to be found where a
// browser finds them: comments, doctype, end tags and processing
// instructions are skipped, raw-text element contents are skipped to their
// end tag.
func scanTags(b []byte, fn func(*tag) error) error {
	var t tag
	for i := 0; i < len(b); {
		lt := bytes.IndexByte(b[i:], '<')
		if lt < 0 {
			return nil
		}
		i += lt
		rest := b[i:]
		switch {
		case bytes.HasPrefix(rest, []byte("<!--")):
			end := bytes.Index(rest[4:], []byte("-->"))
			if end < 0 {
				return nil
			}
			i += 4 + end + 3
			continue
		case len(rest) > 1 && (rest[1] == '!' || rest[1] == '?' || rest[1] == '/'):
			end := bytes.IndexByte(rest, '>')
			if end < 0 {
				return nil
			}
			i += end + 1
			continue
		case len(rest) > 1 && isAlpha(rest[1]):
		default:
			i++
			continue
		}
		// Start tag.
		t = tag{start: i, attrs: t.attrs[:0]}
		j := i + 1
		for j < len(b) && !isSpace(b[j]) && b[j] != '/' && b[j] != '>' {
			j++
		}
		t.name = strings.ToLower(string(b[i+1 : j]))
		closed := false
		for j < len(b) && !closed {
			for j < len(b) && (isSpace(b[j]) || b[j] == '/') {
				j++
			}
			if j >= len(b) {
				break
			}
			if b[j] == '>' {
				j++
				closed = true
				break
			}
			ns := j
			j++ // an attribute name may start with '='
			for j < len(b) && !isSpace(b[j]) && b[j] != '/' && b[j] != '>' && b[j] != '=' {
				j++
			}
			a := attr{name: strings.ToLower(string(b[ns:j])), start: j, end: j}
			k := j
			for k < len(b) && isSpace(b[k]) {
				k++
			}
			if k < len(b) && b[k] == '=' {
				k++
				for k < len(b) && isSpace(b[k]) {
					k++
				}
				switch {
				case k < len(b) && (b[k] == '"' || b[k] == '\''):
					q := b[k]
					end := bytes.IndexByte(b[k+1:], q)
					if end < 0 {
						return nil // unterminated: the browser sees no tag
					}
					a.start, a.end = k+1, k+1+end
					k = k + 1 + end + 1
				default:
					a.start = k
					for k < len(b) && !isSpace(b[k]) && b[k] != '>' {
						k++
					}
					a.end = k
				}
				j = k
			}
			t.attrs = append(t.attrs, a)
		}
		if !closed {
			return nil
		}
		if err := fn(&t); err != nil {
			return err
		}
		i = j
		if rawText[t.name] {
			end := indexEndTag(b[i:], t.name)
			if end < 0 {
				return nil
			}
			i += end
		}
	}
	return nil
}

// indexEndTag returns the offset of "</name" (any case, followed by a
// space, '/' or '>') in b, or -1.
func indexEndTag(b []byte, name string) int {
	for off := 0; ; {
		k := bytes.Index(b[off:], []byte("</"))
		if k < 0 {
			return -1
		}
		k += off
		e := k + 2 + len(name)
		if e <= len(b) && strings.EqualFold(string(b[k+2:e]), name) && (e == len(b) || isSpace(b[e]) || b[e] == '/' || b[e] == '>') {
			return k
		}
		off = k + 2
	}
}

func isAlpha(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r' }
