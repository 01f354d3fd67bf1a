//go:build linux

package oci

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"syscall"
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

// execute starts `runc run --keep`, supervises it and builds the Result.
// The timeout and the wall time count from runc's start, so they include
// the container's setup (tens of milliseconds).
func (r *Runc) execute(ctx context.Context, c *container, limits domain.Limits) (domain.Result, error) {
	cmd, stdout, stderr, err := r.startRunc(c)
	if err != nil {
		return domain.Result{}, err
	}
	start := time.Now()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	var o outcome
	o.reason, o.waitErr = r.supervise(ctx, c, cmd, exited, limits.Timeout(), stdout.over, stderr.over)
	wall := time.Since(start)
	stdout.finish(drainGrace)
	stderr.finish(drainGrace)
	// With --keep the stopped container's cgroup is still there.
	o.usage, o.usageErr = r.cgroups.readUsage(c.id)

	res := domain.Result{
		Stdout:          stdout.String(),
		Stderr:          stderr.String(),
		OutputTruncated: stdout.truncated || stderr.truncated,
		Usage:           domain.ResourceUsage{WallTimeMs: wall.Milliseconds()},
	}
	if o.usageErr == nil {
		res.Usage.CPUTimeMs = o.usage.cpuNanos / int64(time.Millisecond)
		res.Usage.PeakMemoryBytes = o.usage.peakBytes
	}
	if err := r.judge(&res, c, o, limits); err != nil {
		return domain.Result{}, err
	}
	return res, nil
}

// startRunc starts `runc run --keep` for c with stdin from the bundle and
// stdout and stderr into capped captures.
func (r *Runc) startRunc(c *container) (*exec.Cmd, *capture, *capture, error) {
	stdin, err := os.Open(c.file(stdinFile))
	if err != nil {
		return nil, nil, nil, err
	}
	defer stdin.Close() // runc has its own copy once started
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, nil, nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, nil, nil, err
	}
	cmd := exec.Command(r.cfg.RuncPath, "--root", r.runcRoot, "--log", c.file(logFile), "--log-format", "json",
		"run", "--keep", "--bundle", c.bundle, c.id)
	cmd.Env = runcEnv
	cmd.Dir = c.bundle
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, outW, errW
	// Its own process group: a terminal's ^C for the service must not reach
	// runc, which would forward it to the script.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// The pipes are *os.File, so os/exec starts no copying goroutines and
	// WaitDelay has nothing to wait for; the captures bound their own
	// draining (capture.finish). Set anyway, should that ever change.
	cmd.WaitDelay = drainGrace

	err = cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return nil, nil, nil, fmt.Errorf("start runc: %w", err)
	}
	return cmd, startCapture(outR, r.cfg.OutputCapBytes), startCapture(errR, r.cfg.OutputCapBytes), nil
}

// supervise waits for runc to exit, and kills the container on timeout,
// cancel or output overflow. It returns why it killed, if it did, and
// cmd.Wait's error.
func (r *Runc) supervise(ctx context.Context, c *container, cmd *exec.Cmd, exited <-chan error,
	timeout time.Duration, stdoutOver, stderrOver <-chan struct{}) (killReason, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var reason killReason
	select {
	case err := <-exited:
		return notKilled, err
	case <-timer.C:
		reason = killedTimeout
	case <-ctx.Done():
		reason = killedCancel
	case <-stdoutOver:
		reason = killedOutput
	case <-stderrOver:
		reason = killedOutput
	}
	if reason != killedOutput {
		// A script that ended at this very moment keeps its own outcome.
		select {
		case err := <-exited:
			return notKilled, err
		default:
		}
	}
	r.log.Debug("killing container", "container", c.id, "reason", reason)
	// Kill every process of the cgroup until runc reports the container
	// gone; repeating covers a container still being set up, whose processes
	// join the cgroup a moment later. Killing the script, the init of its
	// pid namespace, already makes the kernel kill everything else in it.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	hard := time.NewTimer(killGrace)
	defer hard.Stop()
	for {
		if _, err := r.cgroups.kill(c.id); err != nil {
			r.log.Warn("kill container", "container", c.id, "err", err)
		}
		select {
		case err := <-exited:
			return reason, err
		case <-tick.C:
		case <-hard.C:
			r.log.Error("runc did not exit after its container was killed; killing runc", "container", c.id)
			_ = cmd.Process.Kill()
			return reason, <-exited
		}
	}
}
