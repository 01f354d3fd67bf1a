package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/integr8scode/integr8scode/domain"
)

// Topic is the one ledger topic, partitioned by execution id.
const Topic = "executions"

// Metadata keys set on every Watermill message of the ledger.
const (
	MetaExecutionID = "execution_id"
	MetaType        = "type"
)

// MaxDataBytes bounds an event's payload as encoded. The broker, the head
// store and the archive each have a record size limit; an event over this
// one is refused before it is recorded, so the ledger never holds an event
// it cannot publish.
const MaxDataBytes = 4 << 20

// Meta says who and what caused an append.
type Meta struct {
	CorrelationID string
	CausationID   string
	Actor         string
}

// Ledger appends events: it assigns sequence and hash chain under the
// head's compare-and-swap, then publishes through Watermill.
type Ledger struct {
	heads Heads
	pub   message.Publisher
	topic string
	now   func() time.Time
}

// NewLedger builds a ledger over a head store and a Watermill publisher.
func NewLedger(heads Heads, pub message.Publisher) *Ledger {
	return &Ledger{heads: heads, pub: pub, topic: Topic, now: time.Now}
}

// Create appends ExecutionQueued as sequence 1 of a new execution. If the id
// already exists it returns its head and an error with ECONFLICT.
func (l *Ledger) Create(ctx context.Context, id string, ev domain.ExecutionQueued, meta Meta) (Head, []Envelope, error) {
	var h Head
	envs, err := l.seal(&h, id, []domain.Event{ev}, meta)
	if err != nil {
		return Head{}, nil, err
	}
	if err := l.heads.Insert(ctx, h); err != nil {
		if errors.Is(err, ErrStale) {
			existing, gerr := l.heads.Get(ctx, id)
			if gerr != nil {
				return Head{}, nil, gerr
			}
			return existing, nil, domain.Errorf(domain.ECONFLICT, "execution %s already exists", id)
		}
		return Head{}, nil, fmt.Errorf("create %s: %w", id, err)
	}
	if err := l.publish(ctx, h); err != nil {
		return h, envs, err
	}
	return h, envs, nil
}

// Decide inspects a head and returns the events to append. It may set the
// head's lease fields and Resumes. Returning no events appends nothing (but
// a changed lease is still written, under the same compare-and-swap).
type Decide func(h *Head) ([]domain.Event, error)

// Update loads the head of id, lets decide choose events, and appends them
// after the head, retrying from a fresh read when another writer won a race.
func (l *Ledger) Update(ctx context.Context, id string, meta Meta, decide Decide) (Head, []Envelope, error) {
	for attempt := 0; ; attempt++ {
		h, err := l.heads.Get(ctx, id)
		if err != nil {
			return Head{}, nil, err
		}
		expected := h.State.Sequence
		next := h
		evs, err := decide(&next)
		if err != nil {
			return h, nil, err
		}
		if len(evs) == 0 && next.LeaseOwner == h.LeaseOwner && next.LeaseUntil.Equal(h.LeaseUntil) && next.Resumes == h.Resumes {
			return h, nil, nil
		}
		envs, err := l.seal(&next, id, evs, meta)
		if err != nil {
			return h, nil, err
		}
		err = l.heads.Replace(ctx, expected, next)
		if errors.Is(err, ErrStale) && attempt < 20 {
			continue
		}
		if err != nil {
			return h, nil, fmt.Errorf("update %s: %w", id, err)
		}
		if err := l.publish(ctx, next); err != nil {
			return next, envs, err
		}
		return next, envs, nil
	}
}

// Get returns the head of an execution.
func (l *Ledger) Get(ctx context.Context, id string) (Head, error) { return l.heads.Get(ctx, id) }

// Republish sends a head's pending envelopes again (the writer died between
// recording and publishing them). Consumers de-duplicate on sequence.
func (l *Ledger) Republish(ctx context.Context, h Head) error { return l.publish(ctx, h) }

// seal turns events into sealed envelopes following h, folds them into
// h.State and records them as pending.
func (l *Ledger) seal(h *Head, id string, evs []domain.Event, meta Meta) ([]Envelope, error) {
	envs := make([]Envelope, 0, len(evs))
	now := l.now().UTC()
	for _, ev := range evs {
		data, err := Encode(ev)
		if err != nil {
			return nil, err
		}
		if len(data) > MaxDataBytes {
			return nil, domain.Errorf(domain.ETOOLARGE, "%s of %s is %d bytes encoded, over the ledger's %d",
				ev.EventType(), id, len(data), MaxDataBytes)
		}
		env := Envelope{
			EventID: uuid.NewString(), Type: ev.EventType(), SchemaVersion: CurrentSchemaVersion,
			ExecutionID: id, Sequence: h.State.Sequence + 1, OccurredAt: now,
			CorrelationID: meta.CorrelationID, CausationID: meta.CausationID, Actor: meta.Actor,
			Data: data,
		}
		if err := env.Seal(h.Hash); err != nil {
			return nil, err
		}
		if err := h.State.Apply(id, env.Sequence, env.OccurredAt, ev); err != nil {
			return nil, err
		}
		raw, err := json.Marshal(env)
		if err != nil {
			return nil, err
		}
		h.Hash = env.Hash
		h.Pending = append(h.Pending, string(raw))
		envs = append(envs, env)
		if domain.IsTerminal(ev) {
			h.LeaseOwner, h.LeaseUntil = "", time.Time{}
		}
	}
	h.UpdatedAt = now
	return envs, nil
}

func (l *Ledger) publish(ctx context.Context, h Head) error {
	if len(h.Pending) == 0 {
		return nil
	}
	ctx, span := tracer().Start(ctx, "ledger.append", trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(attribute.String("execution.id", h.State.ID), attribute.Int("ledger.events", len(h.Pending))))
	defer span.End()
	msgs := make([]*message.Message, 0, len(h.Pending))
	for _, raw := range h.Pending {
		var env Envelope
		if err := json.Unmarshal([]byte(raw), &env); err != nil {
			return fmt.Errorf("pending envelope of %s: %w", h.State.ID, err)
		}
		m := message.NewMessage(env.EventID, []byte(raw))
		m.Metadata.Set(MetaExecutionID, env.ExecutionID)
		m.Metadata.Set(MetaType, env.Type)
		m.SetContext(ctx)
		injectTrace(ctx, m)
		msgs = append(msgs, m)
	}
	if err := l.pub.Publish(l.topic, msgs...); err != nil {
		return fmt.Errorf("publish %d events of %s: %w", len(msgs), h.State.ID, err)
	}
	if err := l.heads.ClearPending(ctx, h.State.ID, h.State.Sequence); err != nil {
		return fmt.Errorf("clear pending of %s: %w", h.State.ID, err)
	}
	return nil
}

// ParseMessage reads the envelope a ledger message carries.
func ParseMessage(m *message.Message) (Envelope, error) {
	var env Envelope
	if err := json.Unmarshal(m.Payload, &env); err != nil {
		return Envelope{}, fmt.Errorf("ledger message %s: %w", m.UUID, err)
	}
	if env.ExecutionID == "" || env.Sequence < 1 || env.Type == "" {
		return Envelope{}, fmt.Errorf("ledger message %s: incomplete envelope", m.UUID)
	}
	return env, nil
}
