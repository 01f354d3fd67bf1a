//go:build linux

package oci

import (
	"context"
	"time"

	"github.com/integr8scode/integr8scode/domain"
)

// killReason says why the supervisor killed a container.
type killReason int

const (
	notKilled killReason = iota
	killedTimeout
	killedCancel
	killedOutput
)

func (k killReason) String() string {
	switch k {
	case killedTimeout:
		return "timeout"
	case killedCancel:
		return "cancel"
	case killedOutput:
		return "output limit"
	}
	return "none"
}

// outcome is everything execute learned about one run.
type outcome struct {
	reason   killReason
	waitErr  error // runc's exit
	usage    usage
	usageErr error
}

// execute supervises the script w runs since start and builds the Result.
// The timeout and the wall time count from start, when the script got the
// word to go: the container's set-up and Python's start-up are not the
// script's.
func (r *Runc) execute(ctx context.Context, w *waiting, start time.Time, limits domain.Limits) (domain.Result, error) {
	var o outcome
	o.reason, o.waitErr = r.supervise(ctx, w, limits.Timeout()-time.Since(start))
	wall := time.Since(start)
	w.stdout.finish(drainGrace)
	w.stderr.finish(drainGrace)
	// With --keep the stopped container's cgroup is still there.
	o.usage, o.usageErr = r.cgroups.readUsage(w.c.id)

	res := domain.Result{
		Stdout:          w.stdout.String(),
		Stderr:          w.stderr.String(),
		OutputTruncated: w.stdout.truncated || w.stderr.truncated,
		Usage:           domain.ResourceUsage{WallTimeMs: wall.Milliseconds()},
	}
	if o.usageErr == nil {
		res.Usage.CPUTimeMs = o.usage.cpuNanos / int64(time.Millisecond)
		res.Usage.PeakMemoryBytes = o.usage.peakBytes
	}
	if err := r.judge(&res, w.c, o, limits); err != nil {
		return domain.Result{}, err
	}
	return res, nil
}

// supervise waits for runc to exit, and kills the container on timeout,
// cancel or output overflow. It returns why it killed, if it did, and
// cmd.Wait's error.
func (r *Runc) supervise(ctx context.Context, w *waiting, timeout time.Duration) (killReason, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var reason killReason
	select {
	case err := <-w.exited:
		return notKilled, err
	case <-timer.C:
		reason = killedTimeout
	case <-ctx.Done():
		reason = killedCancel
	case <-w.stdout.over:
		reason = killedOutput
	case <-w.stderr.over:
		reason = killedOutput
	}
	if reason != killedOutput {
		// A script that ended at this very moment keeps its own outcome.
		select {
		case err := <-w.exited:
			return notKilled, err
		default:
		}
	}
	r.log.Debug("killing container", "container", w.c.id, "reason", reason)
	return reason, r.stop(w)
}
