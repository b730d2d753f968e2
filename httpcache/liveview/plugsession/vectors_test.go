package plugsession

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/firstrender/firstrender/httpcache/liveview/erlterm"
	"golang.org/x/crypto/chacha20"
)

// vectors mirrors testdata/vectors.json, written by testdata/plugvectors.exs
// from Plug's and Plug.Crypto's code run on Elixir/OTP (see that script).
type vectors struct {
	Source         string `json:"source"`
	SecretKeyBase  string `json:"secret_key_base"`
	OtherSKB       string `json:"other_secret_key_base"`
	SigningSalt    string `json:"signing_salt"`
	EncryptionSalt string `json:"encryption_salt"`
	Keygen         []struct {
		Secret, Salt, Digest, Key string
		Iterations, Length        int
	} `json:"keygen"`
	Verifier []struct {
		Key, Message, Digest, Signed string
	} `json:"verifier"`
	XChaCha []struct {
		Secret     string `json:"secret"`
		SignSecret string `json:"sign_secret"`
		AAD        string `json:"aad"`
		IV         string `json:"iv"`
		Message    string `json:"message"`
		Encrypted  string `json:"encrypted"`
	} `json:"xchacha"`
	HChaCha20 []struct{ Key, Nonce, Subkey string } `json:"hchacha20"`
	A128GCM   []struct {
		Secret     string `json:"secret"`
		SignSecret string `json:"sign_secret"`
		CEK        string `json:"cek"`
		IV         string `json:"iv"`
		WrapIV     string `json:"wrap_iv"`
		Message    string `json:"message"`
		Encrypted  string `json:"encrypted"`
	} `json:"a128gcm"`
	CSRFMask  []struct{ Token, Mask, Masked string } `json:"csrf_mask"`
	CSRFValid []struct {
		State, Masked string
		Valid         bool
	} `json:"csrf_valid"`
	CSRFHost []struct {
		SecretKeyBase string `json:"secret_key_base"`
		Unmasked      string `json:"unmasked"`
		Random        string `json:"random"`
		Host          string `json:"host"`
		Token         string `json:"token"`
	} `json:"csrf_host"`
	Sessions []struct {
		Name           string `json:"name"`
		Term           string `json:"term"`
		IsMap          bool   `json:"is_map"`
		Signed         string `json:"signed"`
		Encrypted      string `json:"encrypted"`
		WithCSRFTerm   string `json:"with_csrf_term"`
		WithCSRFSigned string `json:"with_csrf_signed"`
	} `json:"sessions"`
	LegacySession struct {
		Name, Term, Encrypted string
	} `json:"legacy_session"`
	SetCookies []struct {
		Opts      map[string]any `json:"opts"`
		Now       string         `json:"now"`
		SetCookie string         `json:"set_cookie"`
	} `json:"set_cookies"`
}

func loadVectors(t testing.TB) *vectors {
	t.Helper()
	b, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Keygen) == 0 || len(v.Sessions) == 0 || len(v.CSRFMask) == 0 {
		t.Fatal("vectors.json is missing sections")
	}
	return &v
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestKnownAnswers_DeriveKey(t *testing.T) {
	v := loadVectors(t)
	for _, k := range v.Keygen {
		got, err := DeriveKey([]byte(k.Secret), []byte(k.Salt), KeyOptions{Iterations: k.Iterations, Length: k.Length, Digest: k.Digest})
		if err != nil {
			t.Fatalf("DeriveKey(%q, %q, %d, %d, %s): %v", k.Secret, k.Salt, k.Iterations, k.Length, k.Digest, err)
		}
		if hex.EncodeToString(got) != k.Key {
			t.Errorf("DeriveKey(%q, %q, %d, %d, %s) = %x, want %s", k.Secret, k.Salt, k.Iterations, k.Length, k.Digest, got, k.Key)
		}
	}
}

func TestKnownAnswers_Verifier(t *testing.T) {
	v := loadVectors(t)
	for _, c := range v.Verifier {
		key, msg := unhex(t, c.Key), unhex(t, c.Message)
		if c.Digest == "sha256" {
			got, err := Sign(msg, key)
			if err != nil || got != c.Signed {
				t.Errorf("Sign(%x) = %q, %v; want %q", msg, got, err, c.Signed)
			}
		}
		got, err := Verify(c.Signed, key)
		if err != nil || !bytes.Equal(got, msg) {
			t.Errorf("Verify(%q) = %x, %v; want %x", c.Signed, got, err, msg)
		}
		if _, err := Verify(c.Signed, append([]byte("x"), key...)); !errors.Is(err, ErrInvalid) {
			t.Errorf("Verify(%q) with another key: err %v, want ErrInvalid", c.Signed, err)
		}
	}
}

func TestKnownAnswers_HChaCha20(t *testing.T) {
	// Plug.Crypto's hchacha20/2 and x/crypto's, which XChaCha20-Poly1305 uses.
	v := loadVectors(t)
	for _, c := range v.HChaCha20 {
		got, err := chacha20.HChaCha20(unhex(t, c.Key), unhex(t, c.Nonce))
		if err != nil || hex.EncodeToString(got) != c.Subkey {
			t.Errorf("HChaCha20 = %x, %v; want %s", got, err, c.Subkey)
		}
	}
}

func TestKnownAnswers_Encryptor(t *testing.T) {
	v := loadVectors(t)
	for _, c := range v.XChaCha {
		secret, msg := unhex(t, c.Secret), unhex(t, c.Message)
		got, err := Encrypt(msg, c.AAD, secret, bytes.NewReader(unhex(t, c.IV)))
		if err != nil || got != c.Encrypted {
			t.Errorf("Encrypt(%x, %q) = %q, %v; want %q", msg, c.AAD, got, err, c.Encrypted)
		}
		plain, err := Decrypt(c.Encrypted, c.AAD, secret, unhex(t, c.SignSecret))
		if err != nil || !bytes.Equal(plain, msg) {
			t.Errorf("Decrypt(%q) = %x, %v; want %x", c.Encrypted, plain, err, msg)
		}
		if _, err := Decrypt(c.Encrypted, c.AAD+"x", secret, nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("Decrypt(%q) with another AAD: err %v, want ErrInvalid", c.Encrypted, err)
		}
	}
	for _, c := range v.A128GCM {
		secret, sign, msg := unhex(t, c.Secret), unhex(t, c.SignSecret), unhex(t, c.Message)
		rnd := append(append(unhex(t, c.CEK), unhex(t, c.IV)...), unhex(t, c.WrapIV)...)
		got, err := EncryptA128GCM(msg, secret, sign, bytes.NewReader(rnd))
		if err != nil || got != c.Encrypted {
			t.Errorf("EncryptA128GCM(%x) = %q, %v; want %q", msg, got, err, c.Encrypted)
		}
		plain, err := Decrypt(c.Encrypted, DefaultAAD, secret, sign)
		if err != nil || !bytes.Equal(plain, msg) {
			t.Errorf("Decrypt(%q) = %x, %v; want %x", c.Encrypted, plain, err, msg)
		}
		if _, err := Decrypt(c.Encrypted, DefaultAAD, secret, secret); !errors.Is(err, ErrInvalid) {
			t.Errorf("Decrypt(%q) with another sign secret: err %v, want ErrInvalid", c.Encrypted, err)
		}
	}
}

func TestKnownAnswers_CSRF(t *testing.T) {
	v := loadVectors(t)
	for _, c := range v.CSRFMask {
		got, err := Mask(c.Token, c.Mask)
		if err != nil || got != c.Masked {
			t.Errorf("Mask(%q, %q) = %q, %v; want %q", c.Token, c.Mask, got, err, c.Masked)
		}
		if len(got) != MaskedTokenSize {
			t.Errorf("len(Mask(%q)) = %d, want %d", c.Token, len(got), MaskedTokenSize)
		}
		un, err := Unmask(c.Masked)
		if err != nil || un != c.Token {
			t.Errorf("Unmask(%q) = %q, %v; want %q", c.Masked, un, err, c.Token)
		}
	}
	for _, c := range v.CSRFValid {
		if got := ValidMasked(c.State, c.Masked); got != c.Valid {
			t.Errorf("ValidMasked(%q, %q) = %v, want %v (Plug.CSRFProtection.valid_state_and_csrf_token?/2)", c.State, c.Masked, got, c.Valid)
		}
	}
	for _, c := range v.CSRFHost {
		host, err := HostTokenHost([]byte(c.SecretKeyBase), c.Unmasked, c.Token)
		if err != nil || host != c.Host {
			t.Errorf("HostTokenHost(%q) = %q, %v; want %q", c.Token, host, err, c.Host)
		}
		// HostToken draws the random token from the reader: feed the
		// 18 bytes that url-encode to the vector's random token.
		raw, _ := decodeB64URL(c.Random)
		got, err := HostToken([]byte(c.SecretKeyBase), c.Unmasked, c.Host, bytes.NewReader(raw))
		if err != nil || got != c.Token {
			t.Errorf("HostToken(%q) = %q, %v; want %q", c.Host, got, err, c.Token)
		}
	}
}

func TestKnownAnswers_SessionCookies(t *testing.T) {
	v := loadVectors(t)
	signed, err := NewCodec(Config{SecretKeyBase: v.SecretKeyBase, SigningSalt: v.SigningSalt})
	if err != nil {
		t.Fatal(err)
	}
	encrypted, err := NewCodec(Config{SecretKeyBase: v.SecretKeyBase, SigningSalt: v.SigningSalt, EncryptionSalt: v.EncryptionSalt})
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewCodec(Config{SecretKeyBase: v.OtherSKB, SigningSalt: v.SigningSalt})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range v.Sessions {
		t.Run(s.Name, func(t *testing.T) {
			term := unhex(t, s.Term)
			for _, c := range []struct {
				codec *Codec
				value string
			}{{signed, s.Signed}, {encrypted, s.Encrypted}} {
				payload, err := c.codec.Open(c.value)
				if err != nil || !bytes.Equal(payload, term) {
					t.Fatalf("Open(%q) = %x, %v; want %x", c.value, payload, err, term)
				}
				m, err := c.codec.Decode(c.value)
				if !s.IsMap {
					if !errors.Is(err, ErrNotMap) {
						t.Fatalf("Decode(%q) err = %v, want ErrNotMap", c.value, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("Decode(%q): %v", c.value, err)
				}
				want, _ := erlterm.Decode(term)
				if !erlterm.Equal(m, want) {
					t.Fatalf("Decode(%q) = %s, want %s", c.value, erlterm.Format(m), erlterm.Format(want))
				}
			}
			if _, err := other.Decode(s.Signed); !errors.Is(err, ErrInvalid) {
				t.Errorf("another app's codec decoded %q: err %v, want ErrInvalid", s.Signed, err)
			}
			m, err := DecodeSession(term)
			if !s.IsMap {
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// Plug.Session.COOKIE.put is MessageVerifier.sign of
			// term_to_binary: deterministic, so equal bytes are equal cookies.
			if s.Name == "only csrf" || s.Name == "empty" || s.Name == "user" || s.Name == "user without csrf" || s.Name == "wrong size csrf" {
				got, err := signed.Encode(m)
				if err != nil || got != s.Signed {
					t.Errorf("Encode(%s) = %q, %v; want %q", erlterm.Format(m), got, err, s.Signed)
				}
			}
			t2 := v.CSRFMask[1].Token
			added := PutToken(m, t2)
			wantTerm, _ := erlterm.Decode(unhex(t, s.WithCSRFTerm))
			if !erlterm.Equal(added, wantTerm) {
				t.Errorf("PutToken = %s, want Map.put's %s", erlterm.Format(added), erlterm.Format(wantTerm))
			}
			if s.Name != "atom keys" { // OTP 25 writes atoms as ATOM_EXT, erlterm as SMALL_ATOM_UTF8_EXT
				got, err := signed.Encode(added)
				if err != nil || got != s.WithCSRFSigned {
					t.Errorf("Encode(PutToken(%s)) = %q, %v; want %q", erlterm.Format(m), got, err, s.WithCSRFSigned)
				}
			}
			if tok, ok := SessionToken(added); !ok || tok != t2 {
				t.Errorf("SessionToken(PutToken(m, %q)) = %q, %v", t2, tok, ok)
			}
		})
	}
	m, err := encrypted.Decode(v.LegacySession.Encrypted)
	if err != nil {
		t.Fatalf("Decode(plug_crypto 1.x cookie): %v", err)
	}
	if tok, ok := SessionToken(m); !ok || tok != v.CSRFMask[0].Token {
		t.Errorf("plug_crypto 1.x cookie token = %q, %v; want %q", tok, ok, v.CSRFMask[0].Token)
	}
}

func TestKnownAnswers_SetCookie(t *testing.T) {
	v := loadVectors(t)
	for _, c := range v.SetCookies {
		name, value, attrs, err := ParseSetCookie(c.SetCookie)
		if err != nil {
			t.Fatalf("ParseSetCookie(%q): %v", c.SetCookie, err)
		}
		if name != "_my_app_key" || value != v.Sessions[0].Signed {
			t.Errorf("ParseSetCookie(%q) name, value = %q, %q", c.SetCookie, name, value)
		}
		now, _ := time.Parse(time.RFC3339, c.Now)
		if got := attrs.Format(name, value, now); got != c.SetCookie {
			t.Errorf("Format(ParseSetCookie(%q)) =\n%q, want Plug.Conn.Cookies.encode/2's\n%q", c.SetCookie, got, c.SetCookie)
		}
		if strings.Contains(c.SetCookie, "max-age") != attrs.HasMaxAge {
			t.Errorf("HasMaxAge = %v for %q", attrs.HasMaxAge, c.SetCookie)
		}
	}
}
