package httpcache

import (
	"net/http"
	"strings"

	"github.com/firstrender/firstrender/httpcache/hop"
)

// Targeted cache control (RFC 9213) and Surrogate-Control.
//
// The proxy's target list is Firstrender-Cache-Control, then
// CDN-Cache-Control. The first of them with a valid, non-empty value
// (a Structured Fields Dictionary, RFC 8941) is this cache's policy for
// the response, and Cache-Control and Expires are then ignored
// (RFC 9213 §2.1). Otherwise Surrogate-Control (Edge Architecture 1.0)
// is honoured for its no-store (not stored) and max-age=N[+M] (the
// freshness lifetime, replacing Cache-Control's and Expires; M, the
// stale window, is ignored), with Cache-Control's other directives still
// applying. All three fields target this cache, so clients never receive
// them (stripTargeted); the stored copy keeps them, so a 304's refresh
// recomputes the same policy.

// targetList is this cache's RFC 9213 target list, in precedence order.
var targetList = []string{"Firstrender-Cache-Control", "Cdn-Cache-Control"}

// targetedFields are removed from every response a client receives.
var targetedFields = []string{"Firstrender-Cache-Control", "Cdn-Cache-Control", "Surrogate-Control"}

// isTargetedField reports whether the canonical field name is one of
// targetedFields.
func isTargetedField(name string) bool {
	switch name {
	case "Firstrender-Cache-Control", "Cdn-Cache-Control", "Surrogate-Control":
		return true
	}
	return false
}

// stripTargeted removes the fields that target this cache from h.
func stripTargeted(h http.Header) {
	for _, k := range targetedFields {
		delete(h, k)
	}
}

// targetedDirectives returns the directives of the first valid targeted
// field of h, and ok; or, without one, Cache-Control's adjusted by
// Surrogate-Control (ok when that field had an effect).
func targetedDirectives(h http.Header) (respDirectives, bool) {
	for _, name := range targetList {
		v := joinField(h, name)
		if strings.TrimSpace(v) == "" {
			continue
		}
		cc, ok := sfDictToCacheControl(v)
		if !ok || cc == "" {
			continue // invalid or empty: the next field, or Cache-Control
		}
		d := parseResponseCC(cc)
		if d.invalid {
			continue
		}
		d.targeted = true
		return d, true
	}
	sc := joinField(h, "Surrogate-Control")
	if sc == "" {
		return respDirectives{}, false
	}
	noStore, maxAge := parseSurrogateControl(sc)
	if !noStore && maxAge < 0 {
		return respDirectives{}, false
	}
	d := parseResponseCC(joinField(h, "Cache-Control"))
	if noStore {
		d.noStore = true
		d.mustUnderstand = false // no-store from the surrogate wins
	}
	if maxAge >= 0 {
		d.maxAge, d.sMaxAge, d.targeted = maxAge, -1, true
	}
	return d, true
}

// parseSurrogateControl reads no-store and max-age=N[+M] from a
// Surrogate-Control value, ignoring directives targeted at another
// surrogate (";device-token"). maxAge is -1 when absent.
func parseSurrogateControl(v string) (noStore bool, maxAge int64) {
	maxAge = -1
	for m := range strings.SplitSeq(v, ",") {
		m = strings.TrimSpace(m)
		if m == "" || strings.Contains(m, ";") {
			continue // empty, or targeted at a named surrogate
		}
		// directive = token [ "=" value ], no whitespace around the
		// "=" (as in Cache-Control, RFC 9111 §5.2): "max-age =100"
		// and "max-age= 100" are not max-age.
		k, val, hasVal := strings.Cut(m, "=")
		if hasVal && (strings.TrimRight(k, " \t") != k || strings.TrimLeft(val, " \t") != val) {
			continue
		}
		switch strings.ToLower(k) {
		case "no-store":
			noStore = true
		case "max-age":
			n, _, _ := strings.Cut(val, "+")
			if s, err := parseDigits(n); err == nil {
				maxAge = s
			}
		}
	}
	return noStore, maxAge
}

// sfIntegerDirectives are the directives whose value RFC 9213 §2.1
// infers to be an Integer (delta-seconds): a member of another type
// (a String "10000", a Decimal 3600.5) or a negative one is not consumed.
var sfIntegerDirectives = map[string]bool{"max-age": true, "s-maxage": true, "stale-while-revalidate": true, "stale-if-error": true}

// sfDictToCacheControl parses v as a Structured Fields Dictionary
// (RFC 8941 §3.2, parameters ignored) and renders it in Cache-Control
// syntax (true → the bare key, false → left out, integers, tokens and
// strings as key=value). A key given twice keeps its first position and
// its last value (RFC 8941 §4.2.2); an integer directive
// (sfIntegerDirectives) whose value is not a non-negative Integer is
// left out (RFC 9213 §2.1). ok is false when v is not a valid Dictionary.
func sfDictToCacheControl(v string) (string, bool) {
	s := strings.Trim(v, " \t")
	var out []string
	at := map[string]int{} // key → its index in out
	for s != "" {
		key, rest, ok := sfKey(s)
		if !ok {
			return "", false
		}
		item, val := "?1", ""
		if strings.HasPrefix(rest, "=") {
			if item, rest, ok = sfBareItem(rest[1:]); !ok {
				return "", false
			}
		}
		if rest, ok = sfParams(rest); !ok {
			return "", false
		}
		switch {
		case sfIntegerDirectives[key] && !sfIsNonNegInteger(item):
		case item == "?1":
			val = key
		case item == "?0":
		default:
			val = key + "=" + item
		}
		if i, dup := at[key]; dup {
			out[i] = val // "" until written: left out below
		} else {
			at[key] = len(out)
			out = append(out, val)
		}
		rest = strings.TrimLeft(rest, " \t")
		if rest == "" {
			break
		}
		if rest[0] != ',' {
			return "", false
		}
		s = strings.TrimLeft(rest[1:], " \t")
		if s == "" {
			return "", false // trailing comma
		}
	}
	kept := out[:0]
	for _, m := range out {
		if m != "" {
			kept = append(kept, m)
		}
	}
	return strings.Join(kept, ", "), true
}

// sfIsNonNegInteger reports whether the bare item text is an sf-integer
// without a sign (RFC 8941 §3.3.1).
func sfIsNonNegInteger(item string) bool {
	if item == "" {
		return false
	}
	for i := 0; i < len(item); i++ {
		if !isDigit(item[i]) {
			return false
		}
	}
	return true
}

func isLCAlpha(c byte) bool { return 'a' <= c && c <= 'z' }
func isDigit(c byte) bool   { return '0' <= c && c <= '9' }

// sfKey parses key = ( lcalpha / "*" ) *( lcalpha / DIGIT / "_" / "-" / "." / "*" ).
func sfKey(s string) (string, string, bool) {
	if s == "" || !(isLCAlpha(s[0]) || s[0] == '*') {
		return "", s, false
	}
	i := 1
	for i < len(s) && (isLCAlpha(s[i]) || isDigit(s[i]) || strings.IndexByte("_-.*", s[i]) >= 0) {
		i++
	}
	return s[:i], s[i:], true
}

// sfBareItem parses an Integer, Decimal, String, Token, Byte Sequence or
// Boolean, returning its text (a String with its quotes).
func sfBareItem(s string) (string, string, bool) {
	if s == "" {
		return "", s, false
	}
	switch c := s[0]; {
	case c == '-' || isDigit(c):
		i := 0
		if c == '-' {
			i = 1
		}
		start, dot := i, false
		for i < len(s) && (isDigit(s[i]) || (s[i] == '.' && !dot)) {
			dot = dot || s[i] == '.'
			i++
		}
		if i == start || (!dot && i-start > 15) || s[i-1] == '.' {
			return "", s, false
		}
		return s[:i], s[i:], true
	case c == '"':
		for i := 1; i < len(s); i++ {
			switch s[i] {
			case '\\':
				if i+1 >= len(s) || (s[i+1] != '"' && s[i+1] != '\\') {
					return "", s, false
				}
				i++
			case '"':
				return s[:i+1], s[i+1:], true
			default:
				if s[i] < 0x20 || s[i] > 0x7e {
					return "", s, false
				}
			}
		}
		return "", s, false
	case c == '?':
		if len(s) >= 2 && (s[1] == '0' || s[1] == '1') {
			return s[:2], s[2:], true
		}
		return "", s, false
	case c == ':':
		end := strings.IndexByte(s[1:], ':')
		if end < 0 {
			return "", s, false
		}
		return s[:end+2], s[end+2:], true
	case c == '*' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z'):
		i := 1
		for i < len(s) && (hop.IsTchar(s[i]) || s[i] == ':' || s[i] == '/') {
			i++
		}
		return s[:i], s[i:], true
	}
	return "", s, false
}

// sfParams skips *( ";" *SP key [ "=" bare-item ] ).
func sfParams(s string) (string, bool) {
	for strings.HasPrefix(s, ";") {
		s = strings.TrimLeft(s[1:], " ")
		_, rest, ok := sfKey(s)
		if !ok {
			return s, false
		}
		if strings.HasPrefix(rest, "=") {
			if _, rest, ok = sfBareItem(rest[1:]); !ok {
				return s, false
			}
		}
		s = rest
	}
	return s, true
}
