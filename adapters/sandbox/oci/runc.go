//go:build linux

package oci

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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
	runDir   string // RunDir/<key of StateDir>: holds rootfs
	rootfs   string // the shared, read-only root file system
	python   string // cfg.Python with symlinks resolved (all under /usr)
	cgroups  *cgroupTree
	lock     *os.File  // flock on StateDir, held until Close
	lease    *uidLease // the leased id blocks, held until Close; nil with Config.UIDBase set
	arch     specs.Arch

	slots    *idSlots // uid/gid ranges; also bounds concurrent runs and waiting containers
	pool     *warmPool
	seq      atomic.Uint64
	closed   atomic.Bool
	cleaning atomic.Int64 // cleanups of finished runs in the background
	slotWait time.Duration
}

// New checks that runc, Python and the cgroup controllers are usable, takes
// StateDir for this process, leases its host id blocks unless
// Config.UIDBase is set, removes whatever an earlier process left there
// (containers, cgroups, bundles, processes with the leased ids) and prepares
// the shared root file system. It fails, rather than run anything
// unconfined, when any of that is missing.
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
	runDir := filepath.Join(filepath.Clean(cfg.RunDir), stateKey(stateDir))
	r := &Runc{
		cfg:      cfg,
		log:      cfg.Logger.With("sandbox", "runc"),
		runcRoot: filepath.Join(stateDir, "runc"),
		bundles:  filepath.Join(stateDir, "bundles"),
		runDir:   runDir,
		rootfs:   filepath.Join(runDir, "rootfs"),
		python:   python,
		cgroups:  tree,
		arch:     arch,
		slotWait: slotWait,
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
			r.lease.release()
		}
	}()
	base := cfg.UIDBase
	if base == 0 {
		if r.lease, err = leaseUIDBlocks(leaseDir, uint64(cfg.idSlots())*uint64(cfg.UIDRangeSize), r.idsUnused); err != nil {
			return nil, fmt.Errorf("oci sandbox: %w", err)
		}
		base = r.lease.first
		r.log.Info("leased host uid blocks", "block", r.lease.block, "first_id", r.lease.first, "ids", r.lease.ids)
	}
	r.slots = newIDSlots(cfg.idSlots(), base, cfg.UIDRangeSize)
	if err := prepareRunDir(r.runDir); err != nil {
		return nil, fmt.Errorf("oci sandbox: %w", err)
	}
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
	r.pool = newWarmPool(r, cfg.WarmMin, cfg.Warm, cfg.WarmLimits)
	return r, nil
}

// Name identifies this sandbox kind in ExecutionStarted.
func (r *Runc) Name() string { return "runc" }

// Close removes this sandbox's cgroup parents and root file system and
// releases StateDir and the leased id blocks. Runs still in flight are not
// waited for; call it after the runner stopped.
func (r *Runc) Close() error {
	if !r.closed.CompareAndSwap(false, true) {
		return nil
	}
	r.pool.close()
	r.settle()
	err := r.cgroups.removeParents()
	// runc mounts nothing in this mount namespace, so this removes files only.
	if m, merr := mountUnder(r.runDir); merr != nil || m != "" {
		err = errors.Join(err, fmt.Errorf("not removing %s: mount point %q inside (%v)", r.runDir, m, merr))
	} else {
		err = errors.Join(err, os.RemoveAll(r.runDir))
	}
	return errors.Join(err, r.lock.Close(), r.lease.release())
}

// idsUnused reports whether no process but a sandbox's uses an id in
// [first, end). Other software may hand out host ids from the same space (a
// kubelet gives pods with their own user namespace ranges anywhere above
// 65536): such a block is passed over, since its ids are not ours to give
// to scripts, nor its processes ours to kill. A sandbox process there is a
// crashed holder's leftover, which removeLeftovers kills.
func (r *Runc) idsUnused(first, end uint64) (bool, error) {
	_, foreign, err := processesWithIDs(first, end)
	if err != nil {
		return false, fmt.Errorf("uid lease: %w", err)
	}
	if len(foreign) > 0 {
		r.log.Warn("passing over uid blocks that other processes use", "first_id", first, "end_id", end, "pids", foreign)
		return false, nil
	}
	return true, nil
}

// hostIDRange is the host ids the slots map to: [first, end).
func (r *Runc) hostIDRange() (first, end uint64) {
	return r.slots.span()
}

// stateKey names what belongs to one StateDir in places shared with other
// processes (cgroup parents, RunDir).
func stateKey(stateDir string) string {
	sum := sha256.Sum256([]byte(stateDir))
	return hex.EncodeToString(sum[:6])
}

// checkStateDir makes StateDir private to root: it holds the bundles with
// the scripts and runc's state.
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
