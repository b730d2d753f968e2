package tui

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/firstrender/firstrender/httpcache/liveview/erlterm"
)

func TestParseFilter(t *testing.T) {
	cases := []struct {
		name, in string
		want     filter
		err      string
	}{
		{"empty matches all", "", filter{}, ""},
		{"tag", "tag:blog", filter{Tag: "blog"}, ""},
		{"status class", "status:4xx", filter{Status: "4xx"}, ""},
		{"exact status", "status:404", filter{Status: "404"}, ""},
		{"flags", "findings disabled", filter{Findings: true, Disabled: true}, ""},
		{"url is a prefix", "https://app.test/blog", filter{Prefix: "https://app.test/blog"}, ""},
		{"caret is a prefix", "^https://a", filter{Prefix: "https://a"}, ""},
		{"bare word is a substring", "hello", filter{Contains: "hello"}, ""},
		{"quoted substring keeps spaces", `"a b"`, filter{Contains: "a b"}, ""},
		{"quoted tag value", `tag:"x y"`, filter{Tag: "x y"}, ""},
		{"combined", "tag:blog status:2xx findings /blog", filter{Tag: "blog", Status: "2xx", Findings: true, Prefix: "/blog"}, ""},
		{"bad status", "status:9xx", filter{}, "status:9xx"},
		{"1xx class is not cached", "status:1xx", filter{}, "status:1xx"},
		{"unknown field", "colour:red", filter{}, `"colour:"`},
		{"twice", "tag:a tag:b", filter{}, "twice"},
		{"empty value", "tag:", filter{}, "needs a value"},
		{"unterminated quote", `"abc`, filter{}, "unterminated"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseFilter(c.in)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Errorf("parseFilter(%q) error %v, want one naming %q", c.in, err, c.err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Errorf("parseFilter(%q) = %+v, %v, want %+v", c.in, got, err, c.want)
			}
		})
	}
}

// FuzzParseFilter: no panic, and what parses prints back to itself.
func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{"tag:blog", `"a b" status:404`, "findings disabled ^x", "https://a/b?c", `tag:"\x00"`, "status:", `contains:"\""`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := parseFilter(s)
		if err != nil {
			return
		}
		again, err := parseFilter(q.String())
		if err != nil || again != q {
			t.Fatalf("parseFilter(%q) = %+v; its String %q parses to %+v, %v", s, q, q.String(), again, err)
		}
	})
}

func TestParseCommand(t *testing.T) {
	cases := []struct {
		in, name, err string
		check         func(c command) bool
	}{
		{in: "decode  abc def", name: "decode", check: func(c command) bool { return c.token == "abcdef" }},
		{in: "decode", name: "decode", check: func(c command) bool { return c.token == "" }},
		{in: "purge prefix https://a/", name: "purge", check: func(c command) bool { return c.purge.Prefix == "https://a/" }},
		{in: "purge tag blog", name: "purge", check: func(c command) bool { return c.purge.Tag == "blog" }},
		{in: "purge key https://a/x", name: "purge", check: func(c command) bool { return c.purge.Key == "https://a/x" }},
		{in: "purge all", name: "purge", check: func(c command) bool { return c.purge.All }},
		{in: "stats", name: "stats"},
		{in: "q", name: "quit"},
		{in: "purge", err: "needs"},
		{in: "purge tag", err: "needs a value"},
		{in: "purge all now", err: "no argument"},
		{in: "purge everything", err: "unknown selector"},
		{in: "frobnicate", err: "unknown command"},
		{in: "stats now", err: "no argument"},
	}
	for _, c := range cases {
		got, err := parseCommand(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("parseCommand(%q) error %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got.name != c.name || (c.check != nil && !c.check(got)) {
			t.Errorf("parseCommand(%q) = %+v, %v", c.in, got, err)
		}
	}
}

func TestPrettyElixir(t *testing.T) {
	in := `%{id: "phx-1", session: %{"a" => [1, 2, %{b: {3, 4}}]}, view: A.B}`
	cases := []struct {
		name         string
		depth, width int
		want         string
	}{
		{"fits on one line", 0, 200, in},
		{"depth 1 caps nested maps", 1, 200, `%{id: "phx-1", session: %{…}, view: A.B}`},
		{"depth 2", 2, 200, `%{id: "phx-1", session: %{"a" => […]}, view: A.B}`},
		{"breaks what does not fit", 0, 50, "%{\n  id: \"phx-1\",\n  session: %{\"a\" => [1, 2, %{b: {3, 4}}]},\n  view: A.B\n}"},
		{"breaks inner containers too", 0, 40, "%{\n  id: \"phx-1\",\n  session: %{\n    \"a\" => [1, 2, %{b: {3, 4}}]\n  },\n  view: A.B\n}"},
	}
	for _, c := range cases {
		got := strings.Join(prettyElixir(in, c.depth, c.width), "\n")
		if got != c.want {
			t.Errorf("%s: prettyElixir(depth %d, width %d) =\n%s\nwant\n%s", c.name, c.depth, c.width, got, c.want)
		}
	}
}

func TestPrettyElixir_RoundTripsFormat(t *testing.T) {
	terms := []erlterm.Term{
		erlterm.Map{{Key: erlterm.Atom("id"), Value: erlterm.Binary("phx-F5")}, {Key: erlterm.Binary("k, v"), Value: erlterm.List{erlterm.Int(1), erlterm.Tuple{erlterm.Atom("ok"), erlterm.Binary(`a"}b`)}}}},
		erlterm.List{erlterm.Tuple{erlterm.Atom("a"), erlterm.Int(1)}},
		erlterm.Binary([]byte{0, 1, 255}),
		erlterm.Pid{Node: erlterm.Atom("n@h"), ID: 1, Serial: 2},
		erlterm.Charlist("abc"),
	}
	for _, tm := range terms {
		s := erlterm.Format(tm)
		if got := strings.Join(prettyElixir(s, 0, 0), "\n"); got != s {
			t.Errorf("uncapped prettyElixir(%s) = %s", s, got)
		}
	}
}

// FuzzPrettyElixir: any input, no panic, bounded output, and with no caps
// the text comes back unchanged up to the spaces after commas.
func FuzzPrettyElixir(f *testing.F) {
	for _, s := range []string{`%{a: [1, {2, "x,}"}]}`, `<<1, 2>>`, `#PID<0.1.2>`, `%A.B{c: 1}`, `[`, `}}}`, `"unterminated`} {
		f.Add(s, 3, 20)
	}
	f.Fuzz(func(t *testing.T, s string, depth, width int) {
		if depth > 64 || width > 1000 {
			return
		}
		lines := prettyElixir(s, depth, width)
		n := 0
		for _, l := range lines {
			n += len(l)
		}
		// With a depth cap (the panel's is 1..16) indentation is bounded,
		// so the output stays linear in the input.
		if depth >= 1 && depth <= 16 && n > 2*len(s)+(2*depth+4)*len(lines)+64 {
			t.Fatalf("output of %d bytes in %d lines for %d bytes of input", n, len(lines), len(s))
		}
		flat := strings.Join(prettyElixir(s, 0, 0), "")
		norm := func(x string) string { return strings.ReplaceAll(x, " ", "") }
		if norm(flat) != norm(s) && utf8.ValidString(s) && !strings.ContainsAny(s, "\"#") {
			t.Fatalf("uncapped prettyElixir(%q) = %q", s, flat)
		}
	})
}

// FuzzClean: whatever the input, the result holds no control character,
// no bidi override and only valid UTF-8.
func FuzzClean(f *testing.F) {
	for _, s := range []string{"\x1b[2J", "a\tb\r\nc", "\u202eevil", "\xff\xfe", "ok"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, block := range []bool{false, true} {
			out := sanitize(s, block)
			if !utf8.ValidString(out) {
				t.Fatalf("sanitize(%q) = %q: invalid UTF-8", s, out)
			}
			for _, r := range out {
				if (r < 0x20 && !(block && r == '\n')) || r == 0x7f || (r >= 0x80 && r < 0xa0) || isBidiControl(r) {
					t.Fatalf("sanitize(%q, %v) = %q keeps %U", s, block, out, r)
				}
			}
		}
	})
}

func TestHistory(t *testing.T) {
	var h history
	at := t0
	req, hits := int64(0), int64(0)
	for i := 0; i < 2000; i++ {
		at = at.Add(time.Second)
		req += 10
		if i >= 1990 {
			hits += 10 // the last 10 s: all hits
		} else {
			hits += 5
		}
		h.add(sample{at: at, requests: req, hits: hits, misses: req - hits})
	}
	if h.n != historyCap {
		t.Errorf("history holds %d samples, want the cap %d", h.n, historyCap)
	}
	if r, ok := h.hitRatio(10 * time.Second); !ok || r != 1 {
		t.Errorf("10 s hit ratio = %v %v, want 1", r, ok)
	}
	if r, ok := h.hitRatio(1000 * time.Second); !ok || r < 0.50 || r > 0.51 {
		t.Errorf("1000 s hit ratio = %v %v, want 0.505", r, ok)
	}
	if r, ok := h.rate(10 * time.Second); !ok || r != 10 {
		t.Errorf("rate = %v %v, want 10/s", r, ok)
	}
	// A restart (counters fall) starts over.
	h.add(sample{at: at.Add(time.Second), requests: 1})
	if h.n != 1 {
		t.Errorf("after a restart the history holds %d samples, want 1", h.n)
	}
	if _, ok := h.hitRatio(10 * time.Second); ok {
		t.Error("a hit ratio from one sample")
	}
}
