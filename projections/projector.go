package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/eventstore"
)

// Parker takes an event the projector cannot use out of the way: it is
// written to the dead-letter topic with the problem, and the partition
// flows on.
type Parker interface {
	Park(ctx context.Context, d Delivery, p eventstore.Problem) error
}

// Projector builds the event archive and the executions view from ledger
// events, which it reads in log order. It applies an event only if its
// hash, signature and link to the previous event verify, and only in
// sequence order from the view's own checkpoint (version_seq): an event
// that arrives before its predecessor waits in the archive, and the view
// never moves past a gap. An event it cannot use (unreadable, unknown
// schema, bad hash, signature or link, a second different event for a
// sequence already archived) is parked, never retried forever.
type Projector struct {
	store   Store
	keysMu  sync.Mutex
	keys    *eventstore.KeySet
	refresh func(context.Context) (*eventstore.KeySet, error)
	// refreshed is when the keys were last reloaded for an unknown key id.
	refreshed time.Time
	parker    Parker
	hub       *Hub
	log       *slog.Logger
	metrics   *projectorMetrics
	recent    recent
}

// NewProjector returns a projector writing to store that accepts only
// events signed by a key of keys and parks the others with parker. hub
// may be nil.
func NewProjector(store Store, keys *eventstore.KeySet, parker Parker, hub *Hub, log *slog.Logger, reg prometheus.Registerer) *Projector {
	return &Projector{store: store, keys: keys, parker: parker, hub: hub, log: log, metrics: newProjectorMetrics(reg)}
}

// Handle verifies one record, archives it and brings its execution's view
// up to date. It returns an error only when the store failed (a retry can
// fix that); anything wrong with the record itself is parked.
func (p *Projector) Handle(ctx context.Context, d Delivery) error {
	env, err := eventstore.ParseRecord(d.Record)
	if err != nil {
		return p.park(ctx, d, eventstore.Problem{Kind: eventstore.ProblemMalformed, Detail: err.Error()})
	}
	ctx, span := eventstore.StartHandleSpan(ctx, env)
	defer span.End()
	// The record's own proofs (the link is checked below, against the archive).
	if _, problem := eventstore.CheckParsed(p.keySet(ctx, env.KeyID), d.Record, env, env.PrevHash); problem != nil {
		return p.park(ctx, d, *problem)
	}
	if done, err := p.handleNext(ctx, d, env); done || err != nil {
		return err
	}
	if have, ok, err := p.store.Event(ctx, env.ExecutionID, env.Sequence); err != nil {
		return fmt.Errorf("archive lookup %s/%d: %w", env.ExecutionID, env.Sequence, err)
	} else if ok {
		if have.Envelope.Hash == env.Hash {
			p.metrics.duplicates.Inc()
			return p.CatchUp(ctx, env.ExecutionID)
		}
		return p.park(ctx, d, eventstore.Problem{Kind: eventstore.ProblemFork, ExecutionID: env.ExecutionID,
			Sequence: env.Sequence, Detail: fmt.Sprintf("a different event for sequence %d is archived (%d:%d)",
				env.Sequence, have.Partition, have.Offset)})
	}
	if env.Sequence == 1 && env.PrevHash != "" {
		return p.park(ctx, d, badLink(env))
	}
	if env.Sequence > 1 {
		prev, ok, err := p.store.Event(ctx, env.ExecutionID, env.Sequence-1)
		if err != nil {
			return fmt.Errorf("archive lookup %s/%d: %w", env.ExecutionID, env.Sequence-1, err)
		}
		if ok && prev.Envelope.Hash != env.PrevHash {
			return p.park(ctx, d, badLink(env))
		}
	}
	if _, err := p.store.AddEvent(ctx, ArchivedEvent{Envelope: env, Record: d.Record, Partition: d.Partition, Offset: d.Offset}); err != nil {
		return fmt.Errorf("archive %s/%d: %w", env.ExecutionID, env.Sequence, err)
	}
	return p.CatchUp(ctx, env.ExecutionID)
}

// handleNext is Handle for the common case, without reading the store: the
// event starts a new execution, or follows the last one this projector
// archived of its execution, and the view it saved then is still the
// stored one. The archive's insert and
// the view's compare-and-set prove both; when either finds otherwise (a
// duplicate, another projector's write, a restart), done is false and
// Handle takes its general path, which reads what it needs.
func (p *Projector) handleNext(ctx context.Context, d Delivery, env eventstore.Envelope) (done bool, err error) {
	last, ok := p.recent.get(env.ExecutionID)
	if !ok && env.Sequence == 1 {
		// A new execution: nothing to read. The archive's insert and the
		// view's insert (expected sequence 0) prove it is new; a replay or
		// a rebuild finds otherwise and takes the general path.
		last, ok = recentEntry{}, true
	}
	if !ok || last.view.Sequence != env.Sequence-1 {
		return false, nil
	}
	if last.hash != env.PrevHash {
		return true, p.park(ctx, d, badLink(env))
	}
	inserted, err := p.store.AddEvent(ctx, ArchivedEvent{Envelope: env, Record: d.Record, Partition: d.Partition, Offset: d.Offset})
	if err != nil || !inserted {
		p.recent.forget(env.ExecutionID)
		if err != nil {
			return true, fmt.Errorf("archive %s/%d: %w", env.ExecutionID, env.Sequence, err)
		}
		return false, nil // archived already: the general path tells a duplicate from a fork
	}
	ev, err := eventstore.Decode(env)
	if err != nil {
		return true, err // CheckParsed decoded it
	}
	before, view := last.view, last.view
	if err := view.Apply(env.ExecutionID, env.Sequence, env.OccurredAt, ev); err != nil {
		return true, err
	}
	if err := saveFactIfMoved(ctx, p.store, before, view); err != nil {
		return true, err
	}
	switch err := p.store.SaveView(ctx, view, before.Sequence); {
	case errors.Is(err, ErrStale):
		// Another projector moved the view: the event is archived, so a
		// catch-up from the stored view applies it.
		p.recent.forget(env.ExecutionID)
		return true, p.CatchUp(ctx, env.ExecutionID)
	case err != nil:
		p.recent.forget(env.ExecutionID)
		return true, fmt.Errorf("save view %s: %w", env.ExecutionID, err)
	}
	p.recent.put(env.ExecutionID, view, env.Hash)
	p.metrics.applied.Inc()
	p.hub.Notify(env.ExecutionID)
	return true, nil
}

// RefreshKeys lets the projector reload the public keys from where they
// come from when an event names a key it does not know: after a rotation
// the writer signs with a key a running projector has not seen. It reloads
// at most every refreshEvery, so forged key ids cannot make it hammer the
// source.
func (p *Projector) RefreshKeys(refresh func(context.Context) (*eventstore.KeySet, error)) *Projector {
	p.keysMu.Lock()
	p.refresh = refresh
	p.keysMu.Unlock()
	return p
}

const refreshEvery = 10 * time.Second

// keySet is the keys to verify an event signed by keyID with.
func (p *Projector) keySet(ctx context.Context, keyID string) *eventstore.KeySet {
	p.keysMu.Lock()
	defer p.keysMu.Unlock()
	if p.keys.Has(keyID) || p.refresh == nil || time.Since(p.refreshed) < refreshEvery {
		return p.keys
	}
	p.refreshed = time.Now()
	ks, err := p.refresh(ctx)
	if err != nil {
		p.log.Warn("reloading the ledger's public keys failed", "key_id", keyID, "err", err)
		return p.keys
	}
	if ks.Has(keyID) {
		p.log.Info("the ledger's public keys were reloaded: a new signing key", "key_id", keyID)
	}
	p.keys = ks
	return ks
}

func badLink(env eventstore.Envelope) eventstore.Problem {
	return eventstore.Problem{Kind: eventstore.ProblemBadLink, ExecutionID: env.ExecutionID, Sequence: env.Sequence,
		Detail: fmt.Sprintf("prev_hash does not match the hash of sequence %d", env.Sequence-1)}
}

// park sends a record to the dead-letter topic, counts and logs it.
func (p *Projector) park(ctx context.Context, d Delivery, problem eventstore.Problem) error {
	problem.Partition, problem.Offset = d.Partition, d.Offset
	if err := p.parker.Park(ctx, d, problem); err != nil {
		return fmt.Errorf("park %d:%d: %w", d.Partition, d.Offset, err)
	}
	p.metrics.parked.WithLabelValues(problem.Kind).Inc()
	p.log.Error("ledger event parked", "kind", problem.Kind, "partition", d.Partition, "offset", d.Offset,
		"execution_id", problem.ExecutionID, "sequence", problem.Sequence, "detail", problem.Detail)
	return nil
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
		before := view
		events, err := p.store.Events(ctx, id, expected)
		if err != nil {
			return fmt.Errorf("load events of %s: %w", id, err)
		}
		applied, lastHash := 0, ""
		for _, a := range events {
			env := a.Envelope
			if env.Sequence != view.Sequence+1 {
				break
			}
			lastHash = env.Hash
			ev, err := eventstore.Decode(env)
			if err != nil {
				return err // archived events were decodable when archived
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
		if err := saveFactIfMoved(ctx, p.store, before, view); err != nil {
			return err
		}
		err = p.store.SaveView(ctx, view, expected)
		if errors.Is(err, ErrStale) {
			continue // another projector instance moved it; re-read and retry
		}
		if err != nil {
			return fmt.Errorf("save view %s: %w", id, err)
		}
		p.metrics.applied.Add(float64(applied))
		p.recent.put(id, view, lastHash)
		p.hub.Notify(id)
		return nil
	}
	return fmt.Errorf("view %s kept moving under concurrent writers", id)
}

// Position is where the projector reads on in a partition.
func (p *Projector) Position(ctx context.Context, partition int32) (int64, error) {
	return p.store.Position(ctx, partition)
}

// SavePosition records that every record of partition before next was handled.
func (p *Projector) SavePosition(ctx context.Context, partition int32, next int64) error {
	return p.store.SavePosition(ctx, partition, next)
}

type projectorMetrics struct {
	applied, duplicates, gaps prometheus.Counter
	parked                    *prometheus.CounterVec
}

func newProjectorMetrics(reg prometheus.Registerer) *projectorMetrics {
	c := func(name, help string) prometheus.Counter {
		x := prometheus.NewCounter(prometheus.CounterOpts{Namespace: "integr8scode", Subsystem: "projector", Name: name, Help: help})
		if reg != nil {
			reg.MustRegister(x)
		}
		return x
	}
	m := &projectorMetrics{
		applied:    c("events_applied_total", "Ledger events applied to the executions view."),
		duplicates: c("events_duplicate_total", "Ledger events delivered again and ignored."),
		gaps:       c("gaps_total", "Times an execution's view waited for a missing earlier event."),
		parked: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "integr8scode", Subsystem: "projector",
			Name: "events_parked_total", Help: "Ledger events the projector could not use, parked on the dead-letter topic, by problem kind."},
			[]string{"kind"}),
	}
	for _, k := range eventstore.ProblemKinds {
		m.parked.WithLabelValues(k) // every kind visible from the start, at 0
	}
	if reg != nil {
		reg.MustRegister(m.parked)
	}
	return m
}

// recent remembers, for the executions a projector brought up to date
// lately, the view it saved and the hash of the view's last event, so that
// the next event of each (an execution's events come seconds apart, on
// one partition, to one projector) is projected without a read. It is a
// cache: an entry is only a guess that the store's compare-and-set and
// insert-if-absent confirm, and the oldest half is dropped when it is full.
type recent struct {
	mu      sync.Mutex
	entries map[string]recentEntry
	order   []string
}

type recentEntry struct {
	view domain.Execution
	hash string
}

// recentSize bounds the cache: executions in flight at once, with room.
const recentSize = 4096

func (r *recent) get(id string) (recentEntry, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.entries[id]
	return e, ok
}

func (r *recent) put(id string, view domain.Execution, hash string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.entries == nil {
		r.entries = map[string]recentEntry{}
	}
	if _, ok := r.entries[id]; !ok {
		if len(r.order) >= recentSize {
			for _, old := range r.order[:recentSize/2] {
				delete(r.entries, old)
			}
			r.order = append(r.order[:0], r.order[recentSize/2:]...)
		}
		r.order = append(r.order, id)
	}
	r.entries[id] = recentEntry{view: view, hash: hash}
}

func (r *recent) forget(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.entries, id)
}
