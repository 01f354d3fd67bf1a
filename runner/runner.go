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

// Ledger is what the runner needs of the event store: it asks the ledger
// writer to record claims, renewals, releases and results, and the
// writer decides (a claim another runner won is refused).
type Ledger interface {
	Ask(ctx context.Context, cmd eventstore.Command) (eventstore.Reply, error)
}

// Backlog is where the runner looks for work nobody took: the executions
// view. It is derived from the log and may lag behind it; that costs at
// most a refused claim, since the ledger writer arbitrates every one.
type Backlog interface {
	// Queued lists queued executions, oldest first, at most limit.
	Queued(ctx context.Context, limit int) ([]domain.Execution, error)
	// Running lists running executions, at most limit.
	Running(ctx context.Context, limit int) ([]domain.Execution, error)
	// Execution returns one execution.
	Execution(ctx context.Context, id string) (domain.Execution, error)
}

// Config configures a Runner. ID, Ledger, Backlog, Sandbox and Content are
// required.
type Config struct {
	// ID names this runner in claims and events. It must be stable across
	// restarts of the same runner (it is kept in its data directory), so that
	// a restarted runner recognises its own interrupted work at once.
	ID      string
	Ledger  Ledger
	Backlog Backlog
	Sandbox Sandbox
	Content Content
	// Slots bounds concurrent sandboxes. Work beyond it stays queued in the
	// ledger, not in memory.
	Slots int
	// CPUBudget bounds the sum of the CPU limits (millicores) of the
	// sandboxes running at once, MemoryBudget the sum of their memory
	// limits (bytes); 0 leaves it unbounded. A run that does not fit stays
	// queued for a runner with room (see capacity).
	CPUBudget, MemoryBudget int64
	// LeaseTTL is how long a claim lives without renewal; RenewEvery how
	// often a running execution renews it.
	LeaseTTL   time.Duration
	RenewEvery time.Duration
	// ReconcileEvery is the period of the level-based sweep.
	ReconcileEvery time.Duration
	// AskTimeout bounds each wait for the ledger writer's answer.
	AskTimeout time.Duration
	Logger     *slog.Logger
	Metrics    *Metrics
}

func (c *Config) setDefaults() {
	if c.Slots <= 0 {
		c.Slots = 2
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = 15 * time.Second
	}
	if c.RenewEvery == 0 {
		c.RenewEvery = c.LeaseTTL / 5
	}
	if c.ReconcileEvery == 0 {
		c.ReconcileEvery = time.Second
	}
	if c.AskTimeout == 0 {
		c.AskTimeout = 10 * time.Second
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
	if c.Backlog == nil {
		errs = append(errs, errors.New("runner: Backlog is required"))
	}
	if c.Sandbox == nil {
		errs = append(errs, errors.New("runner: Sandbox is required"))
	}
	if c.Content == nil {
		errs = append(errs, errors.New("runner: Content is required"))
	}
	return errors.Join(errs...)
}

// Runner claims queued executions, runs them in the sandbox and reports
// the outcome to the ledger writer. It reacts to the ledger's events for
// low latency (every runner reads every partition, so an idle runner takes
// work whichever partition it is on), and sweeps the executions view for
// everything events alone cannot guarantee: work left queued while all
// slots were busy, and attempts abandoned by a runner that stopped.
type Runner struct {
	cfg  Config
	room *capacity
	kick chan struct{}

	mu   sync.Mutex
	runs map[string]*run // execution id → its run here (from the claim on)
	// vanished holds executions (→ attempt) whose sandbox a Resume did not
	// find: the next sweep runs them as a new attempt instead of resuming.
	vanished map[string]int
	// finished holds executions (→ when) whose run here ended lately: the
	// view may still show them running on this runner for a moment.
	finished map[string]time.Time
	closing  bool
	wg       sync.WaitGroup // one per marked execution, from mark on
	lastGC   time.Time
}

// run is one execution this runner claimed or resumes.
type run struct {
	mu      sync.Mutex
	attempt int
	cancel  context.CancelCauseFunc // nil until the sandbox starts
	// lost says why the run's result no longer counts (ended by someone
	// else, taken over); the first reason wins. cause is how to stop the
	// sandbox: nil ends it, ErrDetached lets go of it.
	lost  string
	cause error
}

// lose marks the run void and stops its sandbox (now, or as soon as it starts).
func (r *run) lose(why string, cause error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.lost != "" {
		return
	}
	r.lost, r.cause = why, cause
	if r.cancel != nil {
		r.cancel(cause)
	}
}

// started records the sandbox's cancel, and stops it at once if the run
// was lost before it started.
func (r *run) started(cancel context.CancelCauseFunc) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cancel = cancel
	if r.lost != "" {
		cancel(r.cause)
	}
}

// lostWhy says why the run was lost ("" if it was not).
func (r *run) lostWhy() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lost
}

// New builds a runner.
func New(cfg Config) (*Runner, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Metrics.slots.Set(float64(cfg.Slots))
	cfg.Metrics.cpuBudget.Set(float64(cfg.CPUBudget))
	cfg.Metrics.memBudget.Set(float64(cfg.MemoryBudget))
	return &Runner{cfg: cfg, room: &capacity{slots: cfg.Slots, cpu: cfg.CPUBudget, mem: cfg.MemoryBudget}, kick: make(chan struct{}, 1),
		runs: map[string]*run{}, vanished: map[string]int{}, finished: map[string]time.Time{}}, nil
}

// Busy returns how many sandboxes run now.
func (r *Runner) Busy() int { return r.room.busy() }

// HandleEvent reacts to one ledger event. It never blocks on a sandbox: a
// queued execution is claimed (or left queued when the pool is full) and
// run in the background; an event that ends or takes over one of this
// runner's runs stops its sandbox.
func (r *Runner) HandleEvent(ctx context.Context, env eventstore.Envelope) error {
	switch env.Type {
	case domain.TypeExecutionQueued:
		ev, err := eventstore.Decode(env)
		if err != nil {
			return nil // the projector parks what nobody can read
		}
		q := ev.(domain.ExecutionQueued)
		job := Job{ExecutionID: env.ExecutionID, Language: q.Language, Version: q.Version,
			Input: q.Input, Limits: q.Limits}
		meta := eventstore.Command{CorrelationID: env.CorrelationID, CausationID: env.EventID}
		return r.claim(ctx, job, eventstore.ClaimStart, meta)
	case domain.TypeExecutionCompleted, domain.TypeExecutionFailed:
		if rn := r.lookup(env.ExecutionID); rn != nil {
			rn.lose("ended by "+env.Actor, nil)
		}
	case domain.TypeExecutionAbandoned, domain.TypeExecutionResumed, domain.TypeExecutionStarted:
		ev, err := eventstore.Decode(env)
		if err != nil {
			return nil
		}
		rn := r.lookup(env.ExecutionID)
		if rn == nil {
			return nil
		}
		rn.mu.Lock()
		attempt := rn.attempt
		rn.mu.Unlock()
		switch v := ev.(type) {
		case domain.ExecutionAbandoned:
			if v.Runner == r.cfg.ID && v.Attempt == attempt {
				// Our lease lapsed (renewals failed for too long): let go
				// of the sandbox for whoever takes the attempt over.
				rn.lose("abandoned ("+v.Reason+")", ErrDetached)
			}
		case domain.ExecutionResumed:
			if v.Runner != r.cfg.ID && v.Attempt == attempt {
				rn.lose("taken over by runner "+v.Runner, ErrDetached)
			}
		case domain.ExecutionStarted:
			if v.Runner != r.cfg.ID && v.Attempt > attempt {
				rn.lose("restarted by runner "+v.Runner, nil)
			}
		}
	}
	return nil
}

// claim takes a slot and asks the ledger writer for the execution; when
// granted it runs (or, mode ClaimResume, follows) the sandbox in the
// background.
func (r *Runner) claim(ctx context.Context, job Job, mode string, meta eventstore.Command) error {
	if !r.room.take(job.Limits) {
		return nil // no room: the execution stays queued; the sweep picks it up
	}
	rn, ok := r.mark(job.ExecutionID)
	if !ok {
		r.room.give(job.Limits)
		return nil
	}
	reply, err := r.ask(ctx, eventstore.Command{Kind: eventstore.CommandClaim, ExecutionID: job.ExecutionID,
		Actor: "runner", CorrelationID: meta.CorrelationID, CausationID: meta.CausationID,
		Runner: &eventstore.RunnerArgs{Runner: r.cfg.ID, Sandbox: r.cfg.Sandbox.Name(), Mode: mode,
			LeaseMs: r.cfg.LeaseTTL.Milliseconds()}})
	if err == nil {
		err = reply.Err()
	}
	if err != nil || reply.Head == nil || reply.Head.Runner != r.cfg.ID || reply.Head.Status != domain.StatusRunning {
		r.release(job.ExecutionID, job.Limits)
		if err != nil && domain.ErrorCode(err) != domain.ECONFLICT && domain.ErrorCode(err) != domain.ENOTFOUND {
			return fmt.Errorf("claim %s: %w", job.ExecutionID, err)
		}
		return nil
	}
	job.Attempt = reply.Head.Attempt
	rn.mu.Lock()
	rn.attempt = job.Attempt
	rn.mu.Unlock()
	causation := meta.CausationID
	if envs, err := reply.Envelopes(); err == nil && len(envs) > 0 {
		causation = envs[len(envs)-1].EventID
	}
	meta = eventstore.Command{CorrelationID: meta.CorrelationID, CausationID: causation}
	// The run outlives the event that triggered it; it keeps only the trace.
	go r.execute(trace.ContextWithSpanContext(context.Background(), trace.SpanContextFromContext(ctx)),
		rn, job, meta, mode == eventstore.ClaimResume)
	return nil
}

func (r *Runner) ask(ctx context.Context, cmd eventstore.Command) (eventstore.Reply, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.AskTimeout)
	defer cancel()
	return r.cfg.Ledger.Ask(ctx, cmd)
}

// mark reserves id for this runner's claim. It counts in wg from here,
// under the same lock as closing, so that shutdown waits for every run
// that got past it; release or the run's end undoes it.
func (r *Runner) mark(id string) (*run, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.runs[id]; ok || r.closing {
		return nil, false
	}
	rn := &run{}
	r.runs[id] = rn
	r.wg.Add(1)
	return rn, true
}

// release undoes mark and the room taken for a claim that did not start.
func (r *Runner) release(id string, l domain.Limits) {
	r.unmark(id)
	r.room.give(l)
	r.wg.Done()
}

func (r *Runner) unmark(id string) {
	r.mu.Lock()
	delete(r.runs, id)
	r.mu.Unlock()
}

// done unmarks the execution of a run that ended here.
func (r *Runner) done(id string) {
	r.mu.Lock()
	delete(r.runs, id)
	r.finished[id] = time.Now()
	r.mu.Unlock()
}

// ranLately tells whether a run of id ended here within the last minute.
func (r *Runner) ranLately(id string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, ok := r.finished[id]
	return ok && now.Sub(at) <= time.Minute
}

// forgetFinished drops the runs that ended more than a minute ago.
func (r *Runner) forgetFinished(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, at := range r.finished {
		if now.Sub(at) > time.Minute {
			delete(r.finished, id)
		}
	}
}

func (r *Runner) lookup(id string) *run {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.runs[id]
}

// resumable tells whether the sandbox of a running execution may still be
// there to resume.
func (r *Runner) resumable(e domain.Execution) bool {
	if _, ok := r.cfg.Sandbox.(Resumer); !ok {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	a, ok := r.vanished[e.ID]
	return !ok || a != e.Attempt
}
