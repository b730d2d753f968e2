package plugsession

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"

	"github.com/firstrender/firstrender/httpcache/liveview/erlterm"
)

// DefaultMaxCookieSize bounds a session cookie value [Codec.Decode] reads,
// and a Set-Cookie line this package writes: 4096 bytes, the limit
// Plug.Conn enforces on the Set-Cookie it sends (CookieOverflowError) and
// the size browsers keep.
const DefaultMaxCookieSize = 4096

// Session cookie errors. Plug.Session reads a cookie that fails with
// [ErrInvalid], [ErrTooLarge] or [ErrUndecodable] as an empty session (and
// a new one is written when the page puts a CSRF token in it); a cookie with
// a verified non-map term makes Plug's get_session/2 fail, so [ErrNotMap]
// means the origin itself could not serve that visitor.
var (
	ErrTooLarge    = errors.New("plugsession: cookie too large")
	ErrUndecodable = errors.New("plugsession: session is not a term Plug would load")
	ErrNotMap      = errors.New("plugsession: session term is not a map")
)

// Encryption selects the format of the encrypted cookies a [Codec] writes.
// Decoding accepts both formats whatever it is set to, as plug_crypto 2.x
// does.
type Encryption int

const (
	// XChaCha20Poly1305 writes "XCP." tokens, as plug_crypto >= 2.0
	// (Phoenix >= 1.7.10 apps) does. The default.
	XChaCha20Poly1305 Encryption = iota
	// A128GCM writes the plug_crypto 1.x format, which every plug_crypto
	// release decrypts. Use it for origins on plug_crypto 1.x.
	A128GCM
)

// Config describes a Plug.Session.COOKIE store (Phoenix's
// @session_options) and the endpoint's secret_key_base.
type Config struct {
	// SecretKeyBase is the endpoint's secret_key_base. Plug requires at
	// least 64 bytes; shorter is a configuration error.
	SecretKeyBase string
	// SigningSalt is the store's :signing_salt. Required.
	SigningSalt string
	// EncryptionSalt is the store's :encryption_salt. If empty the cookie
	// is signed only (the phx.new default); otherwise it is encrypted.
	EncryptionSalt string
	// Key holds :key_iterations, :key_length and :key_digest. The zero
	// value is Plug's default (1000, 32, sha256).
	Key KeyOptions
	// Encryption is the format written when EncryptionSalt is set. The
	// zero value is XChaCha20Poly1305.
	Encryption Encryption
	// MaxCookieSize bounds the cookie values read (longer ones fail with
	// ErrTooLarge before any crypto). If zero, DefaultMaxCookieSize.
	MaxCookieSize int
	// Random supplies nonces and tokens. If nil, crypto/rand.Reader.
	Random io.Reader
}

// Codec reads and writes Plug.Session.COOKIE session cookies. Its keys are
// derived once, in [NewCodec], as Plug caches them in Plug.Keys. A Codec is
// safe for concurrent use if its Random is (crypto/rand.Reader is).
type Codec struct {
	signKey, encKey []byte // encKey nil: signed cookies
	enc             Encryption
	maxSize         int
	random          io.Reader
	macs            sync.Pool // HMAC-SHA256 under signKey (newMAC)
}

// NewCodec validates cfg the way Plug.Session.COOKIE.init/1 and its derive/3
// do, and derives the signing and (when EncryptionSalt is set) encryption
// keys. Errors wrap [ErrConfig]; their text never includes the secret.
func NewCodec(cfg Config) (*Codec, error) {
	if len(cfg.SecretKeyBase) < 64 {
		return nil, wrapConfig(fmt.Sprintf("secret_key_base is %d bytes, Plug.Session.COOKIE expects at least 64", len(cfg.SecretKeyBase)))
	}
	if cfg.SigningSalt == "" {
		return nil, wrapConfig("session signing_salt is required")
	}
	if cfg.Encryption != XChaCha20Poly1305 && cfg.Encryption != A128GCM {
		return nil, wrapConfig(fmt.Sprintf("unknown encryption format %d", cfg.Encryption))
	}
	if cfg.MaxCookieSize < 0 {
		return nil, wrapConfig("negative MaxCookieSize")
	}
	c := &Codec{enc: cfg.Encryption, maxSize: cfg.MaxCookieSize, random: cfg.Random}
	if c.maxSize == 0 {
		c.maxSize = DefaultMaxCookieSize
	}
	if c.random == nil {
		c.random = rand.Reader
	}
	var err error
	if c.signKey, err = DeriveKey([]byte(cfg.SecretKeyBase), []byte(cfg.SigningSalt), cfg.Key); err != nil {
		return nil, err
	}
	if cfg.EncryptionSalt != "" {
		if c.encKey, err = DeriveKey([]byte(cfg.SecretKeyBase), []byte(cfg.EncryptionSalt), cfg.Key); err != nil {
			return nil, err
		}
		switch {
		case c.enc == XChaCha20Poly1305 && len(c.encKey) != 32:
			return nil, wrapConfig(fmt.Sprintf("an encrypted session needs key_length 32 for XChaCha20-Poly1305, got %d", len(c.encKey)))
		case len(c.encKey) != 16 && len(c.encKey) != 24 && len(c.encKey) != 32:
			return nil, wrapConfig(fmt.Sprintf("an encrypted session needs key_length 16, 24 or 32, got %d", len(c.encKey)))
		}
	}
	return c, nil
}

// Encrypted reports whether the codec's cookies are encrypted (an
// encryption salt is configured) rather than only signed.
func (c *Codec) Encrypted() bool { return c.encKey != nil }

// Open verifies (or decrypts) a session cookie value and returns the bytes
// Plug.Session.COOKIE would pass to :erlang.binary_to_term/1. Errors wrap
// [ErrTooLarge] or [ErrInvalid].
func (c *Codec) Open(value string) ([]byte, error) {
	if len(value) > c.maxSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(value), c.maxSize)
	}
	if c.encKey == nil {
		return verifyMAC(value, c.newMAC, c.doneMAC)
	}
	return Decrypt(value, DefaultAAD, c.encKey, c.signKey)
}

// Seal signs (or encrypts) a term_to_binary payload into a session cookie
// value, as Plug.Session.COOKIE.put/4 does.
func (c *Codec) Seal(payload []byte) (string, error) {
	switch {
	case c.encKey == nil:
		m := c.newMAC("HS256", sha256.New)
		tok := string(appendSigned(make([]byte, 0, len(hs256Prefix)+(len(payload)*4+2)/3+44), payload, m))
		c.doneMAC(m)
		return tok, nil
	case c.enc == A128GCM:
		return EncryptA128GCM(payload, c.encKey, c.signKey, c.random)
	default:
		return Encrypt(payload, DefaultAAD, c.encKey, c.random)
	}
}

// Decode opens a session cookie value and decodes its session map, as
// Plug.Session.COOKIE.get/3 with the :external_term_format serializer does
// (Plug.Crypto.non_executable_binary_to_term/1). Errors: [ErrTooLarge],
// [ErrInvalid] (Plug: empty session), [ErrUndecodable] (not a term, or one
// holding a fun or a port, which Plug refuses to load: empty session),
// [ErrNotMap]. The map does not share memory with value.
func (c *Codec) Decode(value string) (erlterm.Map, error) {
	payload, err := c.Open(value)
	if err != nil {
		return nil, err
	}
	return DecodeSession(payload)
}

// DecodeSession decodes a term_to_binary session payload; see
// [Codec.Decode] for the errors.
func DecodeSession(payload []byte) (erlterm.Map, error) {
	t, err := erlterm.Decode(payload)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUndecodable, err)
	}
	if !executableFree(t, 0) {
		return nil, fmt.Errorf("%w: holds a fun or port (Plug.Crypto.non_executable_binary_to_term/1 refuses it)", ErrUndecodable)
	}
	m, ok := t.(erlterm.Map)
	if !ok {
		return nil, fmt.Errorf("%w: got %s", ErrNotMap, kindOf(t))
	}
	return m, nil
}

func kindOf(t erlterm.Term) string {
	switch t.(type) {
	case erlterm.Tuple:
		return "a tuple"
	case erlterm.List, erlterm.Charlist, erlterm.ImproperList:
		return "a list"
	case erlterm.Binary, erlterm.BitBinary:
		return "a binary"
	case erlterm.Atom:
		return "an atom"
	}
	return "a scalar"
}

// executableFree mirrors non_executable_terms/1: atoms, numbers,
// bitstrings, pids and references are fine, lists, tuples and maps are
// walked, everything else (funs, ports) is refused.
func executableFree(t erlterm.Term, depth int) bool {
	if depth > erlterm.DefaultMaxDepth {
		return false
	}
	switch x := t.(type) {
	case erlterm.Int, erlterm.BigInt, erlterm.Float, erlterm.Atom, erlterm.Binary, erlterm.BitBinary, erlterm.Charlist, erlterm.Pid, erlterm.Ref:
		return true
	case erlterm.List:
		for _, e := range x {
			if !executableFree(e, depth+1) {
				return false
			}
		}
		return true
	case erlterm.ImproperList:
		for _, e := range x.Elems {
			if !executableFree(e, depth+1) {
				return false
			}
		}
		return executableFree(x.Tail, depth+1)
	case erlterm.Tuple:
		for _, e := range x {
			if !executableFree(e, depth+1) {
				return false
			}
		}
		return true
	case erlterm.Map:
		for _, p := range x {
			if !executableFree(p.Key, depth+1) || !executableFree(p.Value, depth+1) {
				return false
			}
		}
		return true
	}
	return false
}

// Encode encodes a session map and seals it into a cookie value, as
// Plug.Session.COOKIE.put/4 does. The map's pairs are written in the order
// given; [PutToken] keeps Erlang's order, so a map Plug decoded and PutToken
// changed encodes to the bytes :erlang.term_to_binary/1 gives.
func (c *Codec) Encode(m erlterm.Map) (string, error) {
	payload, err := erlterm.Encode(m)
	if err != nil {
		return "", fmt.Errorf("plugsession: encoding session: %w", err)
	}
	return c.Seal(payload)
}

// SessionToken returns the unmasked CSRF token of a session as
// Plug.CSRFProtection reads it (dump_state_from_session/1): the value under
// the binary key "_csrf_token" if it is a 24-byte binary. ok is false
// otherwise (no key, an atom key, another type or size): Plug then makes a
// new token and puts it in the session.
func SessionToken(m erlterm.Map) (token string, ok bool) {
	v, found := m.Get(erlterm.Binary(SessionKey))
	if !found {
		return "", false
	}
	b, isBin := v.(erlterm.Binary)
	if !isBin || len(b) != TokenSize {
		return "", false
	}
	return string(b), true
}

// PutToken returns m with "_csrf_token" set to token, as
// put_session(conn, "_csrf_token", token) does: an existing pair is
// replaced in place, a new one goes where :erlang.term_to_binary/1 puts it
// in a small map (binary keys last, in byte order). m is not modified.
func PutToken(m erlterm.Map, token string) erlterm.Map {
	key := erlterm.Binary(SessionKey)
	out := make(erlterm.Map, 0, len(m)+1)
	for i, p := range m {
		if erlterm.Equal(p.Key, key) {
			out = append(out, m...)
			out[i].Value = erlterm.Binary(token)
			return out
		}
	}
	at := len(m)
	for i, p := range m {
		if b, ok := p.Key.(erlterm.Binary); ok && bytes.Compare(b, key) > 0 {
			at = i
			break
		}
	}
	out = append(out, m[:at]...)
	out = append(out, erlterm.MapPair{Key: key, Value: erlterm.Binary(token)})
	return append(out, m[at:]...)
}

// newMAC returns an HMAC keyed with the signing key over h: for SHA-256
// (every cookie Plug.Session signs) one from the codec's pool, reset, so
// the key schedule is not recomputed per cookie.
func (c *Codec) newMAC(alg string, h func() hash.Hash) hash.Hash {
	if alg != "HS256" {
		return hmac.New(h, c.signKey)
	}
	if m, ok := c.macs.Get().(hash.Hash); ok {
		m.Reset()
		return m
	}
	return hmac.New(sha256.New, c.signKey)
}

// doneMAC returns a SHA-256 HMAC from newMAC to the pool.
func (c *Codec) doneMAC(m hash.Hash) {
	if m.Size() == sha256.Size {
		c.macs.Put(m)
	}
}

// Fingerprint identifies the codec's keys without revealing them: the
// first 16 hex characters of HMAC-SHA256 over a fixed label, keyed with
// the signing key and then the encryption key (if any). Two codecs with
// the same secret_key_base, salts and key options have the same
// fingerprint; any difference changes it. A stored page records it, so a
// page prepared under one configuration is never spliced under another.
func (c *Codec) Fingerprint() string {
	m := hmac.New(sha256.New, c.signKey)
	m.Write([]byte("firstrender plugsession fingerprint v1"))
	sum := m.Sum(nil)
	if c.encKey != nil {
		m = hmac.New(sha256.New, c.encKey)
		m.Write(sum)
		sum = m.Sum(nil)
	}
	return hex.EncodeToString(sum[:8])
}
