package keyring

import (
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
