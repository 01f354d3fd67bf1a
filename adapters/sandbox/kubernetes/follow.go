package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/runner"
)

// outcome is how following a pod ended.
type outcome struct {
	res         domain.Result
	undelivered bool // the pod ended without ever receiving its script
	leave       bool // the run was detached (runner.ErrDetached): the pod runs on
}

// follower drives one pod from creation (or adoption) to its outcome. All
// its fields belong to the goroutine of run, except dm, diag and pl, which
// the streaming goroutines write.
type follower struct {
	p       *Pods
	log     *slog.Logger
	job     runner.Job
	name    string
	initial *corev1.Pod
	created bool // this run created the pod, so it hands the script over

	w    *podWatch
	dm   *demux
	diag *prefix
	pl   *payload

	streamCtx    context.Context
	stopStream   context.CancelFunc
	streamDone   chan error         // the running stream's end; nil when none runs
	attached     bool               // the stream is an attach, not the log
	attachCancel context.CancelFunc // stops the attach
	started      bool               // the container ran (or runs)
	ended        bool               // the output is complete (end frame, or the stream ended)
	streamErr    error

	claimedAt   time.Time   // a pod of the warm pool: when it was claimed
	undelivered *time.Timer // a claimed pod's last moment to show it has its script
	since       time.Time   // when following began, for the debug log's timings
	begin       time.Time   // the runner handed the last byte of the script over
	startTimer  *time.Timer
	deadline    *time.Timer
	settle      *time.Timer
}

func (p *Pods) newFollower(ctx context.Context, log *slog.Logger, pod *corev1.Pod, created bool, job runner.Job) *follower {
	sctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	return &follower{p: p, log: log, job: job, name: pod.Name, initial: pod, created: created,
		dm: newDemux(p.cfg.OutputCapBytes), diag: &prefix{n: 4096}, pl: newPayload(job.Script, job.Stdin, job.Limits.TimeoutMs),
		streamCtx: sctx, stopStream: stop, claimedAt: claimedAt(pod)}
}

func (f *follower) run(ctx context.Context) (outcome, error) {
	out, err := f.follow(ctx)
	if err != nil && ctx.Err() != nil {
		// The error is the cancellation's doing (the watch closed with
		// ctx, say, which the select may see before ctx.Done): the run was
		// cancelled, and a detached run must leave its pod.
		out, err = f.cancelled(ctx)
	}
	if f.attached && !out.leave {
		// The attach closes by itself a moment after the script ends or
		// the pod is deleted; cut short, client-go reports its copy loops'
		// errors.
		time.AfterFunc(apiTimeout, f.stopStream)
	} else {
		f.stopStream()
	}
	return out, err
}

func (f *follower) follow(ctx context.Context) (outcome, error) {
	w, err := f.p.watchPod(ctx, f.initial)
	if err != nil {
		return outcome{}, err
	}
	f.w, f.since = w, time.Now()
	defer w.stop()
	f.startTimer = time.NewTimer(time.Until(f.p.startDeadline(f.initial)))
	defer func() {
		stopTimer(f.startTimer)
		stopTimer(f.deadline)
		stopTimer(f.settle)
		stopTimer(f.undelivered)
	}()
	for {
		if out, done, err := f.check(); done {
			return out, err
		}
		select {
		case <-ctx.Done():
			return f.cancelled(ctx)
		case ev, ok := <-f.w.events():
			if err := f.w.apply(ctx, ev, ok); err != nil {
				return outcome{}, err
			}
		case <-timerC(f.startTimer):
			return outcome{}, f.notStarted()
		case <-f.deliveredC():
			f.begin = time.Now()
			f.markStarted()
			f.deadline = time.NewTimer(f.job.Limits.Timeout() + killGrace)
			f.log.Debug("script handed over", "after", f.begin.Sub(f.since))
		case <-timerC(f.deadline):
			return f.kill(ctx, domain.VerdictTimeout)
		case <-f.dm.over:
			return f.kill(ctx, domain.VerdictOutputLimit)
		case <-f.endedC():
			f.ended = true
			f.log.Debug("supervisor reported", "after", time.Since(f.since))
		case err := <-f.streamDone:
			f.streamEnded(err)
		case <-timerC(f.settle):
			return f.conclude()
		case <-timerC(f.undelivered):
			f.undelivered = nil
			if !f.ended && !f.dm.scriptDelivered() {
				// A pod of the warm pool whose claimer died before it
				// handed the script over: its supervisor would wait for
				// it until the pool's age limit. The script never ran.
				f.log.Warn("the claimed warm pod never received its script; deleting it")
				if err := f.p.deletePod(ctx, f.name); err != nil {
					return outcome{}, err
				}
				return outcome{undelivered: true}, nil
			}
		}
	}
}

// check looks at the pod's current state and acts on it. done means the
// run is over.
func (f *follower) check() (outcome, bool, error) {
	if f.w.gone {
		// Someone else deleted it: another run of the same job that got
		// its result first (then the output has the end frame, or soon
		// will), or an operator.
		if !f.ended && f.streamDone != nil && f.settle == nil {
			f.settle = time.NewTimer(killGrace)
			return outcome{}, false, nil
		}
		if f.ended && f.reportSuffices() || f.settle == nil {
			out, err := f.conclude()
			return out, true, err
		}
		return outcome{}, false, nil
	}
	pod, cs := f.w.cur, container(f.w.cur)
	terminated := cs != nil && cs.State.Terminated != nil
	if !f.started {
		if err := startFailure(pod, cs); err != nil {
			return outcome{}, true, err
		}
		if cs != nil && (cs.State.Running != nil || terminated) {
			f.log.Debug("kubelet reported the container started", "after", time.Since(f.since))
			f.markStarted()
			switch {
			case f.created && cs.State.Running != nil:
				// Not earlier: the kubelet refuses an attach ("container
				// not found") until it has seen the container running
				// itself, in the same relist that reports it here.
				f.startAttach()
			default:
				f.startLogs(cs)
			}
		}
	}
	if f.attached && f.begin.IsZero() && terminated {
		// It ended before the attach handed the script over (it waited in
		// vain, or died at start): its log says how.
		f.attachCancel()
	}
	if f.started && pod.Status.Phase == corev1.PodFailed && pod.Status.Reason == "DeadlineExceeded" {
		out, err := f.conclude()
		return out, true, err
	}
	if f.ended && (terminated || f.reportSuffices()) {
		f.log.Debug("run over", "after", time.Since(f.since), "kubelet_reported", terminated)
		out, err := f.conclude()
		return out, true, err
	}
	if f.settle == nil && (f.ended || terminated) {
		// The output ended and the kubelet has yet to report the exit, or
		// the reverse.
		f.settle = time.NewTimer(settleTimeout)
	}
	return outcome{}, false, nil
}

// reportSuffices tells whether the supervisor's report alone settles the
// run, without the kubelet's account of the exit, which comes up to a
// second later (it notices exits in its once-a-second relist). It does
// when it includes the OOM-kill counter of the container's cgroup: exit
// code, signal and OOM kills are then all known. It is self-reported, but
// only about the script's own result (see doc.go).
func (f *follower) reportSuffices() bool {
	_, _, _, end := f.dm.result()
	return end != nil && (end.Status == "undelivered" || end.OOMKills >= 0)
}

func (f *follower) markStarted() {
	f.started = true
	stopTimer(f.startTimer)
	f.startTimer = nil
}

// startAttach hands the script over and reads the output through an attach.
func (f *follower) startAttach() {
	ctx, cancel := context.WithCancel(f.streamCtx)
	done := make(chan error, 1)
	f.attached, f.attachCancel, f.streamDone = true, cancel, done
	dm := f.dm
	go func() { done <- f.attach(ctx, dm) }()
}

// startLogs reads the output from the pod's log, from its start.
func (f *follower) startLogs(cs *corev1.ContainerStatus) {
	done := make(chan error, 1)
	f.attached, f.streamDone = false, done
	dm := f.dm
	go func() { done <- f.readLogs(f.streamCtx, dm) }()
	f.blindDeadline(cs)
}

// blindDeadline arms the timeout for a runner that did not see the script
// start (an adopter, or a creator whose attach broke before it handed the
// script over): it allows for the longest wait for the script, and the
// pod's supervisor enforces the exact timeout itself.
func (f *follower) blindDeadline(cs *corev1.ContainerStatus) {
	if f.deadline != nil || cs == nil || cs.State.Running == nil {
		return
	}
	started := cs.State.Running.StartedAt.Time // whole seconds: +1 s below
	if !f.claimedAt.IsZero() {
		// A pod of the warm pool waited for its run; the wait for the
		// script counts from the claim, and a script that did not arrive
		// by then never will (see follow).
		started = f.claimedAt
		f.undelivered = time.NewTimer(time.Until(started.Add(time.Second + f.p.deliveryWait)))
	}
	f.deadline = time.NewTimer(time.Until(started.Add(time.Second + f.p.deliveryWait + f.job.Limits.Timeout() + killGrace)))
}

// streamEnded handles the end of the attach or log stream.
func (f *follower) streamEnded(err error) {
	f.streamDone = nil
	if f.attached && !f.ended && (err != nil || f.begin.IsZero()) {
		// The attach broke, or the container ended before it took the
		// script: the log has everything from the start.
		f.log.Debug("reading the pod's log instead of the attach stream", "err", err)
		f.dm = newDemux(f.p.cfg.OutputCapBytes) // the attach's may still see a late write
		f.startLogs(container(f.w.cur))
		return
	}
	if err != nil && !f.ended {
		f.streamErr = err
	}
	f.ended = true
}

func (f *follower) endedC() <-chan struct{} {
	if f.ended {
		return nil
	}
	return f.dm.ended
}

func (f *follower) deliveredC() <-chan struct{} {
	if !f.attached || !f.begin.IsZero() {
		return nil
	}
	return f.pl.delivered
}

// kill deletes the pod for a limit the runner enforces and reports it.
func (f *follower) kill(ctx context.Context, v domain.Verdict) (outcome, error) {
	if err := f.p.deletePod(ctx, f.name); err != nil {
		f.log.Warn("could not delete the pod", "err", err)
	}
	stdout, stderr, truncated, _ := f.dm.result()
	res := domain.Result{Stdout: stdout, Stderr: stderr, OutputTruncated: truncated}
	domain.Judge(&res, domain.Ending{StoppedFor: v, OutputTruncated: truncated, Limits: f.job.Limits,
		OutputCap: int64(f.p.cfg.OutputCapBytes)})
	if v == domain.VerdictTimeout {
		res.Usage.WallTimeMs = f.job.Limits.TimeoutMs
		if !f.begin.IsZero() {
			res.Usage.WallTimeMs = time.Since(f.begin).Milliseconds()
		}
	}
	f.log.Info("pod deleted by the runner", "verdict", v)
	return outcome{res: res}, nil
}

// cancelled ends the run for a cancelled context: the pod is deleted, or
// left running when the cause is runner.ErrDetached.
func (f *follower) cancelled(ctx context.Context) (outcome, error) {
	stdout, stderr, truncated, _ := f.dm.result()
	res := domain.Result{Stdout: stdout, Stderr: stderr, OutputTruncated: truncated}
	domain.Judge(&res, domain.Ending{StoppedFor: domain.VerdictCancelled})
	if errors.Is(context.Cause(ctx), runner.ErrDetached) {
		res.Message = "left running for the next runner"
		return outcome{res: res, leave: true}, nil
	}
	if err := f.p.deletePod(ctx, f.name); err != nil {
		f.log.Warn("could not delete the pod", "err", err)
	}
	return outcome{res: res}, nil
}

// conclude judges the run from what the pod reported.
func (f *follower) conclude() (outcome, error) {
	stdout, stderr, truncated, end := f.dm.result()
	if end != nil && end.Status == "undelivered" {
		return outcome{undelivered: true}, nil
	}
	if f.w.gone && (end == nil || end.OOMKills < 0) {
		return outcome{}, fmt.Errorf("%w: the pod was deleted while it ran", runner.ErrSandboxGone)
	}
	pod := f.w.cur
	var term *corev1.ContainerStateTerminated
	if cs := container(pod); cs != nil {
		term = cs.State.Terminated
	}
	res := domain.Result{Stdout: stdout, Stderr: stderr, OutputTruncated: truncated}
	err := judge(&res, verdictInput{
		limits: f.job.Limits, outputCap: f.p.cfg.OutputCapBytes, term: term, end: end,
		deadlineExceeded: pod.Status.Phase == corev1.PodFailed && pod.Status.Reason == "DeadlineExceeded",
		streamErr:        f.streamErr, diag: f.diag.String(),
	})
	if err != nil {
		return outcome{}, err
	}
	if res.Usage.WallTimeMs == 0 && !f.begin.IsZero() && end == nil {
		res.Usage.WallTimeMs = time.Since(f.begin).Milliseconds()
	}
	return outcome{res: res}, nil
}

// notStarted explains a pod that did not run within StartTimeout.
func (f *follower) notStarted() error {
	pod := f.w.cur
	why := string(pod.Status.Phase)
	for _, c := range pod.Status.Conditions {
		if c.Status != corev1.ConditionTrue && c.Message != "" {
			why += fmt.Sprintf("; %s: %s", c.Type, c.Message)
		}
	}
	if cs := container(pod); cs != nil && cs.State.Waiting != nil {
		why += fmt.Sprintf("; container %s: %s", cs.State.Waiting.Reason, cs.State.Waiting.Message)
	}
	return fmt.Errorf("the pod did not start within %s (%s)", f.p.cfg.StartTimeout, why)
}

// fatalWaiting are the container waiting reasons that no wait can cure.
var fatalWaiting = map[string]bool{
	"ErrImagePull": true, "ImagePullBackOff": true, "ErrImageNeverPull": true, "InvalidImageName": true,
	"CreateContainerConfigError": true, "CreateContainerError": true, "RunContainerError": true,
}

// startFailure reports a pod that will never run its container.
func startFailure(pod *corev1.Pod, cs *corev1.ContainerStatus) error {
	if cs != nil && cs.State.Waiting != nil && fatalWaiting[cs.State.Waiting.Reason] {
		return fmt.Errorf("the container cannot start: %s: %s", cs.State.Waiting.Reason, cs.State.Waiting.Message)
	}
	if pod.Status.Phase == corev1.PodFailed && (cs == nil || cs.State.Terminated == nil) {
		return fmt.Errorf("the pod failed before its container ran: %s: %s", pod.Status.Reason, pod.Status.Message)
	}
	return nil
}

func timerC(t *time.Timer) <-chan time.Time {
	if t == nil {
		return nil
	}
	return t.C
}

func stopTimer(t *time.Timer) {
	if t != nil {
		t.Stop()
	}
}
