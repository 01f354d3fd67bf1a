//go:build kubernetes

package kubernetes

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/google/uuid"

	"github.com/integr8scode/integr8scode/adapters/kafka"
	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/eventstore"
	"github.com/integr8scode/integr8scode/internal/testenv"
	"github.com/integr8scode/integr8scode/projections"
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
	user   *kafka.Asker
}

func newRunnerWorld(t *testing.T) runnerWorld {
	t.Helper()
	l := testenv.StartLedger(t, "kubernetes_runner_test", 15*time.Second)
	return runnerWorld{fixture: newFixture(t, nil), ledger: l, user: l.Asker(t, "user")}
}

func (w runnerWorld) runner(t *testing.T, id string, leaseTTL time.Duration) *runner.Runner {
	t.Helper()
	r, err := runner.New(runner.Config{ID: id, Ledger: w.ledger.Asker(t, id), Backlog: projections.Backlog{Store: w.ledger.Views},
		Sandbox: w.pods, Content: w.ledger.Content, Slots: 2, LeaseTTL: leaseTTL, RenewEvery: 100 * time.Millisecond,
		ReconcileEvery: 200 * time.Millisecond, Logger: testenv.Quiet()})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// start runs r as the platform does (following the ledger's events and
// sweeping the views) and returns its stop.

// start runs r as the platform does and returns its stop.
func (w runnerWorld) start(t *testing.T, r *runner.Runner) func() { return w.ledger.RunRunner(t, r) }

func (w runnerWorld) queue(t *testing.T, script string) runner.Job {
	t.Helper()
	return w.queueWith(t, script, domain.DefaultLimits)
}

func (w runnerWorld) queueWith(t *testing.T, script string, limits domain.Limits) runner.Job {
	t.Helper()
	j := job(t, script)
	j.ExecutionID = uuid.NewString()
	j.Limits = limits
	in, err := w.ledger.Content.SealInput(context.Background(), j.ExecutionID, domain.Input{Script: script})
	if err != nil {
		t.Fatal(err)
	}
	j.Input = in
	r := testenv.Ask(t, w.user, eventstore.Command{Kind: eventstore.CommandSubmit, ExecutionID: j.ExecutionID, Actor: "anonymous",
		Submit: &domain.ExecutionQueued{Language: "python", Version: "3.11", Input: in, Limits: limits, Owner: "anonymous"}})
	if r.Err() != nil {
		t.Fatal(r.Err())
	}
	return j
}

func (w runnerWorld) ask(t *testing.T, cmd eventstore.Command) {
	t.Helper()
	if r := testenv.Ask(t, w.user, cmd); r.Err() != nil {
		t.Fatalf("%s: %v", cmd.Kind, r.Err())
	}
}

func (w runnerWorld) waitTerminal(t *testing.T, id string) domain.Execution {
	t.Helper()
	return w.ledger.Reveal(t, w.ledger.WaitView(t, id, func(e domain.Execution) bool { return e.Status.Terminal() }, 2*time.Minute))
}

// history is the execution's event types in the log.
func (w runnerWorld) history(t *testing.T, id string) []string {
	t.Helper()
	var out []string
	for _, e := range w.ledger.History(t, id) {
		out = append(out, e.Type)
	}
	return out
}

// checkRanOnce checks that the execution completed with the whole output of
// one run, that the log holds one ExecutionStarted and one terminal event
// (the script ran once, whoever followed it), and that its pod is gone.
func (w runnerWorld) checkRanOnce(t *testing.T, j runner.Job, e domain.Execution) {
	t.Helper()
	if e.Status != domain.StatusCompleted || e.Output != "before\nafter\n" || e.Errors != "e\n" {
		t.Fatalf("status %s (%s) output %q errors %q", e.Status, e.FailureReason, e.Output, e.Errors)
	}
	started, ended := 0, 0
	h := w.history(t, j.ExecutionID)
	for _, typ := range h {
		switch typ {
		case domain.TypeExecutionStarted:
			started++
		case domain.TypeExecutionCompleted, domain.TypeExecutionFailed:
			ended++
		}
	}
	if started != 1 || ended != 1 || e.Attempt != 1 {
		t.Fatalf("the ledger holds %v (attempt %d); want one Started and one Completed", h, e.Attempt)
	}
	w.noPodLeft(t, j)
}

// TestRunnerRestartMidRun: a runner stops while its script runs; the pod
// runs on; its next life (same id) resumes it and records the outcome of
// the one run. The log says so: abandoned by runner-a, resumed by runner-a.
func TestRunnerRestartMidRun(t *testing.T) {
	w := newRunnerWorld(t)
	j := w.queue(t, slowScript)
	stop := w.start(t, w.runner(t, "runner-a", 15*time.Second))
	w.waitRunning(t, j)
	time.Sleep(500 * time.Millisecond)
	stop()

	if _, err := w.client.CoreV1().Pods(w.ns).Get(context.Background(), podName(j.ExecutionID, 1), metav1.GetOptions{}); err != nil {
		t.Fatalf("the runner deleted the pod when it stopped: %v", err)
	}
	w.start(t, w.runner(t, "runner-a", 15*time.Second))
	w.checkRanOnce(t, j, w.waitTerminal(t, j.ExecutionID))
	if got := fmt.Sprint(w.history(t, j.ExecutionID)); got != "[ExecutionQueued ExecutionStarted ExecutionAbandoned ExecutionResumed ExecutionCompleted]" {
		t.Fatalf("history %s", got)
	}
}

// TestRunnerTakeover: a runner stops for good mid-run; another runner takes
// the execution over and follows the same pod.
func TestRunnerTakeover(t *testing.T) {
	w := newRunnerWorld(t)
	j := w.queue(t, slowScript)
	stop := w.start(t, w.runner(t, "runner-a", 2*time.Second))
	w.waitRunning(t, j)
	stop()
	w.start(t, w.runner(t, "runner-b", 2*time.Second))
	e := w.waitTerminal(t, j.ExecutionID)
	w.checkRanOnce(t, j, e)
	if e.Runner != "runner-b" || e.Resumes != 1 {
		t.Fatalf("runner %q resumes %d, want runner-b after one resume", e.Runner, e.Resumes)
	}
}

// TestRunnerTakenOverWhileAlive: a runner whose attempt was abandoned
// while it still ran (its lease lapsed during a pause) lets go of the pod
// instead of deleting it, and reports nothing: the runner that resumes it
// follows the pod and records the one outcome.
func TestRunnerTakenOverWhileAlive(t *testing.T) {
	w := newRunnerWorld(t)
	j := w.queue(t, slowScript)
	w.start(t, w.runner(t, "runner-a", 15*time.Second))
	w.waitRunning(t, j)
	// What the ledger writer decides when runner-a's lease lapses.
	w.ask(t, eventstore.Command{Kind: eventstore.CommandRelease, ExecutionID: j.ExecutionID, Actor: "ledger",
		Release: &eventstore.ReleaseArgs{Runner: "runner-a", Attempt: 1, Reason: domain.AbandonLeaseExpired}})
	time.Sleep(time.Second)
	if _, err := w.client.CoreV1().Pods(w.ns).Get(context.Background(), podName(j.ExecutionID, 1), metav1.GetOptions{}); err != nil {
		t.Fatalf("the runner whose attempt was abandoned deleted the pod: %v", err)
	}
	w.start(t, w.runner(t, "runner-b", 15*time.Second))
	w.checkRanOnce(t, j, w.waitTerminal(t, j.ExecutionID))
}

// TestRunnerPodVanished: the pod of a stopped runner's attempt is gone (an
// operator deleted it); the next runner finds nothing to resume and runs
// the script again as attempt 2.
func TestRunnerPodVanished(t *testing.T) {
	w := newRunnerWorld(t)
	j := w.queue(t, "print('ran')")
	w.ask(t, eventstore.Command{Kind: eventstore.CommandClaim, ExecutionID: j.ExecutionID, Actor: "runner",
		Runner: &eventstore.RunnerArgs{Runner: "runner-gone", Sandbox: "kubernetes", Mode: eventstore.ClaimStart, LeaseMs: 300}})
	w.start(t, w.runner(t, "runner-b", 15*time.Second))
	e := w.waitTerminal(t, j.ExecutionID)
	if e.Status != domain.StatusCompleted || e.Output != "ran\n" || e.Attempt != 2 {
		t.Fatalf("status %s attempt %d output %q", e.Status, e.Attempt, e.Output)
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
	w.start(t, w.runner(t, "runner-a", 15*time.Second))
	e := w.waitTerminal(t, j.ExecutionID)
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
// stops. Resumes count with attempts: at the third stop the execution
// fails with system_error rather than stay running for ever.
func TestRunnerStopsTooOften(t *testing.T) {
	w := newRunnerWorld(t)
	limits := domain.DefaultLimits
	limits.TimeoutMs = 30000
	j := w.queueWith(t, "import time\ntime.sleep(25)\n", limits)
	for i := 0; i < 3; i++ {
		stop := w.start(t, w.runner(t, "runner-a", 15*time.Second))
		w.ledger.WaitView(t, j.ExecutionID, func(e domain.Execution) bool {
			return e.Status == domain.StatusRunning && e.Runner == "runner-a" && e.Resumes == i
		}, time.Minute)
		w.waitRunning(t, j)
		stop()
	}
	e := w.waitTerminal(t, j.ExecutionID)
	if e.Status != domain.StatusFailed || e.FailureReason != domain.VerdictSystemError ||
		!strings.Contains(e.Errors, "the runner stopped 3 times") || e.Attempt != 1 {
		t.Fatalf("status %s (%s) attempt %d: %q", e.Status, e.FailureReason, e.Attempt, e.Errors)
	}
	// The pod nobody follows any more goes at the next collection (the
	// runner's first sweep after its start, then every minute).
	w.start(t, w.runner(t, "runner-c", 15*time.Second))
	w.waitNoPod(t, j)
}

// TestRunnerCollectsLeftPods: a user's cancel lands while the execution's
// runner is stopped (its pod left running); the next runner's first sweep
// deletes the pod of the ended execution.
func TestRunnerCollectsLeftPods(t *testing.T) {
	w := newRunnerWorld(t)
	j := w.queue(t, "import time\ntime.sleep(30)\n")
	stop := w.start(t, w.runner(t, "runner-a", 15*time.Second))
	w.waitRunning(t, j)
	stop()
	w.ask(t, eventstore.Command{Kind: eventstore.CommandCancel, ExecutionID: j.ExecutionID, Actor: "someone"})
	w.start(t, w.runner(t, "runner-b", 15*time.Second))
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
