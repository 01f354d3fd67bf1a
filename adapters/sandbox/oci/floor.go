//go:build linux

package oci

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"time"

	"github.com/integr8scode/integr8scode/runner"
)

// Floor measures the bare cost of the same isolation without this package:
// it writes job's bundle once (the same config.json, limits, rootfs) and
// times n plain `runc run` invocations of it, with runc deleting the
// container itself. Benchmarks and the load tool compare the platform's
// latency with this floor.
func (r *Runc) Floor(ctx context.Context, job runner.Job, n int) ([]time.Duration, error) {
	c, err := r.newContainer(fmt.Sprintf("floor-%d", time.Now().UnixNano()))
	if err != nil {
		return nil, err
	}
	defer r.cleanup(c)
	if err := r.writeBundle(c, job); err != nil {
		return nil, fmt.Errorf("floor bundle: %w", err)
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
