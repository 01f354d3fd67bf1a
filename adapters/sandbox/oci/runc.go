//go:build linux

package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"golang.org/x/sys/unix"
)

// Runc is a runner.Sandbox that runs each job in its own runc container.
// It is safe for concurrent use.
type Runc struct {
	cfg      Config
	log      *slog.Logger
	runcRoot string // runc --root
	bundles  string // one directory per run
	rootfs   string // the shared, read-only root file system
	python   string // cfg.Python with symlinks resolved (all under /usr)
	cgroups  *cgroupTree
	lock     *os.File // flock on StateDir, held until Close
	arch     specs.Arch

	seq      atomic.Uint64
	inflight atomic.Int64
	closed   atomic.Bool
}

// New checks that runc, Python and the cgroup controllers are usable, takes
// StateDir for this process, removes whatever an earlier process left there
// (containers, cgroups, bundles) and prepares the shared root file system.
// It fails, rather than run anything unconfined, when any of that is missing.
func New(cfg Config) (*Runc, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("oci sandbox config: %w", err)
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("oci sandbox: runc needs root (euid 0)")
	}
	runcPath, err := exec.LookPath(cfg.RuncPath)
	if err != nil {
		return nil, fmt.Errorf("oci sandbox: runc not found: %w", err)
	}
	cfg.RuncPath = runcPath
	arch, err := seccompArch()
	if err != nil {
		return nil, fmt.Errorf("oci sandbox: %w", err)
	}
	if err := checkRunc(runcPath, arch); err != nil {
		return nil, err
	}
	python, err := checkPython(cfg.Python)
	if err != nil {
		return nil, err
	}
	stateDir := filepath.Clean(cfg.StateDir)
	cfg.StateDir = stateDir
	tree, err := newCgroupTree(stateDir)
	if err != nil {
		return nil, fmt.Errorf("oci sandbox: %w", err)
	}
	r := &Runc{
		cfg:      cfg,
		log:      cfg.Logger.With("sandbox", "runc"),
		runcRoot: filepath.Join(stateDir, "runc"),
		bundles:  filepath.Join(stateDir, "bundles"),
		rootfs:   filepath.Join(stateDir, "rootfs"),
		python:   python,
		cgroups:  tree,
		arch:     arch,
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("oci sandbox: create state dir: %w", err)
	}
	if err := checkStateDir(stateDir); err != nil {
		return nil, err
	}
	if r.lock, err = lockStateDir(stateDir); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			r.lock.Close()
		}
	}()
	if err := r.removeLeftovers(); err != nil {
		return nil, fmt.Errorf("oci sandbox: clean up an earlier process's leftovers: %w", err)
	}
	for _, d := range []string{r.runcRoot, r.bundles} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return nil, fmt.Errorf("oci sandbox: %w", err)
		}
	}
	if err := buildRootfs(r.rootfs, python); err != nil {
		return nil, fmt.Errorf("oci sandbox: root file system: %w", err)
	}
	ok = true
	return r, nil
}

// Name identifies this sandbox kind in ExecutionStarted.
func (r *Runc) Name() string { return "runc" }

// Close removes this sandbox's cgroup parents and releases StateDir. Runs
// still in flight are not waited for; call it after the runner stopped.
func (r *Runc) Close() error {
	if !r.closed.CompareAndSwap(false, true) {
		return nil
	}
	err := r.cgroups.removeParents()
	return errors.Join(err, r.lock.Close())
}

// checkStateDir makes StateDir private to root: it holds the root file
// system every container starts from.
func checkStateDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("oci sandbox: state dir: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || !ok || st.Uid != 0 {
		return fmt.Errorf("oci sandbox: state dir %s must be a directory owned by root (not a symlink)", dir)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("oci sandbox: state dir: %w", err)
	}
	return nil
}

func lockStateDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("oci sandbox: lock state dir: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("oci sandbox: state dir %s is in use by another process: %w", dir, err)
	}
	return f, nil
}

// checkRunc runs runc and checks, through `runc features` (runc 1.1+),
// that it can apply the seccomp filter.
func checkRunc(path string, arch specs.Arch) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "features")
	cmd.Env = runcEnv
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("oci sandbox: %s features (runc 1.1 or newer is needed): %w", path, err)
	}
	var f features.Features
	if err := json.Unmarshal(out, &f); err != nil {
		return fmt.Errorf("oci sandbox: %s features: %w", path, err)
	}
	if f.Linux == nil || f.Linux.Seccomp == nil || f.Linux.Seccomp.Enabled == nil || !*f.Linux.Seccomp.Enabled {
		return fmt.Errorf("oci sandbox: %s was built without seccomp", path)
	}
	if !slices.Contains(f.Linux.Seccomp.Archs, string(arch)) {
		return fmt.Errorf("oci sandbox: %s's seccomp does not know %s", path, arch)
	}
	return nil
}

// checkPython resolves path on the host: the container runs the resolved
// file, so a symlink through /etc/alternatives (absent in the container) does
// not matter, while a target outside /usr is refused.
func checkPython(path string) (string, error) {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", fmt.Errorf("oci sandbox: python: %w", err)
	}
	if !strings.HasPrefix(real, "/usr/") {
		return "", fmt.Errorf("oci sandbox: python %s resolves to %s, outside /usr", path, real)
	}
	if err := unix.Access(real, unix.X_OK); err != nil {
		return "", fmt.Errorf("oci sandbox: python %s is not executable: %w", real, err)
	}
	return real, nil
}
