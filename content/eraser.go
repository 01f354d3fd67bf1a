package content

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/eventstore"
)

// Ledger is how an erasure is recorded: a command to the ledger writer,
// which decides with the execution's state (domain.Execution.Erase).
type Ledger interface {
	Ask(ctx context.Context, cmd eventstore.Command) (eventstore.Reply, error)
}

// Views is what the eraser reads of the executions view.
type Views interface {
	// EndedBefore lists executions that ended before a time and are not
	// erased: the retention period's work.
	EndedBefore(ctx context.Context, before time.Time, limit int) ([]string, error)
	// ErasedAfter lists erased executions with an id above after, in id
	// order, at most limit.
	ErasedAfter(ctx context.Context, after string, limit int) ([]string, error)
	// View reads one execution.
	View(ctx context.Context, id string) (domain.Execution, error)
}

// Eraser erases executions' content: it records ExecutionErased in the
// ledger and destroys the data key, in an order that a crash at any point
// leaves to Sweep to finish (level-based, like the runner's reconcile):
//
//  1. mark the key record "erasing" (who, why): from here no content of
//     the execution opens, and the mark is the to-do item;
//  2. ask the ledger writer for ExecutionErased (refused while the
//     execution is queued or running: the mark is dropped again);
//  3. shred the key: the record becomes a tombstone that keeps the mark
//     (who asked, why) and says when.
//
// A mark left by a crash (or a ledger that did not answer) is found by
// Sweep, which asks again (a second erase appends nothing) and shreds.
// The key is never destroyed before the ledger accepted the erasure, and
// an accepted erasure always ends with the key destroyed.
type Eraser struct {
	Keys   *Keys
	Ledger Ledger
	// Views is needed for a retention period (Sweep with retention > 0)
	// and for Reconcile.
	Views  Views
	Logger *slog.Logger
	// AskTimeout bounds each wait for the ledger writer (default 10 s).
	AskTimeout time.Duration
}

// Outcome says what an erasure did.
type Outcome struct {
	// Appended is true when this call recorded ExecutionErased (false:
	// it was erased already).
	Appended bool
	// InTheClear is true when the execution was recorded before content
	// was sealed: its events hold the content in the clear and no key can
	// erase it from the log (the views no longer show it).
	InTheClear bool
}

// Erase erases the content of execution id on actor's request for reason
// (domain.EraseRequested or domain.EraseRetention).
func (er *Eraser) Erase(ctx context.Context, id, actor, reason string) (Outcome, error) {
	before, had, err := er.Keys.store.Get(ctx, id)
	if err != nil {
		return Outcome{}, err
	}
	out := Outcome{InTheClear: !had || before.Keyless}
	if err := er.Keys.store.MarkErasing(ctx, id, Erasure{Actor: actor, Reason: reason, At: er.Keys.now().UTC()}); err != nil {
		return Outcome{}, err
	}
	appended, err := er.record(ctx, id, actor, reason)
	if err != nil {
		return Outcome{}, err
	}
	out.Appended = appended
	if err := er.Keys.store.Shred(ctx, id, er.Keys.now().UTC()); err != nil {
		return out, fmt.Errorf("erase %s: the ledger recorded it, destroying the key failed (the sweep retries): %w", id, err)
	}
	return out, nil
}

// record asks the ledger writer for ExecutionErased. A refusal (the
// execution runs, or does not exist) drops the mark; no answer keeps it
// for the sweep.
func (er *Eraser) record(ctx context.Context, id, actor, reason string) (bool, error) {
	timeout := er.AskTimeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	reply, err := er.Ledger.Ask(actx, eventstore.Command{Kind: eventstore.CommandErase, ExecutionID: id, Actor: actor,
		CorrelationID: id, Erase: &eventstore.EraseArgs{Reason: reason}})
	if err != nil {
		return false, err
	}
	if rerr := reply.Err(); rerr != nil {
		if uerr := er.Keys.store.Unmark(ctx, id); uerr != nil {
			return false, errors.Join(rerr, uerr)
		}
		return false, rerr
	}
	return len(reply.Records) > 0, nil
}

// Sweep finishes every erasure left half-done, then, if retention is
// positive, erases the executions that ended more than retention before
// now. It returns how many executions it erased for retention.
func (er *Eraser) Sweep(ctx context.Context, retention time.Duration, now time.Time) (int, error) {
	var errs []error
	pending, err := er.Keys.store.Pending(ctx, 500)
	if err != nil {
		return 0, err
	}
	scrubFailed := false
	for _, r := range pending {
		// A record whose key is gone owes only the scrub of the store's
		// files (its Shred failed there): the erasure was recorded before
		// the key was shredded (Erase, Reconcile), so the ledger is not
		// asked again, and a ledger that cannot answer does not hold the
		// scrub back. The scrub is of the whole store: once one failed,
		// the others owed wait for the next sweep (each try lasts ~10 s).
		if r.ShreddedAt != nil && scrubFailed {
			continue
		}
		if r.ShreddedAt == nil {
			if _, err := er.record(ctx, r.ExecutionID, r.Erasing.Actor, r.Erasing.Reason); err != nil {
				if code := domain.ErrorCode(err); code != domain.EINTERNAL && code != domain.EUNAVAILABLE {
					er.log().Info("erasure refused by the ledger; its mark is dropped", "execution_id", r.ExecutionID, "err", err)
				} else {
					errs = append(errs, err)
				}
				continue
			}
		}
		if err := er.Keys.store.Shred(ctx, r.ExecutionID, now.UTC()); err != nil {
			errs = append(errs, err)
			scrubFailed = scrubFailed || r.ShreddedAt != nil
			continue
		}
		er.log().Info("finished an interrupted erasure", "execution_id", r.ExecutionID)
	}
	if retention <= 0 || er.Views == nil {
		return 0, errors.Join(errs...)
	}
	ids, err := er.Views.EndedBefore(ctx, now.Add(-retention), 500)
	if err != nil {
		return 0, errors.Join(append(errs, err)...)
	}
	n := 0
	for _, id := range ids {
		if _, err := er.Erase(ctx, id, "retention", domain.EraseRetention); err != nil {
			errs = append(errs, fmt.Errorf("retention: erase %s: %w", id, err))
			continue
		}
		n++
	}
	if n > 0 {
		er.log().Info("erased the content of executions past the retention period", "count", n, "retention", retention)
	}
	return n, errors.Join(errs...)
}

// Reconcile compares every erasure the two stores know of, both ways,
// and repairs what disagrees: an execution the views (so the ledger) say
// is erased whose key lives (a key store restored from a backup taken
// before) has its key destroyed; a destroyed key whose execution the
// ledger does not say is erased (a ledger that lost its last events) gets
// its ExecutionErased. It reads every erased execution and every
// tombstone, so Run calls it at start and hourly, not every sweep.
func (er *Eraser) Reconcile(ctx context.Context, now time.Time) (repaired int, err error) {
	if er.Views == nil {
		return 0, nil
	}
	var errs []error
	for after := ""; ; {
		ids, err := er.Views.ErasedAfter(ctx, after, 500)
		if err != nil {
			return repaired, err
		}
		for _, id := range ids {
			r, ok, err := er.Keys.store.Get(ctx, id)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if ok && r.ShreddedAt != nil {
				continue
			}
			if err := er.Keys.store.Shred(ctx, id, now.UTC()); err != nil {
				errs = append(errs, err)
				continue
			}
			repaired++
			er.log().Warn("destroyed the live key of an erased execution (a key store restored from an older backup?)", "execution_id", id)
		}
		if len(ids) < 500 {
			break
		}
		after = ids[len(ids)-1]
	}
	for after := ""; ; {
		tombs, err := er.Keys.store.Shredded(ctx, after, 500)
		if err != nil {
			return repaired, errors.Join(append(errs, err)...)
		}
		for _, r := range tombs {
			v, err := er.Views.View(ctx, r.ExecutionID)
			if err != nil || v.Erased {
				continue // not in the views (yet), or erased: nothing to do
			}
			actor, reason := "ledger", domain.EraseRequested
			if r.Erasing != nil {
				actor, reason = r.Erasing.Actor, r.Erasing.Reason
			}
			appended, err := er.record(ctx, r.ExecutionID, actor, reason)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if !appended {
				continue // the ledger had it: the views are behind, nothing was lost
			}
			repaired++
			er.log().Warn("recorded the erasure of an execution whose key was destroyed without it", "execution_id", r.ExecutionID)
		}
		if len(tombs) < 500 {
			break
		}
		after = tombs[len(tombs)-1].ExecutionID
	}
	return repaired, errors.Join(errs...)
}

// reconcileEvery is how often Run compares every erasure both ways.
const reconcileEvery = time.Hour

// Run sweeps every period, and reconciles at start and hourly, until ctx
// ends.
func (er *Eraser) Run(ctx context.Context, retention, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	var reconciled time.Time
	for {
		if _, err := er.Sweep(ctx, retention, time.Now()); err != nil && ctx.Err() == nil {
			er.log().Warn("erasure sweep", "err", err)
		}
		if time.Since(reconciled) >= reconcileEvery {
			if _, err := er.Reconcile(ctx, time.Now()); err != nil && ctx.Err() == nil {
				er.log().Warn("erasure reconcile", "err", err)
			} else {
				reconciled = time.Now()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (er *Eraser) log() *slog.Logger {
	if er.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return er.Logger
}
