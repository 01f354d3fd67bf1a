package projections_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/integr8scode/integr8scode/adapters/mongo"
	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/eventstore"
	"github.com/integr8scode/integr8scode/internal/testenv"
	"github.com/integr8scode/integr8scode/projections"
)

var (
	signer  = eventstore.NewEd25519Signer(ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)))
	keys, _ = eventstore.NewKeySet(signer.Public())
)

// parked records what the projector parked.
type parked struct {
	mu   sync.Mutex
	list []eventstore.Problem
}

func (p *parked) Park(_ context.Context, _ projections.Delivery, pr eventstore.Problem) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.list = append(p.list, pr)
	return nil
}

func (p *parked) kinds() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, x := range p.list {
		out = append(out, x.Kind)
	}
	return out
}

// openStore starts the embedded MongoDB-wire store and opens a fresh
// database through the official driver, over TCP.
func openStore(t *testing.T) projections.Store {
	t.Helper()
	return mongo.NewProjections(testenv.Store(t, "projector_test"))
}

// record is one sealed event of a history, as the ledger holds it.
type record struct {
	env eventstore.Envelope
	raw []byte
}

func (r record) delivery(offset int64) projections.Delivery {
	return projections.Delivery{Partition: 0, Offset: offset, Record: r.raw}
}

func history(t *testing.T, id string, evs ...domain.Event) []record {
	t.Helper()
	var out []record
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
		raw, err := e.Seal(prev, signer)
		if err != nil {
			t.Fatal(err)
		}
		prev = e.Hash
		out = append(out, record{env: e, raw: raw})
	}
	return out
}

func completedHistory(t *testing.T, id string) []record {
	return history(t, id,
		domain.ExecutionQueued{Language: "python", Version: "3.11", Input: domain.Sealed("print('hi')"), Limits: domain.DefaultLimits, Owner: "anonymous"},
		domain.ExecutionStarted{Runner: "r", Sandbox: "runc", Attempt: 1, Limits: domain.DefaultLimits},
		domain.ExecutionCompleted{Result: domain.Result{Verdict: domain.VerdictCompleted, ExitCode: domain.IntPtr(0), Output: "sealed-hi",
			Usage: domain.ResourceUsage{WallTimeMs: 40, CPUTimeMs: 20, PeakMemoryBytes: 8 << 20}}})
}

// reseal changes a record's envelope and signs it again with the writer's
// key (a writer bug) or with another key (a forger).
func reseal(t *testing.T, r record, prev string, by eventstore.Signer, change func(*eventstore.Envelope)) record {
	t.Helper()
	e := r.env
	change(&e)
	raw, err := e.Seal(prev, by)
	if err != nil {
		t.Fatal(err)
	}
	return record{env: e, raw: raw}
}

// feeds are the two ways records reach a projector: one at a time, and
// all at once in one batch, as Project hands over what it read together.
// Every property must hold either way.
var feeds = []struct {
	name string
	feed func(ctx context.Context, p *projections.Projector, ds []projections.Delivery) error
}{
	{"one by one", func(ctx context.Context, p *projections.Projector, ds []projections.Delivery) error {
		for _, d := range ds {
			if err := p.Handle(ctx, d); err != nil {
				return err
			}
		}
		return nil
	}},
	{"in one batch", func(ctx context.Context, p *projections.Projector, ds []projections.Delivery) error {
		return p.HandleBatch(ctx, ds)
	}},
}

func deliveries(rs []record) []projections.Delivery {
	ds := make([]projections.Delivery, len(rs))
	for i, r := range rs {
		ds[i] = r.delivery(int64(i))
	}
	return ds
}

func TestProjector(t *testing.T) {
	for _, f := range feeds {
		t.Run(f.name, func(t *testing.T) { testProjector(t, f.feed) })
	}
}

func testProjector(t *testing.T, feed func(context.Context, *projections.Projector, []projections.Delivery) error) {
	store := openStore(t)
	park := &parked{}
	p := projections.NewProjector(store, keys, park, projections.NewHub(), testenv.Quiet(), nil)
	ctx := context.Background()
	handle := func(t *testing.T, rs ...record) {
		t.Helper()
		if err := feed(ctx, p, deliveries(rs)); err != nil {
			t.Fatal(err)
		}
	}
	check := func(t *testing.T, id string) {
		t.Helper()
		v, err := store.View(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if v.Status != domain.StatusCompleted || v.Sequence != 3 || v.SealedOutput != "sealed-hi" || *v.ExitCode != 0 || v.ResourceUsage.PeakMemoryBytes != 8<<20 {
			t.Fatalf("view: %+v", v)
		}
		evs, err := store.Events(ctx, id, 0)
		if err != nil || len(evs) != 3 {
			t.Fatalf("archive: %d %v", len(evs), err)
		}
		var envs []eventstore.Envelope
		for _, a := range evs {
			envs = append(envs, a.Envelope)
		}
		if err := eventstore.VerifyChain(keys, envs); err != nil {
			t.Fatalf("archive chain: %v", err)
		}
	}

	t.Run("OK in order", func(t *testing.T) {
		handle(t, completedHistory(t, "in-order")...)
		check(t, "in-order")
	})

	t.Run("OK duplicates change nothing", func(t *testing.T) {
		h := completedHistory(t, "dups")
		handle(t, h[0], h[0], h[1], h[0], h[1], h[2], h[2], h[1], h[0])
		check(t, "dups")
	})

	t.Run("OK out of order waits for the gap", func(t *testing.T) {
		h := completedHistory(t, "ooo")
		handle(t, h[2])
		if _, err := store.View(ctx, "ooo"); domain.ErrorCode(err) != domain.ENOTFOUND {
			t.Fatalf("a view exists before sequence 1 arrived: %v", err)
		}
		handle(t, h[0])
		if v, _ := store.View(ctx, "ooo"); v.Sequence != 1 || v.Status != domain.StatusQueued {
			t.Fatalf("moved past the gap: %+v", v)
		}
		handle(t, h[1])
		check(t, "ooo") // 3 was held in the archive and applied when 2 arrived
	})

	t.Run("OK concurrent projectors shuffled", func(t *testing.T) {
		ids := []string{"c1", "c2", "c3", "c4", "c5", "c6"}
		var all []record
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
					if err := p.Handle(ctx, all[i].delivery(int64(i))); err != nil {
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

	t.Run("OK late terminal event kept but ignored", func(t *testing.T) {
		h := history(t, "late",
			domain.ExecutionQueued{Language: "python", Version: "3.11", Input: domain.Sealed("x"), Limits: domain.DefaultLimits, Owner: "a"},
			domain.ExecutionFailed{Reason: domain.VerdictCancelled, Message: "cancelled by a"},
			domain.ExecutionCompleted{Result: domain.Result{Verdict: domain.VerdictCompleted, Output: "late"}})
		handle(t, h...)
		v, _ := store.View(ctx, "late")
		if v.Status != domain.StatusFailed || v.FailureReason != domain.VerdictCancelled || v.SealedOutput != "" || v.Sequence != 3 {
			t.Fatalf("got %+v", v)
		}
	})
	if got := park.kinds(); len(got) != 0 {
		t.Fatalf("genuine events were parked: %v", got)
	}
}

// Every kind of bad record is parked with its kind, the view of its
// execution does not move past it, and later events keep flowing.
func TestProjectorParksWhatItCannotUse(t *testing.T) {
	for _, f := range feeds {
		t.Run(f.name, func(t *testing.T) { testProjectorParks(t, f.feed) })
	}
}

func testProjectorParks(t *testing.T, feed func(context.Context, *projections.Projector, []projections.Delivery) error) {
	store := openStore(t)
	ctx := context.Background()
	_, forger, _ := ed25519.GenerateKey(nil)
	cases := []struct {
		name string
		bad  func(h []record) record
		kind string
	}{
		{"bad_hash: payload changed, hash kept", func(h []record) record {
			r := h[1]
			r.raw = []byte(strings.Replace(string(r.raw), `"runner":"r"`, `"runner":"x"`, 1))
			return r
		}, eventstore.ProblemBadHash},
		{"bad_signature: re-hashed by someone without the key", func(h []record) record {
			return reseal(t, h[1], h[0].env.Hash, eventstore.NewEd25519Signer(forger), func(e *eventstore.Envelope) { e.Actor = "forger" })
		}, eventstore.ProblemBadSignature},
		{"bad_link: signed, but linked to nothing", func(h []record) record {
			return reseal(t, h[1], strings.Repeat("0", 64), signer, func(*eventstore.Envelope) {})
		}, eventstore.ProblemBadLink},
		{"fork: a second, different, signed event for sequence 1", func(h []record) record {
			return reseal(t, h[0], "", signer, func(e *eventstore.Envelope) { e.Actor = "someone else" })
		}, eventstore.ProblemFork},
		{"unknown_schema: a newer schema_version", func(h []record) record {
			return reseal(t, h[1], h[0].env.Hash, signer, func(e *eventstore.Envelope) { e.SchemaVersion = 99 })
		}, eventstore.ProblemUnknownSchema},
		{"unknown_schema: an unknown type", func(h []record) record {
			return reseal(t, h[1], h[0].env.Hash, signer, func(e *eventstore.Envelope) { e.Type = "ExecutionPaused" })
		}, eventstore.ProblemUnknownSchema},
		{"malformed: not an envelope", func([]record) record { return record{raw: []byte(`{"hello":"world"}`)} }, eventstore.ProblemMalformed},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			park := &parked{}
			p := projections.NewProjector(store, keys, park, nil, testenv.Quiet(), nil)
			id := "bad-" + string(rune('a'+i))
			h := completedHistory(t, id)
			other := completedHistory(t, id+"-neighbour")
			if err := feed(ctx, p, deliveries([]record{h[0], c.bad(h), other[0], other[1], other[2]})); err != nil {
				t.Fatal(err)
			}
			if got := park.kinds(); len(got) != 1 || got[0] != c.kind {
				t.Fatalf("parked %v, want [%s]", got, c.kind)
			}
			if park.list[0].Offset != 1 {
				t.Fatalf("parked at offset %d, want 1", park.list[0].Offset)
			}
			v, err := store.View(ctx, id)
			if err != nil || v.Sequence != 1 {
				t.Fatalf("the view moved past a parked event: %+v %v", v, err)
			}
			if v, _ := store.View(ctx, id+"-neighbour"); v.Status != domain.StatusCompleted {
				t.Fatalf("later events stopped flowing: %+v", v)
			}
			if evs, _ := store.Events(ctx, id, 0); len(evs) != 1 {
				t.Fatalf("a parked event was archived: %d events", len(evs))
			}
			b, _ := json.Marshal(park.list[0])
			if !strings.Contains(string(b), `"partition":0`) {
				t.Fatalf("problem without its place: %s", b)
			}
		})
	}
}

// After a rotation the writer signs with a key a running projector has not
// seen: it reloads the keys from their source once, and applies the event
// instead of parking it.
func TestProjectorLearnsARotatedKey(t *testing.T) {
	store := openStore(t)
	ctx := context.Background()
	_, newKey, _ := ed25519.GenerateKey(nil)
	rotated := eventstore.NewEd25519Signer(newKey)
	both, err := eventstore.NewKeySet(signer.Public(), rotated.Public())
	if err != nil {
		t.Fatal(err)
	}
	h := completedHistory(t, "rotated")
	h[1] = reseal(t, h[1], h[0].env.Hash, rotated, func(*eventstore.Envelope) {})
	h[2] = reseal(t, h[2], h[1].env.Hash, rotated, func(*eventstore.Envelope) {})

	t.Run("ErrParked without a way to reload", func(t *testing.T) {
		park := &parked{}
		p := projections.NewProjector(openStore(t), keys, park, nil, testenv.Quiet(), nil)
		for i, r := range h {
			if err := p.Handle(ctx, r.delivery(int64(i))); err != nil {
				t.Fatal(err)
			}
		}
		if got := park.kinds(); len(got) != 2 || got[0] != eventstore.ProblemBadSignature {
			t.Fatalf("parked %v", got)
		}
	})
	t.Run("OK reloaded once", func(t *testing.T) {
		park := &parked{}
		reloads := 0
		p := projections.NewProjector(store, keys, park, nil, testenv.Quiet(), nil).
			RefreshKeys(func(context.Context) (*eventstore.KeySet, error) { reloads++; return both, nil })
		for i, r := range h {
			if err := p.Handle(ctx, r.delivery(int64(i))); err != nil {
				t.Fatal(err)
			}
		}
		if got := park.kinds(); len(got) != 0 || reloads != 1 {
			t.Fatalf("parked %v after %d reloads", got, reloads)
		}
		if v, _ := store.View(ctx, "rotated"); v.Status != domain.StatusCompleted {
			t.Fatalf("view %+v", v)
		}
	})
}

// countingStore counts the reads a projector makes, and can make the next
// SaveViews find every view moved (as another projector's write would).
type countingStore struct {
	projections.Store
	mu        sync.Mutex
	reads     int
	writes    int // calls of AddEvents and SaveViews
	staleOnce bool
}

func (c *countingStore) AddEvents(ctx context.Context, evs []projections.ArchivedEvent) ([]bool, error) {
	c.mu.Lock()
	c.writes++
	c.mu.Unlock()
	return c.Store.AddEvents(ctx, evs)
}

func (c *countingStore) writesSince(from int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes - from
}

func (c *countingStore) read() { c.mu.Lock(); c.reads++; c.mu.Unlock() }

func (c *countingStore) Event(ctx context.Context, id string, seq int64) (projections.ArchivedEvent, bool, error) {
	c.read()
	return c.Store.Event(ctx, id, seq)
}

func (c *countingStore) Events(ctx context.Context, id string, after int64) ([]projections.ArchivedEvent, error) {
	c.read()
	return c.Store.Events(ctx, id, after)
}

func (c *countingStore) View(ctx context.Context, id string) (domain.Execution, error) {
	c.read()
	return c.Store.View(ctx, id)
}

func (c *countingStore) SaveViews(ctx context.Context, ws []projections.ViewWrite) ([]bool, error) {
	c.mu.Lock()
	c.writes++
	stale := c.staleOnce
	c.staleOnce = false
	c.mu.Unlock()
	if stale {
		all := make([]bool, len(ws))
		for i := range all {
			all[i] = true
		}
		return all, nil
	}
	return c.Store.SaveViews(ctx, ws)
}

func (c *countingStore) readsSince(from int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads - from
}

// The projector remembers the view it saved and the last event's hash, so
// the next event of an execution costs two writes and no read, and so does
// a new execution's first event; the store still arbitrates, so a wrong
// guess costs reads, never a wrong view.
func TestProjectorProjectsTheNextEventWithoutReading(t *testing.T) {
	ctx := context.Background()
	store := &countingStore{Store: openStore(t)}
	park := &parked{}
	p := projections.NewProjector(store, keys, park, projections.NewHub(), testenv.Quiet(), nil)
	view := func(id string) domain.Execution {
		t.Helper()
		v, err := store.Store.View(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	t.Run("OK an execution's events read nothing, the first included", func(t *testing.T) {
		h := completedHistory(t, "next")
		from := store.readsSince(0)
		for i, r := range h {
			if err := p.Handle(ctx, r.delivery(int64(i))); err != nil {
				t.Fatal(err)
			}
		}
		if n := store.readsSince(from); n != 0 {
			t.Fatalf("%d reads for an execution's events", n)
		}
		if v := view("next"); v.Status != domain.StatusCompleted || v.Sequence != 3 || v.SealedOutput != "sealed-hi" {
			t.Fatalf("view: %+v", v)
		}
	})
	t.Run("OK a batch of many executions' histories reads nothing and writes the archive and the views once each", func(t *testing.T) {
		var all []record
		hs := [][]record{}
		for _, id := range []string{"b1", "b2", "b3", "b4", "b5"} {
			hs = append(hs, completedHistory(t, id))
		}
		for i := range 3 { // interleaved, as executions share a partition
			for _, h := range hs {
				all = append(all, h[i])
			}
		}
		reads, writes := store.readsSince(0), store.writesSince(0)
		if err := p.HandleBatch(ctx, deliveries(all)); err != nil {
			t.Fatal(err)
		}
		if n := store.readsSince(reads); n != 0 {
			t.Fatalf("%d reads for a batch of new executions", n)
		}
		if n := store.writesSince(writes); n != 2 {
			t.Fatalf("%d calls writing the archive and the views, want 2", n)
		}
		for _, h := range hs {
			if v := view(h[0].env.ExecutionID); v.Status != domain.StatusCompleted || v.Sequence != 3 || v.SealedOutput != "sealed-hi" {
				t.Fatalf("view: %+v", v)
			}
		}
		// The same batch again, to a projector that remembers nothing (a
		// restart before the position was saved): duplicates, nothing moves.
		fresh := projections.NewProjector(store, keys, park, projections.NewHub(), testenv.Quiet(), nil)
		if err := fresh.HandleBatch(ctx, deliveries(all)); err != nil {
			t.Fatal(err)
		}
		for _, h := range hs {
			if v := view(h[0].env.ExecutionID); v.Status != domain.StatusCompleted || v.Sequence != 3 {
				t.Fatalf("view after a replayed batch: %+v", v)
			}
		}
		if got := park.kinds(); len(got) != 0 {
			t.Fatalf("a replayed batch parked %v", got)
		}
	})
	t.Run("OK a replay from the first event by a projector that remembers nothing leaves the view as it was", func(t *testing.T) {
		h := completedHistory(t, "replayed")
		for i, r := range h {
			if err := p.Handle(ctx, r.delivery(int64(i))); err != nil {
				t.Fatal(err)
			}
		}
		fresh := projections.NewProjector(store, keys, park, projections.NewHub(), testenv.Quiet(), nil)
		for i, r := range h {
			if err := fresh.Handle(ctx, r.delivery(int64(i))); err != nil {
				t.Fatal(err)
			}
		}
		if v := view("replayed"); v.Status != domain.StatusCompleted || v.Sequence != 3 || v.SealedOutput != "sealed-hi" {
			t.Fatalf("view: %+v", v)
		}
		if got := park.kinds(); len(got) != 0 {
			t.Fatalf("a replay parked %v", got)
		}
	})
	t.Run("OK a view moved by someone else is caught up, not overwritten", func(t *testing.T) {
		h := completedHistory(t, "moved")
		if err := p.Handle(ctx, h[0].delivery(0)); err != nil {
			t.Fatal(err)
		}
		store.mu.Lock()
		store.staleOnce = true
		store.mu.Unlock()
		for i, r := range h[1:] {
			if err := p.Handle(ctx, r.delivery(int64(i+1))); err != nil {
				t.Fatal(err)
			}
		}
		if v := view("moved"); v.Status != domain.StatusCompleted || v.Sequence != 3 {
			t.Fatalf("view: %+v", v)
		}
	})
	t.Run("OK a duplicate of the remembered event changes nothing", func(t *testing.T) {
		h := completedHistory(t, "again")
		for i, r := range []record{h[0], h[1], h[1], h[2], h[2], h[0]} {
			if err := p.Handle(ctx, r.delivery(int64(i))); err != nil {
				t.Fatal(err)
			}
		}
		if v := view("again"); v.Status != domain.StatusCompleted || v.Sequence != 3 {
			t.Fatalf("view: %+v", v)
		}
	})
	t.Run("ErrBadLink caught against the remembered hash", func(t *testing.T) {
		h := completedHistory(t, "forged")
		if err := p.Handle(ctx, h[0].delivery(0)); err != nil {
			t.Fatal(err)
		}
		forged := reseal(t, h[1], strings.Repeat("0", 64), signer, func(*eventstore.Envelope) {})
		if err := p.Handle(ctx, forged.delivery(1)); err != nil {
			t.Fatal(err)
		}
		if got := park.kinds(); len(got) != 1 || got[0] != eventstore.ProblemBadLink {
			t.Fatalf("parked %v, want one bad_link", got)
		}
		if v := view("forged"); v.Sequence != 1 {
			t.Fatalf("the view moved past a bad link: %+v", v)
		}
	})
}

// A bad link is caught on the general path too, against the archive, by
// a projector that remembers nothing of the execution: a successor whose
// prev_hash is not its archived predecessor's hash, and a first event
// that claims a predecessor, even when it arrives after its successor.
func TestProjectorCatchesABadLinkAgainstTheArchive(t *testing.T) {
	ctx := context.Background()
	store := openStore(t)
	t.Run("ErrBadLink a successor not linked to the archived predecessor", func(t *testing.T) {
		park := &parked{}
		h := completedHistory(t, "archived-prev")
		if err := projections.NewProjector(store, keys, park, nil, testenv.Quiet(), nil).Handle(ctx, h[0].delivery(0)); err != nil {
			t.Fatal(err)
		}
		fresh := projections.NewProjector(store, keys, park, nil, testenv.Quiet(), nil)
		forged := reseal(t, h[1], strings.Repeat("0", 64), signer, func(*eventstore.Envelope) {})
		if err := fresh.Handle(ctx, forged.delivery(1)); err != nil {
			t.Fatal(err)
		}
		if got := park.kinds(); len(got) != 1 || got[0] != eventstore.ProblemBadLink {
			t.Fatalf("parked %v, want one bad_link", got)
		}
		if v, _ := store.View(ctx, "archived-prev"); v.Sequence != 1 {
			t.Fatalf("the view moved past a bad link: %+v", v)
		}
	})
	t.Run("ErrBadLink a first event with a predecessor, after its successor", func(t *testing.T) {
		park := &parked{}
		h := completedHistory(t, "first-claims")
		forged := reseal(t, h[0], strings.Repeat("0", 64), signer, func(*eventstore.Envelope) {})
		p := projections.NewProjector(store, keys, park, nil, testenv.Quiet(), nil)
		if err := p.HandleBatch(ctx, []projections.Delivery{h[1].delivery(0), forged.delivery(1)}); err != nil {
			t.Fatal(err)
		}
		if got := park.kinds(); len(got) != 1 || got[0] != eventstore.ProblemBadLink {
			t.Fatalf("parked %v, want one bad_link", got)
		}
		if _, err := store.View(ctx, "first-claims"); domain.ErrorCode(err) != domain.ENOTFOUND {
			t.Fatalf("a view without its first event: %v", err)
		}
	})
}

// failingStore fails the next call of one method, once, as a store that
// went away for a moment.
type failingStore struct {
	projections.Store
	mu    sync.Mutex
	fail  string
	after int // calls of fail that succeed first
}

var errStoreDown = errors.New("the store went away")

func (f *failingStore) down(method string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != method {
		return nil
	}
	if f.after > 0 {
		f.after--
		return nil
	}
	f.fail = ""
	return errStoreDown
}

func (f *failingStore) AddEvents(ctx context.Context, evs []projections.ArchivedEvent) ([]bool, error) {
	if err := f.down("AddEvents"); err != nil {
		return nil, err
	}
	return f.Store.AddEvents(ctx, evs)
}

func (f *failingStore) SaveFacts(ctx context.Context, fs []projections.Fact) error {
	if err := f.down("SaveFacts"); err != nil {
		return err
	}
	return f.Store.SaveFacts(ctx, fs)
}

func (f *failingStore) SaveViews(ctx context.Context, ws []projections.ViewWrite) ([]bool, error) {
	if err := f.down("SaveViews"); err != nil {
		return nil, err
	}
	return f.Store.SaveViews(ctx, ws)
}

func (f *failingStore) Event(ctx context.Context, id string, seq int64) (projections.ArchivedEvent, bool, error) {
	if err := f.down("Event"); err != nil {
		return projections.ArchivedEvent{}, false, err
	}
	return f.Store.Event(ctx, id, seq)
}

func (f *failingStore) Events(ctx context.Context, id string, after int64) ([]projections.ArchivedEvent, error) {
	if err := f.down("Events"); err != nil {
		return nil, err
	}
	return f.Store.Events(ctx, id, after)
}

func (f *failingStore) View(ctx context.Context, id string) (domain.Execution, error) {
	if err := f.down("View"); err != nil {
		return domain.Execution{}, err
	}
	return f.Store.View(ctx, id)
}

// A store that fails in the middle of a batch loses nothing: HandleBatch
// says so (Project then offers the same records again), forgets what it
// guessed, and the batch offered again leaves every view as if nothing had
// failed — whichever write or read failed, on the batched path (new
// executions, and one the projector saved before) and on the general path
// (an execution it knows nothing of, its events out of order).
func TestProjectorLosesNothingWhenTheStoreFailsMidBatch(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		method string
		after  int
	}{
		{"AddEvents", 0}, {"SaveFacts", 0}, {"SaveViews", 0}, {"Event", 0}, {"Events", 0}, {"View", 0},
		// The second call of each write is the general path's (unknown's
		// event, then the catch-up of its view).
		{"AddEvents", 1}, {"SaveFacts", 1}, {"SaveViews", 1},
	} {
		method := c.method
		t.Run(fmt.Sprintf("OK a failing %s after %d", method, c.after), func(t *testing.T) {
			store := &failingStore{Store: openStore(t)}
			park := &parked{}
			p := projections.NewProjector(store, keys, park, nil, testenv.Quiet(), nil)
			known, fresh, unknown := completedHistory(t, "known"), completedHistory(t, "fresh"), completedHistory(t, "unknown")
			// The projector saved known's first event; unknown's first was
			// archived by someone else (its view is not there yet).
			if err := p.Handle(ctx, known[0].delivery(0)); err != nil {
				t.Fatal(err)
			}
			if _, err := projections.AddEvent(ctx, store, projections.ArchivedEvent{Envelope: unknown[0].env, Record: unknown[0].raw}); err != nil {
				t.Fatal(err)
			}
			// And a record that is not an event, parked before the store
			// fails: parked once.
			junk := record{raw: []byte(`{"hello":"world"}`)}
			batch := deliveries([]record{junk, known[1], fresh[0], unknown[2], fresh[1], known[2], unknown[1], fresh[2]})
			store.mu.Lock()
			store.fail, store.after = method, c.after
			store.mu.Unlock()
			if err := p.HandleBatch(ctx, batch); !errors.Is(err, errStoreDown) {
				t.Fatalf("the failure of %s: %v, want it returned", method, err)
			}
			if err := p.HandleBatch(ctx, batch); err != nil {
				t.Fatalf("the batch offered again: %v", err)
			}
			for _, id := range []string{"known", "fresh", "unknown"} {
				if v, err := store.View(ctx, id); err != nil || v.Status != domain.StatusCompleted || v.Sequence != 3 {
					t.Fatalf("%s after the retry: %+v %v", id, v, err)
				}
			}
			if got := park.kinds(); len(got) != 1 || got[0] != eventstore.ProblemMalformed {
				t.Fatalf("parked %v, want the record that is not an event, once", got)
			}
		})
	}
}

// The projector's memory of recent executions is bounded: when it is full
// the oldest half goes, and an execution it forgot is projected by the
// general path, as right as one it remembers.
func TestProjectorForgetsTheOldestExecutionsWhenItsMemoryIsFull(t *testing.T) {
	ctx := context.Background()
	store := projections.NewMemoryStore()
	park := &parked{}
	p := projections.NewProjector(store, keys, park, nil, testenv.Quiet(), nil)
	const n = 5000 // more than the memory holds
	hs := make([][]record, n)
	for i := range hs {
		hs[i] = completedHistory(t, fmt.Sprintf("m-%05d", i))
	}
	for wave := range 3 {
		for i := 0; i < n; i += 500 {
			var ds []projections.Delivery
			for j := i; j < i+500; j++ {
				ds = append(ds, hs[j][wave].delivery(int64(wave*n+j)))
			}
			if err := p.HandleBatch(ctx, ds); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, i := range []int{0, n / 2, n - 1} {
		if v, err := store.View(ctx, hs[i][0].env.ExecutionID); err != nil || v.Status != domain.StatusCompleted || v.Sequence != 3 {
			t.Fatalf("execution %d: %+v %v", i, v, err)
		}
	}
	if got := park.kinds(); len(got) != 0 {
		t.Fatalf("parked %v", got)
	}
}

// An event archived ahead of its predecessor (the general path cannot
// check its link then) is checked when the view reaches it: a signed
// event that does not link to its predecessor is parked, not applied, and
// the view stays before it.
func TestProjectorChecksTheLinkOfAnEventArchivedAheadOfItsPredecessor(t *testing.T) {
	for _, f := range feeds {
		t.Run(f.name, func(t *testing.T) {
			ctx := context.Background()
			store := openStore(t)
			park := &parked{}
			p := projections.NewProjector(store, keys, park, nil, testenv.Quiet(), nil)
			h := completedHistory(t, "ahead")
			forged := reseal(t, h[1], strings.Repeat("0", 64), signer, func(*eventstore.Envelope) {})
			if err := f.feed(ctx, p, deliveries([]record{forged, h[0]})); err != nil {
				t.Fatal(err)
			}
			if got := park.kinds(); len(got) != 1 || got[0] != eventstore.ProblemBadLink {
				t.Fatalf("parked %v, want the forgery as a bad link", got)
			}
			if v, err := store.View(ctx, "ahead"); err != nil || v.Sequence != 1 {
				t.Fatalf("the view moved past a bad link: %+v %v", v, err)
			}
		})
	}
}
