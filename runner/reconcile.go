package runner

import (
	"context"
	"time"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/eventstore"
)

// Run reconciles until ctx ends, then lets go of every sandbox without
// recording anything (cause ErrDetached: a sandbox that outlives the runner
// is resumed by its next life, any other is ended and its execution re-run)
// and waits for them. Reconciling looks at the real state of the ledger's heads, not at
// which events were seen, the way a Kubernetes controller does.
func (r *Runner) Run(ctx context.Context) error {
	t := time.NewTicker(r.cfg.ReconcileEvery)
	defer t.Stop()
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

// pendingGrace is how long an appended envelope may wait for its writer to
// publish it before the sweep republishes it.
const pendingGrace = 3 * time.Second

// Reconcile makes one pass over unsettled heads, oldest first.
func (r *Runner) Reconcile(ctx context.Context) error {
	heads, err := r.cfg.Leases.Unsettled(ctx, 500)
	if err != nil {
		return err
	}
	now := time.Now()
	queued := 0
	runningAt := map[string]int{}
	for _, h := range heads {
		if len(h.Pending) > 0 && now.Sub(h.UpdatedAt) > pendingGrace {
			if err := r.cfg.Ledger.Republish(ctx, h); err != nil {
				r.cfg.Logger.Warn("republish failed", "execution_id", h.State.ID, "err", err)
			} else {
				r.cfg.Metrics.republished.Inc()
			}
		}
		meta := eventstore.Meta{Actor: "runner", CorrelationID: h.State.ID}
		switch h.State.Status {
		case domain.StatusQueued:
			queued++
			if now.Sub(h.State.CreatedAt) > queuedGrace {
				if err := r.claim(ctx, h.State.ID, meta, false); err != nil {
					return err
				}
			}
		case domain.StatusRunning:
			runningAt[h.State.ID] = h.State.Attempt
			if r.isRunning(h.State.ID) || !r.orphaned(h, now) {
				break
			}
			if r.resumable(h) {
				r.cfg.Logger.Info("resuming an execution whose runner stopped",
					"execution_id", h.State.ID, "previous_runner", h.LeaseOwner, "attempt", h.State.Attempt)
				if err := r.resume(ctx, h.State.ID, meta); err != nil {
					return err
				}
				break
			}
			r.cfg.Logger.Info("re-running an execution whose runner stopped",
				"execution_id", h.State.ID, "previous_runner", h.LeaseOwner, "attempt", h.State.Attempt)
			if err := r.claim(ctx, h.State.ID, meta, true); err != nil {
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
	r.cfg.Metrics.queued.Set(float64(queued))
	r.cfg.Metrics.busy.Set(float64(r.Busy()))
	r.collect(ctx, now)
	return nil
}

// gcEvery is how often the sweep looks for sandboxes nobody follows.
const gcEvery = time.Minute

// collect removes, at the first sweep and then every gcEvery, the sandboxes
// that outlived their use (Collector): those of executions that ended (a
// user's cancel that raced a runner's shutdown, an operator's deletion of a
// head's runner) or moved on to a later attempt.
func (r *Runner) collect(ctx context.Context, now time.Time) {
	c, ok := r.cfg.Sandbox.(Collector)
	if !ok || now.Sub(r.lastGC) < gcEvery {
		return
	}
	r.lastGC = now
	n, err := c.GC(ctx, func(id string, attempt int) bool {
		h, err := r.cfg.Ledger.Get(ctx, id)
		return err == nil && (h.State.Status.Terminal() || h.State.Attempt > attempt)
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
	for _, cancel := range r.running {
		cancel(ErrDetached)
	}
	r.mu.Unlock()
	r.wg.Wait()
}

func (r *Runner) stopping() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closing
}
