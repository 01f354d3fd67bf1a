package mongo

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/eventstore"
	"github.com/integr8scode/integr8scode/projections"
)

func TestProjectionsEventsRoundTrip(t *testing.T) {
	forEachBackend(t, func(t *testing.T, d *DB) {
		ctx := context.Background()
		p := NewProjections(d)
		want := chain(t, "ex-1")
		_ = chain(t, "ex-10") // a neighbour whose keys share the prefix "ex-1"
		for _, id := range []string{"ex-10", "ex-1"} {
			for _, ev := range chain(t, id) {
				added, err := projections.AddEvent(ctx, p, ev)
				if err != nil || !added {
					t.Fatalf("add %s/%d: %v %v", id, ev.Envelope.Sequence, added, err)
				}
			}
		}
		got, err := p.Events(ctx, "ex-1", 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := eventstore.VerifyChain(testKeys, envelopes(got)); err != nil {
			t.Errorf("chain after the round trip: %v", err)
		}
		// Envelope, record bytes, partition and offset.
		if !reflect.DeepEqual(got, want) {
			t.Errorf("events:\n got %+v\nwant %+v", got, want)
		}
		for _, w := range want {
			one, ok, err := p.Event(ctx, "ex-1", w.Envelope.Sequence)
			if err != nil || !ok || !reflect.DeepEqual(one, w) {
				t.Errorf("event %d: ok=%v err=%v\n got %+v\nwant %+v", w.Envelope.Sequence, ok, err, one, w)
			}
		}
		if _, ok, err := p.Event(ctx, "ex-1", 4); err != nil || ok {
			t.Errorf("event after the last: ok=%v err=%v, want false, nil", ok, err)
		}
		tail, err := p.Events(ctx, "ex-1", 1)
		if err != nil || len(tail) != 2 || tail[0].Envelope.Sequence != 2 || tail[1].Envelope.Sequence != 3 {
			t.Errorf("events after 1: %v %v", tail, err)
		}
		if none, err := p.Events(ctx, "ex-1", 3); err != nil || len(none) != 0 {
			t.Errorf("events after the last: %v %v", none, err)
		}
		if none, err := p.Events(ctx, "nobody", 0); err != nil || len(none) != 0 {
			t.Errorf("events of an unknown execution: %v %v", none, err)
		}
	})
}

// TestArchiveKeepsForeignRecordByteForByte archives a record written by
// another tool — its own key order, whitespace and needless escapes — and
// gets exactly those bytes back, with their place in the log. Re-encoding
// the envelope would give other bytes: an export would no longer show what
// the ledger holds.
func TestArchiveKeepsForeignRecordByteForByte(t *testing.T) {
	record := `{ "type": "ExecutionQueued", "sequence": 1, "event_id": "foreign-e1",
  "schema_version": 1, "execution_id": "foreign",
  "occurred_at": "2025-03-14T15:09:26.5Z", "correlation_id": "", "causation_id": "", "actor": "alice",
  "prev_hash": "", "key_id": "` + testSigner.KeyID() + `",
  "data": { "script": "print(\"\u003c\/p\u003e \u00e9 \ud83d\ude00\")", "language": "python", "version": "3.12",
            "limits": {"timeout_ms": 5000, "memory_bytes": 134217728, "cpu_millicores": 100}, "owner": "alice" } }`
	hash, err := eventstore.HashRecord([]byte(record))
	if err != nil {
		t.Fatal(err)
	}
	digest, _ := hex.DecodeString(hash)
	// The ledger's signature encoding (eventstore.encodeSignature).
	sig := base64.RawURLEncoding.EncodeToString(testSigner.Sign(digest))
	record = strings.TrimSuffix(record, " }") + `, "hash": "` + hash + `", "signature": "` + sig + `" }`
	env, _, problem := eventstore.CheckRecord(testKeys, []byte(record), "")
	if problem != nil {
		t.Fatalf("the foreign record does not verify: %v", problem)
	}
	if again, _ := env.Record(); bytes.Equal(again, []byte(record)) {
		t.Fatal("the record is in this code's own form; the test proves nothing")
	}
	want := projections.ArchivedEvent{Envelope: env, Record: []byte(record), Partition: 11, Offset: 1<<40 + 7}

	forEachBackend(t, func(t *testing.T, d *DB) {
		ctx := context.Background()
		p := NewProjections(d)
		if added, err := projections.AddEvent(ctx, p, want); err != nil || !added {
			t.Fatalf("add: %v %v", added, err)
		}
		one, ok, err := p.Event(ctx, "foreign", 1)
		if err != nil || !ok {
			t.Fatalf("event: ok=%v err=%v", ok, err)
		}
		all, err := p.Events(ctx, "foreign", 0)
		if err != nil || len(all) != 1 {
			t.Fatalf("events: %d %v", len(all), err)
		}
		for name, got := range map[string]projections.ArchivedEvent{"Event": one, "Events": all[0]} {
			if !bytes.Equal(got.Record, want.Record) {
				t.Errorf("%s: record\n got %s\nwant %s", name, got.Record, want.Record)
			}
			if got.Partition != want.Partition || got.Offset != want.Offset {
				t.Errorf("%s: at %d:%d, want %d:%d", name, got.Partition, got.Offset, want.Partition, want.Offset)
			}
			if !reflect.DeepEqual(got.Envelope, want.Envelope) {
				t.Errorf("%s: envelope\n got %+v\nwant %+v", name, got.Envelope, want.Envelope)
			}
			if _, _, problem := eventstore.CheckRecord(testKeys, got.Record, ""); problem != nil {
				t.Errorf("%s: the archived record no longer verifies: %v", name, problem)
			}
		}
	})
}

// TestArchiveRefusesRecordOfAnotherEvent: the archive stores the record and
// files it under the envelope's execution and sequence, so the two must be
// the same event.
func TestArchiveRefusesRecordOfAnotherEvent(t *testing.T) {
	p := NewProjections(newTestDB(t, backendEmbedded))
	ctx := context.Background()
	evs := chain(t, "mixed")
	for name, ev := range map[string]projections.ArchivedEvent{
		"record of another sequence": {Envelope: evs[1].Envelope, Record: evs[0].Record},
		"record of another chain":    {Envelope: evs[0].Envelope, Record: chain(t, "other")[0].Record},
		"no record":                  {Envelope: evs[0].Envelope},
	} {
		if added, err := projections.AddEvent(ctx, p, ev); err == nil || added {
			t.Errorf("%s: added=%v err=%v, want an error", name, added, err)
		}
	}
	if got, err := p.Events(ctx, "mixed", 0); err != nil || len(got) != 0 {
		t.Errorf("archive after refusals: %d events, %v", len(got), err)
	}
}

func TestProjectionsDuplicateEvent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, d *DB) {
		ctx := context.Background()
		p := NewProjections(d)
		evs := chain(t, "dup")
		if added, err := projections.AddEvent(ctx, p, evs[0]); err != nil || !added {
			t.Fatalf("first add: %v %v", added, err)
		}
		again := evs[0]
		again.Partition, again.Offset = 4, 99 // delivered again, from elsewhere
		if added, err := projections.AddEvent(ctx, p, again); err != nil || added {
			t.Fatalf("same event again: added=%v err=%v, want false, nil", added, err)
		}
		// A different event claiming the same sequence does not replace it.
		other := evs[0].Envelope
		other.Actor = "mallory"
		fork := sealed(t, other, "", 100)
		if added, err := projections.AddEvent(ctx, p, fork); err != nil || added {
			t.Fatalf("another event at seq 1: added=%v err=%v, want false, nil", added, err)
		}
		got, err := p.Events(ctx, "dup", 0)
		if err != nil || len(got) != 1 || !reflect.DeepEqual(got[0], evs[0]) {
			t.Errorf("archive after duplicates: %+v %v", got, err)
		}
	})
}

// TestProjectionsEventsAfterGap pins down the one difference of the paths:
// the embedded server and MongoDB return every later event, a FerretDB
// without the SQLite index the gap-free prefix.
func TestProjectionsEventsAfterGap(t *testing.T) {
	forEachBackend(t, func(t *testing.T, d *DB) {
		ctx := context.Background()
		p := NewProjections(d)
		evs := chain(t, "gap")
		for _, ev := range []projections.ArchivedEvent{evs[0], evs[2]} {
			if _, err := projections.AddEvent(ctx, p, ev); err != nil {
				t.Fatal(err)
			}
		}
		got, err := p.Events(ctx, "gap", 0)
		if err != nil {
			t.Fatal(err)
		}
		want := 2
		if d.dialect.name() == "ferretdb" {
			want = 1
		}
		if len(got) != want || got[0].Envelope.Sequence != 1 {
			t.Errorf("%d events, want %d", len(got), want)
		}
	})
}

func TestProjectionsSaveView(t *testing.T) {
	forEachBackend(t, func(t *testing.T, d *DB) {
		ctx := context.Background()
		p := NewProjections(d)
		if _, err := p.View(ctx, "v"); domain.ErrorCode(err) != domain.ENOTFOUND {
			t.Fatalf("missing view: %v, want ENOTFOUND", err)
		}
		v1 := queuedExecution("v", at(0))
		if err := projections.SaveView(ctx, p, v1, 0); err != nil {
			t.Fatal(err)
		}
		if err := projections.SaveView(ctx, p, v1, 0); !errors.Is(err, projections.ErrStale) {
			t.Fatalf("second first save: %v, want ErrStale", err)
		}
		v3 := sampleExecution("v") // version_seq 3
		if err := projections.SaveView(ctx, p, v3, 2); !errors.Is(err, projections.ErrStale) {
			t.Fatalf("save at a wrong seq: %v, want ErrStale", err)
		}
		if err := projections.SaveView(ctx, p, v3, 1); err != nil {
			t.Fatal(err)
		}
		got, err := p.View(ctx, "v")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, v3) {
			t.Errorf("view:\n got %+v\nwant %+v", got, v3)
		}
		if err := projections.SaveView(ctx, p, v3, 1); !errors.Is(err, projections.ErrStale) {
			t.Fatalf("save at the old seq again: %v, want ErrStale", err)
		}
		f := failedExecution("w")
		f.Sequence = 1
		if err := projections.SaveView(ctx, p, f, 0); err != nil {
			t.Fatal(err)
		}
		if got, _ := p.View(ctx, "w"); !reflect.DeepEqual(got, f) {
			t.Errorf("failed view:\n got %+v\nwant %+v", got, f)
		}
	})
}

func TestProjectionsSaveViewIsAtomic(t *testing.T) {
	d := newTestDB(t, backendEmbedded)
	ctx := context.Background()
	p := NewProjections(d)
	if err := projections.SaveView(ctx, p, queuedExecution("race", at(0)), 0); err != nil {
		t.Fatal(err)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins int
	)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := sampleExecution("race")
			v.Runner = fmt.Sprint(i)
			err := projections.SaveView(ctx, p, v, 1)
			if err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			} else if !errors.Is(err, projections.ErrStale) {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Errorf("%d writers won", wins)
	}
}

func TestProjectionsList(t *testing.T) {
	forEachBackend(t, func(t *testing.T, d *DB) {
		ctx := context.Background()
		p := NewProjections(d)
		// 25 executions: pairs share a created_at (the id breaks the tie),
		// and some differ by a single nanosecond (the order must see it).
		var all []domain.Execution
		statuses := []domain.Status{domain.StatusQueued, domain.StatusRunning, domain.StatusCompleted, domain.StatusFailed}
		for i := range 25 {
			created := at(time.Duration(i/2) * time.Millisecond)
			if i%5 == 4 {
				created = created.Add(time.Nanosecond)
			}
			v := queuedExecution(fmt.Sprintf("id-%02d", (i*7)%25), created) // ids not in time order
			v.Status = statuses[i%4]
			if i%3 == 0 {
				v.Owner = "bob"
			}
			if err := projections.SaveView(ctx, p, v, 0); err != nil {
				t.Fatal(err)
			}
			all = append(all, v)
		}
		newestFirst := func(xs []domain.Execution) []string {
			xs = append([]domain.Execution{}, xs...)
			sort.Slice(xs, func(i, j int) bool {
				if !xs[i].CreatedAt.Equal(xs[j].CreatedAt) {
					return xs[i].CreatedAt.After(xs[j].CreatedAt)
				}
				return xs[i].ID > xs[j].ID
			})
			var ids []string
			for _, x := range xs {
				ids = append(ids, x.ID)
			}
			return ids
		}
		pages := func(q projections.ListQuery) ([]string, []int) {
			var ids []string
			var sizes []int
			for range 10 {
				items, more, err := p.List(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				sizes = append(sizes, len(items))
				for _, x := range items {
					ids = append(ids, x.ID)
				}
				if !more {
					return ids, sizes
				}
				last := items[len(items)-1]
				q.After = &projections.Cursor{CreatedAt: last.CreatedAt, ID: last.ID}
			}
			t.Fatal("pagination did not end")
			return nil, nil
		}

		ids, sizes := pages(projections.ListQuery{Limit: 10})
		if !reflect.DeepEqual(sizes, []int{10, 10, 5}) {
			t.Errorf("page sizes %v, want [10 10 5]", sizes)
		}
		if want := newestFirst(all); !reflect.DeepEqual(ids, want) {
			t.Errorf("order:\n got %v\nwant %v", ids, want)
		}

		var failed, bobs []domain.Execution
		for _, x := range all {
			if x.Status == domain.StatusFailed {
				failed = append(failed, x)
			}
			if x.Owner == "bob" {
				bobs = append(bobs, x)
			}
		}
		if ids, _ := pages(projections.ListQuery{Limit: 2, Status: domain.StatusFailed}); !reflect.DeepEqual(ids, newestFirst(failed)) {
			t.Errorf("status filter: %v, want %v", ids, newestFirst(failed))
		}
		if ids, _ := pages(projections.ListQuery{Limit: 3, Owner: "bob"}); !reflect.DeepEqual(ids, newestFirst(bobs)) {
			t.Errorf("owner filter: %v, want %v", ids, newestFirst(bobs))
		}
		items, more, err := p.List(ctx, projections.ListQuery{Limit: 25})
		if err != nil || more || len(items) != 25 {
			t.Errorf("exactly 25: %d items, more=%v, err=%v", len(items), more, err)
		}
		if !reflect.DeepEqual(items[0], viewByID(all, items[0].ID)) {
			t.Errorf("listed item differs from the saved view")
		}
		if _, _, err := p.List(ctx, projections.ListQuery{}); domain.ErrorCode(err) != domain.EINVALID {
			t.Errorf("limit 0: %v, want EINVALID", err)
		}
	})
}

func viewByID(xs []domain.Execution, id string) domain.Execution {
	for _, x := range xs {
		if x.ID == id {
			return x
		}
	}
	return domain.Execution{}
}

// BenchmarkProjectHistories: the projector over the embedded store, fed
// as under load: b.N executions' histories (queued, started, completed)
// arrive in three waves of batches of 50, as a partition's fetches bring
// them while many executions run at once. Each wave after the first
// updates views that exist.
func BenchmarkProjectHistories(b *testing.B) {
	const batch = 50
	ctx := context.Background()
	p := NewProjections(newTestDB(b, backendEmbedded))
	proj := newProjector(p, &parkedLog{})
	hs := make([][]projections.ArchivedEvent, b.N)
	for i := range hs {
		hs[i] = chain(b, fmt.Sprintf("h-%08d", i))
	}
	b.ResetTimer()
	for wave := range 3 {
		for i := 0; i < b.N; i += batch {
			var ds []projections.Delivery
			for j := i; j < min(i+batch, b.N); j++ {
				ds = append(ds, delivery(hs[j][wave]))
			}
			if err := proj.HandleBatch(ctx, ds); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "executions/s")
	if v, err := p.View(ctx, fmt.Sprintf("h-%08d", b.N-1)); err != nil || v.Status != domain.StatusCompleted {
		b.Fatalf("last view: %+v %v", v, err)
	}
}
