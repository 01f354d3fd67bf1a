package eventstore_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/integr8scode/integr8scode/adapters/kafka"
	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/eventstore"
	"github.com/integr8scode/integr8scode/internal/testenv"
)

type fixture struct {
	ledger  *eventstore.Ledger
	brokers []string
}

// newFixture runs the embedded broker and store and builds a ledger that
// talks to them over TCP, as the platform does.
func newFixture(t *testing.T) fixture {
	t.Helper()
	l := testenv.StartLedger(t, "ledger_test")
	return fixture{ledger: l.Ledger, brokers: l.Brokers}
}

// readLog consumes the ledger topic from the oldest offset with a new group
// until want distinct (execution, sequence) pairs arrived, and returns each
// execution's events in arrival order.
func readLog(t *testing.T, brokers []string, want int) map[string][]eventstore.Envelope {
	t.Helper()
	sub, err := kafka.NewSubscriber(brokers, fmt.Sprintf("audit-%d", time.Now().UnixNano()), watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	msgs, err := sub.Subscribe(ctx, eventstore.Topic)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]eventstore.Envelope{}
	seen := map[string]bool{}
	for len(seen) < want {
		select {
		case m := <-msgs:
			env, err := eventstore.ParseMessage(m)
			if err != nil {
				t.Fatal(err)
			}
			out[env.ExecutionID] = append(out[env.ExecutionID], env)
			seen[fmt.Sprint(env.ExecutionID, "/", env.Sequence)] = true
			m.Ack()
		case <-ctx.Done():
			t.Fatalf("read %d of %d events from the log", len(seen), want)
		}
	}
	return out
}

// dedupe keeps the first delivery of each sequence, as consumers do.
func dedupe(evs []eventstore.Envelope) []eventstore.Envelope {
	byseq := map[int64]eventstore.Envelope{}
	max := int64(0)
	for _, e := range evs {
		if prev, ok := byseq[e.Sequence]; ok && prev.EventID != e.EventID {
			panic(fmt.Sprintf("two different events claim %s/%d", e.ExecutionID, e.Sequence))
		}
		byseq[e.Sequence] = e
		if e.Sequence > max {
			max = e.Sequence
		}
	}
	out := make([]eventstore.Envelope, 0, max)
	for s := int64(1); s <= max; s++ {
		out = append(out, byseq[s])
	}
	return out
}

func queuedEvent() domain.ExecutionQueued {
	return domain.ExecutionQueued{Language: "python", Version: "3.11", Script: "print(1)", Limits: domain.DefaultLimits, Owner: "anonymous"}
}

func TestLedger(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	meta := eventstore.Meta{Actor: "test", CorrelationID: "req-1"}

	t.Run("ErrConflict create twice", func(t *testing.T) {
		if _, _, err := f.ledger.Create(ctx, "dup", queuedEvent(), meta); err != nil {
			t.Fatal(err)
		}
		h, _, err := f.ledger.Create(ctx, "dup", queuedEvent(), meta)
		if domain.ErrorCode(err) != domain.ECONFLICT || h.State.ID != "dup" {
			t.Fatalf("second create: %v %+v", err, h.State)
		}
	})

	t.Run("OK racing writers keep one gapless chain", func(t *testing.T) {
		const executions, racers = 6, 8
		var wins, conflicts atomic.Int64
		for i := 0; i < executions; i++ {
			id := fmt.Sprintf("race-%d", i)
			if _, _, err := f.ledger.Create(ctx, id, queuedEvent(), meta); err != nil {
				t.Fatal(err)
			}
			// Racers try to start it; exactly one claim succeeds, then
			// racers try to cancel; the first terminal event is the only one.
			var wg sync.WaitGroup
			for r := 0; r < racers; r++ {
				wg.Add(1)
				go func(r int) {
					defer wg.Done()
					_, envs, err := f.ledger.Update(ctx, id, meta, func(h *eventstore.Head) ([]domain.Event, error) {
						if h.State.Status != domain.StatusQueued {
							return nil, nil
						}
						ev, err := h.State.Start(fmt.Sprint("runner-", r), "test")
						return []domain.Event{ev}, err
					})
					if err != nil {
						t.Error(err)
					}
					if len(envs) == 1 {
						wins.Add(1)
					}
					_, _, err = f.ledger.Update(ctx, id, meta, func(h *eventstore.Head) ([]domain.Event, error) {
						ev, err := h.State.Cancel("racer")
						return []domain.Event{ev}, err
					})
					if domain.ErrorCode(err) == domain.ECONFLICT {
						conflicts.Add(1)
					} else if err != nil {
						t.Error(err)
					}
				}(r)
			}
			wg.Wait()
		}
		if wins.Load() != executions || conflicts.Load() != executions*(racers-1) {
			t.Fatalf("%d claims won (want %d), %d cancels refused (want %d)", wins.Load(), executions, conflicts.Load(), executions*(racers-1))
		}
		logged := readLog(t, f.brokers, 1+executions*3)
		for i := 0; i < executions; i++ {
			id := fmt.Sprintf("race-%d", i)
			evs := dedupe(logged[id])
			if len(evs) != 3 || evs[1].Type != domain.TypeExecutionStarted || evs[2].Type != domain.TypeExecutionFailed {
				t.Fatalf("%s: %+v", id, evs)
			}
			if err := eventstore.VerifyChain(evs); err != nil {
				t.Fatalf("%s: %v", id, err)
			}
			h, err := f.ledger.Get(ctx, id)
			if err != nil || h.Hash != evs[2].Hash || h.State.Status != domain.StatusFailed {
				t.Fatalf("%s head disagrees with the log: %v %+v", id, err, h)
			}
			if len(h.Pending) != 0 {
				t.Fatalf("%s: %d envelopes left unpublished", id, len(h.Pending))
			}
		}
	})

	t.Run("OK order and metadata on Kafka", func(t *testing.T) {
		logged := readLog(t, f.brokers, 1+6*3)
		for id, evs := range logged {
			last := int64(0)
			for _, e := range evs {
				if e.Sequence < last {
					// A republish may repeat an older event, never reorder
					// the first deliveries of new ones.
					continue
				}
				if e.Sequence > last+1 {
					t.Fatalf("%s: sequence %d arrived before %d", id, e.Sequence, last+1)
				}
				last = e.Sequence
			}
			if evs[0].CorrelationID != "req-1" || evs[0].Actor != "test" {
				t.Fatalf("%s: meta lost: %+v", id, evs[0])
			}
		}
	})
}
