//go:build linux

package oci

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNewRefusesARunDirOthersCouldChange: the containers start from the
// root file system under RunDir, so every directory on its way must be
// root's, writable by no one else, and passable by the containers' root
// users; New refuses anything else and leaves it as it found it.
func TestNewRefusesARunDirOthersCouldChange(t *testing.T) {
	runc := runcPath(t)
	for name, c := range map[string]struct {
		prepare func(t *testing.T, parent string)
		want    string
	}{
		"ErrWritableByOthers": {func(t *testing.T, p string) { chmod(t, p, 0o777) }, "is writable by group or others"},
		"ErrNotSearchable":    {func(t *testing.T, p string) { chmod(t, p, 0o700) }, "is not searchable by others"},
		"ErrNotRoots": {func(t *testing.T, p string) {
			chmod(t, p, 0o711)
			if err := os.Chown(p, 4321, 4321); err != nil {
				t.Fatal(err)
			}
		}, "must be a directory owned by root"},
		"ErrMissing": {func(t *testing.T, p string) {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
		}, "no such file or directory"},
	} {
		t.Run(name, func(t *testing.T) {
			parent := filepath.Join(t.TempDir(), "parent")
			if err := os.Mkdir(parent, 0o711); err != nil {
				t.Fatal(err)
			}
			c.prepare(t, parent)
			r, err := New(Config{RuncPath: runc, StateDir: filepath.Join(t.TempDir(), "sandbox"), RunDir: filepath.Join(parent, "run")})
			if err == nil {
				r.Close()
				t.Fatal("New accepted the run dir")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want %q", err, c.want)
			}
			if _, err := os.Lstat(filepath.Join(parent, "run")); !os.IsNotExist(err) {
				t.Fatalf("New created RunDir under a refused parent: %v", err)
			}
		})
	}
}

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}
