package phxtoken

import (
	"encoding/base64"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/firstrender/firstrender/httpcache/liveview/erlterm"
)

var update = flag.Bool("update", false, "rewrite golden files")

const fixtures = "../../../fixtures/liveview"

func readToken(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtures, "seed", name+".token"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

var seedNames = []string{"static_small_atom_utf8", "session_atom_ext", "static_atom_ext"}

func TestSeedGolden(t *testing.T) {
	t.Parallel()
	for _, name := range seedNames {
		t.Run(name, func(t *testing.T) {
			tok, err := ParseToken(readToken(t, name))
			if err != nil {
				t.Fatalf("ParseToken: %v", err)
			}
			got := Describe(tok, NotChecked, DefaultLiveViewMaxAge).Text()
			path := filepath.Join(fixtures, "seed", name+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("Describe(%s) =\n%s\nwant\n%s", name, got, want)
			}
		})
	}
}

func TestParseToken_Seed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		signedAt string
		data     string
	}{
		{"static_small_atom_utf8", "2023-10-22T20:18:27.451Z", `{5, %{id: "phx-F5CHYFwg3b47IQJC", flash: %{}, assign_new: []}}`},
		{"session_atom_ext", "2023-11-06T19:44:23.63Z", `{5, %{id: "phx-F5UgOQKJJCK_shjD", live_session: {:default, 1699299605376054467}, parent_pid: nil, root_pid: nil, root_view: HttpCacheWithLiveviewWeb.UserLive.Show, router: HttpCacheWithLiveviewWeb.Router, session: %{}, view: HttpCacheWithLiveviewWeb.UserLive.Show}}`},
		{"static_atom_ext", "2023-11-06T19:44:23.63Z", `{5, %{assign_new: [], flash: %{}, id: "phx-F5UgOQKJJCK_shjD"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := ParseToken(readToken(t, tt.name))
			if err != nil {
				t.Fatalf("ParseToken: %v", err)
			}
			if got := tok.SignedAt.Format(time.RFC3339Nano); got != tt.signedAt {
				t.Errorf("SignedAt = %s, want %s", got, tt.signedAt)
			}
			if tok.MaxAge != DefaultTokenMaxAge {
				t.Errorf("MaxAge = %v, want %v", tok.MaxAge, DefaultTokenMaxAge)
			}
			if got, want := tok.Expires(), tok.SignedAt.Add(24*time.Hour); !got.Equal(want) {
				t.Errorf("Expires = %v, want %v", got, want)
			}
			if got, want := tok.ExpiresAfter(DefaultLiveViewMaxAge), tok.SignedAt.Add(14*24*time.Hour); !got.Equal(want) {
				t.Errorf("ExpiresAfter(14d) = %v, want %v", got, want)
			}
			if got := erlterm.Format(tok.Data); got != tt.data {
				t.Errorf("Data = %s\nwant %s", got, tt.data)
			}
			if tok.Encrypted || tok.Protected != "HS256" {
				t.Errorf("Protected = %q Encrypted = %v, want HS256 false", tok.Protected, tok.Encrypted)
			}
		})
	}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func payloadToken(t testing.TB, term erlterm.Term) string {
	t.Helper()
	p, err := erlterm.Encode(term)
	if err != nil {
		t.Fatal(err)
	}
	return TokenPrefix + b64(p) + "." + b64([]byte("sig"))
}

func TestParseToken_Layouts(t *testing.T) {
	t.Parallel()
	at := erlterm.Int(1700000000000)
	tests := []struct {
		name      string
		term      erlterm.Term
		maxAge    time.Duration
		noExpiry  bool
		wantError bool
	}{
		{"current {data, signed, max_age}", erlterm.Tuple{erlterm.Atom("x"), at, erlterm.Int(60)}, time.Minute, false, false},
		{"Plug.Crypto 1.1 {data, signed}", erlterm.Tuple{erlterm.Atom("x"), at}, DefaultTokenMaxAge, false, false},
		{"early Phoenix map", erlterm.Map{{Key: erlterm.Atom("data"), Value: erlterm.Atom("x")}, {Key: erlterm.Atom("signed"), Value: at}}, DefaultTokenMaxAge, false, false},
		{"max_age :infinity", erlterm.Tuple{erlterm.Atom("x"), at, erlterm.Atom("infinity")}, 0, true, false},
		{"float max_age", erlterm.Tuple{erlterm.Atom("x"), at, erlterm.Float(1.5)}, 1500 * time.Millisecond, false, false},
		{"4-tuple", erlterm.Tuple{erlterm.Atom("x"), at, erlterm.Int(1), erlterm.Int(2)}, 0, false, true},
		{"signed_at not an integer", erlterm.Tuple{erlterm.Atom("x"), erlterm.Atom("now"), erlterm.Int(1)}, 0, false, true},
		{"negative max_age", erlterm.Tuple{erlterm.Atom("x"), at, erlterm.Int(-1)}, 0, false, true},
		{"payload is a binary", erlterm.Binary("hello"), 0, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := ParseToken(payloadToken(t, tt.term))
			if tt.wantError {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("ParseToken error = %v, want ErrMalformed", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseToken: %v", err)
			}
			if tok.MaxAge != tt.maxAge || tok.NoExpiry != tt.noExpiry {
				t.Errorf("MaxAge, NoExpiry = %v, %v, want %v, %v", tok.MaxAge, tok.NoExpiry, tt.maxAge, tt.noExpiry)
			}
			if !erlterm.Equal(tok.Data, erlterm.Atom("x")) {
				t.Errorf("Data = %v, want :x", tok.Data)
			}
			if got := tok.SignedAt.UnixMilli(); got != int64(at) {
				t.Errorf("SignedAt = %d ms, want %d", got, at)
			}
		})
	}
}

func TestParseToken_Errors(t *testing.T) {
	t.Parallel()
	seed := readToken(t, "session_atom_ext")
	parts := strings.Split(seed, ".")
	tests := []struct {
		name string
		in   string
		want error
		msg  string
	}{
		{"empty string", "", ErrNotToken, "1 dot-separated parts"},
		{"two parts", "SFMyNTY.abc", ErrNotToken, "2 dot-separated parts"},
		{"unknown protected header", b64([]byte("XX999")) + ".a.b", ErrNotToken, "unknown protected header"},
		{"bad base64 in payload", parts[0] + ".g2g*AAA." + parts[2], ErrMalformed, "bad base64url at byte 3"},
		{"bad base64 in signature", parts[0] + "." + parts[1] + ".!!", ErrMalformed, "signature"},
		{"truncated payload", parts[0] + "." + parts[1][:40] + "." + parts[2], ErrMalformed, "offset"},
		{"payload not a term", parts[0] + "." + b64([]byte("hello")) + "." + parts[2], ErrMalformed, "version 131"},
		{"encrypted with 3 parts", b64([]byte("A256GCM")) + ".a.b", ErrMalformed, "want 5"},
		{"signed with 5 parts", "SFMyNTY.a.b.c.d", ErrMalformed, "want 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseToken(tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("ParseToken(%q) error = %v, want %v", tt.in, err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("ParseToken(%q) error = %q, want it to mention %q", tt.in, err, tt.msg)
			}
		})
	}
}

func TestParseToken_Encrypted(t *testing.T) {
	t.Parallel()
	for _, alg := range []string{"A128GCM", "A256GCM"} {
		in := b64([]byte(alg)) + "." + b64([]byte("key")) + "." + b64([]byte("iv")) + "." + b64([]byte("cipher")) + "." + b64([]byte("tag"))
		tok, err := ParseToken(in)
		if err != nil {
			t.Fatalf("ParseToken(%s token): %v", alg, err)
		}
		if !tok.Encrypted || tok.Protected != alg || tok.Data != nil || !tok.Expires().IsZero() {
			t.Errorf("ParseToken(%s token) = %+v, want encrypted with no data or expiry", alg, tok)
		}
	}
}

func TestSigner_SignVerify(t *testing.T) {
	t.Parallel()
	const secret = "0123456789012345678901234567890123456789012345678901234567890123-test-secret"
	s, err := NewSigner(secret, "live view salt")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 25, 19, 0, 0, 123e6, time.UTC)
	data := SessionData(Session{ID: "phx-test", View: "DemoWeb.PageLive", Router: "DemoWeb.Router", LiveSessionVsn: 1699299605376054467})
	tok, err := s.Sign(data, at, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, TokenPrefix) {
		t.Errorf("Sign = %q, want prefix %q", tok, TokenPrefix)
	}
	parsed, err := ParseToken(tok)
	if err != nil {
		t.Fatalf("ParseToken(Sign(...)): %v", err)
	}
	if !parsed.SignedAt.Equal(at) || parsed.MaxAge != 2*time.Minute || !erlterm.Equal(parsed.Data, data) {
		t.Errorf("round trip = %v %v %v, want %v 2m0s %v", parsed.SignedAt, parsed.MaxAge, parsed.Data, at, data)
	}
	other, _ := NewSigner(secret, "other salt")
	otherKey, _ := NewSigner(secret+"x", "live view salt")
	p := strings.Split(tok, ".")
	tampered := p[0] + "." + p[1][:len(p[1])-2] + "AA." + p[2]
	tests := []struct {
		name   string
		signer *Signer
		token  string
		want   SignatureStatus
	}{
		{"same secret and salt", s, tok, Valid},
		{"other salt", other, tok, Invalid},
		{"other secret", otherKey, tok, Invalid},
		{"tampered payload", s, tampered, Invalid},
		{"not a token", s, "hello", NotChecked},
		{"encrypted token", s, b64([]byte("A256GCM")) + ".a.b.c.d", NotChecked},
		{"seed token, unknown secret", s, readToken(t, "session_atom_ext"), Invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.signer.Verify(tt.token); got != tt.want {
				t.Errorf("Verify = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestSign_KnownAnswer pins the key derivation and HMAC: the expected
// signature was computed independently with Python's hashlib/hmac
// (pbkdf2_hmac("sha256", secret, salt, 1000, 32), then HMAC-SHA256 over
// "SFMyNTY.<payload>").
func TestSign_KnownAnswer(t *testing.T) {
	t.Parallel()
	tok, err := Sign("secret_key_base_for_tests", "salt", erlterm.Int(1), time.UnixMilli(1700000000000), 86400*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if tok != knownAnswer {
		t.Errorf("Sign = %s, want %s", tok, knownAnswer)
	}
}

func TestSigner_NoSecretLeak(t *testing.T) {
	t.Parallel()
	const secret = "super-secret-key-base-value"
	s, err := NewSigner(secret, "salt")
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{s.String(), s.GoString(), s.LogValue().String()} {
		if strings.Contains(out, secret) || strings.Contains(out, b64(s.key)) {
			t.Errorf("Signer printed %q, which leaks key material", out)
		}
	}
	if _, err := NewSigner("", "salt"); err == nil {
		t.Error("NewSigner(\"\") = nil error, want an error")
	}
}

const knownAnswer = "SFMyNTY.g2gDYQFuBgAAaOXPiwFiAAFRgA.WQx1ZVv0CvziPeoWM-csLxCqh59zUlUiFVzLakn7eSA"
