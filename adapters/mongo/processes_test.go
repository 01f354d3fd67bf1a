package mongo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"sync"
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
	if b != backendEmbedded {
		_ = other.Close()
		other.fast = nil
	}
	if b == backendMongoDB {
		other.ferret, other.cas = false, casServer
	}
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

// forEachHeadsBackend runs f on the embedded server and on a FerretDB opened
// as another process would (no SQLite index). Heads take one code path on
// every server; the backends differ only in how Unsettled lists.
func forEachHeadsBackend(t *testing.T, f func(t *testing.T, b backend, d *DB)) {
	for _, b := range []backend{backendEmbedded, backendFerret} {
		t.Run(string(b), func(t *testing.T) { f(t, b, newTestDB(t, b)) })
	}
}

func unsettledIDs(t *testing.T, h *Heads, limit int) []string {
	t.Helper()
	hs, err := h.Unsettled(context.Background(), limit)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, x := range hs {
		ids = append(ids, x.State.ID)
	}
	return ids
}

func countDocs(t *testing.T, d *DB, coll string, filter bson.D) int64 {
	t.Helper()
	n, err := d.Database().Collection(coll).CountDocuments(context.Background(), filter)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestHeadsAcrossProcesses races 16 processes that all read a head at the
// same sequence and append 1 to 3 events to it: exactly one wins, every
// process then reads the winner's head, and it is listed once as unsettled.
func TestHeadsAcrossProcesses(t *testing.T) {
	forEachHeadsBackend(t, func(t *testing.T, b backend, d *DB) {
		ctx := context.Background()
		dbs := processes(t, d, b, 16)
		for round := range 5 {
			id := fmt.Sprintf("race-%d", round)
			if err := NewHeads(dbs[0]).Insert(ctx, sampleHead(id)); err != nil {
				t.Fatal(err)
			}
			var (
				wg     sync.WaitGroup
				mu     sync.Mutex
				won    []eventstore.Head
				start  = make(chan struct{})
				others = 0
			)
			for i, db := range dbs {
				wg.Go(func() {
					h := NewHeads(db)
					next := sampleHead(id)
					next.State.Sequence = 3 + int64(1+i%3) // 1, 2 or 3 events
					next.State.Status = domain.StatusRunning
					next.Hash = fmt.Sprintf("writer-%d", i)
					next.Pending = append(next.Pending, next.Hash)
					next.LeaseOwner = next.Hash
					<-start
					err := h.Replace(ctx, 3, next)
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						won = append(won, next)
					case errors.Is(err, eventstore.ErrStale):
						others++
					default:
						t.Error(err)
					}
				})
			}
			close(start)
			wg.Wait()
			if len(won) != 1 || others != len(dbs)-1 {
				t.Fatalf("round %d: %d won, %d refused", round, len(won), others)
			}
			for _, db := range dbs[:4] {
				if got := mustGet(t, NewHeads(db), id); !reflect.DeepEqual(got, won[0]) {
					t.Errorf("round %d: head\n got %+v\nwant %+v", round, got, won[0])
				}
			}
			if n := countDocs(t, d, CollHeadVersions, bson.D{{Key: "execution_id", Value: id}}); n != 2 {
				t.Errorf("round %d: %d versions, want 2", round, n)
			}
			// The losers' sequences were never written: the next append
			// must follow the winner.
			for _, seq := range []int64{4, 5, 6} {
				next := won[0]
				next.State.Sequence = seq + 1
				if seq == won[0].State.Sequence {
					continue
				}
				if err := NewHeads(dbs[round]).Replace(ctx, seq, next); !errors.Is(err, eventstore.ErrStale) {
					t.Errorf("round %d: append after a loser's seq %d: %v", round, seq, err)
				}
			}
			next := won[0]
			next.State.Sequence++
			if err := NewHeads(dbs[round]).Replace(ctx, won[0].State.Sequence, next); err != nil {
				t.Errorf("round %d: append after the winner: %v", round, err)
			}
		}
		var ids []string
		for round := range 5 {
			ids = append(ids, fmt.Sprintf("race-%d", round))
		}
		if got := unsettledIDs(t, NewHeads(dbs[7]), 100); !reflect.DeepEqual(got, ids) {
			t.Errorf("unsettled %v, want %v", got, ids)
		}
	})
}

// TestHeadsRenewRacesReplace runs a runner renewing its lease in one
// process while another process takes the head over (an append, or a lease
// change at the same sequence). Every renewal that starts after the
// takeover returned must fail, and the head is exactly what the takeover
// wrote: no renewal leaks into it, and no earlier version changed.
func TestHeadsRenewRacesReplace(t *testing.T) {
	forEachHeadsBackend(t, func(t *testing.T, b backend, d *DB) {
		ctx := context.Background()
		dbs := processes(t, d, b, 3)
		renewer, taker := NewHeads(dbs[1]), NewHeads(dbs[2])
		for round := range 6 {
			id := fmt.Sprintf("lease-%d", round)
			cur := sampleHead(id)
			cur.State.Status = domain.StatusRunning
			if err := NewHeads(d).Insert(ctx, cur); err != nil {
				t.Fatal(err)
			}
			v1, _, err := findByID[bson.Raw](ctx, d.Database().Collection(CollHeadVersions), versionKey(id, 1))
			if err != nil {
				t.Fatal(err)
			}

			next := cur
			next.LeaseOwner, next.LeaseUntil = "runner-2", at(10*time.Minute)
			if round%2 == 0 {
				next.State.Sequence, next.Hash = 4, "taken"
			}
			var (
				wg        sync.WaitGroup
				tookOver  = make(chan time.Time, 1)
				renewed   int // renewals that went through
				lateOK    int // of them, begun after the takeover had returned
				underWay  = make(chan struct{})
				closeOnce sync.Once
			)
			wg.Go(func() {
				defer closeOnce.Do(func() { close(underWay) })
				var done time.Time
				for i := 0; ; i++ {
					select {
					case done = <-tookOver:
					default:
					}
					began := time.Now()
					err := renewer.Renew(ctx, id, 3, "runner-1", at(time.Hour+time.Duration(i)*time.Second))
					late := !done.IsZero() && began.After(done)
					switch {
					case err == nil:
						if renewed++; renewed == 3 {
							closeOnce.Do(func() { close(underWay) })
						}
						if late {
							lateOK++
						}
					case errors.Is(err, eventstore.ErrStale):
						if done.IsZero() && renewed < 3 {
							t.Errorf("round %d: renewal refused before the takeover", round)
							return
						}
						if late {
							return // refused once the head moved: the runner stops here
						}
					default:
						t.Error(err)
						return
					}
					if lateOK > 3 {
						return
					}
				}
			})
			<-underWay
			if err := taker.Replace(ctx, 3, next); err != nil {
				t.Fatal(err)
			}
			tookOver <- time.Now()
			wg.Wait()
			if lateOK > 0 {
				t.Errorf("round %d: %d renewals succeeded after the takeover", round, lateOK)
			}
			for _, h := range []*Heads{NewHeads(d), renewer, taker} {
				if got := mustGet(t, h, id); !reflect.DeepEqual(got, next) {
					t.Errorf("round %d: head\n got %+v\nwant %+v", round, got, next)
				}
			}
			if err := renewer.Renew(ctx, id, 3, "runner-1", at(2*time.Hour)); !errors.Is(err, eventstore.ErrStale) {
				t.Errorf("round %d: renew by the old owner: %v", round, err)
			}
			if err := taker.Renew(ctx, id, next.State.Sequence, "runner-2", at(11*time.Minute)); err != nil {
				t.Errorf("round %d: renew by the new owner: %v", round, err)
			}
			if got := mustGet(t, renewer, id); !got.LeaseUntil.Equal(at(11 * time.Minute)) {
				t.Errorf("round %d: lease until %v after the new owner renewed", round, got.LeaseUntil)
			}
			after, _, err := findByID[bson.Raw](ctx, d.Database().Collection(CollHeadVersions), versionKey(id, 1))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(after, v1) {
				t.Errorf("round %d: version 1 changed:\n%s\n%s", round, v1, after)
			}
			if renewed < 3 {
				t.Errorf("round %d: only %d renewals went through", round, renewed)
			}
		}
	})
}

// TestHeadsStaleHints writes what slow or dead writers of other processes
// leave behind — a pointer write that lands late, a pointer never written,
// a writer that died right after inserting its version or between its two
// inserts, a ClearPending of an old sequence arriving late — and checks
// that Get still returns the newest head and Unsettled still lists it.
func TestHeadsStaleHints(t *testing.T) {
	forEachHeadsBackend(t, func(t *testing.T, b backend, d *DB) {
		ctx := context.Background()
		dbs := processes(t, d, b, 2)
		h, other := NewHeads(dbs[0]), NewHeads(dbs[1])
		pointers := d.Database().Collection(CollHeads)

		// A head at version 3, then a pointer write of version 1 landing late.
		cur := sampleHead("s")
		cur.State.Status = domain.StatusRunning
		if err := h.Insert(ctx, cur); err != nil {
			t.Fatal(err)
		}
		for seq := int64(4); seq <= 5; seq++ {
			next := cur
			next.State.Sequence, next.Hash = seq, fmt.Sprint("h", seq)
			if err := other.Replace(ctx, seq-1, next); err != nil {
				t.Fatal(err)
			}
			cur = next
		}
		if _, err := pointers.ReplaceOne(ctx, bson.D{{Key: "_id", Value: "s"}}, pointerDoc{ID: "s", Rev: 1, Seq: 3}); err != nil {
			t.Fatal(err)
		}
		if got := mustGet(t, h, "s"); !reflect.DeepEqual(got, cur) {
			t.Errorf("after a stale pointer write:\n got %+v\nwant %+v", got, cur)
		}
		var p pointerDoc
		if err := pointers.FindOne(ctx, bson.D{{Key: "_id", Value: "s"}}).Decode(&p); err != nil || p.Rev != 3 {
			t.Errorf("Get did not repair the pointer: %+v %v", p, err)
		}
		// A stale pointer naming an old sequence must not make an append
		// at the newest sequence fail, nor one at the old sequence succeed.
		if _, err := pointers.ReplaceOne(ctx, bson.D{{Key: "_id", Value: "s"}}, pointerDoc{ID: "s", Rev: 2, Seq: 4}); err != nil {
			t.Fatal(err)
		}
		stale := cur
		stale.State.Sequence, stale.Hash = 5, "from-4"
		if err := h.Replace(ctx, 4, stale); !errors.Is(err, eventstore.ErrStale) {
			t.Errorf("append at an old sequence through a stale pointer: %v", err)
		}
		if _, err := pointers.DeleteOne(ctx, bson.D{{Key: "_id", Value: "s"}}); err != nil {
			t.Fatal(err)
		}
		next := cur
		next.State.Sequence, next.Hash = 6, "h6"
		if err := h.Replace(ctx, 5, next); err != nil {
			t.Errorf("append without a pointer: %v", err)
		}
		cur = next

		// The head is terminal and published: settled.
		done := cur
		done.State.Sequence, done.State.Status, done.Hash, done.Pending = 7, domain.StatusCompleted, "h7", []string{"e7"}
		done.LeaseOwner, done.LeaseUntil = "", time.Time{}
		if err := other.Replace(ctx, 6, done); err != nil {
			t.Fatal(err)
		}
		if err := other.ClearPending(ctx, "s", 7); err != nil {
			t.Fatal(err)
		}
		if got := unsettledIDs(t, h, 10); len(got) != 0 {
			t.Fatalf("settled head listed: %v", got)
		}
		// Versions so far: 1 (insert), 2 and 3 (seq 4, 5), 4 (seq 6), 5 (seq
		// 7). A writer appends version 6 (seq 8) after it and dies right
		// after inserting the version: no pointer write, no clean-up.
		late := done
		late.State.Sequence, late.Hash, late.Pending = 8, "h8", []string{"e8"}
		v, _ := newVersion(late, 6, "dead")
		if _, err := d.Database().Collection(CollUnsettled).InsertOne(ctx,
			unsettledDoc{ID: v.ID, ExecutionID: "s", Rev: 6, UpdatedAt: v.UpdatedAt}); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Database().Collection(CollHeadVersions).InsertOne(ctx, v); err != nil {
			t.Fatal(err)
		}
		// A ClearPending of seq 7 arrives late: it must not settle seq 8.
		if err := h.ClearPending(ctx, "s", 7); err != nil {
			t.Fatal(err)
		}
		if got := mustGet(t, other, "s"); !reflect.DeepEqual(got, late) {
			t.Errorf("head after a dead writer:\n got %+v\nwant %+v", got, late)
		}
		if got := unsettledIDs(t, other, 10); !reflect.DeepEqual(got, []string{"s"}) {
			t.Errorf("unsettled after a dead writer: %v", got)
		}

		// A writer that died between its two inserts leaves an unsettled
		// document without a version: skipped, kept (its version might still
		// come), and it does not hide the others, however many there are.
		marks := d.Database().Collection(CollUnsettled)
		for i := range 7 {
			if _, err := marks.InsertOne(ctx, unsettledDoc{ID: versionKey(fmt.Sprint("ghost-", i), 1),
				ExecutionID: fmt.Sprint("ghost-", i), Rev: 1, UpdatedAt: at(-time.Hour)}); err != nil {
				t.Fatal(err)
			}
		}
		q := queuedExecution("q", at(time.Hour))
		if err := h.Insert(ctx, eventstore.Head{State: q, Hash: "q1", UpdatedAt: at(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if got := unsettledIDs(t, other, 2); !reflect.DeepEqual(got, []string{"s", "q"}) {
			t.Errorf("unsettled behind orphans: %v", got)
		}
		if n := countDocs(t, d, CollUnsettled, bson.D{}); n != 7+2 {
			t.Errorf("%d unsettled documents, want the 7 orphans and 2 heads", n)
		}
		// Publishing seq 8 settles it for good.
		if err := other.ClearPending(ctx, "s", 8); err != nil {
			t.Fatal(err)
		}
		if got := unsettledIDs(t, h, 10); !reflect.DeepEqual(got, []string{"q"}) {
			t.Errorf("unsettled after publishing: %v", got)
		}
	})
}

// TestProjectionsAcrossProcesses runs two projectors in two processes over
// the same events, delivered in different orders and partly twice, at the
// same time: every view must end at the last event.
func TestProjectionsAcrossProcesses(t *testing.T) {
	d := newTestDB(t, backendEmbedded)
	other := openAgain(t, d, backendFerret)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ps := []*projections.Projector{
		projections.NewProjector(NewProjections(d), nil, quiet, nil),
		projections.NewProjector(NewProjections(other), nil, quiet, nil),
	}
	ctx := context.Background()
	const n = 40
	var wg sync.WaitGroup
	for i := range n {
		id := fmt.Sprintf("ex-%02d", i)
		envs := chain(t, id)
		orders := [][]int{{0, 1, 2}, {2, 1, 0, 1}}
		if i%2 == 1 {
			orders[0], orders[1] = []int{0, 2, 1}, []int{1, 0, 2}
		}
		for k, p := range ps {
			wg.Go(func() {
				for _, j := range orders[k] {
					if err := p.Handle(ctx, envs[j]); err != nil {
						t.Error(err)
					}
				}
			})
		}
	}
	wg.Wait()
	for i := range n {
		id := fmt.Sprintf("ex-%02d", i)
		want := domain.Execution{}
		for _, env := range chain(t, id) {
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
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	envs := chain(t, "late")
	views := make([]domain.Execution, len(envs)+1) // views[n]: the fold of events 1…n
	for i, env := range envs {
		ev, err := eventstore.Decode(env)
		if err != nil {
			t.Fatal(err)
		}
		views[i+1] = views[i]
		if err := views[i+1].Apply("late", env.Sequence, env.OccurredAt, ev); err != nil {
			t.Fatal(err)
		}
		if _, err := p1.AddEvent(ctx, env); err != nil {
			t.Fatal(err)
		}
	}
	// The view at 1 (SaveView would say ErrStale: the archive is ahead).
	if _, err := p1.executions.InsertOne(ctx, views[1]); err != nil {
		t.Fatal(err)
	}
	// Both processes read the view at 1; process 2 saves 3 and returns.
	if err := p2.SaveView(ctx, views[3], 1); err != nil {
		t.Fatal(err)
	}
	// Process 1's write of 2 lands now (it passed its check before).
	landLate := func() {
		if _, err := p1.executions.ReplaceOne(ctx, bson.D{{Key: "_id", Value: "late"}}, views[2]); err != nil {
			t.Fatal(err)
		}
	}
	landLate()
	// What process 1's SaveView does next: read back.
	if err := p1.checkView(ctx, views[2]); !errors.Is(err, projections.ErrStale) {
		t.Fatalf("read back after a late write: %v, want ErrStale", err)
	}
	// ErrStale sends its projector round again.
	if err := projections.NewProjector(p1, nil, quiet, nil).CatchUp(ctx, "late"); err != nil {
		t.Fatal(err)
	}
	if got, _ := p2.View(ctx, "late"); !reflect.DeepEqual(got, views[3]) {
		t.Errorf("after the late writer went on: seq %d, want 3", got.Sequence)
	}
	// The late writer died instead: its message comes again, to anyone.
	landLate()
	if err := projections.NewProjector(p2, nil, quiet, nil).Handle(ctx, envs[1]); err != nil {
		t.Fatal(err)
	}
	if got, _ := p1.View(ctx, "late"); !reflect.DeepEqual(got, views[3]) {
		t.Errorf("after redelivery: seq %d, want 3", got.Sequence)
	}
	// On its own, a write is still checked against what it wrote.
	if err := p1.checkView(ctx, views[3]); err != nil {
		t.Errorf("read back of an up-to-date view: %v", err)
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
		if err := p.SaveView(ctx, queuedExecution(id, at(0)), 0); err != nil {
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
				if err := p.SaveView(ctx, v, 1); err == nil {
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
