package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/eventstore"
)

// Ledger is what the runner needs of the event store.
type Ledger interface {
	Get(ctx context.Context, id string) (eventstore.Head, error)
	Update(ctx context.Context, id string, meta eventstore.Meta, decide eventstore.Decide) (eventstore.Head, []eventstore.Envelope, error)
	Republish(ctx context.Context, h eventstore.Head) error
}

// Leases is what the runner needs to keep its claim on running executions
// and to find work that nobody is doing.
type Leases interface {
	Renew(ctx context.Context, id string, seq int64, owner string, until time.Time) error
	Unsettled(ctx context.Context, limit int) ([]eventstore.Head, error)
}

// Config configures a Runner. ID, Ledger, Leases and Sandbox are required.
type Config struct {
	// ID names this runner in leases and events. It must be stable across
	// restarts of the same runner (it is kept in its data directory), so that
	// a restarted runner recognises its own interrupted work at once.
	ID      string
	Ledger  Ledger
	Leases  Leases
	Sandbox Sandbox
	// Slots bounds concurrent sandboxes. Work beyond it stays queued in the
	// ledger, not in memory.
	Slots int
	// LeaseTTL is how long a claim lives without renewal; RenewEvery how
	// often a running execution renews it (and notices a cancel).
	LeaseTTL   time.Duration
	RenewEvery time.Duration
	// ReconcileEvery is the period of the level-based sweep.
	ReconcileEvery time.Duration
	// MaxAttempts bounds re-runs of an execution whose runner died.
	MaxAttempts int
	Logger      *slog.Logger
	Metrics     *Metrics
}

func (c *Config) setDefaults() {
	if c.Slots <= 0 {
		c.Slots = 2
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = 15 * time.Second
	}
	if c.RenewEvery == 0 {
		c.RenewEvery = 300 * time.Millisecond
	}
	if c.ReconcileEvery == 0 {
		c.ReconcileEvery = time.Second
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 3
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Metrics == nil {
		c.Metrics = NewMetrics(nil)
	}
}

// Validate reports every missing field at once.
func (c Config) Validate() error {
	var errs []error
	if c.ID == "" {
		errs = append(errs, errors.New("runner: ID is required"))
	}
	if c.Ledger == nil {
		errs = append(errs, errors.New("runner: Ledger is required"))
	}
	if c.Leases == nil {
		errs = append(errs, errors.New("runner: Leases is required"))
	}
	if c.Sandbox == nil {
		errs = append(errs, errors.New("runner: Sandbox is required"))
	}
	return errors.Join(errs...)
}

// Runner claims queued executions, runs them in the sandbox and records the
// outcome. It reacts to ExecutionQueued for low latency, and reconciles the
// ledger's heads for everything the events alone cannot guarantee: work left
// queued while all slots were busy, executions whose runner died, and
// envelopes recorded but never published.
type Runner struct {
	cfg   Config
	slots chan struct{}
	kick  chan struct{}

	mu      sync.Mutex
	running map[string]context.CancelCauseFunc // execution id → cancel of its sandbox
	// vanished holds executions (→ attempt) whose sandbox a Resume did not
	// find: the next sweep runs them as a new attempt instead of resuming.
	vanished map[string]int
	closing  bool
	wg       sync.WaitGroup // one per marked execution, from markClaiming on
	lastGC   time.Time
}

// New builds a runner.
func New(cfg Config) (*Runner, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Runner{cfg: cfg, slots: make(chan struct{}, cfg.Slots), kick: make(chan struct{}, 1),
		running: map[string]context.CancelCauseFunc{}, vanished: map[string]int{}}, nil
}

// HandleEvent is the ledger subscription's handler. It never blocks on a
// sandbox: it claims the execution (or leaves it queued when the pool is
// full) and returns, so the consumer can ack and rebalances are not stalled.
func (r *Runner) HandleEvent(ctx context.Context, env eventstore.Envelope) error {
	if env.Type != domain.TypeExecutionQueued {
		return nil
	}
	return r.claim(ctx, env.ExecutionID, eventstore.Meta{
		CorrelationID: env.CorrelationID, CausationID: env.EventID, Actor: "runner",
	}, false)
}

// Busy returns how many sandboxes run now.
func (r *Runner) Busy() int { return len(r.slots) }

// Slots returns the size of the sandbox pool.
func (r *Runner) Slots() int { return cap(r.slots) }

// claim takes a slot and appends ExecutionStarted if the execution still
// needs a runner. rerun allows claiming a running execution whose runner is
// known to be gone.
func (r *Runner) claim(ctx context.Context, id string, meta eventstore.Meta, rerun bool) error {
	select {
	case r.slots <- struct{}{}:
	default:
		return nil // pool full: the execution stays queued; reconcile picks it up
	}
	if !r.markClaiming(id) {
		<-r.slots
		return nil
	}
	now := time.Now()
	head, envs, err := r.cfg.Ledger.Update(ctx, id, meta, func(h *eventstore.Head) ([]domain.Event, error) {
		switch {
		case h.State.Status == domain.StatusQueued:
		case h.State.Status == domain.StatusRunning && rerun && r.orphaned(*h, now):
		default:
			return nil, nil
		}
		if ev, out := r.outOfTurns(h); out {
			return []domain.Event{ev}, nil
		}
		ev, err := h.State.Start(r.cfg.ID, r.cfg.Sandbox.Name())
		if err != nil {
			return nil, err
		}
		h.LeaseOwner, h.LeaseUntil = r.cfg.ID, now.Add(r.cfg.LeaseTTL)
		return []domain.Event{ev}, nil
	})
	started := err == nil && len(envs) == 1 && envs[0].Type == domain.TypeExecutionStarted
	if !started {
		r.release(id)
		if err != nil && domain.ErrorCode(err) != domain.ECONFLICT {
			return fmt.Errorf("claim %s: %w", id, err)
		}
		return nil
	}
	meta.CausationID = envs[0].EventID
	// The run outlives the message; it keeps only the trace it belongs to.
	go r.run(trace.ContextWithSpanContext(context.Background(), trace.SpanContextFromContext(ctx)), head, meta, false)
	return nil
}

// resume takes over the lease of a running execution whose runner is gone
// and follows its sandbox, which outlived that runner (Resumer), to its end.
// It appends no event: the attempt goes on; only who watches it changes.
func (r *Runner) resume(ctx context.Context, id string, meta eventstore.Meta) error {
	select {
	case r.slots <- struct{}{}:
	default:
		return nil // pool full: a later sweep resumes it
	}
	if !r.markClaiming(id) {
		<-r.slots
		return nil
	}
	now := time.Now()
	taken := false
	head, _, err := r.cfg.Ledger.Update(ctx, id, meta, func(h *eventstore.Head) ([]domain.Event, error) {
		taken = false
		if h.State.Status != domain.StatusRunning || !r.orphaned(*h, now) {
			return nil, nil
		}
		if ev, out := r.outOfTurns(h); out {
			return []domain.Event{ev}, nil
		}
		taken = true
		h.LeaseOwner, h.LeaseUntil = r.cfg.ID, now.Add(r.cfg.LeaseTTL)
		h.Resumes++
		return nil, nil
	})
	if err != nil || !taken {
		r.release(id)
		if err != nil && domain.ErrorCode(err) != domain.ECONFLICT {
			return fmt.Errorf("resume %s: %w", id, err)
		}
		return nil
	}
	go r.run(context.Background(), head, meta, true)
	return nil
}

// outOfTurns fails an execution whose runners stopped too often while it
// ran: each re-run (a new attempt) and each resume (a runner following the
// sandbox a stopped runner left) counts. Without the bound, a script that
// crashes every runner that follows it would keep the execution running
// forever.
func (r *Runner) outOfTurns(h *eventstore.Head) (domain.Event, bool) {
	turns := h.State.Attempt + h.Resumes
	if h.State.Status != domain.StatusRunning || turns < r.cfg.MaxAttempts {
		return nil, false
	}
	ev, err := h.State.Fail(domain.VerdictSystemError,
		fmt.Sprintf("the runner stopped %d times while running this execution", turns))
	if err != nil {
		return nil, false
	}
	return ev, true
}

// resumable tells whether the sandbox of a running execution may still be
// there to resume.
func (r *Runner) resumable(h eventstore.Head) bool {
	if _, ok := r.cfg.Sandbox.(Resumer); !ok {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	a, ok := r.vanished[h.State.ID]
	return !ok || a != h.State.Attempt
}

// markClaiming reserves id for this runner's claim or resume. It counts in
// wg from here, under the same lock as closing, so that shutdown waits for
// every run that got past it; release or the run's end undoes it.
func (r *Runner) markClaiming(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.running[id]; ok || r.closing {
		return false
	}
	r.running[id] = func(error) {}
	r.wg.Add(1)
	return true
}

// release undoes markClaiming and the slot for a claim that did not start.
func (r *Runner) release(id string) {
	r.unmark(id)
	<-r.slots
	r.wg.Done()
}

func (r *Runner) unmark(id string) {
	r.mu.Lock()
	delete(r.running, id)
	r.mu.Unlock()
}

func (r *Runner) isRunning(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.running[id]
	return ok
}

// orphaned reports whether a running execution's runner is gone: its lease
// expired, or it is this runner's own claim from before a restart.
func (r *Runner) orphaned(h eventstore.Head, now time.Time) bool {
	if h.LeaseOwner == r.cfg.ID {
		return true // not in r.running (checked by the caller): a previous life of ours
	}
	return h.LeaseUntil.Before(now)
}
