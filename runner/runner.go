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
	// vanished holds executions whose sandbox a Resume did not find: the
	// next sweep runs them as a new attempt instead of resuming again.
	vanished map[string]bool
	closing  bool
	wg       sync.WaitGroup
}

// New builds a runner.
func New(cfg Config) (*Runner, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Runner{cfg: cfg, slots: make(chan struct{}, cfg.Slots), kick: make(chan struct{}, 1),
		running: map[string]context.CancelCauseFunc{}, vanished: map[string]bool{}}, nil
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
		if h.State.Attempt >= r.cfg.MaxAttempts {
			ev, err := h.State.Fail(domain.VerdictSystemError,
				fmt.Sprintf("the runner stopped %d times while running this execution", h.State.Attempt))
			return []domain.Event{ev}, err
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
		r.unmark(id)
		<-r.slots
		if err != nil && domain.ErrorCode(err) != domain.ECONFLICT {
			return fmt.Errorf("claim %s: %w", id, err)
		}
		return nil
	}
	r.mu.Lock()
	delete(r.vanished, id)
	r.mu.Unlock()
	meta.CausationID = envs[0].EventID
	r.wg.Add(1)
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
		taken = h.State.Status == domain.StatusRunning && r.orphaned(*h, now)
		if taken {
			h.LeaseOwner, h.LeaseUntil = r.cfg.ID, now.Add(r.cfg.LeaseTTL)
		}
		return nil, nil
	})
	if err != nil || !taken {
		r.unmark(id)
		<-r.slots
		if err != nil && domain.ErrorCode(err) != domain.ECONFLICT {
			return fmt.Errorf("resume %s: %w", id, err)
		}
		return nil
	}
	r.wg.Add(1)
	go r.run(context.Background(), head, meta, true)
	return nil
}

// resumable tells whether the sandbox of a running execution may still be
// there to resume.
func (r *Runner) resumable(id string) bool {
	if _, ok := r.cfg.Sandbox.(Resumer); !ok {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.vanished[id]
}

func (r *Runner) markClaiming(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.running[id]; ok || r.closing {
		return false
	}
	r.running[id] = func(error) {}
	return true
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
