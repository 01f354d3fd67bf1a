package projections_test

import (
	"context"
	"crypto/ed25519"
	"github.com/integr8scode/integr8scode/adapters/keyring"
	"math/rand"
	"sync"
	"testing"
	"time"

	"github.com/integr8scode/integr8scode/adapters/mongo"
	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/eventstore"
	"github.com/integr8scode/integr8scode/internal/testenv"
	"github.com/integr8scode/integr8scode/projections"
)

// openStore starts the embedded MongoDB-wire store and opens a fresh database
// through the official driver, over TCP.
// testRing signs the events of these tests and verifies them.
var testRing = func() keyring.Ring {
	signer := eventstore.NewEd25519Signer(ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)))
	keys, err := eventstore.NewKeySet(signer.Public())
	if err != nil {
		panic(err)
	}
	return keyring.Ring{Signer: signer, Keys: keys}
}()

func openStore(t *testing.T) projections.Store {
	t.Helper()
	return mongo.NewProjections(testenv.Store(t, "projections_test"))
}

// history builds a sealed, valid history of one execution.
func history(t *testing.T, id string, evs ...domain.Event) []eventstore.Envelope {
	t.Helper()
	var out []eventstore.Envelope
	prev := ""
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for i, ev := range evs {
		data, err := eventstore.Encode(ev)
		if err != nil {
			t.Fatal(err)
		}
		e := eventstore.Envelope{EventID: id + "-" + ev.EventType(), Type: ev.EventType(), SchemaVersion: 1,
			ExecutionID: id, Sequence: int64(i + 1), OccurredAt: at.Add(time.Duration(i) * time.Millisecond),
			Actor: "test", Data: data}
		if _, err := e.Seal(prev, testRing.Signer); err != nil {
			t.Fatal(err)
		}
		prev = e.Hash
		out = append(out, e)
	}
	return out
}

func completedHistory(t *testing.T, id string) []eventstore.Envelope {
	return history(t, id,
		domain.ExecutionQueued{Language: "python", Version: "3.11", Script: "print('hi')", Limits: domain.DefaultLimits, Owner: "anonymous"},
		domain.ExecutionStarted{Runner: "r", Sandbox: "runc", Attempt: 1, Limits: domain.DefaultLimits},
		domain.ExecutionCompleted{Result: domain.Result{Verdict: domain.VerdictCompleted, ExitCode: domain.IntPtr(0), Stdout: "hi\n",
			Usage: domain.ResourceUsage{WallTimeMs: 40, CPUTimeMs: 20, PeakMemoryBytes: 8 << 20}}})
}

func TestProjector(t *testing.T) {
	store := openStore(t)
	hub := projections.NewHub()
	p := projections.NewProjector(store, testRing.Keys, hub, testenv.Quiet(), nil)
	ctx := context.Background()

	check := func(t *testing.T, id string) {
		t.Helper()
		v, err := store.View(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if v.Status != domain.StatusCompleted || v.Sequence != 3 || v.Output != "hi\n" || *v.ExitCode != 0 || v.ResourceUsage.PeakMemoryBytes != 8<<20 {
			t.Fatalf("view: %+v", v)
		}
		evs, err := store.Events(ctx, id, 0)
		if err != nil || len(evs) != 3 {
			t.Fatalf("archive: %d %v", len(evs), err)
		}
		if err := eventstore.VerifyChain(testRing.Keys, evs); err != nil {
			t.Fatalf("archive chain: %v", err)
		}
	}

	t.Run("OK in order", func(t *testing.T) {
		for _, e := range completedHistory(t, "in-order") {
			if err := p.Handle(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		check(t, "in-order")
	})

	t.Run("OK duplicates change nothing", func(t *testing.T) {
		h := completedHistory(t, "dups")
		for _, i := range []int{0, 0, 1, 0, 1, 2, 2, 1, 0} {
			if err := p.Handle(ctx, h[i]); err != nil {
				t.Fatal(err)
			}
		}
		check(t, "dups")
	})

	t.Run("OK out of order waits for the gap", func(t *testing.T) {
		h := completedHistory(t, "ooo")
		if err := p.Handle(ctx, h[2]); err != nil {
			t.Fatal(err)
		}
		if _, err := store.View(ctx, "ooo"); domain.ErrorCode(err) != domain.ENOTFOUND {
			t.Fatalf("a view exists before sequence 1 arrived: %v", err)
		}
		if err := p.Handle(ctx, h[0]); err != nil {
			t.Fatal(err)
		}
		v, _ := store.View(ctx, "ooo")
		if v.Sequence != 1 || v.Status != domain.StatusQueued {
			t.Fatalf("moved past the gap: %+v", v)
		}
		if err := p.Handle(ctx, h[1]); err != nil {
			t.Fatal(err)
		}
		check(t, "ooo") // 3 was held in the archive and applied when 2 arrived
	})

	t.Run("OK concurrent projectors shuffled", func(t *testing.T) {
		ids := []string{"c1", "c2", "c3", "c4", "c5", "c6"}
		var all []eventstore.Envelope
		for _, id := range ids {
			all = append(all, completedHistory(t, id)...)
		}
		all = append(all, all...) // every event delivered twice
		rand.New(rand.NewSource(1)).Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
		var wg sync.WaitGroup
		errs := make(chan error, len(all))
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := w; i < len(all); i += 4 {
					if err := p.Handle(ctx, all[i]); err != nil {
						errs <- err
					}
				}
			}(w)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		for _, id := range ids {
			// A shuffle can leave a later event archived before an earlier
			// one finished applying; a catch-up settles it, as the next
			// delivery would.
			if err := p.CatchUp(ctx, id); err != nil {
				t.Fatal(err)
			}
			check(t, id)
		}
	})

	t.Run("OK tampered event is rejected", func(t *testing.T) {
		h := completedHistory(t, "tampered")
		h[0].Data = []byte(`{"script":"import os"}`)
		if err := p.Handle(ctx, h[0]); err != nil {
			t.Fatal(err)
		}
		if evs, _ := store.Events(ctx, "tampered", 0); len(evs) != 0 {
			t.Fatalf("archived a tampered event: %+v", evs)
		}
	})

	t.Run("OK late terminal event kept but ignored", func(t *testing.T) {
		h := history(t, "late",
			domain.ExecutionQueued{Language: "python", Version: "3.11", Script: "x", Limits: domain.DefaultLimits, Owner: "a"},
			domain.ExecutionFailed{Reason: domain.VerdictCancelled, Message: "cancelled by a"},
			domain.ExecutionCompleted{Result: domain.Result{Verdict: domain.VerdictCompleted, Stdout: "late"}})
		for _, e := range h {
			if err := p.Handle(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		v, _ := store.View(ctx, "late")
		if v.Status != domain.StatusFailed || v.FailureReason != domain.VerdictCancelled || v.Output != "" || v.Sequence != 3 {
			t.Fatalf("got %+v", v)
		}
	})
}
