package plugsession

import (
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Sizes of Plug.CSRFProtection tokens (@token_size, @encoded_token_size,
// @double_encoded_token_size, and the masked token they make).
const (
	// TokenRandomSize is the number of random bytes in a token (18, chosen
	// by Plug so that base64 needs no padding).
	TokenRandomSize = 18
	// TokenSize is the length of an unmasked token, the value stored under
	// "_csrf_token" in the session: url_b64 of 18 bytes, 24 characters.
	TokenSize = 24
	// MaskedTokenSize is the length of every masked token
	// Plug.CSRFProtection.get_csrf_token/0 returns: url_b64 of the 24-byte
	// XOR (32 characters) followed by the 24-character mask. It does not
	// depend on the token or the mask, so a spliced page keeps its length.
	MaskedTokenSize = 32 + TokenSize
)

// SessionKey is the session key under which Plug.CSRFProtection keeps the
// unmasked token (its :session_key option's default).
const SessionKey = "_csrf_token"

// ErrMalformedToken is wrapped by errors about a masked or unmasked CSRF
// token that does not have Plug's shape.
var ErrMalformedToken = errors.New("plugsession: malformed CSRF token")

// GenerateToken returns a new unmasked token as Plug.CSRFProtection's
// generate_token/0 makes it: Base.url_encode64 of 18 bytes read from random
// (crypto/rand.Reader in production). The error comes from random.
func GenerateToken(random io.Reader) (string, error) {
	var b [TokenRandomSize]byte
	if _, err := io.ReadFull(random, b[:]); err != nil {
		return "", fmt.Errorf("plugsession: reading token bytes: %w", err)
	}
	return base64.URLEncoding.EncodeToString(b[:]), nil
}

// Mask returns the masked form of the unmasked token with the given mask,
// as Plug.CSRFProtection's mask/1 does with mask = generate_token():
// Base.url_encode64(Plug.Crypto.mask(token, mask)) <> mask. Both must be
// [TokenSize] bytes, else the error wraps [ErrMalformedToken]. The result is
// always [MaskedTokenSize] bytes.
func Mask(token, mask string) (string, error) {
	var out [MaskedTokenSize]byte
	if err := maskInto(&out, token, mask); err != nil {
		return "", err
	}
	return string(out[:]), nil
}

func maskInto(dst *[MaskedTokenSize]byte, token, mask string) error {
	if len(token) != TokenSize || len(mask) != TokenSize {
		return fmt.Errorf("%w: token and mask must be %d bytes, got %d and %d", ErrMalformedToken, TokenSize, len(token), len(mask))
	}
	var x [TokenSize]byte
	subtle.XORBytes(x[:], []byte(token), []byte(mask))
	base64.URLEncoding.Encode(dst[:32], x[:])
	copy(dst[32:], mask)
	return nil
}

// MaskNew masks token with a fresh mask read from random, as
// Plug.CSRFProtection.get_csrf_token/0 does for every request. The result is
// [MaskedTokenSize] bytes.
func MaskNew(token string, random io.Reader) (string, error) {
	mask, err := GenerateToken(random)
	if err != nil {
		return "", err
	}
	return Mask(token, mask)
}

// Unmask returns the unmasked token a masked token carries: the XOR of its
// decoded first 32 characters (base64url, or standard base64 as older Plug
// releases wrote and valid_masked_token?/3 still reads) with its last 24. The
// result is only meaningful once compared with the session's token; use
// [ValidMasked] for that, in constant time. Errors wrap [ErrMalformedToken].
func Unmask(masked string) (string, error) {
	if len(masked) != MaskedTokenSize {
		return "", fmt.Errorf("%w: masked token is %d bytes, want %d", ErrMalformedToken, len(masked), MaskedTokenSize)
	}
	x, err := decodeMaskedPart(masked[:32])
	if err != nil {
		return "", err
	}
	if len(x) != TokenSize {
		return "", fmt.Errorf("%w: first 32 bytes decode to %d bytes, want %d", ErrMalformedToken, len(x), TokenSize)
	}
	var out [TokenSize]byte
	subtle.XORBytes(out[:], x, []byte(masked[32:]))
	return string(out[:]), nil
}

func decodeMaskedPart(s string) ([]byte, error) {
	// valid_masked_token?/3: Base.url_decode64(user_token), then Base.decode64.
	if b, err := decodeB64(s, base64.URLEncoding, base64.RawURLEncoding, false); err == nil {
		return b, nil
	}
	if b, err := decodeB64(s, base64.StdEncoding, base64.RawStdEncoding, false); err == nil {
		return b, nil
	}
	return nil, fmt.Errorf("%w: first 32 bytes are not base64", ErrMalformedToken)
}

// ValidMasked reports whether masked is a masked form of the session's
// unmasked token, as Plug.CSRFProtection.valid_state_and_csrf_token?/2 does
// (the check protect_from_forgery makes for a "_csrf_token" parameter or an
// x-csrf-token header): the state must be 24 bytes, masked 32+24 bytes whose
// first part decodes, and the comparison is constant-time.
func ValidMasked(state, masked string) bool {
	if len(state) != TokenSize || len(masked) != MaskedTokenSize {
		return false
	}
	x, err := decodeMaskedPart(masked[:32])
	if err != nil || len(x) != TokenSize {
		return false
	}
	var got [TokenSize]byte
	subtle.XORBytes(got[:], x, []byte(masked[32:]))
	return subtle.ConstantTimeCompare(got[:], []byte(state)) == 1
}

// IsHostToken reports whether a CSRF token is of the per-host kind
// Plug.CSRFProtection.get_csrf_token_for/1 emits for URLs with a host (a
// MessageVerifier token, "SFMyNTY." …) rather than a masked token.
func IsHostToken(token string) bool { return strings.HasPrefix(token, hs256Prefix) }

// HostToken returns the token Plug.CSRFProtection.get_csrf_token_for/1
// returns for a URL whose host is host: MessageVerifier.sign(random_token <>
// host, KeyGenerator.generate(secret_key_base, unmasked)), with random_token
// a fresh [GenerateToken] from random. It costs one key derivation (1000
// PBKDF2 iterations), which Plug does not cache either.
func HostToken(secretKeyBase []byte, unmasked, host string, random io.Reader) (string, error) {
	rt, err := GenerateToken(random)
	if err != nil {
		return "", err
	}
	key, err := DeriveKey(secretKeyBase, []byte(unmasked), KeyOptions{})
	if err != nil {
		return "", err
	}
	return Sign([]byte(rt+host), key)
}

// HostTokenHost returns the host a per-host token was made for, after
// verifying it against the session's unmasked token as
// Plug.CSRFProtection's valid_csrf_token?/4 does (the caller then compares
// the host with the request's host or its allow list). Errors wrap
// [ErrInvalid] or [ErrMalformedToken].
func HostTokenHost(secretKeyBase []byte, unmasked, token string) (string, error) {
	if len(unmasked) != TokenSize {
		return "", fmt.Errorf("%w: session token is %d bytes, want %d", ErrMalformedToken, len(unmasked), TokenSize)
	}
	if !IsHostToken(token) {
		return "", fmt.Errorf("%w: not a per-host token", ErrMalformedToken)
	}
	key, err := DeriveKey(secretKeyBase, []byte(unmasked), KeyOptions{})
	if err != nil {
		return "", err
	}
	msg, err := Verify(token, key)
	if err != nil {
		return "", err
	}
	if len(msg) < TokenSize {
		return "", fmt.Errorf("%w: per-host token message is %d bytes", ErrMalformedToken, len(msg))
	}
	return string(msg[TokenSize:]), nil
}
