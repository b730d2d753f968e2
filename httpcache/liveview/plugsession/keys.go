package plugsession

import (
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
)

// Defaults of Plug.Crypto.KeyGenerator.generate/3 and of the :key_iterations,
// :key_length and :key_digest options of Plug.Session.COOKIE.
const (
	DefaultKeyIterations = 1000
	DefaultKeyLength     = 32
	DefaultKeyDigest     = "sha256"
)

// ErrConfig is wrapped by every error about a bad [Config] or bad key
// derivation options.
var ErrConfig = errors.New("plugsession: bad configuration")

// KeyOptions are the options of Plug.Crypto.KeyGenerator.generate/3. The zero
// value means Plug's defaults: 1000 iterations, 32 bytes, HMAC-SHA256.
type KeyOptions struct {
	// Iterations is the PBKDF2 iteration count. If zero, 1000.
	Iterations int
	// Length is the derived key length in bytes. If zero, 32.
	Length int
	// Digest names the HMAC hash as Plug does: "sha" (SHA-1), "sha224",
	// "sha256", "sha384" or "sha512". If empty, "sha256".
	Digest string
}

func (o KeyOptions) withDefaults() KeyOptions {
	if o.Iterations == 0 {
		o.Iterations = DefaultKeyIterations
	}
	if o.Length == 0 {
		o.Length = DefaultKeyLength
	}
	if o.Digest == "" {
		o.Digest = DefaultKeyDigest
	}
	return o
}

func digestFunc(name string) (func() hash.Hash, error) {
	switch name {
	case "sha":
		return sha1.New, nil
	case "sha224":
		return sha256.New224, nil
	case "sha256":
		return sha256.New, nil
	case "sha384":
		return sha512.New384, nil
	case "sha512":
		return sha512.New, nil
	}
	return nil, fmt.Errorf("%w: key digest %q (want sha, sha224, sha256, sha384 or sha512)", ErrConfig, name)
}

// DeriveKey returns the key Plug.Crypto.KeyGenerator.generate(secret, salt,
// opts) returns: PBKDF2 (RFC 8018 §5.2) with HMAC over opts.Digest. It
// returns an error wrapping [ErrConfig] for an unknown digest, fewer than
// one iteration or a length outside 1..2^32-1 bytes; an empty secret or salt
// is allowed, as in Plug. The result is freshly allocated.
//
// Derivation costs opts.Iterations HMACs; callers derive once per
// configuration (as [NewCodec] does), as Plug caches keys in an ETS table.
func DeriveKey(secret, salt []byte, opts KeyOptions) ([]byte, error) {
	opts = opts.withDefaults()
	h, err := digestFunc(opts.Digest)
	if err != nil {
		return nil, err
	}
	if opts.Iterations < 1 {
		return nil, fmt.Errorf("%w: key iterations %d, must be >= 1", ErrConfig, opts.Iterations)
	}
	if opts.Length < 1 || int64(opts.Length) > 1<<32-1 {
		return nil, fmt.Errorf("%w: key length %d out of range", ErrConfig, opts.Length)
	}
	key, err := pbkdf2.Key(h, string(secret), salt, opts.Iterations, opts.Length)
	if err != nil {
		return nil, fmt.Errorf("%w: pbkdf2: %v", ErrConfig, err)
	}
	return key, nil
}
