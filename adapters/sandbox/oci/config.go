package oci

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"time"
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
	// Slots is the most runs this sandbox accepts at once; the runner bounds its
	// own concurrency, and a run beyond this is refused as a platform error.
	// Default: the number of CPUs.
	Slots int
	// OutputCapBytes bounds stdout and stderr, each. Default 1 MiB.
	OutputCapBytes int
	// PidsLimit bounds the processes and threads of one run. Default 64.
	PidsLimit int64
	// Logger receives operational logs. Default: discard.
	Logger *slog.Logger
}

const (
	defaultPython    = "/usr/bin/python3"
	defaultOutputCap = 1 << 20
	defaultPidsLimit = 64
	// killGrace is how long a killed container may take to die before runc
	// itself is killed and cleanup takes over.
	killGrace = 5 * time.Second
	// drainGrace bounds reading the output pipes after runc exited.
	drainGrace = 2 * time.Second
	// cleanupTimeout bounds `runc delete` and friends.
	cleanupTimeout = 10 * time.Second
)

func (c *Config) setDefaults() {
	if c.Python == "" {
		c.Python = defaultPython
	}
	if c.Slots == 0 {
		c.Slots = runtime.NumCPU()
	}
	if c.OutputCapBytes == 0 {
		c.OutputCapBytes = defaultOutputCap
	}
	if c.PidsLimit == 0 {
		c.PidsLimit = defaultPidsLimit
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
	if c.OutputCapBytes < 1 {
		errs = append(errs, fmt.Errorf("OutputCapBytes must be positive, got %d", c.OutputCapBytes))
	}
	if c.PidsLimit < 8 {
		errs = append(errs, fmt.Errorf("PidsLimit must be at least 8, got %d", c.PidsLimit))
	}
	return errors.Join(errs...)
}
