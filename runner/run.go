package runner

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/eventstore"
)

// run executes one claimed execution, or resumes the sandbox of one whose
// runner is gone (resume), and records its outcome. It owns one slot and
// releases it when done.
func (r *Runner) run(traceCtx context.Context, head eventstore.Head, meta eventstore.Meta, resume bool) {
	defer r.wg.Done()
	defer func() { <-r.slots; r.wake() }()
	defer r.unmark(head.State.ID)

	id, attempt := head.State.ID, head.State.Attempt
	traceCtx, span := otel.Tracer("github.com/integr8scode/integr8scode/runner").Start(traceCtx, "sandbox.run",
		trace.WithAttributes(attribute.String("execution.id", id), attribute.Int("execution.attempt", attempt),
			attribute.String("sandbox", r.cfg.Sandbox.Name()), attribute.Bool("execution.resumed", resume)))
	defer span.End()
	ctx, cancel := context.WithCancelCause(traceCtx)
	defer cancel(nil)
	r.mu.Lock()
	r.running[id] = cancel
	if r.closing {
		// Shutdown began between the claim and here, and could only cancel
		// the placeholder: let go at once.
		cancel(ErrDetached)
	}
	r.mu.Unlock()

	log := r.cfg.Logger.With("execution_id", id, "attempt", attempt)
	lost := make(chan string, 1)
	renewDone := make(chan struct{})
	go func() {
		defer close(renewDone)
		r.keepLease(ctx, head, cancel, lost)
	}()

	job := Job{ExecutionID: id, Attempt: attempt, Language: head.State.Language, Version: head.State.Version,
		Script: head.State.Script, Stdin: head.State.Stdin, Limits: head.State.Limits}
	begin := time.Now()
	var res domain.Result
	var err error
	if resume {
		r.cfg.Metrics.resumed.Inc()
		var found bool
		res, found, err = r.cfg.Sandbox.(Resumer).Resume(ctx, job)
		if err == nil && !found {
			cancel(nil)
			<-renewDone
			// Nothing to follow. Its runner may have ended the sandbox just
			// now and be recording the outcome (it lost its lease, but a
			// real result still counts, see record): give that a moment.
			// Then the next sweep runs the script as a new attempt (the
			// lease is ours, so at once).
			if r.settled(id, attempt) {
				return
			}
			log.Info("the sandbox of this attempt is gone; running the script again")
			r.mu.Lock()
			r.vanished[id] = attempt
			r.mu.Unlock()
			return
		}
	} else {
		r.cfg.Metrics.started.Inc()
		res, err = r.cfg.Sandbox.Run(ctx, job)
	}
	cancel(nil)
	<-renewDone
	select {
	case why := <-lost:
		// Someone else ended it (a user's cancel: the ledger holds the
		// terminal event, the sandbox is gone) or took it over (another
		// runner follows the same sandbox): our result is void.
		r.cfg.Metrics.finished.WithLabelValues(string(domain.VerdictCancelled)).Inc()
		log.Info("execution " + why + " while running")
		return
	default:
	}
	if r.stopping() && (err != nil || res.Verdict == domain.VerdictCancelled) {
		// The runner is shutting down and let go of the sandbox: record
		// nothing. The execution stays running under our lease; our next
		// life (same ID) or another runner once the lease expires resumes
		// or re-runs it. (A run that ended on its own just before is
		// recorded below: its sandbox is gone, so a successor would run
		// the script again.)
		log.Info("runner stopping: execution left for the next runner")
		return
	}
	if errors.Is(err, ErrSandboxGone) && r.settled(id, attempt) {
		// Someone else ended the sandbox and recorded its outcome.
		log.Info("the sandbox was ended and its outcome recorded by another runner")
		return
	}
	if err != nil {
		log.Error("sandbox failed", "err", err)
		msg := "the sandbox could not run the script; this is the platform's fault"
		if pe := (*PublicError)(nil); errors.As(err, &pe) {
			msg += ": " + pe.Error()
		}
		res = domain.Result{Verdict: domain.VerdictSystemError, Message: msg}
	}
	r.cfg.Metrics.finished.WithLabelValues(string(res.Verdict)).Inc()
	r.cfg.Metrics.duration.Observe(time.Since(begin).Seconds())
	span.SetAttributes(attribute.String("execution.verdict", string(res.Verdict)))
	r.record(traceCtx, id, attempt, res, err == nil, meta, log)
}

// recordGrace is how long a runner that finds the sandbox of its attempt
// gone waits for whoever ended it to record the outcome.
const recordGrace = 3 * time.Second

// settled waits up to recordGrace for the execution to leave attempt's run
// (a terminal event, or a later attempt) and tells whether it did.
func (r *Runner) settled(id string, attempt int) bool {
	deadline := time.Now().Add(recordGrace)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		h, err := r.cfg.Ledger.Get(ctx, id)
		cancel()
		if err == nil && (h.State.Status != domain.StatusRunning || h.State.Attempt != attempt) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// record appends the terminal event, if the execution is still at this
// attempt. A result of the script (genuine) counts even if another runner
// took the lease over meanwhile: the only takeover that keeps the attempt
// is a resume of the same sandbox, so it is that one run's outcome, and the
// sandbox is gone now. A failure of the sandbox counts only under our own
// lease: the runner that took over may still be following a healthy one.
func (r *Runner) record(traceCtx context.Context, id string, attempt int, res domain.Result, genuine bool, meta eventstore.Meta, log interface {
	Error(string, ...any)
}) {
	decide := func(h *eventstore.Head) ([]domain.Event, error) {
		if h.State.Status != domain.StatusRunning || h.State.Attempt != attempt || (h.LeaseOwner != r.cfg.ID && !genuine) {
			return nil, nil // ended or taken over meanwhile: our result is void
		}
		return fitted(h.State, res)
	}
	// The result is worth retrying for, even while stopping: the script
	// already ran and its sandbox is gone; a successor would run it again.
	backoff := 100 * time.Millisecond
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(traceCtx), 10*time.Second)
		_, _, err := r.cfg.Ledger.Update(ctx, id, meta, decide)
		cancel()
		if err == nil || i == 8 {
			if err != nil {
				log.Error("recording the result failed; the execution will be re-run", "err", err)
			}
			return
		}
		time.Sleep(backoff)
		backoff = min(2*backoff, 2*time.Second)
	}
}

// keepLease renews the claim while the sandbox runs. When the head moved it
// stops the sandbox and says why on lost: a cancel appended a terminal
// event (the sandbox is ended), or another runner took this attempt over
// (the sandbox is let go of, ErrDetached, for that runner to follow).
func (r *Runner) keepLease(ctx context.Context, head eventstore.Head, stop context.CancelCauseFunc, lost chan<- string) {
	t := time.NewTicker(r.cfg.RenewEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := r.cfg.Leases.Renew(ctx, head.State.ID, head.State.Sequence, r.cfg.ID, time.Now().Add(r.cfg.LeaseTTL))
		if errors.Is(err, eventstore.ErrStale) {
			now, gerr := r.cfg.Ledger.Get(ctx, head.State.ID)
			switch {
			case gerr != nil:
				// Not knowing why, never end a sandbox another runner may
				// follow now; a cancelled one ends at its timeout.
				lost <- "lost (" + gerr.Error() + ")"
				stop(ErrDetached)
			case now.State.Status == domain.StatusRunning && now.State.Attempt == head.State.Attempt &&
				now.LeaseOwner != r.cfg.ID:
				lost <- "taken over by runner " + now.LeaseOwner
				stop(ErrDetached)
			default:
				lost <- "cancelled"
				stop(nil)
			}
			return
		}
		if err != nil && ctx.Err() == nil {
			r.cfg.Logger.Warn("lease renewal failed", "execution_id", head.State.ID, "err", err)
		}
	}
}

// fitted is the terminal event for res, its output shrunk until the event
// fits in the ledger.
func fitted(e domain.Execution, res domain.Result) ([]domain.Event, error) {
	for {
		ev, err := e.Finish(res)
		if err != nil {
			return nil, err
		}
		data, err := eventstore.Encode(ev)
		if err != nil {
			return nil, err
		}
		if len(data) <= eventstore.MaxDataBytes || len(res.Stdout)+len(res.Stderr) == 0 {
			return []domain.Event{ev}, nil
		}
		res = res.Shrunk()
	}
}
