package keyring

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestTokenKeysAreMadeOnceRotatedAndValidated(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "auth-keys")
	first, err := LoadOrCreateTokenKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Keys) != 1 || len(first.Keys[first.Active]) != 32 {
		t.Fatalf("first ring %+v", first)
	}
	again, err := LoadOrCreateTokenKeys(dir)
	if err != nil || again.Active != first.Active {
		t.Fatalf("a second start made another key: %v %v", again.Active, err)
	}
	for _, name := range []string{first.Active + ".key", "active"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", name, fi.Mode(), err)
		}
	}
	id, err := RotateTokenKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := LoadTokenKeys(dir)
	if err != nil || rotated.Active != id || len(rotated.Keys) != 2 || rotated.Keys[first.Active] == nil {
		t.Fatalf("after rotation %+v %v: the old key must keep verifying", rotated, err)
	}
	// A key too short to be a 256-bit secret is refused, not used.
	os.WriteFile(filepath.Join(dir, "weak.key"), []byte("c2hvcnQ=\n"), 0o600)
	if _, err := LoadTokenKeys(dir); err == nil {
		t.Fatal("a 5-byte key was accepted")
	}
	os.Remove(filepath.Join(dir, "weak.key"))
	os.WriteFile(filepath.Join(dir, "active"), []byte("gone\n"), 0o600)
	if _, err := LoadTokenKeys(dir); err == nil {
		t.Fatal("an active key that does not exist was accepted")
	}
}

func TestTheContentKeyEncryptionKeyIsMadeOnceAndChecked(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ContentKEKFile)
	if _, err := LoadContentKEK(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a missing key: %v", err)
	}
	first, err := LoadOrCreateContentKEK(path)
	if err != nil || len(first) != 32 {
		t.Fatalf("%d bytes, %v", len(first), err)
	}
	again, err := LoadOrCreateContentKEK(path)
	if err != nil || string(again) != string(first) {
		t.Fatal("a second start made another key-encryption key: every content key would be lost")
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm()&0o077 != 0 {
		t.Fatalf("the key file is readable by others: %v %v", st.Mode(), err)
	}
	if err := os.WriteFile(path, []byte("c2hvcnQ=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateContentKEK(path); err == nil {
		t.Fatal("a short key-encryption key was taken")
	}
	if _, err := LoadOrCreateContentKEK(filepath.Join(dir, "missing-dir", ContentKEKFile)); err == nil {
		t.Fatal("made a key where there is no directory")
	}
	// rotate-token-key makes it for a Secret, with the idempotency secret.
	secret := filepath.Join(t.TempDir(), "auth-keys")
	if err := os.MkdirAll(secret, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := RotateTokenKey(secret); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadContentKEK(filepath.Join(secret, ContentKEKFile)); err != nil {
		t.Fatalf("rotate-token-key made no content.kek: %v", err)
	}
}
