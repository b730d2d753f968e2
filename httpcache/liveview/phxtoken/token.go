package phxtoken

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"math"
	"strings"
	"time"

	"github.com/firstrender/firstrender/httpcache/liveview/erlterm"
)

// TokenPrefix starts every Phoenix token signed with HMAC-SHA256: it is
// base64url("HS256"), the MessageVerifier protected header.
const TokenPrefix = "SFMyNTY."

// DefaultTokenMaxAge is the max age Plug.Crypto.sign embeds in a token when
// the caller gives none (86400 s), and the one assumed for the older token
// layouts that carry none.
const DefaultTokenMaxAge = 86400 * time.Second

// DefaultLiveViewMaxAge is the max age phoenix_live_view verifies
// data-phx-session and data-phx-static tokens with (@max_session_age
// 1_209_600 in lib/phoenix_live_view/static.ex, two weeks). It overrides the
// max age embedded in those tokens.
const DefaultLiveViewMaxAge = 1209600 * time.Second

// Errors returned by [ParseToken], wrapped with detail.
var (
	// ErrNotToken means the string does not have the shape of a Phoenix
	// token (protected.payload.signature, or five parts when encrypted).
	ErrNotToken = errors.New("phxtoken: not a Phoenix token")
	// ErrMalformed means the token has the right shape but a part does not
	// decode: bad base64, a payload that is not an Erlang term, or a term
	// that is not {data, signed_at, max_age}.
	ErrMalformed = errors.New("phxtoken: malformed Phoenix token")
)

// Token is a parsed Phoenix token (Phoenix.Token / Plug.Crypto.sign or
// encrypt). Parsing does not check the signature; see [Signer.Verify].
type Token struct {
	// Raw is the token text as given.
	Raw string
	// Protected is the decoded protected header: "HS256", "HS384",
	// "HS512" for signed tokens, "A128GCM" or "A256GCM" for encrypted ones.
	Protected string
	// Encrypted reports a MessageEncryptor token: its payload cannot be
	// read without the secret, so Data, SignedAt and MaxAge are zero.
	Encrypted bool
	// Payload is the decoded payload: the external term format bytes.
	Payload []byte
	// Data is the signed data, the first element of the payload term.
	Data erlterm.Term
	// SignedAt is when the token was signed, in UTC, millisecond precision.
	SignedAt time.Time
	// MaxAge is the max age embedded in the token (Plug.Crypto's
	// :max_age option, 86400 s by default and for older layouts that carry
	// none). The verifier may override it: see [Token.ExpiresAfter].
	MaxAge time.Duration
	// NoExpiry is set when the embedded max age is :infinity.
	NoExpiry bool
}

// Expires returns SignedAt plus the embedded MaxAge: when Plug.Crypto.verify
// without a :max_age option starts answering {:error, :expired}. It is the
// zero time for encrypted tokens and tokens signed with max_age :infinity.
func (t *Token) Expires() time.Time {
	if t.Encrypted || t.NoExpiry {
		return time.Time{}
	}
	return t.SignedAt.Add(t.MaxAge)
}

// ExpiresAfter returns SignedAt plus verifierMaxAge: the expiry when the
// application verifies with its own max age (LiveView verifies its tokens
// with [DefaultLiveViewMaxAge], ignoring the embedded one). A
// verifierMaxAge <= 0 means "use the embedded max age", as [Token.Expires].
func (t *Token) ExpiresAfter(verifierMaxAge time.Duration) time.Time {
	if verifierMaxAge <= 0 {
		return t.Expires()
	}
	if t.Encrypted {
		return time.Time{}
	}
	return t.SignedAt.Add(verifierMaxAge)
}

// ParseToken parses a Phoenix token without checking its signature. A
// signed token's payload must be an Erlang term of one of the layouts
// Plug.Crypto reads: {data, signed_at_ms, max_age_s} (current),
// {data, signed_at_ms} (Plug.Crypto 1.1) or %{data: data, signed: ms}
// (early Phoenix). Encrypted tokens (five parts, A128GCM/A256GCM) parse with
// Encrypted set. Errors wrap [ErrNotToken] or [ErrMalformed].
func ParseToken(s string) (*Token, error) {
	return parseToken(s, nil)
}

// ParseTokenWith is [ParseToken] decoding the payload with d's limits.
func ParseTokenWith(s string, d *erlterm.Decoder) (*Token, error) {
	return parseToken(s, d)
}

func parseToken(s string, d *erlterm.Decoder) (*Token, error) {
	if d == nil {
		d = &erlterm.Decoder{}
	}
	parts := strings.Split(s, ".")
	if len(parts) != 3 && len(parts) != 5 {
		return nil, fmt.Errorf("%w: %d dot-separated parts, want 3 (signed) or 5 (encrypted)", ErrNotToken, len(parts))
	}
	prot, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return nil, fmt.Errorf("%w: protected header: %v", ErrNotToken, b64err(err))
	}
	t := &Token{Raw: s, Protected: string(prot)}
	switch t.Protected {
	case "HS256", "HS384", "HS512":
		if len(parts) != 3 {
			return nil, fmt.Errorf("%w: %s token has %d parts, want 3", ErrMalformed, t.Protected, len(parts))
		}
	case "A128GCM", "A256GCM":
		if len(parts) != 5 {
			return nil, fmt.Errorf("%w: %s token has %d parts, want 5", ErrMalformed, t.Protected, len(parts))
		}
		for i, p := range parts[1:] {
			if _, err := base64.RawURLEncoding.DecodeString(p); err != nil {
				return nil, fmt.Errorf("%w: encrypted token part %d: %v", ErrMalformed, i+2, b64err(err))
			}
		}
		t.Encrypted = true
		return t, nil
	default:
		return nil, fmt.Errorf("%w: unknown protected header %q", ErrNotToken, printableOrHex(prot))
	}
	if _, err := base64.RawURLEncoding.DecodeString(parts[2]); err != nil {
		return nil, fmt.Errorf("%w: signature: %v", ErrMalformed, b64err(err))
	}
	t.Payload, err = base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrMalformed, b64err(err))
	}
	term, err := d.Decode(t.Payload)
	if err != nil {
		return nil, fmt.Errorf("%w: payload: %w", ErrMalformed, err)
	}
	var signed, maxAge erlterm.Term = nil, erlterm.Int(DefaultTokenMaxAge / time.Second)
	switch x := term.(type) {
	case erlterm.Tuple:
		switch len(x) {
		case 3:
			t.Data, signed, maxAge = x[0], x[1], x[2]
		case 2:
			t.Data, signed = x[0], x[1]
		default:
			return nil, fmt.Errorf("%w: payload is a %d-tuple, want {data, signed_at, max_age}", ErrMalformed, len(x))
		}
	case erlterm.Map:
		var ok bool
		if t.Data, ok = x.Get(erlterm.Atom("data")); !ok {
			return nil, fmt.Errorf("%w: payload map has no :data key", ErrMalformed)
		}
		if signed, ok = x.Get(erlterm.Atom("signed")); !ok {
			return nil, fmt.Errorf("%w: payload map has no :signed key", ErrMalformed)
		}
	default:
		return nil, fmt.Errorf("%w: payload is %s, want {data, signed_at, max_age}", ErrMalformed, kind(term))
	}
	ms, ok := signed.(erlterm.Int)
	if !ok || ms < 0 || int64(ms) > math.MaxInt64/int64(time.Millisecond) {
		return nil, fmt.Errorf("%w: signed_at is %s, want milliseconds since 1970", ErrMalformed, brief(signed))
	}
	t.SignedAt = time.UnixMilli(int64(ms)).UTC()
	switch m := maxAge.(type) {
	case erlterm.Int:
		if m < 0 || int64(m) > math.MaxInt64/int64(time.Second) {
			return nil, fmt.Errorf("%w: max_age %d out of range", ErrMalformed, m)
		}
		t.MaxAge = time.Duration(m) * time.Second
	case erlterm.Float:
		if !(m >= 0 && float64(m) < float64(math.MaxInt64/int64(time.Second))) {
			return nil, fmt.Errorf("%w: max_age %v out of range", ErrMalformed, m)
		}
		t.MaxAge = time.Duration(float64(m) * float64(time.Second))
	case erlterm.Atom:
		if m != "infinity" {
			return nil, fmt.Errorf("%w: max_age is %s", ErrMalformed, brief(m))
		}
		t.NoExpiry = true
	default:
		return nil, fmt.Errorf("%w: max_age is %s, want seconds", ErrMalformed, brief(maxAge))
	}
	return t, nil
}

// brief renders t for an error message, at most 60 characters.
func brief(t erlterm.Term) string {
	s := erlterm.Format(t)
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}

func kind(t erlterm.Term) string {
	return strings.ToLower(strings.TrimPrefix(fmt.Sprintf("%T", t), "erlterm."))
}

// b64err rewords base64 errors: "illegal base64 data at input byte 12".
func b64err(err error) string {
	var ce base64.CorruptInputError
	if errors.As(err, &ce) {
		return fmt.Sprintf("bad base64url at byte %d", int64(ce))
	}
	return err.Error()
}

func printableOrHex(b []byte) string {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return fmt.Sprintf("%x", b)
		}
	}
	return string(b)
}

// SignatureStatus is the outcome of a signature check.
type SignatureStatus int

const (
	// NotChecked: no secret was configured, or the token is encrypted.
	NotChecked SignatureStatus = iota
	// Valid: the HMAC matches the configured secret and salt.
	Valid
	// Invalid: the HMAC does not match (other secret or salt, or tampering).
	Invalid
)

// String returns "valid", "invalid" or "not checked".
func (s SignatureStatus) String() string {
	switch s {
	case Valid:
		return "valid"
	case Invalid:
		return "invalid"
	}
	return "not checked"
}

// MarshalText implements [encoding.TextMarshaler].
func (s SignatureStatus) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements [encoding.TextUnmarshaler].
func (s *SignatureStatus) UnmarshalText(b []byte) error {
	switch string(b) {
	case "valid":
		*s = Valid
	case "invalid":
		*s = Invalid
	case "not checked":
		*s = NotChecked
	default:
		return fmt.Errorf("phxtoken: unknown signature status %q", b)
	}
	return nil
}

// Signer signs and verifies Phoenix tokens for one secret_key_base and
// salt, as Phoenix.Token.sign(endpoint, salt, data) and Plug.Crypto.sign
// do. It keeps only the derived key, never the secret_key_base, and its
// String, GoString, LogValue and MarshalText forms print no key material.
// A Signer is safe for concurrent use.
type Signer struct {
	key []byte
}

// NewSigner derives the signing key the way Plug.Crypto.KeyGenerator does:
// PBKDF2-HMAC-SHA256(secretKeyBase, salt, 1000 iterations, 32 bytes). For
// LiveView's own tokens the salt is the endpoint's
// live_view: [signing_salt: ...]. It fails when secretKeyBase is empty.
// The error never contains the secret.
func NewSigner(secretKeyBase, salt string) (*Signer, error) {
	if secretKeyBase == "" {
		return nil, errors.New("phxtoken: empty secret_key_base")
	}
	key, err := pbkdf2.Key(sha256.New, secretKeyBase, []byte(salt), 1000, 32)
	if err != nil {
		return nil, errors.New("phxtoken: deriving signing key failed")
	}
	return &Signer{key: key}, nil
}

// String returns "phxtoken.Signer{key: REDACTED}": never key material.
func (s *Signer) String() string { return "phxtoken.Signer{key: REDACTED}" }

// GoString is String, so %#v prints no key material either.
func (s *Signer) GoString() string { return s.String() }

// LogValue implements [slog.LogValuer] with the redacted String.
func (s *Signer) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText implements [encoding.TextMarshaler] with the redacted String,
// so a Signer inside a JSON-encoded config prints no key material.
func (s *Signer) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Sign returns a Phoenix token "SFMyNTY.<payload>.<signature>" whose payload
// is term_to_binary({data, signed_at_ms, max_age_s}), signed with
// HMAC-SHA256, exactly as Plug.Crypto.sign(secret_key_base, salt, data,
// signed_at: ..., max_age: ...) produces it. maxAge is truncated to whole
// seconds and must not be negative. It fails when data cannot be encoded.
func (s *Signer) Sign(data erlterm.Term, signedAt time.Time, maxAge time.Duration) (string, error) {
	if maxAge < 0 {
		return "", errors.New("phxtoken: negative max age")
	}
	payload, err := erlterm.Encode(erlterm.Tuple{data, erlterm.Int(signedAt.UnixMilli()), erlterm.Int(maxAge / time.Second)})
	if err != nil {
		return "", fmt.Errorf("phxtoken: sign: %w", err)
	}
	input := TokenPrefix + base64.RawURLEncoding.EncodeToString(payload)
	mac := hmac.New(sha256.New, s.key)
	mac.Write([]byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil)), nil
}

// Verify checks the token's HMAC (HS256, HS384 or HS512, as
// Plug.Crypto.MessageVerifier accepts) in constant time. It returns
// [NotChecked] for encrypted tokens and strings that are not signed tokens,
// else [Valid] or [Invalid]. It does not look at expiry.
func (s *Signer) Verify(token string) SignatureStatus {
	prot, rest, ok := strings.Cut(token, ".")
	if !ok {
		return NotChecked
	}
	payload, sig64, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(sig64, ".") {
		return NotChecked
	}
	var h func() hash.Hash
	switch prot {
	case "SFMyNTY":
		h = sha256.New
	case "SFMzODQ":
		h = sha512.New384
	case "SFM1MTI":
		h = sha512.New
	default:
		return NotChecked
	}
	sig, err := base64.RawURLEncoding.DecodeString(sig64)
	if err != nil {
		return Invalid
	}
	mac := hmac.New(h, s.key)
	mac.Write([]byte(prot + "." + payload))
	if hmac.Equal(mac.Sum(nil), sig) {
		return Valid
	}
	return Invalid
}

// Sign is a one-shot [NewSigner] + [Signer.Sign]: it signs data the way
// Phoenix.Token.sign(endpoint, salt, data, signed_at: ..., max_age: ...)
// does with the endpoint's secretKeyBase. Deriving the key costs about a
// millisecond; keep a [Signer] to sign many tokens.
//
// For LiveView-shaped data see [SessionData] and [StaticData].
func Sign(secretKeyBase, salt string, data erlterm.Term, signedAt time.Time, maxAge time.Duration) (string, error) {
	s, err := NewSigner(secretKeyBase, salt)
	if err != nil {
		return "", err
	}
	return s.Sign(data, signedAt, maxAge)
}
