package plugsession

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"fmt"
	"io"
	"strings"

	"golang.org/x/crypto/chacha20poly1305"
)

// DefaultAAD is the additional authenticated data Plug.Crypto.MessageEncryptor
// uses when none is given ("A128GCM", kept by plug_crypto 2.x for backwards
// compatibility), and the one Plug.Session.COOKIE uses.
const DefaultAAD = "A128GCM"

const (
	xcpPrefix  = "XCP."        // plug_crypto >= 2.0
	a128Prefix = "QTEyOEdDTQ." // url_b64("A128GCM") ".", plug_crypto 1.x
)

// Encrypt returns what plug_crypto 2.x Plug.Crypto.MessageEncryptor.encrypt(
// message, aad, secret, sign_secret) returns, with the 24-byte nonce read
// from random (crypto/rand.Reader in production; fixed bytes in tests):
// "XCP." url_b64(nonce ‖ tag ‖ ciphertext), XChaCha20-Poly1305 with aad as
// additional data. As in Plug, the secret must be exactly 32 bytes and no
// sign secret is used. Errors wrap [ErrConfig] (bad secret) or come from
// random.
func Encrypt(message []byte, aad string, secret []byte, random io.Reader) (string, error) {
	if len(secret) != chacha20poly1305.KeySize {
		return "", wrapConfig(fmt.Sprintf("encryption secret is %d bytes, XChaCha20-Poly1305 needs 32 (key_length 32)", len(secret)))
	}
	aead, err := chacha20poly1305.NewX(secret)
	if err != nil {
		return "", wrapConfig(err.Error())
	}
	buf := make([]byte, chacha20poly1305.NonceSizeX, chacha20poly1305.NonceSizeX+len(message)+chacha20poly1305.Overhead)
	if _, err := io.ReadFull(random, buf); err != nil {
		return "", fmt.Errorf("plugsession: reading nonce: %w", err)
	}
	sealed := aead.Seal(buf[len(buf):], buf, message, []byte(aad))
	// Go seals as ciphertext ‖ tag; Plug writes tag ‖ ciphertext.
	raw := make([]byte, 0, len(buf)+len(sealed))
	raw = append(raw, buf...)
	raw = append(raw, sealed[len(sealed)-chacha20poly1305.Overhead:]...)
	raw = append(raw, sealed[:len(sealed)-chacha20poly1305.Overhead]...)
	out := make([]byte, 0, len(xcpPrefix)+base64.RawURLEncoding.EncodedLen(len(raw)))
	out = append(out, xcpPrefix...)
	return string(base64.RawURLEncoding.AppendEncode(out, raw)), nil
}

// EncryptA128GCM returns what plug_crypto 1.x MessageEncryptor.encrypt(message,
// secret, sign_secret) returns (and plug_crypto 2.x still decrypts): a JWE-like
// token url_b64("A128GCM") "." url_b64(wrapped key) "." url_b64(iv) "."
// url_b64(ciphertext) "." url_b64(tag), where the content is AES-128-GCM with
// a random 16-byte key and AAD "A128GCM", and the key is wrapped with
// AES-GCM under secret (its first 32 bytes when longer, as v1.x did) with
// sign_secret as additional data (RFC 7518 §4.7). random supplies, in this
// order, the content key (16 bytes), the content iv (12) and the wrap iv
// (12). Use it for origins still on plug_crypto 1.x.
func EncryptA128GCM(message, secret, signSecret []byte, random io.Reader) (string, error) {
	if len(secret) > 32 {
		secret = secret[:32]
	}
	switch len(secret) {
	case 16, 24, 32:
	default:
		return "", wrapConfig(fmt.Sprintf("encryption secret is %d bytes, AES needs 16, 24 or 32", len(secret)))
	}
	var rnd [16 + 12 + 12]byte
	if _, err := io.ReadFull(random, rnd[:]); err != nil {
		return "", fmt.Errorf("plugsession: reading key and nonces: %w", err)
	}
	cek, iv, wrapIV := rnd[:16], rnd[16:28], rnd[28:40]
	ct, tag, err := gcmSeal(cek, iv, message, []byte(DefaultAAD))
	if err != nil {
		return "", err
	}
	wct, wtag, err := gcmSeal(secret, wrapIV, cek, signSecret)
	if err != nil {
		return "", err
	}
	wrapped := make([]byte, 0, len(wct)+len(wtag)+len(wrapIV))
	wrapped = append(append(append(wrapped, wct...), wtag...), wrapIV...)
	enc := base64.RawURLEncoding
	parts := []string{enc.EncodeToString([]byte(DefaultAAD)), enc.EncodeToString(wrapped), enc.EncodeToString(iv), enc.EncodeToString(ct), enc.EncodeToString(tag)}
	return strings.Join(parts, "."), nil
}

func gcmSeal(key, iv, plain, aad []byte) (ct, tag []byte, err error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, nil, wrapConfig(err.Error())
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		return nil, nil, wrapConfig(err.Error())
	}
	sealed := g.Seal(nil, iv, plain, aad)
	n := len(sealed) - g.Overhead()
	return sealed[:n], sealed[n:], nil
}

func gcmOpen(key, iv, ct, tag, aad []byte) ([]byte, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, invalid("bad AES key size")
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		return nil, invalid(err.Error())
	}
	if len(iv) != g.NonceSize() || len(tag) != g.Overhead() {
		return nil, invalid("bad AES-GCM iv or tag size")
	}
	sealed := make([]byte, 0, len(ct)+len(tag))
	sealed = append(append(sealed, ct...), tag...)
	out, err := g.Open(sealed[:0], iv, sealed, aad)
	if err != nil {
		return nil, invalid("AES-GCM authentication failed")
	}
	return out, nil
}

// Decrypt returns the message of a token made by Plug.Crypto.MessageEncryptor,
// as plug_crypto 2.x decrypt(token, aad, secret, sign_secret) does: "XCP."
// tokens (XChaCha20-Poly1305 under secret) and plug_crypto 1.x "A128GCM"
// tokens (content key unwrapped with AES-GCM under secret and sign_secret).
// The secret must be 16, 24 or 32 bytes, as Plug requires (a Plug.Session
// with key_length 64 fails there too). Any failure returns an error wrapping
// [ErrInvalid]; nothing is decrypted before it is authenticated. The
// returned message is freshly allocated.
func Decrypt(token, aad string, secret, signSecret []byte) ([]byte, error) {
	switch len(secret) {
	case 16, 24, 32:
	default:
		return nil, wrapConfig(fmt.Sprintf("encryption secret is %d bytes, want 16, 24 or 32", len(secret)))
	}
	switch {
	case strings.HasPrefix(token, xcpPrefix):
		raw, err := decodeB64URL(token[len(xcpPrefix):])
		if err != nil {
			return nil, invalid("XCP token is not base64url")
		}
		if len(raw) < chacha20poly1305.NonceSizeX+chacha20poly1305.Overhead {
			return nil, invalid("XCP token too short")
		}
		if len(secret) != chacha20poly1305.KeySize {
			return nil, invalid("XCP token needs a 32-byte secret")
		}
		aead, err := chacha20poly1305.NewX(secret)
		if err != nil {
			return nil, invalid(err.Error())
		}
		nonce := raw[:chacha20poly1305.NonceSizeX]
		tag := raw[chacha20poly1305.NonceSizeX : chacha20poly1305.NonceSizeX+chacha20poly1305.Overhead]
		ct := raw[chacha20poly1305.NonceSizeX+chacha20poly1305.Overhead:]
		sealed := make([]byte, 0, len(ct)+len(tag))
		sealed = append(append(sealed, ct...), tag...)
		out, err := aead.Open(sealed[:0], nonce, sealed, []byte(aad))
		if err != nil {
			return nil, invalid("XChaCha20-Poly1305 authentication failed")
		}
		return out, nil
	case strings.HasPrefix(token, a128Prefix):
		parts := strings.Split(token[len(a128Prefix):], ".")
		if len(parts) != 4 {
			return nil, invalid("A128GCM token is not five dot-separated parts")
		}
		var dec [4][]byte
		for i, p := range parts {
			b, err := decodeB64URL(p)
			if err != nil {
				return nil, invalid("A128GCM token part is not base64url")
			}
			dec[i] = b
		}
		wrapped, iv, ct, tag := dec[0], dec[1], dec[2], dec[3]
		if len(iv) != 12 || len(tag) != 16 {
			return nil, invalid("A128GCM token has a bad iv or tag size")
		}
		var cekLen int
		switch len(wrapped) {
		case 16 + 28, 24 + 28, 32 + 28:
			cekLen = len(wrapped) - 28
		default:
			return nil, invalid("A128GCM token has a bad wrapped key size")
		}
		cek, err := gcmOpen(secret, wrapped[cekLen+16:], wrapped[:cekLen], wrapped[cekLen:cekLen+16], signSecret)
		if err != nil {
			return nil, err
		}
		return gcmOpen(cek, iv, ct, tag, []byte(aad))
	}
	return nil, invalid("not an XCP or A128GCM token")
}
