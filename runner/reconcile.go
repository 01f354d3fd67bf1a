package runner

import (
	"context"
	"time"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/eventstore"
)

// Run reconciles until ctx ends, then lets go of every sandbox (cause
// ErrDetached: a sandbox that outlives the runner is resumed by whoever
// takes its attempt over, any other is ended and its execution re-run),
// tells the ledger writer so, and waits for them. Reconciling looks at the
// real state of the executions, not at which events were seen, the way a
// Kubernetes controller does.
func (r *Runner) Run(ctx context.Context) error {
	t := time.NewTicker(r.cfg.ReconcileEvery)
	defer t.Stop()
	r.cfg.Metrics.ready.Set(1)
	defer r.cfg.Metrics.ready.Set(0)
	for {
		if err := r.Reconcile(ctx); err != nil && ctx.Err() == nil {
			r.cfg.Logger.Warn("reconcile failed", "err", err)
		}
		select {
		case <-ctx.Done():
			r.shutdown()
			return nil
		case <-t.C:
		case <-r.kick:
		}
	}
}

// queuedGrace gives the event path the first chance at a fresh execution, so
// the sweep does not race it for every submission.
const queuedGrace = 2 * time.Second

// Reconcile makes one pass: it lets go of attempts a previous life of this
// runner left running, takes over abandoned attempts, and claims queued
// executions, oldest first, while it has free slots.
func (r *Runner) Reconcile(ctx context.Context) error {
	now := time.Now()
	r.forgetFinished(now)
	running, err := r.cfg.Backlog.Running(ctx, 500)
	if err != nil {
		return err
	}
	runningAt := map[string]int{}
	for _, e := range running {
		runningAt[e.ID] = e.Attempt
		switch {
		case e.Runner == r.cfg.ID && r.lookup(e.ID) == nil && !r.ranLately(e.ID, now):
			// Ours, but not run here: this runner restarted (its identity
			// is kept in its data directory). Release it at once rather
			// than wait for the lease to lapse; it is taken over below on
			// a later pass, by this runner or another.
			r.cfg.Logger.Info("releasing an attempt of this runner's previous life", "execution_id", e.ID, "attempt", e.Attempt)
			r.releaseAttempt(e.ID, e.Attempt, domain.AbandonRunnerRestart, eventstore.Command{CorrelationID: e.ID})
		case e.Abandoned() && r.lookup(e.ID) == nil:
			mode := eventstore.ClaimRestart
			if r.resumable(e) {
				mode = eventstore.ClaimResume
			}
			r.cfg.Logger.Info("taking over an abandoned execution", "execution_id", e.ID, "attempt", e.Attempt, "mode", mode)
			if err := r.claim(ctx, jobOf(e), mode, eventstore.Command{CorrelationID: e.ID}); err != nil {
				return err
			}
		}
	}
	r.mu.Lock()
	for id, a := range r.vanished {
		if at, ok := runningAt[id]; !ok || at != a {
			delete(r.vanished, id) // ended, or at another attempt now
		}
	}
	r.mu.Unlock()

	queued, err := r.cfg.Backlog.Queued(ctx, 500)
	if err != nil {
		return err
	}
	r.cfg.Metrics.queued.Set(float64(len(queued)))
	for _, e := range queued {
		if r.room.full() {
			break
		}
		if now.Sub(e.CreatedAt) < queuedGrace {
			continue
		}
		if err := r.claim(ctx, jobOf(e), eventstore.ClaimStart, eventstore.Command{CorrelationID: e.ID}); err != nil {
			return err
		}
	}
	r.cfg.Metrics.busy.Set(float64(r.Busy()))
	cpu, mem := r.room.used()
	r.cfg.Metrics.cpuInUse.Set(float64(cpu))
	r.cfg.Metrics.memInUse.Set(float64(mem))
	r.collect(ctx, now)
	return nil
}

func jobOf(e domain.Execution) Job {
	return Job{ExecutionID: e.ID, Attempt: e.Attempt, Language: e.Language, Version: e.Version,
		Input: e.SealedInput, Limits: e.Limits}
}

// gcEvery is how often the sweep looks for sandboxes nobody follows.
const gcEvery = time.Minute

// collect removes, at the first sweep and then every gcEvery, the sandboxes
// that outlived their use (Collector): those of executions that ended (a
// user's cancel that raced a runner's shutdown) or moved on to a later
// attempt.
func (r *Runner) collect(ctx context.Context, now time.Time) {
	c, ok := r.cfg.Sandbox.(Collector)
	if !ok || now.Sub(r.lastGC) < gcEvery {
		return
	}
	r.lastGC = now
	n, err := c.GC(ctx, func(id string, attempt int) bool {
		e, err := r.cfg.Backlog.Execution(ctx, id)
		return err == nil && (e.Status.Terminal() || e.Attempt > attempt)
	})
	if err != nil && ctx.Err() == nil {
		r.cfg.Logger.Warn("collecting old sandboxes failed", "err", err)
	}
	if n > 0 {
		r.cfg.Logger.Info("collected sandboxes nobody follows", "count", n)
	}
}

func (r *Runner) wake() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

func (r *Runner) shutdown() {
	r.mu.Lock()
	r.closing = true
	for _, rn := range r.runs {
		rn.mu.Lock()
		if rn.cancel != nil {
			rn.cancel(ErrDetached)
		}
		rn.mu.Unlock()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

func (r *Runner) stopping() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closing
}
