package kafka

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// privateDir creates dir if needed and makes it 0700 even if it existed
// with looser permissions: it holds the ledger and the broker's password.
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.Chmod(dir, 0o700)
}

// loadOrCreatePassword returns the password kept in path, generating one
// (256 random bits, URL-safe) on first use. The file is written whole or not
// at all (temporary file, fsync, rename), so a crash never leaves a
// truncated password that would lock every client out.
func loadOrCreatePassword(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if pw := strings.TrimSpace(string(b)); pw != "" {
			return pw, nil
		}
		return "", fmt.Errorf("%s is empty: delete it to have a new password generated", path)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	var r [32]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", err
	}
	pw := base64.RawURLEncoding.EncodeToString(r[:])
	tmp, err := os.CreateTemp(filepath.Dir(path), ".password-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	_, err = tmp.WriteString(pw + "\n")
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return pw, nil
}
