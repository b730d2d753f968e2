package liveview

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/firstrender/firstrender/httpcache"
	"github.com/firstrender/firstrender/httpcache/liveview/erlterm"
)

type hostileCase struct{ name, token, want string }

func hostileTokens(t testing.TB) []hostileCase {
	t.Helper()
	dir := filepath.Join(fixtures, "hostile")
	f, err := os.Open(filepath.Join(dir, "expect.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cs []hostileCase
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, want, _ := strings.Cut(line, "\t")
		b, err := os.ReadFile(filepath.Join(dir, name+".token"))
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, hostileCase{name, strings.TrimSpace(string(b)), want})
	}
	if len(cs) < 10 {
		t.Fatalf("only %d hostile cases in %s", len(cs), dir)
	}
	return cs
}

func TestParseToken_Hostile(t *testing.T) {
	for _, c := range hostileTokens(t) {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseToken(c.token)
			if err == nil {
				t.Fatalf("ParseToken(%s) = nil error, want one containing %q", c.name, c.want)
			}
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrNotToken) {
				t.Errorf("ParseToken(%s) = %v, want ErrMalformed or ErrNotToken", c.name, err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("ParseToken(%s) = %q, want it to contain %q", c.name, err, c.want)
			}
		})
	}
}

// TestLint_HostileTokensInPage puts every hostile token in a page: each is
// a bad-token finding, and the page is refused.
func TestLint_HostileTokensInPage(t *testing.T) {
	l := newLinter(t, Config{})
	var page strings.Builder
	cs := hostileTokens(t)
	for _, c := range cs {
		page.WriteString(`<div data-phx-session="` + c.token + `"></div>`)
	}
	v := l.Inspect(nil, &httpcache.Response{Status: 200, Header: htmlHeader(), Body: []byte(page.String())})
	if v.Refuse != "liveview-bad-token" {
		t.Errorf("Refuse = %q, want liveview-bad-token", v.Refuse)
	}
	rep := l.Lint(htmlHeader(), []byte(page.String()))
	if len(rep.Tokens) != len(cs) {
		t.Errorf("found %d tokens, want %d", len(rep.Tokens), len(cs))
	}
}

func seedCorpus(f *testing.F) {
	for _, n := range seedNames {
		f.Add(readToken(f, n))
	}
	for _, c := range hostileTokens(f) {
		if len(c.token) < 4096 {
			f.Add(c.token)
		}
	}
	f.Add(mustSign(f, SessionData(Session{ID: "phx-1", View: "A.B", Session: erlterm.Map{{Key: erlterm.Binary("k"), Value: erlterm.Float(1.5)}}}), time.UnixMilli(1), time.Hour))
}

// FuzzParseToken: no panic; a parsed signed token re-signs to a token that
// parses to the same data, signed-at and max age.
func FuzzParseToken(f *testing.F) {
	seedCorpus(f)
	s, err := NewSigner(testSecret, "fuzz")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in string) {
		defer watchdog(in)()
		tok, err := ParseToken(in)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrNotToken) {
				t.Fatalf("ParseToken error %v wraps neither sentinel", err)
			}
			return
		}
		if tok.Encrypted || tok.NoExpiry || tok.MaxAge%time.Second != 0 {
			return
		}
		re, err := s.Sign(tok.Data, tok.SignedAt, tok.MaxAge)
		if err != nil {
			return // e.g. a nil-free but unencodable term is impossible; long atoms are
		}
		tok2, err := ParseToken(re)
		if err != nil {
			t.Fatalf("ParseToken(Sign(parsed)) = %v", err)
		}
		if !erlterm.Equal(tok.Data, tok2.Data) || !tok.SignedAt.Equal(tok2.SignedAt) || tok.MaxAge != tok2.MaxAge {
			t.Fatalf("re-signed token differs: %v %v %v vs %v %v %v", tok.Data, tok.SignedAt, tok.MaxAge, tok2.Data, tok2.SignedAt, tok2.MaxAge)
		}
		if s.Verify(re) != Valid {
			t.Fatal("re-signed token does not verify")
		}
	})
}

// FuzzLint: the linter never panics on any body, and blanking keeps the
// body well-formed around the meta tag.
func FuzzLint(f *testing.F) {
	f.Add(readPage(f))
	f.Add(`<meta name="csrf-token" content='x'><div data-phx-session='SFMyNTY.g2gDYQFuBgAAaOXPiwFiAAFRgA.x'>`)
	f.Add(`<meta content="a" name=csrf-token><meta name="csrf-token">`)
	l := newLinter(f, Config{Policy: map[Kind]Action{KindCSRFMeta: Strip}})
	f.Fuzz(func(t *testing.T, body string) {
		defer watchdog(body)()
		res := &httpcache.Response{Status: 200, Header: htmlHeader(), Body: []byte(body)}
		v := l.Inspect(nil, res)
		if v.Refuse == "" && len(res.Body) > len(body) {
			t.Fatalf("stored body grew from %d to %d bytes", len(body), len(res.Body))
		}
	})
}

// watchdog crashes the fuzz worker, with every goroutine's stack, when one
// input runs for more than 10 s (a hang never reaches a deferred check);
// the fuzzer then saves the input as a crasher.
func watchdog(in string) (stop func()) {
	t := time.AfterFunc(10*time.Second, func() {
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		os.Stderr.Write(buf[:n])
		panic(fmt.Sprintf("input of %d bytes runs for more than 10s", len(in)))
	})
	return func() { t.Stop() }
}
