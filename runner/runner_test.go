package runner_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/integr8scode/integr8scode/adapters/kafka"
	"github.com/integr8scode/integr8scode/adapters/sandbox/oci"
	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/eventstore"
	"github.com/integr8scode/integr8scode/internal/testenv"
	"github.com/integr8scode/integr8scode/projections"
	"github.com/integr8scode/integr8scode/runner"
)

// world is the runner's real surroundings: the embedded broker and store,
// the ledger writer and projector over them, and a real runc sandbox.
type world struct {
	testenv.Ledger
	user    *kafka.Asker
	sandbox *oci.Runc
}

func newWorld(t *testing.T) world {
	t.Helper()
	l := testenv.StartLedger(t, "runner_test", 15*time.Second)
	sb, err := oci.New(oci.Config{RuncPath: "runc", StateDir: filepath.Join(t.TempDir(), "sandbox")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	return world{Ledger: l, user: l.Asker(t, "user"), sandbox: sb}
}

// countingSandbox wraps the real sandbox to observe concurrency.
type countingSandbox struct {
	runner.Sandbox
	mu        sync.Mutex
	now, peak int
	runs      int
}

func (c *countingSandbox) Run(ctx context.Context, j runner.Job) (domain.Result, error) {
	c.mu.Lock()
	c.now++
	c.runs++
	if c.now > c.peak {
		c.peak = c.now
	}
	c.mu.Unlock()
	defer func() { c.mu.Lock(); c.now--; c.mu.Unlock() }()
	return c.Sandbox.Run(ctx, j)
}

func (w world) newRunner(t *testing.T, id string, sb runner.Sandbox, slots int) *runner.Runner {
	t.Helper()
	r, err := runner.New(runner.Config{ID: id, Ledger: w.Asker(t, id), Backlog: projections.Backlog{Store: w.Views},
		Sandbox: sb, Content: w.Content, Slots: slots, LeaseTTL: 2 * time.Second, RenewEvery: 200 * time.Millisecond,
		ReconcileEvery: 200 * time.Millisecond, Logger: testenv.Quiet()})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// startRunner runs r as the platform does and returns its stop.
func (w world) startRunner(t *testing.T, r *runner.Runner) context.CancelFunc {
	return w.RunRunner(t, r)
}

func (w world) queue(t *testing.T, script string) eventstore.Envelope {
	t.Helper()
	return testenv.Submit(t, w.user, w.Content, script)
}

func terminal(e domain.Execution) bool { return e.Status.Terminal() }

// claimAs makes an execution look like runner claimed it (lease ms long)
// and then went silent.
func (w world) claimAs(t *testing.T, id, runnerID, mode string, lease time.Duration) eventstore.Reply {
	t.Helper()
	r := testenv.Ask(t, w.user, eventstore.Command{Kind: eventstore.CommandClaim, ExecutionID: id, Actor: "runner",
		Runner: &eventstore.RunnerArgs{Runner: runnerID, Sandbox: "runc", Mode: mode, LeaseMs: lease.Milliseconds()}})
	if r.Err() != nil {
		t.Fatalf("claim as %s: %v", runnerID, r.Err())
	}
	return r
}

func types(evs []eventstore.Envelope) string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Type)
	}
	return fmt.Sprint(out)
}

func TestRunner(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()

	t.Run("OK pool full leaves work queued in the ledger, then runs it in order", func(t *testing.T) {
		sb := &countingSandbox{Sandbox: w.sandbox}
		r := w.newRunner(t, "r-pool", sb, 1)
		var ids []string
		for i := 0; i < 4; i++ {
			env := w.queue(t, "import time\ntime.sleep(0.3)\nprint('ok')")
			ids = append(ids, env.ExecutionID)
			if err := r.HandleEvent(ctx, env); err != nil { // returns at once, also when full
				t.Fatal(err)
			}
		}
		if r.Busy() != 1 {
			t.Fatalf("%d sandboxes busy after the event path, want 1 (one slot)", r.Busy())
		}
		w.startRunner(t, r)
		for _, id := range ids {
			if v := w.Reveal(t, w.WaitView(t, id, terminal, 30*time.Second)); v.Status != domain.StatusCompleted || v.Output != "ok\n" {
				t.Fatalf("%s: %+v", id, v)
			}
		}
		if sb.peak != 1 {
			t.Fatalf("%d sandboxes ran at once with one slot", sb.peak)
		}
	})

	t.Run("OK the sum of the CPU limits bounds the runs at once, below the slots", func(t *testing.T) {
		sb := &countingSandbox{Sandbox: w.sandbox}
		// Ten slots, but room for two 100m sandboxes only.
		r, err := runner.New(runner.Config{ID: "r-budget", Ledger: w.Asker(t, "r-budget"), Backlog: projections.Backlog{Store: w.Views},
			Sandbox: sb, Content: w.Content, Slots: 10, CPUBudget: 2 * domain.DefaultLimits.CPUMillicores, LeaseTTL: 2 * time.Second,
			RenewEvery: 200 * time.Millisecond, ReconcileEvery: 200 * time.Millisecond, Logger: testenv.Quiet()})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for i := 0; i < 4; i++ {
			env := w.queue(t, "import time\ntime.sleep(0.3)\nprint('ok')")
			ids = append(ids, env.ExecutionID)
			if err := r.HandleEvent(ctx, env); err != nil {
				t.Fatal(err)
			}
		}
		if r.Busy() != 2 {
			t.Fatalf("%d sandboxes busy after the event path, want 2 (a budget of 200m)", r.Busy())
		}
		w.startRunner(t, r)
		for _, id := range ids {
			if v := w.Reveal(t, w.WaitView(t, id, terminal, 30*time.Second)); v.Status != domain.StatusCompleted || v.Output != "ok\n" {
				t.Fatalf("%s: %+v", id, v)
			}
		}
		if sb.peak != 2 || sb.runs != 4 {
			t.Fatalf("%d sandboxes ran at once (%d runs), want 2 within a 200m budget", sb.peak, sb.runs)
		}
	})

	t.Run("OK re-runs an execution whose runner died", func(t *testing.T) {
		env := w.queue(t, "print('second life')")
		w.claimAs(t, env.ExecutionID, "ghost", eventstore.ClaimStart, 300*time.Millisecond)
		w.startRunner(t, w.newRunner(t, "r-rescue", w.sandbox, 2))
		v := w.WaitView(t, env.ExecutionID, terminal, 30*time.Second)
		if v.Status != domain.StatusCompleted || v.Attempt != 2 || v.Runner != "r-rescue" {
			t.Fatalf("got %+v", v)
		}
		want := "[ExecutionQueued ExecutionStarted ExecutionAbandoned ExecutionStarted ExecutionCompleted]"
		if got := types(w.History(t, env.ExecutionID)); got != want {
			t.Fatalf("history %s, want %s", got, want)
		}
	})

	t.Run("OK leaves a live lease of another runner alone", func(t *testing.T) {
		env := w.queue(t, "print(1)")
		w.claimAs(t, env.ExecutionID, "busy-elsewhere", eventstore.ClaimStart, time.Hour)
		w.WaitView(t, env.ExecutionID, func(e domain.Execution) bool { return e.Status == domain.StatusRunning }, 10*time.Second)
		r := w.newRunner(t, "r-polite", w.sandbox, 2)
		for i := 0; i < 3; i++ {
			if err := r.Reconcile(ctx); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(300 * time.Millisecond)
		if v, _ := w.Views.View(ctx, env.ExecutionID); v.Attempt != 1 || v.Runner != "busy-elsewhere" {
			t.Fatalf("took over a live lease: %+v", v)
		}
	})

	t.Run("OK a restarted runner releases its own claims and runs them again at once", func(t *testing.T) {
		env := w.queue(t, "print('again')")
		w.claimAs(t, env.ExecutionID, "r-self", eventstore.ClaimStart, time.Hour)
		w.WaitView(t, env.ExecutionID, func(e domain.Execution) bool { return e.Runner == "r-self" }, 10*time.Second)
		w.startRunner(t, w.newRunner(t, "r-self", w.sandbox, 2))
		v := w.WaitView(t, env.ExecutionID, terminal, 30*time.Second)
		if v.Status != domain.StatusCompleted || v.Attempt != 2 {
			t.Fatalf("got %+v", v)
		}
		h := w.History(t, env.ExecutionID)
		if ab, _ := eventstore.Decode(h[2]); ab != (domain.ExecutionAbandoned{Runner: "r-self", Attempt: 1, Reason: domain.AbandonRunnerRestart}) {
			t.Fatalf("the log does not say the previous life's attempt was abandoned: %s %+v", types(h), ab)
		}
	})

	t.Run("OK cancel kills the sandbox and the runner reports nothing", func(t *testing.T) {
		sb := &countingSandbox{Sandbox: w.sandbox}
		r := w.newRunner(t, "r-cancel", sb, 1)
		w.startRunner(t, r)
		env := w.queue(t, "import time\ntime.sleep(30)")
		w.WaitView(t, env.ExecutionID, func(e domain.Execution) bool { return e.Status == domain.StatusRunning }, 10*time.Second)
		time.Sleep(200 * time.Millisecond)
		if rep := testenv.Ask(t, w.user, eventstore.Command{Kind: eventstore.CommandCancel, ExecutionID: env.ExecutionID,
			Actor: "anonymous"}); rep.Err() != nil {
			t.Fatal(rep.Err())
		}
		deadline := time.Now().Add(10 * time.Second)
		for r.Busy() > 0 {
			if time.Now().After(deadline) {
				t.Fatal("the sandbox still runs after cancel")
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond)
		if got := types(w.History(t, env.ExecutionID)); got != "[ExecutionQueued ExecutionStarted ExecutionFailed]" {
			t.Fatalf("the runner appended after a cancel: %s", got)
		}
	})

	t.Run("OK shutdown releases the execution for another runner", func(t *testing.T) {
		r := w.newRunner(t, "r-stop", w.sandbox, 1)
		stop := w.startRunner(t, r)
		env := w.queue(t, "import time\ntime.sleep(30)")
		w.WaitView(t, env.ExecutionID, func(e domain.Execution) bool { return e.Status == domain.StatusRunning }, 10*time.Second)
		stop()
		h := w.History(t, env.ExecutionID)
		last, _ := eventstore.Decode(h[len(h)-1])
		if last != (domain.ExecutionAbandoned{Runner: "r-stop", Attempt: 1, Reason: domain.AbandonRunnerStopped}) {
			t.Fatalf("shutdown did not release: %s", types(h))
		}
	})
}
