package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/eventstore"
)

// Projector builds the event archive and the executions view from ledger
// events. It is idempotent and tolerates duplicates and out-of-order
// deliveries: every event is archived first, then the view applies archived
// events strictly in sequence order from its own checkpoint (version_seq).
// An event that arrives before its predecessor waits in the archive and is
// applied when the gap closes; the view never moves past a gap.
type Projector struct {
	store   Store
	hub     *Hub
	log     *slog.Logger
	metrics *projectorMetrics
}

// NewProjector returns a projector writing to store. hub may be nil.
func NewProjector(store Store, hub *Hub, log *slog.Logger, reg prometheus.Registerer) *Projector {
	return &Projector{store: store, hub: hub, log: log, metrics: newProjectorMetrics(reg)}
}

// Handle archives one event and brings its execution's view up to date.
func (p *Projector) Handle(ctx context.Context, env eventstore.Envelope) error {
	if h, err := env.ComputeHash(); err != nil || h != env.Hash {
		// A record whose hash does not match its content was corrupted or
		// forged; keep it out of the views and say so loudly.
		p.metrics.rejected.Inc()
		p.log.Error("ledger event rejected: hash does not match content",
			"execution_id", env.ExecutionID, "sequence", env.Sequence, "event_id", env.EventID)
		return nil
	}
	added, err := p.store.AddEvent(ctx, env)
	if err != nil {
		return fmt.Errorf("archive %s/%d: %w", env.ExecutionID, env.Sequence, err)
	}
	if !added {
		p.metrics.duplicates.Inc()
	}
	return p.CatchUp(ctx, env.ExecutionID)
}

// CatchUp applies every archived event that follows the view's checkpoint
// without a gap, and saves view and checkpoint in one write.
func (p *Projector) CatchUp(ctx context.Context, id string) error {
	for attempt := 0; attempt < 20; attempt++ {
		view, err := p.store.View(ctx, id)
		if err != nil && domain.ErrorCode(err) != domain.ENOTFOUND {
			return fmt.Errorf("load view %s: %w", id, err)
		}
		expected := view.Sequence
		events, err := p.store.Events(ctx, id, expected)
		if err != nil {
			return fmt.Errorf("load events of %s: %w", id, err)
		}
		applied := 0
		for _, env := range events {
			if env.Sequence != view.Sequence+1 {
				break
			}
			ev, err := eventstore.Decode(env)
			if err != nil {
				return err
			}
			if err := view.Apply(id, env.Sequence, env.OccurredAt, ev); err != nil {
				return err
			}
			applied++
		}
		if applied < len(events) {
			p.metrics.gaps.Inc()
			p.log.Warn("projection holds events after a gap",
				"execution_id", id, "applied_through", view.Sequence, "held", len(events)-applied)
		}
		if applied == 0 {
			return nil
		}
		err = p.store.SaveView(ctx, view, expected)
		if errors.Is(err, ErrStale) {
			continue // another projector instance moved it; re-read and retry
		}
		if err != nil {
			return fmt.Errorf("save view %s: %w", id, err)
		}
		p.metrics.applied.Add(float64(applied))
		p.hub.Notify(id)
		return nil
	}
	return fmt.Errorf("view %s kept moving under concurrent writers", id)
}

type projectorMetrics struct {
	applied, duplicates, gaps, rejected prometheus.Counter
}

func newProjectorMetrics(reg prometheus.Registerer) *projectorMetrics {
	c := func(name, help string) prometheus.Counter {
		x := prometheus.NewCounter(prometheus.CounterOpts{Namespace: "integr8scode", Subsystem: "projector", Name: name, Help: help})
		if reg != nil {
			reg.MustRegister(x)
		}
		return x
	}
	return &projectorMetrics{
		applied:    c("events_applied_total", "Ledger events applied to the executions view."),
		duplicates: c("events_duplicate_total", "Ledger events delivered again and ignored."),
		gaps:       c("gaps_total", "Times an execution's view waited for a missing earlier event."),
		rejected:   c("events_rejected_total", "Ledger events whose hash did not match their content."),
	}
}
