//go:build kubernetes

package kubernetes

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/eventstore"
	"github.com/integr8scode/integr8scode/internal/testenv"
	"github.com/integr8scode/integr8scode/runner"
)

// The runner on the real cluster, over the embedded broker and store: a
// runner that stops (or dies) mid-run must not run the script twice, and
// the ledger must say so: one ExecutionStarted, one terminal event.

// slowScript prints, sleeps past the moment the runner stops, and prints again.
const slowScript = "import sys, time\nprint('before', flush=True)\nprint('e', file=sys.stderr, flush=True)\n" +
	"time.sleep(4)\nprint('after')\n"

type runnerWorld struct {
	fixture
	ledger testenv.Ledger
}

func newRunnerWorld(t *testing.T) runnerWorld {
	t.Helper()
	return runnerWorld{fixture: newFixture(t, nil), ledger: testenv.StartLedger(t, "kubernetes_runner_test")}
}

func (w runnerWorld) runner(t *testing.T, id string, leaseTTL time.Duration) *runner.Runner {
	t.Helper()
	r, err := runner.New(runner.Config{ID: id, Ledger: w.ledger.Ledger, Leases: w.ledger.Heads, Sandbox: w.pods,
		Slots: 2, LeaseTTL: leaseTTL, RenewEvery: 100 * time.Millisecond, ReconcileEvery: 200 * time.Millisecond,
		Logger: testenv.Quiet()})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// start runs r's loop (reconcile only: the sweep claims queued work after
// a grace period, so no consumer is needed) and returns its stop.
func start(t *testing.T, r *runner.Runner) func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return func() { cancel(); <-done }
}

func (w runnerWorld) queue(t *testing.T, script string) runner.Job {
	t.Helper()
	return w.queueWith(t, script, domain.DefaultLimits)
}

func (w runnerWorld) queueWith(t *testing.T, script string, limits domain.Limits) runner.Job {
	t.Helper()
	j := job(t, script)
	j.Limits = limits
	_, _, err := w.ledger.Create(context.Background(), j.ExecutionID, domain.ExecutionQueued{Language: "python",
		Version: "3.11", Script: script, Limits: limits, Owner: "anonymous"}, eventstore.Meta{Actor: "anonymous"})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func (w runnerWorld) head(t *testing.T, id string) eventstore.Head {
	t.Helper()
	h, err := w.ledger.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func (w runnerWorld) waitTerminal(t *testing.T, id string) eventstore.Head {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if h := w.head(t, id); h.State.Status.Terminal() {
			return h
		}
	}
	t.Fatalf("%s did not end", id)
	return eventstore.Head{}
}

// checkRanOnce checks that the execution completed with the whole output of
// one run, in three events (Queued, one Started, Completed), and that its
// pod is gone.
func (w runnerWorld) checkRanOnce(t *testing.T, j runner.Job, h eventstore.Head) {
	t.Helper()
	e := h.State
	if e.Status != domain.StatusCompleted || e.Output != "before\nafter\n" || e.Errors != "e\n" {
		t.Fatalf("status %s (%s) output %q errors %q", e.Status, e.FailureReason, e.Output, e.Errors)
	}
	if h.State.Sequence != 3 || h.State.Attempt != 1 {
		t.Fatalf("the ledger holds %d events and attempt %d; want Queued, one Started, Completed",
			h.State.Sequence, h.State.Attempt)
	}
	w.noPodLeft(t, j)
}

// TestRunnerRestartMidRun: a runner stops while its script runs; the pod
// runs on; its next life (same id) resumes it at once and records the
// outcome of the one run.
func TestRunnerRestartMidRun(t *testing.T) {
	w := newRunnerWorld(t)
	j := w.queue(t, slowScript)
	stop := start(t, w.runner(t, "runner-a", 15*time.Second))
	w.waitRunning(t, j)
	time.Sleep(500 * time.Millisecond)
	stop()

	h := w.head(t, j.ExecutionID)
	if h.State.Status != domain.StatusRunning || h.LeaseOwner != "runner-a" {
		t.Fatalf("after the stop: status %s lease %q", h.State.Status, h.LeaseOwner)
	}
	if _, err := w.client.CoreV1().Pods(w.ns).Get(context.Background(), podName(j.ExecutionID, 1), metav1.GetOptions{}); err != nil {
		t.Fatalf("the runner deleted the pod when it stopped: %v", err)
	}
	start(t, w.runner(t, "runner-a", 15*time.Second))
	w.checkRanOnce(t, j, w.waitTerminal(t, j.ExecutionID))
}

// TestRunnerTakeover: a runner stops for good mid-run; another runner takes
// the execution over once the lease expired and follows the same pod.
func TestRunnerTakeover(t *testing.T) {
	w := newRunnerWorld(t)
	j := w.queue(t, slowScript)
	stop := start(t, w.runner(t, "runner-a", 2*time.Second))
	w.waitRunning(t, j)
	stop()
	start(t, w.runner(t, "runner-b", 2*time.Second))
	w.checkRanOnce(t, j, w.waitTerminal(t, j.ExecutionID))
}

// TestRunnerTakenOverWhileAlive: a runner that lost its lease while still
// running (a pause, a partition) finds another runner's lease on the same
// attempt; it lets go of the pod instead of deleting it, and records
// nothing: the new owner follows the pod and records the one outcome.
func TestRunnerTakenOverWhileAlive(t *testing.T) {
	w := newRunnerWorld(t)
	j := w.queue(t, slowScript)
	start(t, w.runner(t, "runner-a", 15*time.Second))
	w.waitRunning(t, j)
	// What runner-b's sweep does once it judges runner-a gone.
	_, _, err := w.ledger.Update(context.Background(), j.ExecutionID, eventstore.Meta{Actor: "runner"},
		func(h *eventstore.Head) ([]domain.Event, error) {
			h.LeaseOwner, h.LeaseUntil = "runner-b", time.Now().Add(time.Minute)
			return nil, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // runner-a renews every 100 ms and notices
	if _, err := w.client.CoreV1().Pods(w.ns).Get(context.Background(), podName(j.ExecutionID, 1), metav1.GetOptions{}); err != nil {
		t.Fatalf("the runner that lost its lease deleted the pod: %v", err)
	}
	if h := w.head(t, j.ExecutionID); h.State.Status != domain.StatusRunning {
		t.Fatalf("the runner that lost its lease recorded %s", h.State.Status)
	}
	start(t, w.runner(t, "runner-b", 15*time.Second))
	w.checkRanOnce(t, j, w.waitTerminal(t, j.ExecutionID))
}

// TestRunnerPodVanished: the pod of a stopped runner's attempt is gone (an
// operator deleted it); the next runner finds nothing to resume and runs
// the script again as attempt 2.
func TestRunnerPodVanished(t *testing.T) {
	w := newRunnerWorld(t)
	j := w.queue(t, "print('ran')")
	if _, _, err := w.ledger.Update(context.Background(), j.ExecutionID, eventstore.Meta{Actor: "runner"},
		func(h *eventstore.Head) ([]domain.Event, error) {
			ev, err := h.State.Start("runner-gone", "kubernetes")
			h.LeaseOwner, h.LeaseUntil = "runner-gone", time.Now().Add(-time.Second)
			return []domain.Event{ev}, err
		}); err != nil {
		t.Fatal(err)
	}
	start(t, w.runner(t, "runner-b", 15*time.Second))
	h := w.waitTerminal(t, j.ExecutionID)
	if h.State.Status != domain.StatusCompleted || h.State.Output != "ran\n" || h.State.Attempt != 2 {
		t.Fatalf("status %s attempt %d output %q", h.State.Status, h.State.Attempt, h.State.Output)
	}
	j.Attempt = 2
	w.noPodLeft(t, j)
}

// TestRunnerPolicyRejection: the sandbox namespace's Pod Security refuses
// the pod (here, one the test weakened); the execution fails with
// system_error, and its message says why.
func TestRunnerPolicyRejection(t *testing.T) {
	w := newRunnerWorld(t)
	w.pods.mutatePod = func(p *corev1.Pod) {
		p.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = ptr.To(true)
	}
	j := w.queue(t, "print('never')")
	start(t, w.runner(t, "runner-a", 15*time.Second))
	e := w.waitTerminal(t, j.ExecutionID).State
	if e.Status != domain.StatusFailed || e.FailureReason != domain.VerdictSystemError ||
		!strings.Contains(e.Errors, "this is the platform's fault") ||
		!strings.Contains(e.Errors, `violates PodSecurity "restricted:latest"`) ||
		!strings.Contains(e.Errors, "allowPrivilegeEscalation") {
		t.Fatalf("status %s (%s): %q", e.Status, e.FailureReason, e.Errors)
	}
	t.Log(e.Errors)
	w.noPodLeft(t, j)
}

// TestRunnerStopsTooOften: every runner that follows the execution's pod
// stops. Resumes count with attempts: after the third stop the execution
// fails with system_error rather than stay running for ever.
func TestRunnerStopsTooOften(t *testing.T) {
	w := newRunnerWorld(t)
	limits := domain.DefaultLimits
	limits.TimeoutMs = 30000
	j := w.queueWith(t, "import time\ntime.sleep(25)\n", limits)
	for i := 0; i < 3; i++ {
		stop := start(t, w.runner(t, "runner-a", 15*time.Second))
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
			h := w.head(t, j.ExecutionID)
			if h.State.Status == domain.StatusRunning && h.Resumes == i {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("life %d: status %s, resumes %d", i+1, h.State.Status, h.Resumes)
			}
		}
		w.waitRunning(t, j)
		stop()
	}
	start(t, w.runner(t, "runner-a", 15*time.Second))
	h := w.waitTerminal(t, j.ExecutionID)
	if h.State.Status != domain.StatusFailed || h.State.FailureReason != domain.VerdictSystemError ||
		!strings.Contains(h.State.Errors, "the runner stopped 3 times") || h.State.Attempt != 1 {
		t.Fatalf("status %s (%s) attempt %d: %q", h.State.Status, h.State.FailureReason, h.State.Attempt, h.State.Errors)
	}
	// The pod nobody follows any more goes at the next collection (the
	// runner's first sweep after its start, then every minute).
	start(t, w.runner(t, "runner-c", 15*time.Second))
	w.waitNoPod(t, j)
}

// TestRunnerCollectsLeftPods: a user's cancel lands while the execution's
// runner is stopped (its pod left running); the next runner's first sweep
// deletes the pod of the ended execution.
func TestRunnerCollectsLeftPods(t *testing.T) {
	w := newRunnerWorld(t)
	j := w.queue(t, "import time\ntime.sleep(30)\n")
	stop := start(t, w.runner(t, "runner-a", 15*time.Second))
	w.waitRunning(t, j)
	stop()
	if _, _, err := w.ledger.Update(context.Background(), j.ExecutionID, eventstore.Meta{Actor: "someone"},
		func(h *eventstore.Head) ([]domain.Event, error) {
			ev, err := h.State.Cancel("someone")
			return []domain.Event{ev}, err
		}); err != nil {
		t.Fatal(err)
	}
	start(t, w.runner(t, "runner-b", 15*time.Second))
	w.waitNoPod(t, j)
}

// waitNoPod waits until j's pod is gone.
func (w runnerWorld) waitNoPod(t *testing.T, j runner.Job) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, err := w.client.CoreV1().Pods(w.ns).Get(context.Background(), podName(j.ExecutionID, j.Attempt), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pod of %s is still there (err %v)", j.ExecutionID, err)
		}
	}
}
