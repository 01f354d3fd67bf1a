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
			if r.isRunning(h.State.ID) || !r.orphaned(h, now) {
				break
			}
			if r.resumable(h.State.ID) {
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
	r.cfg.Metrics.queued.Set(float64(queued))
	r.cfg.Metrics.busy.Set(float64(r.Busy()))
	return nil
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
