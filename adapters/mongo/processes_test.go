package mongo

import (
	"context"
	"fmt"
	"math/rand"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/eventstore"
	"github.com/integr8scode/integr8scode/projections"
)

// These tests play several processes against one server: each "process" is
// a DB opened through a client of its own, with its own connections, its
// own locks and (embedded) its own SQLite connection, on the same database.
// Nothing they share is in this process's memory except the server.

// openAgain opens d's database once more, the way another process would.
func openAgain(t testing.TB, d *DB, b backend) *DB {
	t.Helper()
	ctx := context.Background()
	client, err := Connect(ctx, testServer.URI())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	other, err := testServer.Open(ctx, client, d.Database().Name())
	if err != nil {
		t.Fatal(err)
	}
	asBackend(other, b)
	t.Cleanup(func() { _ = other.Close() })
	return other
}

// processes returns d and n-1 more processes on its database.
func processes(t testing.TB, d *DB, b backend, n int) []*DB {
	out := []*DB{d}
	for range n - 1 {
		out = append(out, openAgain(t, d, b))
	}
	return out
}

// TestProjectionsAcrossProcesses runs two projectors in two processes over
// the same events, delivered in different orders and partly twice, at the
// same time: every view must end at the last event, and no event is parked.
func TestProjectionsAcrossProcesses(t *testing.T) {
	d := newTestDB(t, backendEmbedded)
	other := openAgain(t, d, backendFerret)
	parked := &parkedLog{}
	ps := []*projections.Projector{newProjector(NewProjections(d), parked), newProjector(NewProjections(other), parked)}
	ctx := context.Background()
	const n = 40
	var wg sync.WaitGroup
	for i := range n {
		evs := chain(t, fmt.Sprintf("ex-%02d", i))
		orders := [][]int{{0, 1, 2}, {2, 1, 0, 1}}
		if i%2 == 1 {
			orders[0], orders[1] = []int{0, 2, 1}, []int{1, 0, 2}
		}
		for k, p := range ps {
			wg.Go(func() {
				for _, j := range orders[k] {
					if err := p.Handle(ctx, delivery(evs[j])); err != nil {
						t.Error(err)
					}
				}
			})
		}
	}
	wg.Wait()
	parked.none(t)
	for i := range n {
		id := fmt.Sprintf("ex-%02d", i)
		want := domain.Execution{}
		for _, a := range chain(t, id) {
			env := a.Envelope
			ev, err := eventstore.Decode(env)
			if err != nil {
				t.Fatal(err)
			}
			if err := want.Apply(id, env.Sequence, env.OccurredAt, ev); err != nil {
				t.Fatal(err)
			}
		}
		got, err := NewProjections(other).View(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: view\n got %+v\nwant %+v", id, got, want)
		}
	}
}

// TestProjectionsLateViewWrite replays the lost update SaveView guards
// against: a projector's view write of seq 2 lands after another process
// saved seq 3. The late writer is told ErrStale when it reads back, its
// projector folds on, and the view ends at 3; if the late writer died
// instead, the redelivery of its message repairs the view.
func TestProjectionsLateViewWrite(t *testing.T) {
	d := newTestDB(t, backendEmbedded)
	other := openAgain(t, d, backendFerret)
	ctx := context.Background()
	p1, p2 := NewProjections(d), NewProjections(other)
	parked := &parkedLog{}
	evs := chain(t, "late")
	views := make([]domain.Execution, len(evs)+1) // views[n]: the fold of events 1…n
	for i, a := range evs {
		env := a.Envelope
		ev, err := eventstore.Decode(env)
		if err != nil {
			t.Fatal(err)
		}
		views[i+1] = views[i]
		if err := views[i+1].Apply("late", env.Sequence, env.OccurredAt, ev); err != nil {
			t.Fatal(err)
		}
		if _, err := projections.AddEvent(ctx, p1, a); err != nil {
			t.Fatal(err)
		}
	}
	// The view at 1 (SaveView would say ErrStale: the archive is ahead).
	if _, err := p1.executions.InsertOne(ctx, toViewDoc(views[1])); err != nil {
		t.Fatal(err)
	}
	// Both processes read the view at 1; process 2 saves 3 and returns.
	if err := projections.SaveView(ctx, p2, views[3], 1); err != nil {
		t.Fatal(err)
	}
	// Process 1's write of 2 lands now (it passed its check before).
	landLate := func() {
		if _, err := p1.executions.ReplaceOne(ctx, bson.D{{Key: "_id", Value: "late"}}, toViewDoc(views[2])); err != nil {
			t.Fatal(err)
		}
	}
	landLate()
	// What process 1's SaveViews does next: read back (both ways of
	// reading back agree: the embedded server's SQLite index, and FerretDB's).
	confirmed := func(v domain.Execution) bool {
		t.Helper()
		var answers []bool
		for _, p := range []*Projections{p1, p2} {
			stale, err := p.db.dialect.confirmViews(ctx, p, []domain.Execution{v})
			if err != nil {
				t.Fatalf("%s: read back: %v", p.db.dialect.name(), err)
			}
			answers = append(answers, !stale[0])
		}
		if answers[0] != answers[1] {
			t.Fatalf("read back of seq %d: embedded %v, ferretdb %v", v.Sequence, answers[0], answers[1])
		}
		return answers[0]
	}
	if confirmed(views[2]) {
		t.Fatal("read back after a late write: confirmed, want stale")
	}
	// ErrStale sends its projector round again.
	if err := newProjector(p1, parked).CatchUp(ctx, "late"); err != nil {
		t.Fatal(err)
	}
	if got, _ := p2.View(ctx, "late"); !reflect.DeepEqual(got, views[3]) {
		t.Errorf("after the late writer went on: seq %d, want 3", got.Sequence)
	}
	// The late writer died instead: its message comes again, to anyone.
	landLate()
	if err := newProjector(p2, parked).Handle(ctx, delivery(evs[1])); err != nil {
		t.Fatal(err)
	}
	parked.none(t)
	if got, _ := p1.View(ctx, "late"); !reflect.DeepEqual(got, views[3]) {
		t.Errorf("after redelivery: seq %d, want 3", got.Sequence)
	}
	// On its own, a write is still checked against what it wrote.
	if !confirmed(views[3]) {
		t.Error("read back of an up-to-date view: stale")
	}
}

// TestPositionFirstSaveRacingProcesses has several processes save the first
// position of a partition at once, as an old and a new owner may during a
// rebalance: every save succeeds (an upsert that loses the race to create
// the document is retried), and one of the values is stored.
func TestPositionFirstSaveRacingProcesses(t *testing.T) {
	for _, b := range []backend{backendEmbedded, backendFerret} {
		t.Run(string(b), func(t *testing.T) {
			d := newTestDB(t, b)
			dbs := processes(t, d, b, 8)
			ctx := context.Background()
			for round := range int32(5) {
				start := make(chan struct{})
				var wg sync.WaitGroup
				for i, db := range dbs {
					wg.Go(func() {
						<-start
						if err := NewProjections(db).SavePositions(ctx, map[int32]int64{round: int64(100 + i)}); err != nil {
							t.Errorf("round %d, process %d: %v", round, i, err)
						}
					})
				}
				close(start)
				wg.Wait()
				got, err := NewProjections(d).Position(ctx, round)
				if err != nil || got < 100 || got >= 100+int64(len(dbs)) {
					t.Errorf("round %d: position %d, %v; want one of the values saved", round, got, err)
				}
			}
		})
	}
}

// TestFerretDBFilterCASIsNotAtomic documents why SaveView does not trust a
// conditional filter on FerretDB: with the condition in the filter (the
// MongoDB path), FerretDB 1.24 lets several racing writers "win". It only
// logs, since the race is timing-dependent.
func TestFerretDBFilterCASIsNotAtomic(t *testing.T) {
	d := newTestDB(t, backendMongoDB)
	ctx := context.Background()
	p := NewProjections(d)
	most := 0
	for round := range 5 {
		id := fmt.Sprintf("race-%d", round)
		if err := projections.SaveView(ctx, p, queuedExecution(id, at(0)), 0); err != nil {
			t.Fatal(err)
		}
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			wins int
		)
		for i := range 16 {
			wg.Go(func() {
				v := sampleExecution(id)
				v.Runner = fmt.Sprint(i)
				if err := projections.SaveView(ctx, p, v, 1); err == nil {
					mu.Lock()
					wins++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		most = max(most, wins)
	}
	t.Logf("filter-based compare-and-swap on FerretDB: up to %d of 16 racing writers won a round", most)
}

// Projectors of one process write batches of views whose ids overlap
// (several partitions' fetches at once, each locking all of its ids):
// locking in stripe order means none waits for another in a circle, and
// a single lock still excludes a batch holding the same stripe.
func TestBatchLocksOverlappingInAnyOrderNeverDeadlock(t *testing.T) {
	k := &keyLocks{}
	keys := make([]string, 40)
	for i := range keys {
		keys[i] = fmt.Sprintf("executions\x00id-%d", i)
	}
	var wg sync.WaitGroup
	var inside atomic.Int32
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewSource(int64(g)))
			for range 2000 {
				batch := append([]string(nil), keys...)
				r.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
				unlock := k.lockAll(batch[:1+r.Intn(len(batch))])
				unlock()
				one := k.lock(keys[r.Intn(len(keys))])
				one()
			}
		}()
	}
	// The same key is never held twice at once.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 2000 {
			unlock := k.lockAll([]string{keys[0], keys[1]})
			if inside.Add(1) != 1 {
				t.Error("two holders of one key")
			}
			inside.Add(-1)
			unlock()
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 2000 {
			unlock := k.lock(keys[0])
			if inside.Add(1) != 1 {
				t.Error("two holders of one key")
			}
			inside.Add(-1)
			unlock()
		}
	}()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("deadlocked")
	}
}
