//go:build linux

package oci

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUIDLeaseDirMustBeRoots: the lock directory decides who may hold which
// host ids, so one owned by another user is refused, and a root one with a
// looser mode is tightened to 0700 before any lock is taken in it.
func TestUIDLeaseDirMustBeRoots(t *testing.T) {
	needRoot(t)
	t.Run("ErrNotRoots", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "uid-blocks")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(dir, 4321, 4321); err != nil {
			t.Fatal(err)
		}
		if l, err := leaseUIDBlocks(dir, defaultUIDRange, nil); err == nil || !strings.Contains(err.Error(), "must be owned by root, not uid 4321") {
			l.release()
			t.Fatalf("lease in another user's directory: %v", err)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Fatalf("lock files created in it: %v", entries)
		}
	})
	t.Run("ErrParentIsAFile", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if l, err := leaseUIDBlocks(filepath.Join(file, "uid-blocks"), defaultUIDRange, nil); err == nil || !strings.Contains(err.Error(), "uid lease") {
			l.release()
			t.Fatalf("lease under a file: %v", err)
		}
	})
	t.Run("OK loose mode tightened", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "uid-blocks")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o777); err != nil {
			t.Fatal(err)
		}
		wantBlocks(t, leaseIn(t, dir, 1), 0, 1)
		if fi, err := os.Lstat(dir); err != nil || fi.Mode().Perm() != 0o700 {
			t.Fatalf("lock dir mode %v %v, want 0700", fi.Mode(), err)
		}
	})
}

// TestUIDLeaseAsksWhetherTheIDsAreUsable: a run of blocks the check refuses
// is passed over (its locks dropped), one it cannot decide fails the lease
// and holds nothing, and when it refuses every run the lease says so.
func TestUIDLeaseAsksWhetherTheIDsAreUsable(t *testing.T) {
	needRoot(t)
	dir := filepath.Join(t.TempDir(), "uid-blocks")
	var asked []uint64
	l, err := leaseUIDBlocks(dir, defaultUIDRange, func(first, end uint64) (bool, error) {
		asked = append(asked, first)
		return first != leaseFirstID, nil // block 0's ids are someone else's
	})
	if err != nil {
		t.Fatal(err)
	}
	wantBlocks(t, l, 1, 1)
	if len(asked) != 2 || asked[1] != leaseFirstID+leaseBlockIDs {
		t.Fatalf("asked about %v", asked)
	}
	// Block 0 was let go: a lease without the check takes it.
	wantBlocks(t, leaseIn(t, dir, 1), 0, 1)
	l.release()

	broken := errors.New("cannot read /proc")
	if l, err := leaseUIDBlocks(dir, defaultUIDRange, func(uint64, uint64) (bool, error) { return false, broken }); !errors.Is(err, broken) {
		l.release()
		t.Fatalf("a check that fails: %v", err)
	}
	wantBlocks(t, leaseIn(t, dir, 1), 1, 1) // the failed lease holds nothing

	if l, err := leaseUIDBlocks(dir, defaultUIDRange, func(uint64, uint64) (bool, error) { return false, nil }); err == nil || !strings.Contains(err.Error(), "no 1 free consecutive blocks") {
		l.release()
		t.Fatalf("every run refused: %v", err)
	}
}
