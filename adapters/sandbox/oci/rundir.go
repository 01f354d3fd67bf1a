//go:build linux

package oci

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// The root file system cannot live in StateDir: runc mounts it from inside
// the container's user namespace, as the container's root user, which is a
// host uid of the slot's range with no right over root's directories. Every
// directory on the way must therefore be searchable by others (o+x), and,
// so that no one but root can swap what the containers start from, owned
// by root and writable by no one else. RunDir and the directory per
// StateDir are mode 0711: the container's root user can pass, not list.
const runDirMode = 0o711

// prepareRunDir checks dir's ancestors and creates dir's own last two levels
// (RunDir and the directory per StateDir) as needed.
func prepareRunDir(dir string) error {
	parent := filepath.Dir(filepath.Dir(dir))
	for p := parent; ; p = filepath.Dir(p) {
		if err := checkPassable(p); err != nil {
			return err
		}
		if p == "/" {
			break
		}
	}
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Mkdir(d, runDirMode); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("run dir: %w", err)
		}
		if err := checkRootDir(d); err != nil {
			return err
		}
		if err := os.Chmod(d, runDirMode); err != nil { // umask, or an older mode
			return fmt.Errorf("run dir: %w", err)
		}
	}
	return nil
}

// checkPassable accepts a root-owned real directory that others may search
// and only root may write.
func checkPassable(dir string) error {
	if err := checkRootDir(dir); err != nil {
		return err
	}
	fi, _ := os.Lstat(dir)
	switch mode := fi.Mode(); {
	case mode&0o022 != 0:
		return fmt.Errorf("run dir: %s is writable by group or others (mode %v); RunDir must be on a path only root can change", dir, mode)
	case mode&0o001 == 0:
		return fmt.Errorf("run dir: %s is not searchable by others (mode %v); the containers' root users must pass through it to their root file system", dir, mode)
	}
	return nil
}

func checkRootDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("run dir: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || !ok || st.Uid != 0 {
		return fmt.Errorf("run dir: %s must be a directory owned by root (not a symlink)", dir)
	}
	return nil
}
