package accounts

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// Opaque secrets (refresh tokens, API tokens) are 256 random bits, shown
// to their holder once and stored as the hex SHA-256 of the whole string.
// Personal API tokens carry a prefix so that secret scanners and people
// recognise them, and so that Authorization: Bearer tells them from JWTs
// without trying both.
const (
	APITokenPrefix     = "i8c_"
	refreshTokenPrefix = "i8r_"
)

func newSecret(prefix string) string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (Go 1.24+: it crashes the program instead)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

// HashSecret is the stored form of an opaque token.
func HashSecret(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// IsAPIToken reports whether a bearer credential is a personal API token.
func IsAPIToken(s string) bool { return strings.HasPrefix(s, APITokenPrefix) }
