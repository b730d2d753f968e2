package phxtoken

import (
	"crypto/sha256"
	"encoding/hex"
)

// AnnotationTokens is the record annotation listing the Phoenix tokens of a
// stored page, as comma-separated [TokenHash] values in page order. The
// liveview lint writes it on every page it inspected (present but empty:
// linted, no token); the livesocket join guard reads it to map a refused
// phx_join to the entry that served its session token. It is declared here,
// beside the hash that defines its values, because the writer and the reader
// must not import each other. docs/annotations.md lists the whole namespace.
const AnnotationTokens = "liveview.tokens"

// TokenHash returns the first 16 hex characters (8 bytes) of the SHA-256
// of the token's text: the form [AnnotationTokens] lists. It is a lookup
// key, not a secret; it reveals nothing usable about the token.
func TokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:8])
}
