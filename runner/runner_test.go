package runner_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/integr8scode/integr8scode/adapters/mongo"
	"github.com/integr8scode/integr8scode/adapters/sandbox/oci"
	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/eventstore"
	"github.com/integr8scode/integr8scode/internal/testenv"
	"github.com/integr8scode/integr8scode/runner"
)

// world is the runner's real surroundings: the embedded broker and store,
// the ledger over them, and a real runc sandbox.
type world struct {
	ledger  *eventstore.Ledger
	heads   *mongo.Heads
	sandbox *oci.Runc
}

func newWorld(t *testing.T) world {
	t.Helper()
	l := testenv.StartLedger(t, "runner_test")
	sb, err := oci.New(oci.Config{RuncPath: "runc", StateDir: filepath.Join(t.TempDir(), "sandbox")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	return world{ledger: l.Ledger, heads: l.Heads, sandbox: sb}
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
	r, err := runner.New(runner.Config{ID: id, Ledger: w.ledger, Leases: w.heads, Sandbox: sb, Slots: slots,
		LeaseTTL: 2 * time.Second, RenewEvery: 100 * time.Millisecond, ReconcileEvery: 200 * time.Millisecond,
		Logger: testenv.Quiet()})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// startRunner runs r's reconcile loop until the test ends.
func startRunner(t *testing.T, r *runner.Runner) context.CancelFunc {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return func() { cancel(); <-done }
}

func (w world) queue(t *testing.T, id, script string) eventstore.Envelope {
	t.Helper()
	_, envs, err := w.ledger.Create(context.Background(), id, domain.ExecutionQueued{Language: "python", Version: "3.11",
		Script: script, Limits: domain.DefaultLimits, Owner: "anonymous"}, eventstore.Meta{Actor: "anonymous"})
	if err != nil {
		t.Fatal(err)
	}
	return envs[0]
}

func (w world) waitStatus(t *testing.T, id string, want func(domain.Status) bool, within time.Duration) eventstore.Head {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		h, err := w.ledger.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if want(h.State.Status) {
			return h
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still %s after %s", id, h.State.Status, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func terminal(s domain.Status) bool { return s.Terminal() }

// forceRunning makes a head look like a runner claimed it and vanished.
func (w world) forceRunning(t *testing.T, id, owner string, attempts int, leaseUntil time.Time) {
	t.Helper()
	for i := 0; i < attempts; i++ {
		_, _, err := w.ledger.Update(context.Background(), id, eventstore.Meta{Actor: "runner"}, func(h *eventstore.Head) ([]domain.Event, error) {
			ev, err := h.State.Start(owner, "runc")
			h.LeaseOwner, h.LeaseUntil = owner, leaseUntil
			return []domain.Event{ev}, err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestRunner(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()

	t.Run("OK pool full leaves work queued in the ledger, then runs it in order", func(t *testing.T) {
		sb := &countingSandbox{Sandbox: w.sandbox}
		r := w.newRunner(t, "r-pool", sb, 1)
		var ids []string
		for i := 0; i < 4; i++ {
			id := fmt.Sprintf("pool-%d", i)
			ids = append(ids, id)
			env := w.queue(t, id, "import time\ntime.sleep(0.3)\nprint('ok')")
			if err := r.HandleEvent(ctx, env); err != nil { // returns at once, also when full
				t.Fatal(err)
			}
		}
		queued := 0
		for _, id := range ids {
			h, _ := w.ledger.Get(ctx, id)
			if h.State.Status == domain.StatusQueued {
				queued++
			}
		}
		if queued != 3 {
			t.Fatalf("%d of 4 still queued after the event path, want 3 (one slot)", queued)
		}
		startRunner(t, r)
		for _, id := range ids {
			if h := w.waitStatus(t, id, terminal, 30*time.Second); h.State.Status != domain.StatusCompleted || h.State.Output != "ok\n" {
				t.Fatalf("%s: %+v", id, h.State)
			}
		}
		if sb.peak != 1 {
			t.Fatalf("%d sandboxes ran at once with one slot", sb.peak)
		}
	})

	t.Run("OK re-runs an execution whose runner died", func(t *testing.T) {
		w.queue(t, "orphan", "print('second life')")
		w.forceRunning(t, "orphan", "ghost", 1, time.Now().Add(-time.Second))
		startRunner(t, w.newRunner(t, "r-rescue", w.sandbox, 2))
		h := w.waitStatus(t, "orphan", terminal, 30*time.Second)
		if h.State.Status != domain.StatusCompleted || h.State.Attempt != 2 || h.State.Runner != "r-rescue" {
			t.Fatalf("got %+v", h.State)
		}
	})

	t.Run("OK leaves a live lease of another runner alone", func(t *testing.T) {
		w.queue(t, "alive", "print(1)")
		w.forceRunning(t, "alive", "busy-elsewhere", 1, time.Now().Add(time.Hour))
		r := w.newRunner(t, "r-polite", w.sandbox, 2)
		for i := 0; i < 3; i++ {
			if err := r.Reconcile(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if h, _ := w.ledger.Get(ctx, "alive"); h.State.Attempt != 1 || h.LeaseOwner != "busy-elsewhere" {
			t.Fatalf("took over a live lease: %+v", h)
		}
	})

	t.Run("OK a restarted runner resumes its own claims at once", func(t *testing.T) {
		w.queue(t, "mine", "print('resumed')")
		w.forceRunning(t, "mine", "r-self", 1, time.Now().Add(time.Hour))
		r := w.newRunner(t, "r-self", w.sandbox, 2)
		if err := r.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		h := w.waitStatus(t, "mine", terminal, 30*time.Second)
		if h.State.Status != domain.StatusCompleted || h.State.Attempt != 2 {
			t.Fatalf("got %+v", h.State)
		}
	})

	t.Run("OK gives up after three attempts", func(t *testing.T) {
		w.queue(t, "cursed", "print(1)")
		w.forceRunning(t, "cursed", "ghost", 3, time.Now().Add(-time.Second))
		r := w.newRunner(t, "r-judge", w.sandbox, 2)
		if err := r.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		h := w.waitStatus(t, "cursed", terminal, 10*time.Second)
		if h.State.FailureReason != domain.VerdictSystemError {
			t.Fatalf("got %+v", h.State)
		}
	})

	t.Run("OK cancel kills the sandbox and the runner records nothing", func(t *testing.T) {
		sb := &countingSandbox{Sandbox: w.sandbox}
		r := w.newRunner(t, "r-cancel", sb, 1)
		env := w.queue(t, "doomed", "import time\ntime.sleep(30)")
		if err := r.HandleEvent(ctx, env); err != nil {
			t.Fatal(err)
		}
		w.waitStatus(t, "doomed", func(s domain.Status) bool { return s == domain.StatusRunning }, 10*time.Second)
		time.Sleep(200 * time.Millisecond)
		if _, _, err := w.ledger.Update(ctx, "doomed", eventstore.Meta{Actor: "anonymous"}, func(h *eventstore.Head) ([]domain.Event, error) {
			ev, err := h.State.Cancel("anonymous")
			return []domain.Event{ev}, err
		}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for r.Busy() > 0 {
			if time.Now().After(deadline) {
				t.Fatal("the sandbox still runs after cancel")
			}
			time.Sleep(20 * time.Millisecond)
		}
		h, _ := w.ledger.Get(ctx, "doomed")
		if h.State.Sequence != 3 || h.State.FailureReason != domain.VerdictCancelled {
			t.Fatalf("the runner appended after a cancel: %+v", h.State)
		}
	})

	t.Run("OK shutdown leaves the execution for a re-run", func(t *testing.T) {
		r := w.newRunner(t, "r-stop", w.sandbox, 1)
		stop := startRunner(t, r)
		env := w.queue(t, "interrupted", "import time\ntime.sleep(30)")
		if err := r.HandleEvent(ctx, env); err != nil {
			t.Fatal(err)
		}
		w.waitStatus(t, "interrupted", func(s domain.Status) bool { return s == domain.StatusRunning }, 10*time.Second)
		stop()
		h, _ := w.ledger.Get(ctx, "interrupted")
		if h.State.Status != domain.StatusRunning || h.LeaseOwner != "r-stop" {
			t.Fatalf("shutdown recorded an outcome: %+v", h.State)
		}
	})
}
