//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package kafka

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockFileName sits inside the data directory. kfake only reads its own
// files (meta.json, topics.json, partitions/...), so an extra file is inert.
const lockFileName = "integr8scode.lock"

// dirLock is an exclusive advisory lock on a data directory.
//
// kfake does not lock its DataDir: two brokers on one directory would both
// append to the same segment files and corrupt the log. flock is released by
// the kernel when the process dies, so a kill -9 never leaves a stale lock
// behind that would block the restart.
type dirLock struct{ f *os.File }

func lockDir(dir string) (*dirLock, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFileName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file in %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("data directory %s is in use by another broker: %w", dir, ErrDirLocked)
		}
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return &dirLock{f: f}, nil
}

// unlock releases the lock; closing the descriptor drops the flock.
func (l *dirLock) unlock() error { return l.f.Close() }
