package keyring

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/integr8scode/integr8scode/accounts"
)

// Token keys are the HMAC secrets that sign access tokens (JWTs), kept in
// a directory of their own, apart from the ledger's keys: the data
// directory's auth-keys, or a Kubernetes Secret mounted as one.
//
//	<id>.key  32 random bytes, base64; 0600
//	active    the id of the key that signs now
//
// Rotation adds a key and points active at it. Old keys keep verifying
// the tokens they signed until those expire (minutes); delete them after
// that. Every API replica must read the same directory.

// LoadOrCreateTokenKeys opens the token keys in dir, creating dir (0700)
// and a first key if it holds none.
func LoadOrCreateTokenKeys(dir string) (accounts.SigningKeys, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return accounts.SigningKeys{}, fmt.Errorf("token keys: %w", err)
	}
	if _, err := os.Stat(filepath.Join(dir, activeFile)); errors.Is(err, fs.ErrNotExist) {
		if _, err := RotateTokenKey(dir); err != nil {
			return accounts.SigningKeys{}, err
		}
	}
	return LoadTokenKeys(dir)
}

// LoadTokenKeys opens the token keys in dir.
func LoadTokenKeys(dir string) (accounts.SigningKeys, error) {
	k := accounts.SigningKeys{Keys: map[string][]byte{}}
	active, err := os.ReadFile(filepath.Join(dir, activeFile))
	if err != nil {
		return k, fmt.Errorf("token keys: %w", err)
	}
	k.Active = strings.TrimSpace(string(active))
	entries, err := os.ReadDir(dir)
	if err != nil {
		return k, fmt.Errorf("token keys: %w", err)
	}
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".key")
		if !ok || strings.HasPrefix(id, ".") || e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return k, fmt.Errorf("token keys: %w", err)
		}
		secret, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
		if err != nil {
			return k, fmt.Errorf("token keys: %s is not base64: %w", e.Name(), err)
		}
		k.Keys[id] = secret
	}
	if err := k.Validate(); err != nil {
		return k, fmt.Errorf("token keys in %s: %w", dir, err)
	}
	return k, nil
}

// RotateTokenKey adds a new 256-bit key to dir and makes it the active
// one. It returns the new key's id.
func RotateTokenKey(dir string) (string, error) {
	// crypto/rand.Read never returns an error (since Go 1.24 a failing
	// source crashes the program), here and below.
	secret := make([]byte, 32)
	id := make([]byte, 8)
	_, _ = rand.Read(secret)
	_, _ = rand.Read(id)
	hexID := hex.EncodeToString(id)
	if _, err := LoadOrCreateIdempotencySecret(dir); err != nil {
		return "", err
	}
	if _, err := LoadOrCreateContentKEK(filepath.Join(dir, ContentKEKFile)); err != nil {
		return "", err
	}
	if err := writeFileOf("token keys", dir, hexID+".key", []byte(base64.StdEncoding.EncodeToString(secret)+"\n")); err != nil {
		return "", err
	}
	if err := writeFileOf("token keys", dir, activeFile, []byte(hexID+"\n")); err != nil {
		return "", err
	}
	return hexID, nil
}

// IdempotencySecretFile is the secret, beside the token keys, that keys
// the execution ids derived from Idempotency-Key headers: 32 random bytes,
// base64. Unlike the token keys it is never rotated (a new one would
// derive new ids, and a retry after the rotation would run again).
const IdempotencySecretFile = "idempotency.secret"

// LoadOrCreateIdempotencySecret reads the secret in dir, creating it in a
// directory that can be written (a read-only Secret must carry it: `admin
// rotate-token-key` makes it with the first key).
func LoadOrCreateIdempotencySecret(dir string) ([]byte, error) {
	path := filepath.Join(dir, IdempotencySecretFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		secret := make([]byte, 32)
		_, _ = rand.Read(secret)
		if err := writeFileOf("token keys", dir, IdempotencySecretFile, []byte(base64.StdEncoding.EncodeToString(secret)+"\n")); err != nil {
			return nil, fmt.Errorf("%w (a read-only directory must hold %s: make it with integr8scode admin rotate-token-key)", err, IdempotencySecretFile)
		}
		return secret, nil
	}
	if err != nil {
		return nil, fmt.Errorf("token keys: %w", err)
	}
	secret, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(secret) < 32 {
		return nil, fmt.Errorf("token keys: %s must hold at least 32 bytes, base64", path)
	}
	return secret, nil
}

// ContentKEKFile is the key-encryption key, beside the token keys, under
// which every execution's data key is stored wrapped (package content): 32
// random bytes, base64. A dump of the key store without it reveals
// nothing; losing it loses every execution's content, so backups must
// hold it (docs/operations.md). It is never rotated by the platform.
const ContentKEKFile = "content.kek"

// LoadOrCreateContentKEK reads the key-encryption key at path, creating it
// if its directory can be written.
func LoadOrCreateContentKEK(path string) ([]byte, error) {
	kek, err := LoadContentKEK(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return kek, err
	}
	kek = make([]byte, 32)
	_, _ = rand.Read(kek)
	if err := writeFileOf("content keys", filepath.Dir(path), filepath.Base(path), []byte(base64.StdEncoding.EncodeToString(kek)+"\n")); err != nil {
		return nil, fmt.Errorf("%w (a read-only directory must hold %s: make it with integr8scode admin rotate-token-key)", err, filepath.Base(path))
	}
	return kek, nil
}

// LoadContentKEK reads the key-encryption key at path (a runner reads the
// one the API made; fs.ErrNotExist while there is none).
func LoadContentKEK(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("content keys: %w", err)
	}
	kek, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(kek) != 32 {
		return nil, fmt.Errorf("content keys: %s must hold 32 bytes, base64", path)
	}
	return kek, nil
}
