package admin

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// TokenFileSuffix is appended to the database path to name the token file
// the server generates when no token is configured: "<db>.admin-token".
const TokenFileSuffix = ".admin-token"

// MinTokenLen is the shortest admin token accepted, in bytes. Generated
// tokens are 43 characters (32 random bytes, base64url).
const MinTokenLen = 16

// TokenFile returns the token file path beside the database at dbPath.
func TokenFile(dbPath string) string { return dbPath + TokenFileSuffix }

// GenerateToken returns a new random token: 32 bytes from crypto/rand,
// base64url without padding (43 characters, safe in a header and a file).
func GenerateToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("admin: generate token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// ValidateToken reports why token cannot be used as the admin token: it is
// shorter than MinTokenLen, or holds a byte that cannot travel in an
// Authorization header (control characters, space, non-ASCII). The error
// never contains the token.
func ValidateToken(token string) error {
	if len(token) < MinTokenLen {
		return fmt.Errorf("admin: token is %d bytes, want at least %d", len(token), MinTokenLen)
	}
	for i := 0; i < len(token); i++ {
		if c := token[i]; c <= ' ' || c >= 0x7f {
			return fmt.Errorf("admin: token has a byte that is not printable ASCII at offset %d", i)
		}
	}
	return nil
}

// LoadOrCreateToken reads the admin token from path, or, when the file
// does not exist, generates one (GenerateToken) and writes it there with
// mode 0600, so the same token is used across restarts. created reports a
// new file. The file holds the token and an optional trailing newline.
//
// It refuses (with an error naming the path, never the token) a file that
// is readable or writable by group or others, is not a regular file, or
// holds an invalid token (ValidateToken). Concurrent callers agree on one
// token: the file is written under a temporary name and linked into place,
// which fails if another process won the race, whose token is then read.
func LoadOrCreateToken(path string) (token string, created bool, err error) {
	tok, err := readTokenFile(path)
	if err == nil {
		return tok, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", false, err
	}
	tok, err = GenerateToken()
	if err != nil {
		return "", false, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return "", false, fmt.Errorf("admin: create token file %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return "", false, fmt.Errorf("admin: create token file %s: %w", path, err)
	}
	if _, err := tmp.WriteString(tok + "\n"); err != nil {
		tmp.Close()
		return "", false, fmt.Errorf("admin: write token file %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", false, fmt.Errorf("admin: write token file %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return "", false, fmt.Errorf("admin: write token file %s: %w", path, err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			tok, err := readTokenFile(path)
			return tok, false, err
		}
		return "", false, fmt.Errorf("admin: create token file %s: %w", path, err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync() // make the new name durable; best effort
		d.Close()
	}
	return tok, true, nil
}

func readTokenFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		return "", fmt.Errorf("admin: token file %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("admin: token file %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("admin: token file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("admin: token file %s has mode %04o: others may read it; chmod 600 it or remove it to generate a new one", path, perm)
	}
	buf := make([]byte, 4096)
	n, err := f.Read(buf)
	if err != nil && n == 0 {
		return "", fmt.Errorf("admin: token file %s is empty", path)
	}
	tok := strings.TrimRight(string(buf[:n]), "\r\n")
	if err := ValidateToken(tok); err != nil {
		return "", fmt.Errorf("token file %s: %w", path, err)
	}
	return tok, nil
}

// Redact returns a form of token safe to print: its first four characters
// and its length ("Xk3q… (43 chars)"), or "(none)" when empty. Tokens
// shorter than MinTokenLen show no characters at all.
func Redact(token string) string {
	if token == "" {
		return "(none)"
	}
	if len(token) < MinTokenLen {
		return fmt.Sprintf("… (%d chars)", len(token))
	}
	return fmt.Sprintf("%s… (%d chars)", token[:4], len(token))
}
