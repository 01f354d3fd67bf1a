package oci

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/integr8scode/integr8scode/domain"
)

// Config configures the runc sandbox.
type Config struct {
	// RuncPath is the runc binary. Required (an absolute path or a name on PATH).
	RuncPath string
	// Python is the interpreter run inside the container. It must live under
	// /usr, the only host directory the container sees. Default /usr/bin/python3.
	Python string
	// StateDir holds everything this package writes: bundles, the shared root
	// file system and runc's --root. Required; created with mode 0700. Only one
	// process may use a StateDir at a time (New takes a lock on it).
	StateDir string
	// Slots is the most runs this sandbox accepts at once, each with a host
	// uid range of its own (see UIDBase); the runner bounds its own
	// concurrency, and a run beyond this is refused as a platform error.
	// Default: the number of CPUs.
	Slots int
	// Warm is the most containers kept waiting for a script (the warm
	// pool, see waiting): started, with Python's start-up done, destroyed
	// after the one run that takes them. How many wait follows demand, at
	// least WarmMin. Each holds a uid slot of its own beside the Slots of
	// the runs. 0, the default, keeps none: every run starts its own.
	Warm int
	// WarmMin is how many containers wait even on an idle platform.
	// Default 1 when Warm is set; at most Warm.
	WarmMin int
	// WarmLimits are the limits waiting containers are created with; a run
	// with others changes them before its script starts (memory and CPU are
	// cgroup settings of a live container). Default domain.DefaultLimits.
	WarmLimits domain.Limits
	// OutputCapBytes bounds stdout and stderr, each. Default 1 MiB.
	OutputCapBytes int
	// PidsLimit bounds the processes and threads of one run. Default 64.
	PidsLimit int64
	// UIDBase, when set, is the first host uid and gid of the sandbox's user
	// namespaces: slot s (0 <= s < Slots) maps its container's ids
	// 0..UIDRangeSize-1 to the host ids UIDBase+s*UIDRangeSize onwards. The
	// operator then manages the ranges: the whole range must be unused on
	// the host and disjoint from every other sandbox process's on it, which
	// nothing checks (a range at or above 2^31 never meets a leased block,
	// see below). At least 65536 (above every id Debian gives to users,
	// system accounts and nobody).
	//
	// Left 0, the default, New leases the ranges instead, because a fixed
	// default would give every process on the host the same ids: two
	// services, or the test packages `go test ./...` runs in parallel, would
	// run scripts as the same host uids, able to signal and ptrace each
	// other's runs and sharing per-uid kernel accounting. The ids from
	// 1000000 up to 2^31 are cut into blocks of 64*65536 ids, and New takes
	// the lowest free run of consecutive blocks big enough for
	// Slots*UIDRangeSize ids, each with a non-blocking exclusive flock on
	// /run/integr8scode/uid-blocks/<block>.lock. The locks are held until
	// Close, or until the process dies, when the kernel drops them: a crash
	// never leaks a block. A process that leases a block kills the sandbox
	// processes still running with its ids (a crashed holder's containers)
	// before its own first run, and passes over a block whose ids other
	// software uses (a kubelet gives pods with user namespaces ranges
	// anywhere above 65536): it never kills nor shares with those.
	UIDBase uint32
	// UIDRangeSize is the number of ids of one slot. Default 65536; at
	// least 1 more than the sandbox user's id inside (1000).
	UIDRangeSize uint32
	// RunDir holds the read-only root file system the containers start
	// from, in a subdirectory per StateDir. Every directory on its path must
	// be searchable by other users: runc sets the root up as the container's
	// root user, a host uid without any right over root's private
	// directories (StateDir may be one). Created root-owned, mode 0711.
	// Default /run/integr8scode.
	RunDir string
	// Logger receives operational logs. Default: discard.
	Logger *slog.Logger
}

// The script's user and group inside its user namespace. Not 65534: inside
// a user namespace that is the overflow id, which every unmapped host file
// (all of /usr) shows as its owner, so a script running as 65534 would see
// the host's files as its own (the kernel compares host ids and would still
// refuse, but tools that check ownership, such as git, would be misled).
const (
	sandboxUID = 1000
	sandboxGID = 1000
)

const (
	defaultPython    = "/usr/bin/python3"
	defaultOutputCap = 1 << 20
	defaultPidsLimit = 64
	defaultUIDRange  = 65536
	defaultRunDir    = "/run/integr8scode"
	// minUIDBase keeps the ranges above Debian's user, system and nobody ids.
	minUIDBase = 65536
	// killGrace is how long a killed container may take to die before runc
	// itself is killed and cleanup takes over.
	killGrace = 5 * time.Second
	// drainGrace bounds reading the output pipes after runc exited.
	drainGrace = 2 * time.Second
	// cleanupTimeout bounds `runc delete` and friends.
	cleanupTimeout = 10 * time.Second
)

// The leased id blocks (UIDBase 0). Every process on the host must cut the
// ids the same way, whatever its Slots and UIDRangeSize, so that a block
// number names the same ids for all: the geometry is fixed here, and a
// process that needs more ids than a block leases consecutive blocks.
const (
	leaseFirstID  = 1_000_000                                   // first id of block 0
	leaseBlockIDs = 64 * defaultUIDRange                        // ids per block: 64 slots of the default size
	leaseEndID    = 1 << 31                                     // every leased id is below
	leaseBlocks   = (leaseEndID - leaseFirstID) / leaseBlockIDs // 511
	// leaseDir holds a lock file per block. It is not under RunDir, which
	// may differ between processes: every process must meet the same locks.
	leaseDir = "/run/integr8scode/uid-blocks"
)

func (c *Config) setDefaults() {
	if c.Python == "" {
		c.Python = defaultPython
	}
	if c.Slots == 0 {
		c.Slots = runtime.NumCPU()
	}
	if c.Warm > 0 && c.WarmMin == 0 {
		c.WarmMin = 1
	}
	if c.WarmLimits == (domain.Limits{}) {
		c.WarmLimits = domain.DefaultLimits
	}
	if c.OutputCapBytes == 0 {
		c.OutputCapBytes = defaultOutputCap
	}
	if c.PidsLimit == 0 {
		c.PidsLimit = defaultPidsLimit
	}
	if c.UIDRangeSize == 0 {
		c.UIDRangeSize = defaultUIDRange
	}
	if c.RunDir == "" {
		c.RunDir = defaultRunDir
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

// Validate reports every configuration problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.RuncPath == "" {
		errs = append(errs, errors.New("RuncPath is required"))
	}
	if c.StateDir == "" {
		errs = append(errs, errors.New("StateDir is required"))
	} else if !filepath.IsAbs(c.StateDir) {
		errs = append(errs, fmt.Errorf("StateDir %q must be absolute", c.StateDir))
	}
	if !filepath.IsAbs(c.Python) || !strings.HasPrefix(filepath.Clean(c.Python), "/usr/") {
		errs = append(errs, fmt.Errorf("Python %q must be an absolute path under /usr (the only host directory the sandbox sees)", c.Python))
	}
	if c.Slots < 1 {
		errs = append(errs, fmt.Errorf("Slots must be at least 1, got %d", c.Slots))
	}
	if c.Warm < 0 || c.WarmMin < 0 || c.WarmMin > c.Warm {
		errs = append(errs, fmt.Errorf("Warm %d and WarmMin %d must satisfy 0 <= WarmMin <= Warm", c.Warm, c.WarmMin))
	}
	if c.OutputCapBytes < 1 {
		errs = append(errs, fmt.Errorf("OutputCapBytes must be positive, got %d", c.OutputCapBytes))
	}
	if c.PidsLimit < 8 {
		errs = append(errs, fmt.Errorf("PidsLimit must be at least 8, got %d", c.PidsLimit))
	}
	if c.UIDRangeSize <= sandboxUID {
		errs = append(errs, fmt.Errorf("UIDRangeSize must exceed the sandbox user's id %d, got %d", sandboxUID, c.UIDRangeSize))
	}
	need := uint64(c.idSlots()) * uint64(c.UIDRangeSize)
	switch {
	case c.UIDBase == 0:
		if need > leaseBlocks*leaseBlockIDs {
			errs = append(errs, fmt.Errorf("(Slots + Warm) %d * UIDRangeSize %d needs %d host ids, more than the %d the leased blocks hold; set UIDBase to manage the ranges yourself", c.idSlots(), c.UIDRangeSize, need, uint64(leaseBlocks*leaseBlockIDs)))
		}
	case c.UIDBase < minUIDBase:
		errs = append(errs, fmt.Errorf("UIDBase must be at least %d, got %d", minUIDBase, c.UIDBase))
	case uint64(c.UIDBase)+need > math.MaxUint32:
		// (uid_t)-1 means "no change" to chown and setresuid: never map it.
		errs = append(errs, fmt.Errorf("UIDBase %d + (Slots + Warm) %d * UIDRangeSize %d passes the last host uid", c.UIDBase, c.idSlots(), c.UIDRangeSize))
	}
	if !filepath.IsAbs(c.RunDir) {
		errs = append(errs, fmt.Errorf("RunDir %q must be absolute", c.RunDir))
	}
	return errors.Join(errs...)
}

// idSlots is how many uid slots the sandbox needs: one per run in flight
// and one per waiting container.
func (c Config) idSlots() int { return max(c.Slots, 0) + max(c.Warm, 0) }

// PoolStats is what the warm pool did so far.
type PoolStats struct {
	// Waiting is how many containers wait for a script now.
	Waiting int
	// Hits counts runs that took a waiting container; Misses those that
	// found none and started their own (with a pool configured).
	Hits, Misses int64
}
