//go:build linux

package oci

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/runner"
)

// Floor measures the bare cost of a container without this package: it
// writes job's bundle once (the same config.json, limits and rootfs; with
// minimal, stripped of the hardening: no user namespace, no seccomp
// filter, no masked or read-only /proc paths) and times n plain `runc run`
// invocations of it that run the script from the container's first
// instruction, with runc deleting the container itself. Benchmarks and the
// load tool compare the platform's latency with these floors.
func (r *Runc) Floor(ctx context.Context, job runner.Job, n int, minimal bool) ([]time.Duration, error) {
	c, err := r.newContainer(fmt.Sprintf("floor-%d", time.Now().UnixNano()), r.slotWait)
	if err != nil {
		return nil, err
	}
	defer r.cleanup(c)
	if err := r.writeBundle(c, job); err != nil {
		return nil, fmt.Errorf("floor bundle: %w", err)
	}
	if minimal {
		cfg, err := json.Marshal(r.minimalSpec(c, job.Limits))
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(c.file(configFile), cfg, 0o400); err != nil {
			return nil, fmt.Errorf("floor bundle: %w", err)
		}
	}
	out := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		cmd := exec.CommandContext(ctx, r.cfg.RuncPath, "--root", r.runcRoot, "run", "--bundle", c.bundle, c.id)
		cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
		start := time.Now()
		if err := cmd.Run(); err != nil {
			return out, fmt.Errorf("bare runc run: %w", err)
		}
		out = append(out, time.Since(start))
	}
	return out, nil
}

// minimalSpec is bareSpec without the hardening: what a minimal container
// runtime would start with the same limits (memory, CPU, pids), a
// read-only root and no network.
func (r *Runc) minimalSpec(c *container, limits domain.Limits) *specs.Spec {
	s := r.bareSpec(c, limits)
	s.Linux.Seccomp, s.Linux.UIDMappings, s.Linux.GIDMappings = nil, nil, nil
	s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
	s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool {
		return n.Type == specs.UserNamespace || n.Type == specs.CgroupNamespace
	})
	return s
}
