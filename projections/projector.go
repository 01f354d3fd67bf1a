package projections

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

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
	parked    parkedSet
}

// NewProjector returns a projector writing to store that accepts only
// events signed by a key of keys and parks the others with parker. hub
// may be nil.
func NewProjector(store Store, keys *eventstore.KeySet, parker Parker, hub *Hub, log *slog.Logger, reg prometheus.Registerer) *Projector {
	return &Projector{store: store, keys: keys, parker: parker, hub: hub, log: log, metrics: newProjectorMetrics(reg)}
}

// Handle verifies one record, archives it and brings its execution's view
// up to date: HandleBatch of one record.
func (p *Projector) Handle(ctx context.Context, d Delivery) error {
	return p.HandleBatch(ctx, []Delivery{d})
}

// HandleBatch verifies records, archives them and brings their executions'
// views up to date, as Handle would one after the other, in log order. It
// returns an error only when the store failed; the caller then offers the
// same records again (a record handled twice is a duplicate the archive
// recognises). Anything wrong with a record itself is parked.
//
// What is common, an execution's next events (a new execution's first
// one, or the ones that follow what this projector last saved of it), is
// written for the whole batch at once: one archive write, one write of
// the statistics' facts, one write of the views. A store that commits
// every write on its own (the embedded one does) pays for a call, not for
// an item, so that is what lets the views keep up with the ledger's
// appends. The rest takes the general path, record by record, reading
// what it needs.
func (p *Projector) HandleBatch(ctx context.Context, ds []Delivery) error {
	b := batch{chains: map[string]*chain{}}
	defer b.end()
	for _, d := range ds {
		env, ctx, ok, err := p.verify(ctx, d, &b)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if err := p.plan(ctx, &b, record{d: d, env: env, ctx: ctx}); err != nil {
			return err
		}
	}
	if err := p.writeNext(ctx, &b); err != nil {
		return err
	}
	for _, r := range b.general {
		if err := p.handleGeneral(r.ctx, r.d, r.env); err != nil {
			return err
		}
	}
	return nil
}

// batch is what HandleBatch planned: per execution the events it can
// write without reading (chains), and the records left to the general path.
type batch struct {
	chains  map[string]*chain
	order   []string // execution ids, in the order their first record came
	general []record
	spans   []trace.Span
}

// chain is an execution's next events within a batch, folded onto what
// this projector last saved of it (or onto nothing, for a new execution).
type chain struct {
	before  domain.Execution // the view as saved, which the write expects
	view    domain.Execution // after this batch's events
	hash    string           // of the view's last event
	records []record
	general bool // an event that does not follow: the general path takes all
}

type record struct {
	d   Delivery
	env eventstore.Envelope
	ctx context.Context // within the record's handle span
}

func (b *batch) end() {
	for _, s := range b.spans {
		s.End()
	}
}

// verify reads a record and checks its own proofs (hash, signature,
// schema; its link is checked against the archive or the chain). A
// problem is parked: ok false, err nil. The context returned is within
// the record's handle span, in the trace that appended it.
func (p *Projector) verify(ctx context.Context, d Delivery, b *batch) (eventstore.Envelope, context.Context, bool, error) {
	env, err := eventstore.ParseRecord(d.Record)
	if err != nil {
		return env, ctx, false, p.park(ctx, d, eventstore.Problem{Kind: eventstore.ProblemMalformed, Detail: err.Error()})
	}
	if d.Trace.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, d.Trace)
	}
	ctx, span := eventstore.StartHandleSpan(ctx, env)
	b.spans = append(b.spans, span)
	if _, problem := eventstore.CheckParsed(p.keySet(ctx, env.KeyID), d.Record, env, env.PrevHash); problem != nil {
		return env, ctx, false, p.park(ctx, d, *problem)
	}
	return env, ctx, true, nil
}

// plan adds a verified record to its execution's chain if it is that
// execution's next event as far as this projector knows (the store's
// insert-if-absent and compare-and-set confirm it when the batch is
// written), and to the general path otherwise.
func (p *Projector) plan(ctx context.Context, b *batch, r record) error {
	id, env := r.env.ExecutionID, r.env
	c := b.chains[id]
	if c == nil {
		c = &chain{}
		b.chains[id], b.order = c, append(b.order, id)
		last, ok := p.recent.get(id)
		if !ok && env.Sequence == 1 {
			// A new execution: nothing to read. The archive's insert and
			// the view's insert (expected sequence 0) prove it is new; a
			// replay or a rebuild finds otherwise and takes the general path.
			last, ok = recentEntry{}, true
		}
		c.before, c.view, c.hash, c.general = last.view, last.view, last.hash, !ok
	}
	if !c.general && c.view.Sequence != env.Sequence-1 {
		// Not the next one: the general path takes this execution's
		// records of the batch, from its first, in order.
		c.general = true
		b.general, c.records = append(b.general, c.records...), nil
	}
	if c.general {
		b.general = append(b.general, r)
		return nil
	}
	if c.hash != env.PrevHash {
		return p.park(ctx, r.d, badLink(env))
	}
	ev, err := eventstore.Decode(env)
	if err != nil {
		return err // CheckParsed decoded it
	}
	if err := c.view.Apply(id, env.Sequence, env.OccurredAt, ev); err != nil {
		return err
	}
	c.hash = env.Hash
	c.records = append(c.records, r)
	return nil
}

// writeNext writes the batch's chains: their events to the archive, then
// the facts that moved, then the views, each in one call. An execution
// whose event turns out archived already goes to the general path (which
// tells a duplicate from a fork); one whose view moved meanwhile (another
// projector) catches up from the stored view.
func (p *Projector) writeNext(ctx context.Context, b *batch) (err error) {
	var evs []ArchivedEvent
	var of []*chain
	for _, id := range b.order {
		c := b.chains[id]
		for _, r := range c.records {
			evs = append(evs, ArchivedEvent{Envelope: r.env, Record: r.d.Record, Partition: r.d.Partition, Offset: r.d.Offset})
			of = append(of, c)
		}
	}
	if len(evs) == 0 {
		return nil
	}
	defer func() {
		if err != nil { // nothing known of these executions any more
			for _, id := range b.order {
				p.recent.forget(id)
			}
		}
	}()
	added, err := p.store.AddEvents(ctx, evs)
	if err != nil {
		return fmt.Errorf("archive %d events: %w", len(evs), err)
	}
	for i, ok := range added {
		if c := of[i]; !ok && !c.general {
			c.general = true
			b.general, c.records = append(b.general, c.records...), nil
		}
	}
	var facts []Fact
	var ws []ViewWrite
	for _, id := range b.order {
		c := b.chains[id]
		if len(c.records) == 0 {
			continue
		}
		if f, ok := factIfMoved(c.before, c.view); ok {
			facts = append(facts, f)
		}
		ws = append(ws, ViewWrite{View: c.view, Expected: c.before.Sequence})
	}
	if len(ws) == 0 {
		return nil
	}
	if len(facts) > 0 {
		if err := p.store.SaveFacts(ctx, facts); err != nil {
			return fmt.Errorf("save %d facts: %w", len(facts), err)
		}
	}
	stale, err := p.store.SaveViews(ctx, ws)
	if err != nil {
		return fmt.Errorf("save %d views: %w", len(ws), err)
	}
	for i, w := range ws {
		id := w.View.ID
		c := b.chains[id]
		if stale[i] {
			// Another projector moved the view: the events are archived,
			// so a catch-up from the stored view applies them.
			p.recent.forget(id)
			if err := p.CatchUp(c.records[0].ctx, id); err != nil {
				return err
			}
			continue
		}
		p.recent.put(id, c.view, c.hash)
		p.metrics.applied.Add(float64(len(c.records)))
		p.hub.Notify(id)
	}
	return nil
}

// handleGeneral is Handle for a verified record whose execution this
// projector knows nothing reliable of: it reads the archive to tell a
// duplicate from a fork and to check the link, archives the event and
// catches the view up.
func (p *Projector) handleGeneral(ctx context.Context, d Delivery, env eventstore.Envelope) error {
	p.recent.forget(env.ExecutionID)
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
	if _, err := AddEvent(ctx, p.store, ArchivedEvent{Envelope: env, Record: d.Record, Partition: d.Partition, Offset: d.Offset}); err != nil {
		return fmt.Errorf("archive %s/%d: %w", env.ExecutionID, env.Sequence, err)
	}
	return p.CatchUp(ctx, env.ExecutionID)
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
// A record parked already, in a batch offered again after a store
// failure, is not parked twice.
func (p *Projector) park(ctx context.Context, d Delivery, problem eventstore.Problem) error {
	problem.Partition, problem.Offset = d.Partition, d.Offset
	key := parkedKey{partition: d.Partition, offset: d.Offset, record: sha256.Sum256(d.Record)}
	if p.parked.has(key) {
		return nil
	}
	if err := p.parker.Park(ctx, d, problem); err != nil {
		return fmt.Errorf("park %d:%d: %w", d.Partition, d.Offset, err)
	}
	p.parked.add(key)
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
		// Each event is applied only if it links to the one before: an
		// event archived ahead of its predecessor (the general path could
		// not check its link then) is checked here, against the archive.
		lastHash, linked := "", true
		if expected > 0 && len(events) > 0 && events[0].Envelope.Sequence == expected+1 {
			prev, ok, err := p.store.Event(ctx, id, expected)
			if err != nil {
				return fmt.Errorf("archive lookup %s/%d: %w", id, expected, err)
			}
			lastHash, linked = prev.Envelope.Hash, ok
		}
		applied := 0
		for _, a := range events {
			env := a.Envelope
			if env.Sequence != view.Sequence+1 {
				break
			}
			if linked && env.PrevHash != lastHash {
				if err := p.park(ctx, Delivery{Partition: a.Partition, Offset: a.Offset, Record: a.Record}, badLink(env)); err != nil {
					return err
				}
				break
			}
			lastHash, linked = env.Hash, true
			ev, err := eventstore.Decode(env)
			if err != nil {
				return err // archived events were decodable when archived
			}
			if err := view.Apply(id, env.Sequence, env.OccurredAt, ev); err != nil {
				return err
			}
			applied++
		}
		if applied < len(events) && events[applied].Envelope.Sequence != view.Sequence+1 {
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
		err = SaveView(ctx, p.store, view, expected)
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

// SavePositions records, per partition, that every record before the
// offset given was handled.
func (p *Projector) SavePositions(ctx context.Context, next map[int32]int64) error {
	return p.store.SavePositions(ctx, next)
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
// insert-if-absent confirm.
type recent struct{ bounded[string, recentEntry] }

type recentEntry struct {
	view domain.Execution
	hash string
}

// recentSize bounds the cache: executions in flight at once, with room.
const recentSize = 4096

func (r *recent) put(id string, view domain.Execution, hash string) {
	r.bounded.put(id, recentEntry{view: view, hash: hash}, recentSize)
}

// parkedSet remembers the records a projector parked lately. A batch is
// offered again as a whole when the store fails in it, and what it parked
// before the failure must not reach the dead-letter topic, the metric and
// the log a second time.
type parkedSet struct{ bounded[parkedKey, struct{}] }

type parkedKey struct {
	partition int32
	offset    int64
	record    [sha256.Size]byte
}

const parkedSize = 1024

func (s *parkedSet) has(k parkedKey) bool { _, ok := s.get(k); return ok }
func (s *parkedSet) add(k parkedKey)      { s.put(k, struct{}{}, parkedSize) }

// bounded is a map safe for concurrent use that holds about size keys at
// most: when it is full, the oldest half of the keys put goes.
type bounded[K comparable, V any] struct {
	mu      sync.Mutex
	entries map[K]V
	order   []K
}

func (b *bounded[K, V]) get(k K) (V, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	v, ok := b.entries[k]
	return v, ok
}

func (b *bounded[K, V]) put(k K, v V, size int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.entries == nil {
		b.entries = map[K]V{}
	}
	if _, ok := b.entries[k]; !ok {
		if len(b.order) >= size {
			for _, old := range b.order[:size/2] {
				delete(b.entries, old)
			}
			b.order = append(b.order[:0], b.order[size/2:]...)
		}
		b.order = append(b.order, k)
	}
	b.entries[k] = v
}

func (b *bounded[K, V]) forget(k K) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.entries, k)
}
