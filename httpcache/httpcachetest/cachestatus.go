package httpcachetest

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Member is one member of a Cache-Status field (RFC 9211 §2): the
// cache's name and its parameters in order. A bare parameter ("hit",
// "stored") has the Value "?1", the Structured Fields boolean true
// (RFC 8941 §3.1.2); sf-string values are unquoted.
type Member struct {
	Cache  string
	Params []Param
}

// Param is one parameter of a [Member].
type Param struct {
	Key, Value string
}

// Get returns the value of the parameter key and whether it is present.
func (m Member) Get(key string) (string, bool) {
	for _, p := range m.Params {
		if p.Key == key {
			return p.Value, true
		}
	}
	return "", false
}

// Has reports whether the parameter key is present, with any value.
func (m Member) Has(key string) bool {
	_, ok := m.Get(key)
	return ok
}

// String renders m as a Cache-Status member (tokens bare, other values
// as sf-strings), for test messages.
func (m Member) String() string {
	var b strings.Builder
	b.WriteString(formatValue(m.Cache))
	for _, p := range m.Params {
		b.WriteString("; ")
		b.WriteString(p.Key)
		if p.Value != "?1" {
			b.WriteByte('=')
			b.WriteString(formatValue(p.Value))
		}
	}
	return b.String()
}

// Match reports, as an error naming the first difference, whether m has
// every parameter of spec with the same value. spec is a parameter list
// as in a member, without the cache name: "hit; ttl=60",
// `detail="csrf meta token"`; a bare key must be present as a boolean.
// Values compare exactly: "ttl=60" does not match ttl=600.
func (m Member) Match(spec string) error {
	want, err := parseParams(spec)
	if err != nil {
		return fmt.Errorf("spec %q: %w", spec, err)
	}
	for _, w := range want {
		got, ok := m.Get(w.Key)
		switch {
		case !ok:
			return fmt.Errorf("Cache-Status member `%s` has no %s, want %s", m, w.Key, Member{Params: []Param{w}}.paramString())
		case got != w.Value:
			return fmt.Errorf("Cache-Status member `%s` has %s, want %s", m, Member{Params: []Param{{w.Key, got}}}.paramString(), Member{Params: []Param{w}}.paramString())
		}
	}
	return nil
}

// Lacks reports, as an error, whether m has any parameter of spec: a
// bare key must be absent, "key=value" must not be present with that
// value.
func (m Member) Lacks(spec string) error {
	not, err := parseParams(spec)
	if err != nil {
		return fmt.Errorf("spec %q: %w", spec, err)
	}
	for _, n := range not {
		got, ok := m.Get(n.Key)
		if ok && (n.Value == "?1" || got == n.Value) {
			return fmt.Errorf("Cache-Status member `%s` has %s, want it without", m, Member{Params: []Param{{n.Key, got}}}.paramString())
		}
	}
	return nil
}

func (m Member) paramString() string {
	s := Member{Params: m.Params}.String()
	return strings.TrimPrefix(s, `""; `)
}

// Find returns the last member of h's Cache-Status fields named cache
// (the one nearest the client, RFC 9211 §2), or an error when the field
// does not parse or has no such member.
func Find(h http.Header, cache string) (Member, error) {
	v := strings.Join(h.Values("Cache-Status"), ", ")
	ms, err := ParseCacheStatus(v)
	if err != nil {
		return Member{}, err
	}
	for i := len(ms) - 1; i >= 0; i-- {
		if ms[i].Cache == cache {
			return ms[i], nil
		}
	}
	return Member{}, fmt.Errorf("Cache-Status %q has no %s member", v, cache)
}

// ParseCacheStatus parses a Cache-Status field value (RFC 9211: an RFC
// 8941 List of Items whose values are tokens or sf-strings) into its
// members, in order. Commas and semicolons inside sf-strings do not
// split. An empty value is an empty list. It returns an error for what
// is not a List: an unterminated string, an empty member, a bad key.
func ParseCacheStatus(v string) ([]Member, error) {
	var out []Member
	s := strings.Trim(v, " \t")
	if s == "" {
		return nil, nil
	}
	for {
		var m Member
		var err error
		m.Cache, s, err = parseBareItem(s)
		if err != nil {
			return nil, fmt.Errorf("cache-status %q: member %d: %w", v, len(out)+1, err)
		}
		m.Params, s, err = parseParamsPrefix(s)
		if err != nil {
			return nil, fmt.Errorf("cache-status %q: member %d: %w", v, len(out)+1, err)
		}
		out = append(out, m)
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			return out, nil
		}
		if s[0] != ',' {
			return nil, fmt.Errorf("cache-status %q: junk %q after member %d", v, s, len(out))
		}
		s = strings.TrimLeft(s[1:], " \t")
		if s == "" {
			return nil, fmt.Errorf("cache-status %q: trailing comma", v)
		}
	}
}

// parseParams parses a whole parameter list without the leading ";"
// ("hit; ttl=60").
func parseParams(spec string) ([]Param, error) {
	s := strings.TrimSpace(spec)
	if s == "" {
		return nil, nil
	}
	ps, rest, err := parseParamsPrefix("; " + s)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(rest) != "" {
		return nil, fmt.Errorf("junk %q", rest)
	}
	return ps, nil
}

// parseParamsPrefix parses ";key[=value]" parameters at the start of s
// (RFC 8941 §3.1.2) and returns them with the rest of s.
func parseParamsPrefix(s string) ([]Param, string, error) {
	var ps []Param
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" || s[0] != ';' {
			return ps, s, nil
		}
		s = strings.TrimLeft(s[1:], " ")
		i := 0
		for i < len(s) && isKeyChar(s[i], i == 0) {
			i++
		}
		if i == 0 {
			return nil, "", errors.New("parameter without a valid key")
		}
		p := Param{Key: s[:i], Value: "?1"}
		s = s[i:]
		if s != "" && s[0] == '=' {
			var err error
			p.Value, s, err = parseBareItem(s[1:])
			if err != nil {
				return nil, "", fmt.Errorf("parameter %s: %w", p.Key, err)
			}
		}
		ps = append(ps, p)
	}
}

// parseBareItem parses a token, sf-string, integer or boolean at the
// start of s, returning its value (strings unquoted) and the rest.
func parseBareItem(s string) (string, string, error) {
	if s == "" {
		return "", "", errors.New("missing value")
	}
	switch c := s[0]; {
	case c == '"':
		var b strings.Builder
		for i := 1; i < len(s); i++ {
			switch s[i] {
			case '\\':
				if i+1 >= len(s) || (s[i+1] != '"' && s[i+1] != '\\') {
					return "", "", errors.New("bad escape in string")
				}
				i++
				b.WriteByte(s[i])
			case '"':
				return b.String(), s[i+1:], nil
			default:
				if s[i] < 0x20 || s[i] >= 0x7f {
					return "", "", errors.New("control character in string")
				}
				b.WriteByte(s[i])
			}
		}
		return "", "", errors.New("unterminated string")
	case c == '?':
		if len(s) < 2 || (s[1] != '0' && s[1] != '1') {
			return "", "", errors.New("bad boolean")
		}
		return s[:2], s[2:], nil
	case c == '-' || '0' <= c && c <= '9' || c == '*' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
		i := 1
		for i < len(s) && isTokenChar(s[i]) {
			i++
		}
		return s[:i], s[i:], nil
	default:
		return "", "", fmt.Errorf("unexpected %q", c)
	}
}

func isKeyChar(c byte, first bool) bool {
	if c == '*' || 'a' <= c && c <= 'z' {
		return true
	}
	return !first && ('0' <= c && c <= '9' || c == '_' || c == '-' || c == '.')
}

// isTokenChar: tchar, ":" and "/" (RFC 8941 §3.3.4); digits and "." for
// numbers.
func isTokenChar(c byte) bool {
	if c <= ' ' || c >= 0x7f {
		return false
	}
	return !strings.ContainsRune(`"(),;<=>?@[\]{}`, rune(c))
}

// formatValue renders v as a token when it is one, else as an sf-string.
func formatValue(v string) string {
	if v == "?1" || v == "?0" {
		return v
	}
	if v != "" {
		c := v[0]
		tok := c == '-' || '0' <= c && c <= '9' || c == '*' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
		for i := 1; tok && i < len(v); i++ {
			tok = isTokenChar(v[i])
		}
		if tok {
			return v
		}
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + `"`
}
