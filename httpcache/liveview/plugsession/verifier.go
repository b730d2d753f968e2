package plugsession

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"hash"
	"io"
	"strings"
)

// ErrInvalid is wrapped by every error of a token or cookie that does not
// verify or decrypt: malformed, truncated, tampered with, signed with
// another secret or salt, of an unknown algorithm. Plug.Session treats all
// of them alike (an empty session), so callers need not tell them apart.
var ErrInvalid = errors.New("plugsession: token does not verify")

// The protected header of Plug.Crypto.MessageVerifier tokens signed with
// HMAC-SHA256: Base.url_encode64("HS256", padding: false) <> ".".
const hs256Prefix = "SFMyNTY."

// Sign returns what Plug.Crypto.MessageVerifier.sign(message, secret) returns:
// url_b64("HS256") "." url_b64(message) "." url_b64(HMAC-SHA256(secret,
// first two parts)), base64url without padding. The secret must not be
// empty (Plug requires byte_size(secret) > 0); with an empty secret Sign
// returns an error wrapping [ErrConfig].
func Sign(message, secret []byte) (string, error) {
	if len(secret) == 0 {
		return "", errEmptySecret
	}
	return string(appendSigned(nil, message, hmac.New(sha256.New, secret))), nil
}

var errEmptySecret = wrapConfig("empty signing secret")

func wrapConfig(msg string) error { return &configError{msg} }

type configError struct{ msg string }

func (e *configError) Error() string { return "plugsession: bad configuration: " + e.msg }
func (e *configError) Unwrap() error { return ErrConfig }

// appendSigned appends the HS256 token of message, m being a fresh (or
// Reset) HMAC-SHA256 keyed with the secret.
func appendSigned(dst, message []byte, m hash.Hash) []byte {
	enc := base64.RawURLEncoding
	start := len(dst)
	dst = append(dst, hs256Prefix...)
	dst = enc.AppendEncode(dst, message)
	m.Write(dst[start:])
	var sum [sha256.Size]byte
	dst = append(dst, '.')
	return enc.AppendEncode(dst, m.Sum(sum[:0]))
}

// Verify returns the message of a token made by Plug.Crypto.MessageVerifier.sign
// with secret, as MessageVerifier.verify/2 does: the header must be HS256,
// HS384 or HS512, the three parts base64url (padding optional, as Elixir's
// Base.url_decode64(padding: false) reads them), and the HMAC must match in
// constant time. Any failure returns an error wrapping [ErrInvalid]. The
// returned message is freshly allocated.
func Verify(token string, secret []byte) ([]byte, error) {
	if len(secret) == 0 {
		return nil, errEmptySecret
	}
	return verifyMAC(token, func(_ string, h func() hash.Hash) hash.Hash { return hmac.New(h, secret) }, nil)
}

// verifyMAC is Verify with the HMAC made by newMAC for the token's
// algorithm ("HS256", "HS384", "HS512") and hash (and handed back to done,
// if set, once used).
func verifyMAC(token string, newMAC func(alg string, h func() hash.Hash) hash.Hash, done func(hash.Hash)) ([]byte, error) {
	protected, rest, ok := strings.Cut(token, ".")
	if !ok {
		return nil, invalid("not three dot-separated parts")
	}
	payload, signature, ok := strings.Cut(rest, ".")
	if !ok {
		return nil, invalid("not three dot-separated parts")
	}
	alg, err := decodeB64URL(protected)
	if err != nil {
		return nil, invalid("protected header is not base64url")
	}
	var h func() hash.Hash
	switch string(alg) {
	case "HS256":
		h = sha256.New
	case "HS384":
		h = sha512.New384
	case "HS512":
		h = sha512.New
	default:
		return nil, invalid("algorithm is not HS256, HS384 or HS512")
	}
	msg, err := decodeB64URL(payload)
	if err != nil {
		return nil, invalid("payload is not base64url")
	}
	sig, err := decodeB64URL(signature)
	if err != nil {
		return nil, invalid("signature is not base64url")
	}
	m := newMAC(string(alg), h)
	io.WriteString(m, token[:len(protected)+1+len(payload)])
	var sum [sha512.Size]byte
	ok = hmac.Equal(m.Sum(sum[:0]), sig)
	if done != nil {
		done(m)
	}
	if !ok {
		return nil, invalid("signature does not match")
	}
	return msg, nil
}

type invalidError struct{ msg string }

func (e *invalidError) Error() string { return "plugsession: token does not verify: " + e.msg }
func (e *invalidError) Unwrap() error { return ErrInvalid }

func invalid(msg string) error { return &invalidError{msg} }

// decodeB64URL decodes s as Elixir's Base.url_decode64(s, padding: false)
// does: unpadded, or padded to whole quanta with '=', trailing bits ignored.
// Unlike Go's decoder, it refuses '\r' and '\n' anywhere.
func decodeB64URL(s string) ([]byte, error) {
	return decodeB64(s, base64.URLEncoding, base64.RawURLEncoding, true)
}

func decodeB64(s string, padded, raw *base64.Encoding, paddingOptional bool) ([]byte, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, base64.CorruptInputError(strings.IndexAny(s, "\r\n"))
	}
	if strings.HasSuffix(s, "=") || !paddingOptional {
		if len(s)%4 != 0 {
			return nil, base64.CorruptInputError(len(s))
		}
		return padded.DecodeString(s)
	}
	return raw.DecodeString(s)
}
