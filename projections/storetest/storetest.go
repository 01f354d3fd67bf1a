// Package storetest is the contract every projections.Store keeps: one
// suite that runs against each implementation (the MemoryStore that
// `projections compare` folds the log into, and MongoDB on every code path
// of adapters/mongo), so that the two agree on what a view, a page of the
// list or a position is.
package storetest

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/eventstore"
	"github.com/integr8scode/integr8scode/projections"
)

// t0 has nanoseconds on purpose: every time must survive storage exactly.
var t0 = time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.UTC)

var signer = eventstore.NewEd25519Signer(ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)))

// Run runs the contract against stores that open returns, a fresh empty
// one for each subtest.
func Run(t *testing.T, open func(t *testing.T) projections.Store) {
	t.Run("Archive", func(t *testing.T) { archive(t, open(t)) })
	t.Run("View", func(t *testing.T) { view(t, open(t)) })
	t.Run("List", func(t *testing.T) { list(t, open(t)) })
	t.Run("Position", func(t *testing.T) { position(t, open(t)) })
	t.Run("Facts", func(t *testing.T) { facts(t, open(t)) })
	t.Run("Batches", func(t *testing.T) { batches(t, open(t)) })
}

// ContentKey is the data key the chains' content is sealed under.
var ContentKey = eventstore.DataKey{1, 2, 3}

func sealed(id, purpose string, v any) domain.Sealed {
	s, err := eventstore.Seal(ContentKey, id, purpose, v)
	if err != nil {
		panic(err)
	}
	return s
}

// Chain is a sealed history of one execution (queued, started, completed)
// as the ledger holds it, at offsets 10, 11, 12 of partition 3.
func Chain(t *testing.T, id string) []projections.ArchivedEvent {
	t.Helper()
	evs := []domain.Event{
		domain.ExecutionQueued{Language: "python", Version: "3.11", Input: sealed(id, eventstore.PurposeInput, domain.Input{Script: "print('hi')"}),
			Limits: domain.DefaultLimits, Owner: "alice"},
		domain.ExecutionStarted{Runner: "runner-1", Sandbox: "runc", Attempt: 1, Limits: domain.DefaultLimits},
		domain.ExecutionCompleted{Result: domain.Result{Verdict: domain.VerdictCompleted, ExitCode: domain.IntPtr(0),
			Output: sealed(id, eventstore.PurposeOutput, domain.Output{Stdout: "hi\n"})}},
	}
	var out []projections.ArchivedEvent
	prev := ""
	for i, ev := range evs {
		data, err := eventstore.Encode(ev)
		if err != nil {
			t.Fatal(err)
		}
		env := eventstore.Envelope{EventID: fmt.Sprintf("%s-e%d", id, i+1), Type: ev.EventType(),
			SchemaVersion: eventstore.SchemaVersions[ev.EventType()], ExecutionID: id, Sequence: int64(i + 1),
			OccurredAt: t0.Add(time.Duration(i) * time.Second), Actor: "alice", Data: data}
		rec, err := env.Seal(prev, signer)
		if err != nil {
			t.Fatal(err)
		}
		prev = env.Hash
		out = append(out, projections.ArchivedEvent{Envelope: env, Record: rec, Partition: 3, Offset: int64(10 + i)})
	}
	return out
}

func archive(t *testing.T, s projections.Store) {
	ctx := context.Background()
	want := Chain(t, "ex-1")
	// A neighbour whose id has "ex-1" as a prefix must not leak into it.
	for _, ev := range append(Chain(t, "ex-10"), want...) {
		if added, err := projections.AddEvent(ctx, s, ev); err != nil || !added {
			t.Fatalf("add %s/%d: %v %v", ev.Envelope.ExecutionID, ev.Envelope.Sequence, added, err)
		}
	}
	if added, err := projections.AddEvent(ctx, s, want[1]); err != nil || added {
		t.Fatalf("the same sequence archived twice: added %v, %v", added, err)
	}
	got, err := s.Events(ctx, "ex-1", 0)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("events (%v):\n got %+v\nwant %+v", err, got, want)
	}
	tail, err := s.Events(ctx, "ex-1", 1)
	if err != nil || !reflect.DeepEqual(tail, want[1:]) {
		t.Fatalf("events after 1 (%v): %+v", err, tail)
	}
	if none, err := s.Events(ctx, "ex-1", 3); err != nil || len(none) != 0 {
		t.Fatalf("events after the last: %v %v", none, err)
	}
	if one, ok, err := s.Event(ctx, "ex-1", 2); err != nil || !ok || !reflect.DeepEqual(one, want[1]) {
		t.Fatalf("event 2: %v %v %+v", ok, err, one)
	}
	if _, ok, err := s.Event(ctx, "ex-1", 4); err != nil || ok {
		t.Fatalf("event 4, never archived: %v %v", ok, err)
	}
}

// execution is a view of id created at created (every optional field set).
func execution(id, owner string, status domain.Status, created time.Time) domain.Execution {
	e := domain.Execution{ID: id, Status: status, Language: "python", Version: "3.11", SealedInput: "c2VhbGVkLWlucHV0",
		Owner: owner, Limits: domain.DefaultLimits, Sequence: 1, CreatedAt: created, UpdatedAt: created}
	if status.Terminal() {
		finished := created.Add(time.Second)
		e.Sequence, e.Attempt, e.Runner, e.SealedOutput, e.ExitCode = 3, 1, "runner-1", "c2VhbGVkLW91dHB1dA", domain.IntPtr(0)
		e.ResourceUsage = &domain.ResourceUsage{WallTimeMs: 12, CPUTimeMs: 9, PeakMemoryBytes: 7 << 20}
		e.StartedAt, e.FinishedAt, e.UpdatedAt = &created, &finished, finished
	}
	if status == domain.StatusFailed {
		e.FailureReason, e.ExitCode, e.Errors = domain.VerdictRuntimeErr, domain.IntPtr(3), "boom"
	}
	return e
}

func view(t *testing.T, s projections.Store) {
	ctx := context.Background()
	if _, err := s.View(ctx, "v"); domain.ErrorCode(err) != domain.ENOTFOUND {
		t.Fatalf("a view never saved: %v, want %s", err, domain.ENOTFOUND)
	}
	queued := execution("v", "alice", domain.StatusQueued, t0)
	if err := projections.SaveView(ctx, s, queued, 0); err != nil {
		t.Fatal(err)
	}
	if err := projections.SaveView(ctx, s, queued, 0); !errors.Is(err, projections.ErrStale) {
		t.Fatalf("a second first save: %v, want ErrStale", err)
	}
	done := execution("v", "alice", domain.StatusCompleted, t0)
	if err := projections.SaveView(ctx, s, done, 2); !errors.Is(err, projections.ErrStale) {
		t.Fatalf("a save expecting the wrong version: %v, want ErrStale", err)
	}
	if err := projections.SaveView(ctx, s, done, 1); err != nil {
		t.Fatal(err)
	}
	if got, err := s.View(ctx, "v"); err != nil || !reflect.DeepEqual(got, done) {
		t.Fatalf("view (%v):\n got %+v\nwant %+v", err, got, done)
	}
	failed := execution("w", "bob", domain.StatusFailed, t0)
	if err := projections.SaveView(ctx, s, failed, 0); err != nil {
		t.Fatal(err)
	}
	if got, err := s.View(ctx, "w"); err != nil || !reflect.DeepEqual(got, failed) {
		t.Fatalf("failed view (%v):\n got %+v\nwant %+v", err, got, failed)
	}
}

func ids(es []domain.Execution) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

func list(t *testing.T, s projections.Store) {
	ctx := context.Background()
	// a..e, one second apart; d and e at the same instant (ordered by id).
	for _, e := range []domain.Execution{
		execution("a", "alice", domain.StatusCompleted, t0),
		execution("b", "bob", domain.StatusFailed, t0.Add(time.Second)),
		execution("c", "alice", domain.StatusQueued, t0.Add(2*time.Second)),
		execution("d", "alice", domain.StatusCompleted, t0.Add(3*time.Second)),
		execution("e", "bob", domain.StatusCompleted, t0.Add(3*time.Second)),
	} {
		if err := projections.SaveView(ctx, s, e, 0); err != nil {
			t.Fatal(err)
		}
	}
	page := func(q projections.ListQuery, want string, wantMore bool) {
		t.Helper()
		got, more, err := s.List(ctx, q)
		if err != nil || fmt.Sprint(ids(got)) != want || more != wantMore {
			t.Fatalf("List %+v: %v more=%v (%v), want %s more=%v", q, ids(got), more, err, want, wantMore)
		}
	}
	page(projections.ListQuery{Limit: 10}, "[e d c b a]", false)
	page(projections.ListQuery{Limit: 2}, "[e d]", true)
	page(projections.ListQuery{Limit: 2, After: &projections.Cursor{CreatedAt: t0.Add(3 * time.Second), ID: "d"}}, "[c b]", true)
	page(projections.ListQuery{Limit: 2, After: &projections.Cursor{CreatedAt: t0.Add(time.Second), ID: "b"}}, "[a]", false)
	page(projections.ListQuery{Limit: 3, Status: domain.StatusCompleted}, "[e d a]", false)
	page(projections.ListQuery{Limit: 10, Owner: "alice"}, "[d c a]", false)
	page(projections.ListQuery{Limit: 10, Owner: "bob", Status: domain.StatusFailed}, "[b]", false)
	page(projections.ListQuery{Limit: 10, Owner: "carol"}, "[]", false)
	if _, _, err := s.List(ctx, projections.ListQuery{}); domain.ErrorCode(err) != domain.EINVALID {
		t.Fatalf("a list without a limit: %v, want %s", err, domain.EINVALID)
	}
}

func position(t *testing.T, s projections.Store) {
	ctx := context.Background()
	if p, err := s.Position(ctx, 0); err != nil || p != 0 {
		t.Fatalf("position of a partition never read: %d %v, want 0", p, err)
	}
	// One partition at a time, then several in one write (new and moved).
	for _, save := range []map[int32]int64{{0: 5}, {2: 7}, {0: 9}, {0: 12, 3: 4, 4: 1}} {
		if err := s.SavePositions(ctx, save); err != nil {
			t.Fatal(err)
		}
	}
	for partition, want := range map[int32]int64{0: 12, 1: 0, 2: 7, 3: 4, 4: 1} {
		if p, err := s.Position(ctx, partition); err != nil || p != want {
			t.Fatalf("position of %d: %d %v, want %d", partition, p, err, want)
		}
	}
}

// facts: a saved fact replaces the execution's earlier one; a query
// selects by [From, To) on created_at and by owner, every field intact.
func facts(t *testing.T, s projections.Store) {
	ctx := context.Background()
	ms := func(v int64) *int64 { return &v }
	queued := projections.Fact{ExecutionID: "ex-1", CreatedAt: t0, Owner: "alice", Language: "python", Version: "3.11",
		Status: domain.StatusQueued, Sequence: 1}
	failed := queued
	failed.Status, failed.Reason, failed.Sequence = domain.StatusFailed, domain.VerdictTimeout, 3
	failed.QueueWaitMs, failed.WallTimeMs, failed.CPUTimeMs, failed.PeakMemoryBytes = ms(4), ms(5000), ms(4900), ms(7<<20)
	bobs := projections.Fact{ExecutionID: "ex-2", CreatedAt: t0.Add(time.Second), Owner: "bob", Language: "python",
		Version: "3.12", Status: domain.StatusCompleted, Sequence: 3}
	later := projections.Fact{ExecutionID: "ex-3", CreatedAt: t0.Add(time.Hour), Owner: "alice", Language: "python",
		Version: "3.11", Status: domain.StatusRunning, Sequence: 2}
	for _, f := range []projections.Fact{queued, bobs, later, failed} {
		if err := projections.SaveFact(ctx, s, f); err != nil {
			t.Fatal(err)
		}
	}
	query := func(q projections.FactQuery) map[string]projections.Fact {
		t.Helper()
		got, err := s.Facts(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]projections.Fact{}
		for _, f := range got {
			out[f.ExecutionID] = f
		}
		if len(out) != len(got) {
			t.Fatalf("an execution has more than one fact: %+v", got)
		}
		return out
	}
	// From is in the range, To is not.
	got := query(projections.FactQuery{From: t0, To: t0.Add(time.Hour)})
	if len(got) != 2 {
		t.Fatalf("facts of the first hour: %v, want ex-1 and ex-2", got)
	}
	f := got["ex-1"]
	if !f.CreatedAt.Equal(failed.CreatedAt) {
		t.Fatalf("created_at %s, want %s", f.CreatedAt, failed.CreatedAt)
	}
	f.CreatedAt = failed.CreatedAt
	if !reflect.DeepEqual(f, failed) {
		t.Fatalf("the fact of ex-1:\n got %+v\nwant %+v (the last saved)", f, failed)
	}
	if got := query(projections.FactQuery{From: t0, To: t0.Add(2 * time.Hour), Owner: "alice"}); len(got) != 2 ||
		got["ex-1"].ExecutionID == "" || got["ex-3"].ExecutionID == "" {
		t.Fatalf("alice's facts: %v, want ex-1 and ex-3", got)
	}
	if got := query(projections.FactQuery{From: t0.Add(time.Nanosecond), To: t0.Add(time.Hour)}); len(got) != 1 || got["ex-2"].Owner != "bob" {
		t.Fatalf("facts from a nanosecond after ex-1: %v, want ex-2 alone", got)
	}
}

// batches: the many-item writes answer item by item what the one-item
// forms answer, including for items that collide within one call.
func batches(t *testing.T, s projections.Store) {
	ctx := context.Background()
	a, b := Chain(t, "ba"), Chain(t, "bb")
	// a's first two, b's first, and a's first again: the copy is refused.
	added, err := s.AddEvents(ctx, []projections.ArchivedEvent{a[0], a[1], b[0], a[0]})
	if err != nil || fmt.Sprint(added) != "[true true true false]" {
		t.Fatalf("first batch: added %v (%v), want [true true true false]", added, err)
	}
	added, err = s.AddEvents(ctx, []projections.ArchivedEvent{a[1], a[2], b[1]})
	if err != nil || fmt.Sprint(added) != "[false true true]" {
		t.Fatalf("second batch: added %v (%v), want [false true true]", added, err)
	}
	if got, err := s.Events(ctx, "ba", 0); err != nil || !reflect.DeepEqual(got, a) {
		t.Fatalf("events of ba after the batches (%v): %d, want the chain", err, len(got))
	}
	if added, err := s.AddEvents(ctx, nil); err != nil || len(added) != 0 {
		t.Fatalf("an empty batch: %v %v", added, err)
	}

	x1, y1 := execution("bx", "alice", domain.StatusQueued, t0), execution("by", "bob", domain.StatusQueued, t0)
	stale, err := s.SaveViews(ctx, []projections.ViewWrite{{View: x1}, {View: y1}})
	if err != nil || fmt.Sprint(stale) != "[false false]" {
		t.Fatalf("two new views: stale %v (%v)", stale, err)
	}
	x3, y3 := execution("bx", "alice", domain.StatusCompleted, t0), execution("by", "bob", domain.StatusFailed, t0)
	z1 := execution("bz", "carol", domain.StatusQueued, t0)
	// bx moves on from 1; by is expected at 2 but is at 1; bz is new; and
	// a "new" bx-like view that exists already is stale.
	stale, err = s.SaveViews(ctx, []projections.ViewWrite{{View: x3, Expected: 1}, {View: y3, Expected: 2}, {View: z1},
		{View: execution("by-not", "bob", domain.StatusQueued, t0)}})
	if err != nil || fmt.Sprint(stale) != "[false true false false]" {
		t.Fatalf("mixed batch: stale %v (%v), want [false true false false]", stale, err)
	}
	stale, err = s.SaveViews(ctx, []projections.ViewWrite{{View: z1}})
	if err != nil || fmt.Sprint(stale) != "[true]" {
		t.Fatalf("a new view that exists: stale %v (%v), want [true]", stale, err)
	}
	for id, want := range map[string]domain.Execution{"bx": x3, "by": y1, "bz": z1} {
		if got, err := s.View(ctx, id); err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("view %s after the batches (%v):\n got %+v\nwant %+v", id, err, got, want)
		}
	}
	if _, err := s.SaveViews(ctx, []projections.ViewWrite{{View: x3, Expected: 3}, {View: x3, Expected: 3}}); err == nil {
		t.Fatal("one execution twice in a batch was accepted")
	}

	f1 := projections.Fact{ExecutionID: "bx", CreatedAt: t0, Owner: "alice", Language: "python", Version: "3.11",
		Status: domain.StatusQueued, Sequence: 1}
	if err := s.SaveFacts(ctx, []projections.Fact{f1}); err != nil {
		t.Fatal(err)
	}
	f3, g1 := f1, f1
	f3.Status, f3.Sequence = domain.StatusCompleted, 3
	g1.ExecutionID = "bz"
	if err := s.SaveFacts(ctx, []projections.Fact{f3, g1}); err != nil { // one replaced, one new
		t.Fatal(err)
	}
	got, err := s.Facts(ctx, projections.FactQuery{From: t0, To: t0.Add(time.Second)})
	if err != nil || len(got) != 2 {
		t.Fatalf("facts after a batch: %+v (%v), want bx and bz", got, err)
	}
	for _, f := range got {
		want := map[string]projections.Fact{"bx": f3, "bz": g1}[f.ExecutionID]
		if f.Status != want.Status || f.Sequence != want.Sequence {
			t.Fatalf("fact %s: %+v, want %+v", f.ExecutionID, f, want)
		}
	}
}
