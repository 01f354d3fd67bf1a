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

// execute runs one claimed execution, or resumes the sandbox of one whose
// runner is gone (resume), and reports its outcome. It owns one slot and
// releases it when done.
func (r *Runner) execute(traceCtx context.Context, rn *run, job Job, meta eventstore.Command, resume bool) {
	defer r.wg.Done()
	defer func() { r.room.give(job.Limits); r.wake() }()
	defer r.done(job.ExecutionID)

	id, attempt := job.ExecutionID, job.Attempt
	traceCtx, span := otel.Tracer("github.com/integr8scode/integr8scode/runner").Start(traceCtx, "sandbox.run",
		trace.WithAttributes(attribute.String("execution.id", id), attribute.Int("execution.attempt", attempt),
			attribute.String("sandbox", r.cfg.Sandbox.Name()), attribute.Bool("execution.resumed", resume)))
	defer span.End()
	ctx, cancel := context.WithCancelCause(traceCtx)
	defer cancel(nil)
	r.mu.Lock()
	closing := r.closing
	r.mu.Unlock()
	rn.started(cancel)
	if closing {
		// Shutdown began between the claim and here: let go at once.
		cancel(ErrDetached)
	}

	log := r.cfg.Logger.With("execution_id", id, "attempt", attempt, "request_id", meta.CorrelationID)
	if sc := span.SpanContext(); sc.IsValid() {
		// Every line about this run leads to its trace.
		log = log.With("trace_id", sc.TraceID().String(), "span_id", sc.SpanID().String())
	}
	renewDone := make(chan struct{})
	go func() {
		defer close(renewDone)
		r.keepLease(ctx, rn, id, attempt)
	}()

	begin := time.Now()
	var res domain.Result
	var err error
	if job, err = r.open(ctx, job); err != nil {
		// Without its script nothing can run; the platform's fault.
		log.Error("opening the script failed", "err", err)
		cancel(nil)
		<-renewDone
		r.cfg.Metrics.finished.WithLabelValues(string(domain.VerdictSystemError)).Inc()
		r.report(traceCtx, id, attempt, domain.Result{Verdict: domain.VerdictSystemError,
			Message: "the platform could not read the script; this is the platform's fault"}, false, meta, log)
		return
	}
	if resume {
		r.cfg.Metrics.resumed.Inc()
		var found bool
		res, found, err = r.cfg.Sandbox.(Resumer).Resume(ctx, job)
		if err == nil && !found {
			cancel(nil)
			<-renewDone
			// Nothing to follow. Its runner may have ended the sandbox just
			// now and be reporting the outcome (a real result still counts,
			// see domain.Execution.Report): give that a moment. Then the
			// attempt is released and the next sweep runs the script again.
			if r.settled(id, attempt) {
				return
			}
			log.Info("the sandbox of this attempt is gone; running the script again")
			r.mu.Lock()
			r.vanished[id] = attempt
			r.mu.Unlock()
			r.releaseAttempt(id, attempt, domain.AbandonRunnerStopped, meta)
			return
		}
	} else {
		r.cfg.Metrics.started.Inc()
		res, err = r.cfg.Sandbox.Run(ctx, job)
	}
	cancel(nil)
	<-renewDone
	if why := rn.lostWhy(); why != "" {
		// Someone else ended it (a user's cancel: the ledger holds the
		// terminal event, the sandbox is gone) or took it over (another
		// runner follows the same sandbox): our result is void.
		r.cfg.Metrics.finished.WithLabelValues(string(domain.VerdictCancelled)).Inc()
		log.Info("execution " + why + " while running")
		return
	}
	if r.stopping() && (err != nil || res.Verdict == domain.VerdictCancelled) {
		// The runner is shutting down and let go of the sandbox: say so,
		// so that another runner (or our next life) resumes or re-runs it
		// at once instead of waiting for the lease to lapse. (A run that
		// ended on its own just before is reported below: its sandbox is
		// gone, so a successor would run the script again.)
		log.Info("runner stopping: execution left for the next runner")
		r.releaseAttempt(id, attempt, domain.AbandonRunnerStopped, meta)
		return
	}
	if errors.Is(err, ErrSandboxGone) && r.settled(id, attempt) {
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
	took := time.Since(begin)
	r.cfg.Metrics.duration.Observe(took.Seconds())
	if err == nil && !resume && res.Usage.WallTimeMs > 0 {
		// A resumed run's sandbox was set up by another runner's attempt.
		r.cfg.Metrics.overhead.Observe(max(took-time.Duration(res.Usage.WallTimeMs)*time.Millisecond, 0).Seconds())
	}
	span.SetAttributes(attribute.String("execution.verdict", string(res.Verdict)))
	r.report(traceCtx, id, attempt, res, err == nil, meta, log)
}

// open fills in the job's script and stdin from its sealed input.
func (r *Runner) open(ctx context.Context, job Job) (Job, error) {
	in, err := r.cfg.Content.OpenInput(ctx, job.ExecutionID, job.Input)
	if err != nil {
		return job, err
	}
	job.Script, job.Stdin = in.Script, in.Stdin
	return job, nil
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
		e, err := r.cfg.Backlog.Execution(ctx, id)
		cancel()
		if err == nil && (e.Status != domain.StatusRunning || e.Attempt != attempt) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// report asks the ledger writer to record the outcome of attempt. The
// writer decides whether it still counts (domain.Execution.Report): the
// first terminal event wins, a late result is never appended.
func (r *Runner) report(traceCtx context.Context, id string, attempt int, res domain.Result, genuine bool, meta eventstore.Command, log interface {
	Error(string, ...any)
}) {
	// Sanitize here, not after encoding: JSON would turn each invalid byte
	// into its own U+FFFD, where the result's rule is one per sequence.
	// Then seal the output (fitted in the ledger first, or the command
	// itself would be too large to send): it leaves the runner only sealed.
	res = res.Sanitized()
	seal := func(out domain.Output) (domain.Sealed, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(traceCtx), r.cfg.AskTimeout)
		defer cancel()
		return r.cfg.Content.SealOutput(ctx, id, out)
	}
	// The result is worth retrying for, even while stopping: the script
	// already ran and its sandbox is gone; a successor would run it again.
	// Asking again is safe: a second report of an ended execution is void.
	backoff := 100 * time.Millisecond
	for i := 0; ; i++ {
		sealed, err := eventstore.SealResult(res, seal)
		var reply eventstore.Reply
		if err == nil {
			cmd := eventstore.Command{Kind: eventstore.CommandReport, ExecutionID: id, Actor: "runner",
				CorrelationID: meta.CorrelationID, CausationID: meta.CausationID,
				Report: &eventstore.ReportArgs{Runner: r.cfg.ID, Attempt: attempt, Result: sealed, Genuine: genuine}}
			reply, err = r.ask(context.WithoutCancel(traceCtx), cmd)
		}
		if err == nil || i == 8 {
			if err != nil {
				log.Error("recording the result failed; the execution will be re-run", "err", err)
			} else if rerr := reply.Err(); rerr != nil && domain.ErrorCode(rerr) != domain.ECONFLICT {
				log.Error("the ledger refused the result", "err", rerr)
			}
			return
		}
		time.Sleep(backoff)
		backoff = min(2*backoff, 2*time.Second)
	}
}

// releaseAttempt tells the ledger writer that this runner no longer looks
// after attempt, so that another runner takes it over without waiting for
// the lease to lapse.
func (r *Runner) releaseAttempt(id string, attempt int, reason string, meta eventstore.Command) {
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.AskTimeout)
	defer cancel()
	reply, err := r.cfg.Ledger.Ask(ctx, eventstore.Command{Kind: eventstore.CommandRelease, ExecutionID: id, Actor: "runner",
		CorrelationID: meta.CorrelationID, CausationID: meta.CausationID,
		Release: &eventstore.ReleaseArgs{Runner: r.cfg.ID, Attempt: attempt, Reason: reason}})
	if err == nil {
		err = reply.Err()
	}
	if err != nil && domain.ErrorCode(err) != domain.ECONFLICT {
		r.cfg.Logger.Warn("releasing an attempt failed; its lease will lapse", "execution_id", id, "err", err)
	}
}

// keepLease renews the claim while the sandbox runs. A refused renewal
// means the execution moved on without us (ended, or taken over after our
// lease lapsed); the event that moved it usually reached HandleEvent first.
func (r *Runner) keepLease(ctx context.Context, rn *run, id string, attempt int) {
	t := time.NewTicker(r.cfg.RenewEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		reply, err := r.ask(ctx, eventstore.Command{Kind: eventstore.CommandRenew, ExecutionID: id, Actor: "runner",
			Runner: &eventstore.RunnerArgs{Runner: r.cfg.ID, Attempt: attempt, LeaseMs: r.cfg.LeaseTTL.Milliseconds()}})
		switch {
		case err != nil:
			if ctx.Err() == nil {
				r.cfg.Logger.Warn("lease renewal failed", "execution_id", id, "err", err)
			}
		case reply.Err() != nil:
			if h := reply.Head; h != nil && h.Status.Terminal() {
				rn.lose("ended ("+string(h.Status)+")", nil)
			} else {
				// Not knowing who follows the sandbox now, never end it.
				rn.lose("no longer ours: "+reply.Message, ErrDetached)
			}
			return
		}
	}
}
