//go:build linux

package oci

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// uidLease is a run of consecutive id blocks this process holds (see
// Config.UIDBase): the flocks on their lock files keep every other process
// off those ids until release, or until this process dies.
type uidLease struct {
	block int    // the first block
	first uint32 // its first host id
	ids   uint64 // ids leased: whole blocks
	locks []*os.File
}

// end is one past the last leased id.
func (l *uidLease) end() uint64 { return uint64(l.first) + l.ids }

// release drops the locks. A nil lease (UIDBase set) has none.
func (l *uidLease) release() error {
	if l == nil {
		return nil
	}
	var errs []error
	for _, f := range l.locks {
		errs = append(errs, f.Close())
	}
	l.locks = nil
	return errors.Join(errs...)
}

// leaseUIDBlocks takes the lowest run of free consecutive blocks that holds
// need ids, locking the blocks' files in dir without waiting: a busy block
// is another live process's (or another Runc's of this process: flocks of
// separate opens conflict even within one process). usable, if set, is
// asked about each locked run's ids; a run it refuses is passed over.
func leaseUIDBlocks(dir string, need uint64, usable func(first, end uint64) (bool, error)) (*uidLease, error) {
	n := max(1, int((need+leaseBlockIDs-1)/leaseBlockIDs))
	if n > leaseBlocks {
		return nil, fmt.Errorf("uid lease: %d ids need %d blocks, only %d exist", need, n, leaseBlocks)
	}
	dirFd, err := openLeaseDir(dir)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dirFd)
	for k := 0; k+n <= leaseBlocks; k++ {
		var locks []*os.File
		busy := -1
		for b := k; b < k+n; b++ {
			f, err := lockBlock(dirFd, dir, b)
			if err != nil {
				closeAll(locks)
				return nil, err
			}
			if f == nil {
				busy = b
				break
			}
			locks = append(locks, f)
		}
		if busy >= 0 {
			closeAll(locks)
			k = busy // no run through a busy block: go on after it
			continue
		}
		l := &uidLease{block: k, first: uint32(leaseFirstID + k*leaseBlockIDs), ids: uint64(n) * leaseBlockIDs, locks: locks}
		if usable == nil {
			return l, nil
		}
		switch ok, err := usable(uint64(l.first), l.end()); {
		case err != nil:
			l.release()
			return nil, err
		case ok:
			return l, nil
		}
		l.release()
	}
	return nil, fmt.Errorf("uid lease: no %d free consecutive blocks of %d ids in %s: other sandbox processes hold them or other software uses their ids; set UIDBase to manage the ranges yourself", n, leaseBlockIDs, dir)
}

// openLeaseDir creates dir (its parent like RunDir, 0711; dir itself 0700)
// and opens it, refusing a symlink or a directory not owned by root: only
// root may create or swap the lock files.
func openLeaseDir(dir string) (int, error) {
	if err := os.MkdirAll(filepath.Dir(dir), runDirMode); err != nil {
		return -1, fmt.Errorf("uid lease: %w", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return -1, fmt.Errorf("uid lease: %w", err)
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("uid lease: open %s (a symlink is refused): %w", dir, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("uid lease: %s: %w", dir, err)
	}
	if st.Uid != 0 {
		unix.Close(fd)
		return -1, fmt.Errorf("uid lease: %s must be owned by root, not uid %d", dir, st.Uid)
	}
	if st.Mode&0o7777 != 0o700 {
		if err := unix.Fchmod(fd, 0o700); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("uid lease: %s: %w", dir, err)
		}
	}
	return fd, nil
}

// lockBlock opens (creating it if needed) block k's lock file and takes
// its lock, or returns a nil file if another holder has it. The file must be a
// regular file owned by root; a symlink is never followed. Lock files are
// never removed: unlinking one could let two processes lock different
// files of the same name.
func lockBlock(dirFd int, dir string, k int) (*os.File, error) {
	name := strconv.Itoa(k) + ".lock"
	path := filepath.Join(dir, name)
	fd, err := unix.Openat(dirFd, name, unix.O_RDWR|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	switch {
	case errors.Is(err, unix.ELOOP):
		return nil, fmt.Errorf("uid lease: %s is a symlink; refusing it", path)
	case errors.Is(err, unix.EISDIR):
		return nil, fmt.Errorf("uid lease: %s must be a regular file owned by root", path)
	}
	if err != nil {
		return nil, fmt.Errorf("uid lease: %w", &fs.PathError{Op: "open", Path: path, Err: err})
	}
	f := os.NewFile(uintptr(fd), path)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		f.Close()
		return nil, fmt.Errorf("uid lease: %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Uid != 0 {
		f.Close()
		return nil, fmt.Errorf("uid lease: %s must be a regular file owned by root", path)
	}
	switch err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); {
	case err == nil:
		return f, nil
	case errors.Is(err, unix.EWOULDBLOCK):
		f.Close()
		return nil, nil
	default:
		f.Close()
		return nil, fmt.Errorf("uid lease: lock %s: %w", path, err)
	}
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}
