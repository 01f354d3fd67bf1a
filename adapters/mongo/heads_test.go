package mongo

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/eventstore"
)

func sampleHead(id string) eventstore.Head {
	return eventstore.Head{
		State: sampleExecution(id), Hash: "abc123",
		Pending:    []string{`{"event_id":"e2"}`, `{"event_id":"e3"}`},
		LeaseOwner: "runner-1", LeaseUntil: at(time.Minute), UpdatedAt: at(3 * time.Second),
	}
}

func forEachBackend(t *testing.T, f func(t *testing.T, d *DB)) {
	for _, b := range backends {
		t.Run(string(b), func(t *testing.T) { f(t, newTestDB(t, b)) })
	}
}

func mustGet(t *testing.T, h *Heads, id string) eventstore.Head {
	t.Helper()
	got, err := h.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestHeadsRoundTrip(t *testing.T) {
	forEachBackend(t, func(t *testing.T, d *DB) {
		ctx := context.Background()
		h := NewHeads(d)
		queued := eventstore.Head{State: queuedExecution("q", at(0)), Hash: "h1", UpdatedAt: at(0)}
		failed := sampleHead("f")
		failed.State = failedExecution("f")
		for _, want := range []eventstore.Head{sampleHead("c"), failed, queued} {
			if err := h.Insert(ctx, want); err != nil {
				t.Fatal(err)
			}
			got := mustGet(t, h, want.State.ID)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("round trip of %s:\n got %+v\nwant %+v", want.State.ID, got, want)
			}
		}
		got := mustGet(t, h, "c")
		if got.State.ExitCode == nil || *got.State.ExitCode != 0 {
			t.Errorf("exit code 0 came back as %v", got.State.ExitCode)
		}
		if got.State.CreatedAt.Nanosecond() != t0.Nanosecond() || got.State.CreatedAt.Location() != time.UTC {
			t.Errorf("created_at %v lost precision or zone", got.State.CreatedAt)
		}
		if got := mustGet(t, h, "q"); got.State.StartedAt != nil || got.Pending != nil || !got.LeaseUntil.IsZero() {
			t.Errorf("nil and zero fields did not stay so: %+v", got)
		}

		// The stored shape, as another tool (or a shell) sees it: version 1
		// of the head, and the pointer to it.
		var raw bson.Raw
		if err := d.Database().Collection(CollHeadVersions).FindOne(ctx, bson.D{{Key: "_id", Value: "c/000000000001"}}).Decode(&raw); err != nil {
			t.Fatal(err)
		}
		for field, want := range map[string]bson.Type{
			"execution_id": bson.TypeString, "rev": bson.TypeInt64,
			"seq": bson.TypeInt64, "state": bson.TypeEmbeddedDocument, "hash": bson.TypeString,
			"pending": bson.TypeArray, "pending_count": bson.TypeInt32, "lease_owner": bson.TypeString,
			"lease_until": bson.TypeString, "updated_at": bson.TypeString, "terminal": bson.TypeBoolean,
			"published": bson.TypeBoolean, "writer": bson.TypeString,
		} {
			if got := raw.Lookup(field).Type; got != want {
				t.Errorf("field %s is BSON %s, want %s", field, got, want)
			}
		}
		if s := raw.Lookup("state", "created_at").StringValue(); s != "2025-03-14T15:09:26.535897932Z" {
			t.Errorf("state.created_at stored as %q", s)
		}
		if id := raw.Lookup("state", "_id").StringValue(); id != "c" {
			t.Errorf("state._id stored as %q", id)
		}
		var p pointerDoc
		if err := d.Database().Collection(CollHeads).FindOne(ctx, bson.D{{Key: "_id", Value: "c"}}).Decode(&p); err != nil {
			t.Fatal(err)
		}
		if p != (pointerDoc{ID: "c", Rev: 1, Seq: 3}) {
			t.Errorf("pointer %+v", p)
		}
	})
}

func TestHeadsInsertTwiceIsStale(t *testing.T) {
	forEachBackend(t, func(t *testing.T, d *DB) {
		ctx := context.Background()
		h := NewHeads(d)
		first := sampleHead("x")
		if err := h.Insert(ctx, first); err != nil {
			t.Fatal(err)
		}
		second := sampleHead("x")
		second.Hash = "other"
		if err := h.Insert(ctx, second); !errors.Is(err, eventstore.ErrStale) {
			t.Fatalf("second insert: %v, want ErrStale", err)
		}
		if got := mustGet(t, h, "x"); got.Hash != first.Hash {
			t.Errorf("the second insert changed the head: %s", got.Hash)
		}
	})
}

func TestHeadsGetMissing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, d *DB) {
		_, err := NewHeads(d).Get(context.Background(), "nope")
		if domain.ErrorCode(err) != domain.ENOTFOUND {
			t.Fatalf("got %v, want ENOTFOUND", err)
		}
	})
}

func TestHeadsReplace(t *testing.T) {
	forEachBackend(t, func(t *testing.T, d *DB) {
		ctx := context.Background()
		h := NewHeads(d)
		cur := sampleHead("r") // at seq 3
		if err := h.Insert(ctx, cur); err != nil {
			t.Fatal(err)
		}
		next := cur
		next.State.Sequence, next.Hash = 4, "h4"
		next.Pending = append(append([]string{}, cur.Pending...), `{"event_id":"e4"}`)
		if err := h.Replace(ctx, 2, next); !errors.Is(err, eventstore.ErrStale) {
			t.Fatalf("replace at a wrong seq: %v, want ErrStale", err)
		}
		if err := h.Replace(ctx, 3, next); err != nil {
			t.Fatal(err)
		}
		if got := mustGet(t, h, "r"); !reflect.DeepEqual(got, next) {
			t.Errorf("after replace:\n got %+v\nwant %+v", got, next)
		}
		if err := h.Replace(ctx, 3, next); !errors.Is(err, eventstore.ErrStale) {
			t.Fatalf("replace at the old seq again: %v, want ErrStale", err)
		}
		// Same sequence, new lease: a decision that appends nothing.
		lease := next
		lease.LeaseOwner, lease.LeaseUntil = "runner-2", at(time.Hour)
		if err := h.Replace(ctx, 4, lease); err != nil {
			t.Fatal(err)
		}
		missing := sampleHead("ghost")
		if err := h.Replace(ctx, 3, missing); !errors.Is(err, eventstore.ErrStale) {
			t.Fatalf("replace of a missing head: %v, want ErrStale", err)
		}
	})
}

func TestHeadsRenew(t *testing.T) {
	forEachBackend(t, func(t *testing.T, d *DB) {
		ctx := context.Background()
		h := NewHeads(d)
		cur := sampleHead("l")
		if err := h.Insert(ctx, cur); err != nil {
			t.Fatal(err)
		}
		until := at(2 * time.Minute)
		if err := h.Renew(ctx, "l", 3, "runner-1", until); err != nil {
			t.Fatal(err)
		}
		got := mustGet(t, h, "l")
		if !got.LeaseUntil.Equal(until) || got.LeaseUntil.Nanosecond() != until.Nanosecond() {
			t.Errorf("lease until %v, want %v", got.LeaseUntil, until)
		}
		if !got.UpdatedAt.Equal(cur.UpdatedAt) || got.Hash != cur.Hash || len(got.Pending) != 2 {
			t.Errorf("renew changed more than the lease: %+v", got)
		}
		for _, c := range []struct {
			seq   int64
			owner string
		}{{3, "runner-2"}, {2, "runner-1"}, {4, "runner-1"}} {
			if err := h.Renew(ctx, "l", c.seq, c.owner, at(time.Hour)); !errors.Is(err, eventstore.ErrStale) {
				t.Errorf("renew seq %d owner %s: %v, want ErrStale", c.seq, c.owner, err)
			}
		}
		if err := h.Renew(ctx, "ghost", 1, "runner-1", at(time.Hour)); !errors.Is(err, eventstore.ErrStale) {
			t.Errorf("renew of a missing head: %v, want ErrStale", err)
		}
		if got := mustGet(t, h, "l"); !got.LeaseUntil.Equal(until) {
			t.Errorf("a refused renew moved the lease to %v", got.LeaseUntil)
		}
	})
}

func TestHeadsClearPendingOnlyAtSameSeq(t *testing.T) {
	forEachBackend(t, func(t *testing.T, d *DB) {
		ctx := context.Background()
		h := NewHeads(d)
		cur := sampleHead("p") // seq 3, two pending
		if err := h.Insert(ctx, cur); err != nil {
			t.Fatal(err)
		}
		if err := h.ClearPending(ctx, "p", 2); err != nil {
			t.Fatal(err)
		}
		if got := mustGet(t, h, "p"); len(got.Pending) != 2 {
			t.Errorf("clear at an old seq emptied pending: %v", got.Pending)
		}
		if err := h.ClearPending(ctx, "p", 3); err != nil {
			t.Fatal(err)
		}
		got := mustGet(t, h, "p")
		if got.Pending != nil {
			t.Errorf("pending after clear: %v", got.Pending)
		}
		want := cur
		want.Pending = nil
		if !reflect.DeepEqual(got, want) {
			t.Errorf("clear changed more than pending:\n got %+v\nwant %+v", got, want)
		}
		if err := h.ClearPending(ctx, "ghost", 1); err != nil {
			t.Errorf("clear of a missing head: %v, want a no-op", err)
		}
	})
}

func TestHeadsUnsettled(t *testing.T) {
	forEachBackend(t, func(t *testing.T, d *DB) {
		ctx := context.Background()
		h := NewHeads(d)
		mk := func(id string, st domain.Execution, pending []string, updated time.Duration) {
			hd := eventstore.Head{State: st, Hash: id, Pending: pending, UpdatedAt: at(updated)}
			hd.State.ID = id
			if err := h.Insert(ctx, hd); err != nil {
				t.Fatal(err)
			}
		}
		done := sampleExecution("")
		running := queuedExecution("", at(0))
		running.Status = domain.StatusRunning
		mk("settled-old", done, nil, 0)
		mk("queued", queuedExecution("", at(0)), nil, 4*time.Second)
		mk("done-pending", done, []string{"{}"}, 1*time.Second)
		mk("running", running, nil, 2*time.Second)
		mk("settled-new", done, nil, 5*time.Second)
		mk("running-pending", running, []string{"{}", "{}"}, 3*time.Second)

		ids := func(limit int) []string {
			hs, err := h.Unsettled(ctx, limit)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, x := range hs {
				out = append(out, x.State.ID)
			}
			return out
		}
		want := []string{"done-pending", "running", "running-pending", "queued"}
		if got := ids(10); !reflect.DeepEqual(got, want) {
			t.Errorf("unsettled: %v, want %v", got, want)
		}
		if got := ids(2); !reflect.DeepEqual(got, want[:2]) {
			t.Errorf("unsettled limit 2: %v, want %v", got, want[:2])
		}
		if got := ids(0); got != nil {
			t.Errorf("unsettled limit 0: %v", got)
		}
		// Clearing the pending of a terminal head settles it.
		if err := h.ClearPending(ctx, "done-pending", 3); err != nil {
			t.Fatal(err)
		}
		if got := ids(10); !reflect.DeepEqual(got, want[1:]) {
			t.Errorf("after clearing: %v, want %v", got, want[1:])
		}
	})
}

// TestHeadsReplaceIsAtomic races writers of one process that all read the
// head at the same sequence: exactly one may win. TestHeadsAcrossProcesses
// does the same with a DB per writer.
func TestHeadsReplaceIsAtomic(t *testing.T) {
	d := newTestDB(t, backendEmbedded)
	ctx := context.Background()
	h := NewHeads(d)
	for round := range 5 {
		id := fmt.Sprintf("race-%d", round)
		if err := h.Insert(ctx, sampleHead(id)); err != nil {
			t.Fatal(err)
		}
		winners := raceReplace(t, h, id, 16)
		if len(winners) != 1 {
			t.Fatalf("round %d: %d writers won: %v", round, len(winners), winners)
		}
		if got := mustGet(t, h, id); got.Hash != winners[0] {
			t.Errorf("stored hash %s, winner %s", got.Hash, winners[0])
		}
	}
}

// raceReplace starts n writers replacing head id from seq 3 to 4, each with
// its own hash, and returns the hashes of those that were not refused.
func raceReplace(t *testing.T, h *Heads, id string, n int) []string {
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners []string
		start   = make(chan struct{})
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := sampleHead(id)
			next.State.Sequence, next.Hash = 4, fmt.Sprintf("writer-%d", i)
			<-start
			err := h.Replace(context.Background(), 3, next)
			switch {
			case err == nil:
				mu.Lock()
				winners = append(winners, next.Hash)
				mu.Unlock()
			case !errors.Is(err, eventstore.ErrStale):
				t.Error(err)
			}
		}()
	}
	close(start)
	wg.Wait()
	return winners
}

// BenchmarkHeadsReplace measures one append to a head among 20k heads on
// FerretDB. Heads take one path on every backend; the backends differ only
// in how Unsettled lists, so this is also the MongoDB code path.
func BenchmarkHeadsReplace(b *testing.B) {
	const n = 20000
	ctx := context.Background()
	for _, be := range backends {
		d := newTestDB(b, be)
		h := NewHeads(d)
		fillHeads(b, h, n, func(i int) eventstore.Head { return sampleHead(fmt.Sprintf("head-%06d", i)) })
		b.Run(fmt.Sprintf("%s_path/%dk_heads", be, n/1000), func(b *testing.B) {
			next, err := h.Get(ctx, "head-012345")
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				expected := next.State.Sequence
				next.State.Sequence++
				if err := h.Replace(ctx, expected, next); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkHeadsGet measures reading a head (owned by a runner, so with its
// lease) among 20k heads.
func BenchmarkHeadsGet(b *testing.B) {
	const n = 20000
	ctx := context.Background()
	for _, be := range []backend{backendEmbedded, backendFerret} {
		d := newTestDB(b, be)
		h := NewHeads(d)
		fillHeads(b, h, n, func(i int) eventstore.Head { return sampleHead(fmt.Sprintf("head-%06d", i)) })
		b.Run(fmt.Sprintf("%s_path/%dk_heads", be, n/1000), func(b *testing.B) {
			i := 0
			for b.Loop() {
				if _, err := h.Get(ctx, fmt.Sprintf("head-%06d", (i*7919)%n)); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// fillHeads stores n heads as Insert would (version 1, its unsettled
// document if unsettled, the pointer), in bulk.
func fillHeads(tb testing.TB, h *Heads, n int, mk func(i int) eventstore.Head) {
	tb.Helper()
	ctx := context.Background()
	var versions, marks, pointers []any
	flush := func() {
		for coll, docs := range map[*mongo.Collection][]any{h.versions: versions, h.unsettled: marks, h.pointers: pointers} {
			if len(docs) > 0 {
				if _, err := coll.InsertMany(ctx, docs); err != nil {
					tb.Fatal(err)
				}
			}
		}
		versions, marks, pointers = versions[:0], marks[:0], pointers[:0]
	}
	for i := range n {
		v, err := newVersion(mk(i), 1, "fill")
		if err != nil {
			tb.Fatal(err)
		}
		versions = append(versions, v)
		if !v.settled() {
			marks = append(marks, unsettledDoc{ID: v.ID, ExecutionID: v.ExecutionID, Rev: 1, UpdatedAt: v.UpdatedAt})
		}
		pointers = append(pointers, pointerDoc{ID: v.ExecutionID, Rev: 1, Seq: v.Seq})
		if len(versions) == 1000 {
			flush()
		}
	}
	flush()
}
