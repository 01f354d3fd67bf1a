package mongo

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/eventstore"
	"github.com/integr8scode/integr8scode/projections"
)

// t0 has nanoseconds on purpose: every time must survive storage exactly.
var t0 = time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func ptime(t time.Time) *time.Time { return &t }

// sampleExecution is a finished execution with every field set, including
// an exit code of 0 (a non-nil pointer to zero) and nanosecond times.
func sampleExecution(id string) domain.Execution {
	return domain.Execution{
		ID: id, Status: domain.StatusCompleted, Language: "python", Version: "3.12",
		SealedInput: "c2VhbGVkIGlucHV0", Owner: "alice",
		Limits:       domain.Limits{TimeoutMs: 5000, MemoryBytes: 128 << 20, CPUMillicores: 100},
		SealedOutput: "c2VhbGVkIG91dHB1dA", Errors: "", ExitCode: domain.IntPtr(0), OutputTruncated: true,
		ResourceUsage: &domain.ResourceUsage{WallTimeMs: 12, CPUTimeMs: 9, PeakMemoryBytes: 7 << 20},
		Attempt:       2, Runner: "runner-1", Sequence: 3,
		CreatedAt: at(0), UpdatedAt: at(3 * time.Second),
		StartedAt: ptime(at(time.Second + 1)), FinishedAt: ptime(at(3 * time.Second)),
	}
}

// failedExecution has the optional fields that a failure sets and a success
// leaves out, and a nil exit code.
func failedExecution(id string) domain.Execution {
	e := sampleExecution(id)
	e.Status, e.FailureReason, e.Signal, e.ExitCode = domain.StatusFailed, domain.VerdictTimeout, "SIGKILL", nil
	e.Errors = "timed out after 5s"
	return e
}

// queuedExecution has every optional pointer nil.
func queuedExecution(id string, created time.Time) domain.Execution {
	return domain.Execution{ID: id, Status: domain.StatusQueued, Language: "python", Version: "3.12",
		SealedInput: "c2VhbGVk", Owner: "alice", Limits: domain.DefaultLimits, Sequence: 1,
		CreatedAt: created, UpdatedAt: created}
}

// testSigner signs the events these tests build, and testKeys accepts
// them: the store keeps records as given, but a projector parks what does
// not verify.
var (
	testSigner = eventstore.NewEd25519Signer(ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)))
	testKeys   = func() *eventstore.KeySet {
		ks, err := eventstore.NewKeySet(testSigner.Public())
		if err != nil {
			panic(err)
		}
		return ks
	}()
)

// chain builds a real, sealed history of one execution — queued, started,
// completed with exit code 0, at nanosecond times — as the ledger holds it:
// each envelope with its record, at made-up offsets 10, 11, 12 of
// partition 3.
func chain(t testing.TB, id string) []projections.ArchivedEvent {
	t.Helper()
	evs := []domain.Event{
		domain.ExecutionQueued{Language: "python", Version: "3.12", Input: domain.Sealed("print('hi')"), Limits: domain.DefaultLimits, Owner: "alice"},
		domain.ExecutionStarted{Runner: "runner-1", Sandbox: "sb-1", Attempt: 1, Limits: domain.DefaultLimits},
		domain.ExecutionCompleted{Result: domain.Result{Verdict: domain.VerdictCompleted, ExitCode: domain.IntPtr(0),
			Output: "sealed-hi", Usage: domain.ResourceUsage{WallTimeMs: 31, CPUTimeMs: 20, PeakMemoryBytes: 9 << 20}}},
	}
	var out []projections.ArchivedEvent
	prev := ""
	for i, ev := range evs {
		data, err := eventstore.Encode(ev)
		if err != nil {
			t.Fatal(err)
		}
		env := eventstore.Envelope{
			EventID: fmt.Sprintf("%s-e%d", id, i+1), Type: ev.EventType(), SchemaVersion: eventstore.SchemaVersions[ev.EventType()],
			ExecutionID: id, Sequence: int64(i + 1), OccurredAt: at(time.Duration(i)*time.Second + time.Duration(i)),
			CorrelationID: "req-1", Actor: "alice", Data: data,
		}
		if i > 0 {
			env.CausationID = out[i-1].Envelope.EventID
		}
		a := sealed(t, env, prev, int64(10+i))
		prev = a.Envelope.Hash
		out = append(out, a)
	}
	if err := eventstore.VerifyChain(testKeys, envelopes(out)); err != nil {
		t.Fatal(err)
	}
	return out
}

// sealed seals env after the event whose hash is prev and returns it as the
// ledger holds it, at offset of partition 3.
func sealed(t testing.TB, env eventstore.Envelope, prev string, offset int64) projections.ArchivedEvent {
	t.Helper()
	rec, err := env.Seal(prev, testSigner)
	if err != nil {
		t.Fatal(err)
	}
	return projections.ArchivedEvent{Envelope: env, Record: rec, Partition: 3, Offset: offset}
}

func envelopes(evs []projections.ArchivedEvent) []eventstore.Envelope {
	out := make([]eventstore.Envelope, len(evs))
	for i, ev := range evs {
		out[i] = ev.Envelope
	}
	return out
}

// delivery is ev as the ledger hands it to the projector.
func delivery(ev projections.ArchivedEvent) projections.Delivery {
	return projections.Delivery{Partition: ev.Partition, Offset: ev.Offset, Record: ev.Record}
}

// parkedLog is a projections.Parker that keeps what it is given, so that a
// test can tell that no genuine event was parked.
type parkedLog struct {
	mu     sync.Mutex
	parked []eventstore.Problem
}

func (l *parkedLog) Park(_ context.Context, _ projections.Delivery, p eventstore.Problem) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.parked = append(l.parked, p)
	return nil
}

// none fails t if anything was parked.
func (l *parkedLog) none(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.parked {
		t.Errorf("a genuine event was parked: %v", p)
	}
}

// newProjector is a projector over s that accepts the events of chain and
// parks into parked.
func newProjector(s projections.Store, parked *parkedLog) *projections.Projector {
	return projections.NewProjector(s, testKeys, parked, nil, slog.New(slog.DiscardHandler), nil)
}
