package tui

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/firstrender/firstrender/httpcache/admin"
)

// filter is what `/` asks the server for. The zero filter matches all.
type filter struct {
	Prefix   string
	Contains string
	Tag      string
	Status   string
	Findings bool
	Disabled bool
}

// isZero reports whether f matches every entry.
func (f filter) isZero() bool { return f == filter{} }

// query returns the ListQuery fields of f.
func (f filter) query() admin.ListQuery {
	return admin.ListQuery{Prefix: f.Prefix, Contains: f.Contains, Tag: f.Tag, Status: f.Status, Findings: f.Findings, Disabled: f.Disabled}
}

// String renders f in the syntax parseFilter reads, so the prompt can be
// filled with the filter in effect.
func (f filter) String() string {
	var parts []string
	if f.Prefix != "" {
		parts = append(parts, "prefix:"+quoteWord(f.Prefix))
	}
	if f.Contains != "" {
		parts = append(parts, "contains:"+quoteWord(f.Contains))
	}
	if f.Tag != "" {
		parts = append(parts, "tag:"+quoteWord(f.Tag))
	}
	if f.Status != "" {
		parts = append(parts, "status:"+f.Status)
	}
	if f.Findings {
		parts = append(parts, "findings")
	}
	if f.Disabled {
		parts = append(parts, "disabled")
	}
	return strings.Join(parts, " ")
}

func quoteWord(s string) string {
	if s == "" || strings.ContainsAny(s, " \t\"\\") || !isPlain(s) {
		return strconv.Quote(s)
	}
	return s
}

// parseFilter reads the `/` prompt: space-separated terms, each one of
//
//	tag:NAME        entries carrying the tag
//	status:2xx      a status class (2xx..5xx) or an exact code (404)
//	findings        entries with lint findings
//	disabled        entries the join guard (or an operator) disabled
//	prefix:TEXT     key prefix; a bare word starting with http://, https://
//	                or "/" is a prefix too, as is ^TEXT
//	contains:TEXT   key substring; any other bare word
//
// A value may be double-quoted (Go syntax) to hold spaces. A term given
// twice, an unknown "name:" or a bad status is an error naming it.
func parseFilter(s string) (filter, error) {
	var f filter
	words, err := splitWords(s)
	if err != nil {
		return filter{}, err
	}
	set := func(dst *string, name, v string) error {
		if v == "" {
			return fmt.Errorf("%s: needs a value", name)
		}
		if *dst != "" {
			return fmt.Errorf("%s given twice", name)
		}
		if len(v) > admin.MaxPrefix {
			return fmt.Errorf("%s: longer than %d bytes", name, admin.MaxPrefix)
		}
		*dst = v
		return nil
	}
	for _, w := range words {
		name, val, hasColon := cutField(w)
		switch {
		case w.quoted:
			err = set(&f.Contains, "contains", w.text)
		case !hasColon && w.text == "findings":
			f.Findings = true
		case !hasColon && w.text == "disabled":
			f.Disabled = true
		case hasColon && name == "tag":
			err = set(&f.Tag, "tag", val)
		case hasColon && name == "status":
			if !validStatus(val) {
				return filter{}, fmt.Errorf("status:%s: want 2xx, 3xx, 4xx, 5xx or a code such as 404", val)
			}
			err = set(&f.Status, "status", val)
		case hasColon && name == "prefix":
			err = set(&f.Prefix, "prefix", val)
		case hasColon && name == "contains":
			err = set(&f.Contains, "contains", val)
		case strings.HasPrefix(w.text, "^"):
			err = set(&f.Prefix, "prefix", w.text[1:])
		case strings.HasPrefix(w.text, "http://"), strings.HasPrefix(w.text, "https://"), strings.HasPrefix(w.text, "/"):
			err = set(&f.Prefix, "prefix", w.text)
		case hasColon:
			return filter{}, fmt.Errorf("unknown filter %q (use tag:, status:, prefix:, contains:, findings, disabled)", name+":")
		default:
			err = set(&f.Contains, "contains", w.text)
		}
		if err != nil {
			return filter{}, err
		}
	}
	return f, nil
}

type word struct {
	text   string
	quoted bool // the whole word was a quoted string
}

// cutField splits "name:value" where value may have been quoted.
func cutField(w word) (name, val string, ok bool) {
	if w.quoted {
		return "", "", false
	}
	name, val, ok = strings.Cut(w.text, ":")
	if !ok || name == "" || strings.ContainsAny(name, "/.^") {
		return "", "", false
	}
	if strings.HasPrefix(val, "\"") {
		if u, err := strconv.Unquote(val); err == nil {
			val = u
		}
	}
	return name, val, true
}

// splitWords splits on spaces, keeping double-quoted runs (Go escapes)
// together, also after "name:".
func splitWords(s string) ([]word, error) {
	var out []word
	i := 0
	for i < len(s) {
		if s[i] == ' ' || s[i] == '\t' {
			i++
			continue
		}
		start := i
		quoted := s[i] == '"'
		for i < len(s) && s[i] != ' ' && s[i] != '\t' {
			if s[i] == '"' {
				j, err := skipQuoted(s, i)
				if err != nil {
					return nil, err
				}
				i = j
				continue
			}
			i++
		}
		text := s[start:i]
		if quoted {
			u, err := strconv.Unquote(text)
			if err != nil {
				return nil, fmt.Errorf("bad quoted value %s", text)
			}
			out = append(out, word{text: u, quoted: true})
			continue
		}
		out = append(out, word{text: text})
	}
	return out, nil
}

// skipQuoted returns the index just past the string literal opening at i.
func skipQuoted(s string, i int) (int, error) {
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case '"':
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("unterminated quote in %q", s[i:])
}

func validStatus(s string) bool {
	if len(s) != 3 || s[0] < '1' || s[0] > '5' {
		return false
	}
	if s[1:] == "xx" {
		return s[0] >= '2'
	}
	return s[1] >= '0' && s[1] <= '9' && s[2] >= '0' && s[2] <= '9'
}
