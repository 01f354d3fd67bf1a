package mongo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/eventstore"
	"github.com/integr8scode/integr8scode/projections"
)

// chain builds a real, sealed history of one execution: queued, started,
// completed with exit code 0, at nanosecond times.
func chain(t *testing.T, id string) []eventstore.Envelope {
	t.Helper()
	evs := []domain.Event{
		domain.ExecutionQueued{Language: "python", Version: "3.12", Script: "print('hi')", Limits: domain.DefaultLimits, Owner: "alice"},
		domain.ExecutionStarted{Runner: "runner-1", Sandbox: "sb-1", Attempt: 1, Limits: domain.DefaultLimits},
		domain.ExecutionCompleted{Result: domain.Result{Verdict: domain.VerdictCompleted, ExitCode: domain.IntPtr(0),
			Stdout: "hi\n", Usage: domain.ResourceUsage{WallTimeMs: 31, CPUTimeMs: 20, PeakMemoryBytes: 9 << 20}}},
	}
	var out []eventstore.Envelope
	prev := ""
	for i, ev := range evs {
		data, err := eventstore.Encode(ev)
		if err != nil {
			t.Fatal(err)
		}
		env := eventstore.Envelope{
			EventID: fmt.Sprintf("%s-e%d", id, i+1), Type: ev.EventType(), SchemaVersion: eventstore.CurrentSchemaVersion,
			ExecutionID: id, Sequence: int64(i + 1), OccurredAt: at(time.Duration(i)*time.Second + time.Duration(i)),
			CorrelationID: "req-1", Actor: "alice", Data: data,
		}
		if i > 0 {
			env.CausationID = out[i-1].EventID
		}
		if err := env.Seal(prev); err != nil {
			t.Fatal(err)
		}
		prev = env.Hash
		out = append(out, env)
	}
	if err := eventstore.VerifyChain(out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestProjectionsEventsRoundTrip(t *testing.T) {
	forEachBackend(t, func(t *testing.T, d *DB) {
		ctx := context.Background()
		p := NewProjections(d)
		want := chain(t, "ex-1")
		_ = chain(t, "ex-10") // a neighbour whose keys share the prefix "ex-1"
		for _, id := range []string{"ex-10", "ex-1"} {
			for _, env := range chain(t, id) {
				added, err := p.AddEvent(ctx, env)
				if err != nil || !added {
					t.Fatalf("add %s/%d: %v %v", id, env.Sequence, added, err)
				}
			}
		}
		got, err := p.Events(ctx, "ex-1", 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := eventstore.VerifyChain(got); err != nil {
			t.Errorf("chain after the round trip: %v", err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("events:\n got %+v\nwant %+v", got, want)
		}
		for i := range want {
			a, _ := json.Marshal(got[i])
			b, _ := json.Marshal(want[i])
			if string(a) != string(b) {
				t.Errorf("seq %d JSON differs:\n got %s\nwant %s", i+1, a, b)
			}
		}
		tail, err := p.Events(ctx, "ex-1", 1)
		if err != nil || len(tail) != 2 || tail[0].Sequence != 2 || tail[1].Sequence != 3 {
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

func TestProjectionsDuplicateEvent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, d *DB) {
		ctx := context.Background()
		p := NewProjections(d)
		envs := chain(t, "dup")
		if added, err := p.AddEvent(ctx, envs[0]); err != nil || !added {
			t.Fatalf("first add: %v %v", added, err)
		}
		if added, err := p.AddEvent(ctx, envs[0]); err != nil || added {
			t.Fatalf("same event again: added=%v err=%v, want false, nil", added, err)
		}
		// A different event claiming the same sequence does not replace it.
		forged := envs[1]
		forged.Sequence = 1
		if added, err := p.AddEvent(ctx, forged); err != nil || added {
			t.Fatalf("another event at seq 1: added=%v err=%v, want false, nil", added, err)
		}
		got, err := p.Events(ctx, "dup", 0)
		if err != nil || len(got) != 1 || got[0].EventID != envs[0].EventID {
			t.Errorf("archive after duplicates: %v %v", got, err)
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
		envs := chain(t, "gap")
		for _, env := range []eventstore.Envelope{envs[0], envs[2]} {
			if _, err := p.AddEvent(ctx, env); err != nil {
				t.Fatal(err)
			}
		}
		got, err := p.Events(ctx, "gap", 0)
		if err != nil {
			t.Fatal(err)
		}
		want := 2
		if d.ferret && d.fast == nil {
			want = 1
		}
		if len(got) != want || got[0].Sequence != 1 {
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
		if err := p.SaveView(ctx, v1, 0); err != nil {
			t.Fatal(err)
		}
		if err := p.SaveView(ctx, v1, 0); !errors.Is(err, projections.ErrStale) {
			t.Fatalf("second first save: %v, want ErrStale", err)
		}
		v3 := sampleExecution("v") // version_seq 3
		if err := p.SaveView(ctx, v3, 2); !errors.Is(err, projections.ErrStale) {
			t.Fatalf("save at a wrong seq: %v, want ErrStale", err)
		}
		if err := p.SaveView(ctx, v3, 1); err != nil {
			t.Fatal(err)
		}
		got, err := p.View(ctx, "v")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, v3) {
			t.Errorf("view:\n got %+v\nwant %+v", got, v3)
		}
		if err := p.SaveView(ctx, v3, 1); !errors.Is(err, projections.ErrStale) {
			t.Fatalf("save at the old seq again: %v, want ErrStale", err)
		}
		f := failedExecution("w")
		f.Sequence = 1
		if err := p.SaveView(ctx, f, 0); err != nil {
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
	if err := p.SaveView(ctx, queuedExecution("race", at(0)), 0); err != nil {
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
			err := p.SaveView(ctx, v, 1)
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
			if err := p.SaveView(ctx, v, 0); err != nil {
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
