package phxtoken

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

	"github.com/firstrender/firstrender/httpcache/liveview/erlterm"
)

const fuzzSecret = "test-secret-key-base-0123456789-0123456789-0123456789-0123456789"

type hostileCase struct{ name, token, want string }

// hostileTokens reads fixtures/liveview/hostile: each token with the error
// text expect.txt says ParseToken must give.
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
	t.Parallel()
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

// FuzzParseToken: no panic; a parsed signed token re-signs to a token that
// parses to the same data, signed-at and max age.
func FuzzParseToken(f *testing.F) {
	for _, n := range seedNames {
		f.Add(readToken(f, n))
	}
	for _, c := range hostileTokens(f) {
		if len(c.token) < 4096 {
			f.Add(c.token)
		}
	}
	s, err := NewSigner(fuzzSecret, "fuzz")
	if err != nil {
		f.Fatal(err)
	}
	seed, err := s.Sign(SessionData(Session{ID: "phx-1", View: "A.B", Session: erlterm.Map{{Key: erlterm.Binary("k"), Value: erlterm.Float(1.5)}}}), time.UnixMilli(1), time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
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

// BenchmarkParseToken_SeedSession parses (base64 + term decode) the seed's
// data-phx-session token.
func BenchmarkParseToken_SeedSession(b *testing.B) {
	tok := readToken(b, "session_atom_ext")
	b.ReportAllocs()
	b.SetBytes(int64(len(tok)))
	for b.Loop() {
		if _, err := ParseToken(tok); err != nil {
			b.Fatal(err)
		}
	}
}

func TestTokenHash(t *testing.T) {
	t.Parallel()
	// sha256("abc") = ba7816bf8f01cfea 414140de...
	if got, want := TokenHash("abc"), "ba7816bf8f01cfea"; got != want {
		t.Errorf("TokenHash(%q) = %q, want %q", "abc", got, want)
	}
}
