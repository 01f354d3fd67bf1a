package content_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/integr8scode/integr8scode/adapters/kafka"
	"github.com/integr8scode/integr8scode/adapters/mongo"
	"github.com/integr8scode/integr8scode/content"
	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/eventstore"
	"github.com/integr8scode/integr8scode/internal/testenv"
	"github.com/integr8scode/integr8scode/projections"
)

// silentLedger is a ledger whose writer is down: a broker that takes the
// commands and nobody who answers them.
func silentLedger(t *testing.T) *kafka.Asker {
	t.Helper()
	k, err := kafka.StartEmbedded(kafka.EmbeddedConfig{Dir: t.TempDir(), Logger: testenv.Quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	a, err := kafka.NewAsker(k.Brokers(), "silent", testenv.Quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// answerThenCancel asks the real ledger, then cancels the caller's context:
// the process is told to stop right after the ledger accepted an erasure,
// before the key store was written.
type answerThenCancel struct {
	content.Ledger
	cancel context.CancelFunc
}

func (l answerThenCancel) Ask(ctx context.Context, cmd eventstore.Command) (eventstore.Reply, error) {
	defer l.cancel()
	return l.Ledger.Ask(ctx, cmd)
}

// erasedEvents counts the ExecutionErased events of id in the log.
func (w world) erasedEvents(t *testing.T, id string) int {
	n := 0
	for _, typ := range w.types(t, id) {
		if typ == domain.TypeExecutionErased {
			n++
		}
	}
	return n
}

// eventually waits until ok holds, failing the test after 30 s.
func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 30 s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestEraserWhenPartsFail(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	silent := &content.Eraser{Keys: w.Content, Ledger: silentLedger(t), Views: w.Views, Logger: testenv.Quiet(), AskTimeout: 200 * time.Millisecond}

	t.Run("ErrUnavailable: a ledger that does not answer keeps the mark, the key unreadable but not destroyed", func(t *testing.T) {
		id := w.ended(t, "print('no answer')")
		if _, err := silent.Erase(ctx, id, "alice", domain.EraseRequested); domain.ErrorCode(err) != domain.EUNAVAILABLE {
			t.Fatalf("erase without a ledger: %v", err)
		}
		if r := w.record(t, id); r.Erasing == nil || r.Erasing.Actor != "alice" || len(r.Wrapped) == 0 || r.ShreddedAt != nil {
			t.Fatalf("record %+v", r)
		}
		if _, err := w.Content.Get(ctx, id); !errors.Is(err, content.ErrErased) {
			t.Fatalf("the content of an erasure under way opens: %v", err)
		}
		// The sweep cannot finish it while the ledger is silent, and says so.
		if _, err := silent.Sweep(ctx, 0, time.Now()); domain.ErrorCode(err) != domain.EUNAVAILABLE {
			t.Fatalf("sweep without a ledger: %v", err)
		}
		if r := w.record(t, id); r.Erasing == nil || len(r.Wrapped) == 0 {
			t.Fatalf("record after a silent sweep %+v", r)
		}
		if _, err := w.eraser.Sweep(ctx, 0, time.Now()); err != nil {
			t.Fatal(err)
		}
		if r := w.record(t, id); r.ShreddedAt == nil || len(r.Wrapped) != 0 || r.Erasing == nil || r.Erasing.Actor != "alice" {
			t.Fatalf("record after the sweep %+v", r)
		}
		if n := w.erasedEvents(t, id); n != 1 {
			t.Fatalf("%d ExecutionErased events", n)
		}
	})

	t.Run("OK a key store stopped after the ledger accepted is left to the sweep, with one event", func(t *testing.T) {
		id := w.ended(t, "print('stopped')")
		stopping, cancel := context.WithCancel(ctx)
		defer cancel()
		er := &content.Eraser{Keys: w.Content, Ledger: answerThenCancel{w.user, cancel}, Logger: testenv.Quiet()}
		out, err := er.Erase(stopping, id, "alice", domain.EraseRequested)
		if err == nil || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "the ledger recorded it") || !out.Appended {
			t.Fatalf("%+v %v", out, err)
		}
		if r := w.record(t, id); r.Erasing == nil || len(r.Wrapped) == 0 {
			t.Fatalf("record %+v", r)
		}
		// A sweep stopped at the same point leaves it as it was.
		stopping, cancel = context.WithCancel(ctx)
		defer cancel()
		er.Ledger = answerThenCancel{w.user, cancel}
		if _, err := er.Sweep(stopping, 0, time.Now()); !errors.Is(err, context.Canceled) {
			t.Fatalf("stopped sweep: %v", err)
		}
		if r := w.record(t, id); r.Erasing == nil || len(r.Wrapped) == 0 {
			t.Fatalf("record after a stopped sweep %+v", r)
		}
		if _, err := w.eraser.Sweep(ctx, 0, time.Now()); err != nil {
			t.Fatal(err)
		}
		if r := w.record(t, id); r.ShreddedAt == nil || len(r.Wrapped) != 0 {
			t.Fatalf("record after the sweep %+v", r)
		}
		if n := w.erasedEvents(t, id); n != 1 {
			t.Fatalf("%d ExecutionErased events", n)
		}
	})

	t.Run("OK the sweep drops the mark of an erasure the ledger refuses", func(t *testing.T) {
		env := testenv.Submit(t, w.user, w.Content, "print('queued')")
		if err := w.Content.Store().MarkErasing(ctx, env.ExecutionID, content.Erasure{Actor: "alice", Reason: domain.EraseRequested, At: time.Now()}); err != nil {
			t.Fatal(err)
		}
		// No logger: the refusal is only logged, and to nowhere.
		er := &content.Eraser{Keys: w.Content, Ledger: w.user}
		if _, err := er.Sweep(ctx, 0, time.Now()); err != nil {
			t.Fatalf("a refusal is not the sweep's failure: %v", err)
		}
		if r := w.record(t, env.ExecutionID); r.Erasing != nil || len(r.Wrapped) == 0 {
			t.Fatalf("record %+v", r)
		}
		if _, err := w.Content.Get(ctx, env.ExecutionID); err != nil {
			t.Fatalf("the content of a refused erasure: %v", err)
		}
		if n := w.erasedEvents(t, env.ExecutionID); n != 0 {
			t.Fatalf("%d ExecutionErased events", n)
		}
	})

	t.Run("ErrConflict: a refusal whose unmark was cut short keeps the mark until a sweep drops it", func(t *testing.T) {
		env := testenv.Submit(t, w.user, w.Content, "print('running')")
		stopping, cancel := context.WithCancel(ctx)
		defer cancel()
		er := &content.Eraser{Keys: w.Content, Ledger: answerThenCancel{w.user, cancel}, Logger: testenv.Quiet()}
		_, err := er.Erase(stopping, env.ExecutionID, "alice", domain.EraseRequested)
		if domain.ErrorCode(err) != domain.ECONFLICT || !errors.Is(err, context.Canceled) {
			t.Fatalf("erase of a queued execution, stopped: %v", err)
		}
		if r := w.record(t, env.ExecutionID); r.Erasing == nil || len(r.Wrapped) == 0 {
			t.Fatalf("record %+v", r)
		}
		if _, err := w.eraser.Sweep(ctx, 0, time.Now()); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Content.Get(ctx, env.ExecutionID); err != nil {
			t.Fatalf("the content after the sweep: %v", err)
		}
	})

	t.Run("ErrUnavailable: retention that cannot record its erasures erases none and names each", func(t *testing.T) {
		id := w.ended(t, "print('old')")
		n, err := silent.Sweep(ctx, time.Hour, time.Now().Add(2*time.Hour))
		if n != 0 || err == nil || !strings.Contains(err.Error(), "retention: erase "+id) {
			t.Fatalf("swept %d: %v", n, err)
		}
		if r := w.record(t, id); len(r.Wrapped) == 0 || r.ShreddedAt != nil {
			t.Fatalf("record %+v", r)
		}
		// What it marked, the sweep finishes once the ledger answers.
		if _, err := w.eraser.Sweep(ctx, 0, time.Now()); err != nil {
			t.Fatal(err)
		}
		if r := w.record(t, id); r.ShreddedAt == nil || w.erasedEvents(t, id) != 1 {
			t.Fatalf("record after the sweep %+v", r)
		}
	})

	t.Run("OK reconcile needs the views, and records a lost erasure only once the ledger answers", func(t *testing.T) {
		id := w.ended(t, "print('lost')")
		if err := w.Content.Store().Shred(ctx, id, time.Now()); err != nil {
			t.Fatal(err)
		}
		blind := &content.Eraser{Keys: w.Content, Ledger: w.user, Logger: testenv.Quiet()}
		if n, err := blind.Reconcile(ctx, time.Now()); n != 0 || err != nil {
			t.Fatalf("reconcile without views: %d %v", n, err)
		}
		if n, err := silent.Reconcile(ctx, time.Now()); n != 0 || domain.ErrorCode(err) != domain.EUNAVAILABLE {
			t.Fatalf("reconcile without a ledger: %d %v", n, err)
		}
		if n := w.erasedEvents(t, id); n != 0 {
			t.Fatalf("%d ExecutionErased events before the ledger answered", n)
		}
		if n, err := w.eraser.Reconcile(ctx, time.Now()); n != 1 || err != nil {
			t.Fatalf("reconcile: %d %v", n, err)
		}
		if n := w.erasedEvents(t, id); n != 1 {
			t.Fatalf("%d ExecutionErased events", n)
		}
	})

	t.Run("OK reconcile over views behind the ledger repairs nothing and says nothing", func(t *testing.T) {
		id := w.ended(t, "print('behind')")
		before, err := w.Views.View(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.eraser.Erase(ctx, id, "alice", domain.EraseRequested); err != nil {
			t.Fatal(err)
		}
		// Views that have not applied the erasure yet: a projector behind.
		behind := mongo.NewProjections(testenv.Store(t, "views_behind"))
		if err := projections.SaveView(ctx, behind, before, 0); err != nil {
			t.Fatal(err)
		}
		var log testenv.SyncBuffer
		er := &content.Eraser{Keys: w.Content, Ledger: w.user, Views: behind, Logger: slog.New(slog.NewTextHandler(&log, nil))}
		if n, err := er.Reconcile(ctx, time.Now()); n != 0 || err != nil {
			t.Fatalf("reconcile over views behind: repaired %d: %v", n, err)
		}
		if strings.Contains(log.String(), id) {
			t.Fatalf("a repair of an erasure the ledger had is logged: %s", log.String())
		}
		if n := w.erasedEvents(t, id); n != 1 {
			t.Fatalf("%d ExecutionErased events", n)
		}
	})

	t.Run("ErrStoreGone: the eraser fails on a store that is gone and records nothing", func(t *testing.T) {
		id := w.ended(t, "print('kept')")
		gone := disconnected(t)
		noKeys := &content.Eraser{Keys: testenv.ContentKeys(t, gone), Ledger: w.user, Views: w.Views, Logger: testenv.Quiet()}
		if _, err := noKeys.Erase(ctx, id, "alice", domain.EraseRequested); err == nil {
			t.Fatal("erased without a key store")
		}
		if _, err := noKeys.Sweep(ctx, 0, time.Now()); err == nil {
			t.Fatal("swept without a key store")
		}
		// The views list erased executions (the subtests above made some),
		// whose keys cannot be read, nor the tombstones listed.
		if n, err := noKeys.Reconcile(ctx, time.Now()); n != 0 || err == nil {
			t.Fatalf("reconcile without a key store: %d %v", n, err)
		}
		noViews := &content.Eraser{Keys: w.Content, Ledger: w.user, Views: mongo.NewProjections(gone), Logger: testenv.Quiet()}
		if n, err := noViews.Sweep(ctx, time.Hour, time.Now().Add(2*time.Hour)); n != 0 || err == nil {
			t.Fatalf("retention without views: %d %v", n, err)
		}
		if n, err := noViews.Reconcile(ctx, time.Now()); n != 0 || err == nil {
			t.Fatalf("reconcile without views: %d %v", n, err)
		}
		if r := w.record(t, id); r.Erasing != nil || len(r.Wrapped) == 0 || w.erasedEvents(t, id) != 0 {
			t.Fatalf("record %+v", r)
		}
	})

	t.Run("OK Run finishes an interrupted erasure and a lost one, and stops with its context", func(t *testing.T) {
		marked := w.ended(t, "print('marked')")
		if err := w.Content.Store().MarkErasing(ctx, marked, content.Erasure{Actor: "alice", Reason: domain.EraseRequested, At: time.Now()}); err != nil {
			t.Fatal(err)
		}
		lost := w.ended(t, "print('lost')")
		if err := w.Content.Store().Shred(ctx, lost, time.Now()); err != nil {
			t.Fatal(err)
		}
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		// A short period: a round that the loaded machine makes fail (a
		// ledger answer later than AskTimeout) is tried again.
		go func() { w.eraser.Run(runCtx, 0, 50*time.Millisecond); close(done) }()
		w.WaitView(t, marked, func(e domain.Execution) bool { return e.Erased }, 30*time.Second)
		w.WaitView(t, lost, func(e domain.Execution) bool { return e.Erased }, 30*time.Second)
		eventually(t, "the interrupted erasure's key destroyed", func() bool { return w.record(t, marked).ShreddedAt != nil })
		stop()
		<-done
		if w.erasedEvents(t, marked) != 1 || w.erasedEvents(t, lost) != 1 {
			t.Fatalf("ExecutionErased events: %d of the interrupted erasure, %d of the lost one", w.erasedEvents(t, marked), w.erasedEvents(t, lost))
		}
	})

	t.Run("OK Run logs a store that is gone and tries again every period", func(t *testing.T) {
		gone := disconnected(t)
		var log testenv.SyncBuffer
		er := &content.Eraser{Keys: testenv.ContentKeys(t, gone), Ledger: w.user, Views: mongo.NewProjections(gone),
			Logger: slog.New(slog.NewTextHandler(&log, nil))}
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { er.Run(runCtx, time.Hour, time.Millisecond); close(done) }()
		// A reconcile that failed is not put off for an hour.
		eventually(t, "two failed sweeps and reconciles logged", func() bool {
			s := log.String()
			return strings.Count(s, `msg="erasure sweep"`) >= 2 && strings.Count(s, `msg="erasure reconcile"`) >= 2
		})
		stop()
		<-done
	})
}

func TestReconcileReadsEveryPageOfErasuresAndTombstones(t *testing.T) {
	ctx := context.Background()
	db := testenv.Store(t, "reconcile_pages")
	keys, views := testenv.ContentKeys(t, db), mongo.NewProjections(db)
	at := time.Now().UTC()
	// 501 erased executions, one more than a page: the first 500 keys are
	// destroyed, the last one's lives (a key store restored from a backup).
	var tombs []any
	for i := range 501 {
		id := fmt.Sprintf("e%04d", i)
		if err := projections.SaveView(ctx, views, domain.Execution{ID: id, Status: domain.StatusFailed, Erased: true, Sequence: 3, CreatedAt: at}, 0); err != nil {
			t.Fatal(err)
		}
		if i < 500 {
			tombs = append(tombs, bson.D{{Key: "_id", Value: id}, {Key: "created_at", Value: at}, {Key: "shredded_at", Value: at}})
		}
	}
	if _, err := db.Database().Collection(mongo.CollContentKeys).InsertMany(ctx, tombs); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Create(ctx, "e0500"); err != nil {
		t.Fatal(err)
	}
	// Past the tombstones' first page, one whose execution the views do
	// not show erased: reconcile asks the ledger, which does not answer.
	if err := projections.SaveView(ctx, views, domain.Execution{ID: "e9999", Status: domain.StatusFailed, Sequence: 2, CreatedAt: at}, 0); err != nil {
		t.Fatal(err)
	}
	if err := keys.Store().Shred(ctx, "e9999", at); err != nil {
		t.Fatal(err)
	}
	er := &content.Eraser{Keys: keys, Ledger: silentLedger(t), Views: views, Logger: testenv.Quiet(), AskTimeout: 100 * time.Millisecond}
	n, err := er.Reconcile(ctx, time.Now())
	if n != 1 {
		t.Fatalf("repaired %d, want the live key of the second page's erased execution", n)
	}
	if r, _, _ := keys.Store().Get(ctx, "e0500"); r.ShreddedAt == nil || len(r.Wrapped) != 0 {
		t.Fatalf("the key on the second page lives: %+v", r)
	}
	if domain.ErrorCode(err) != domain.EUNAVAILABLE {
		t.Fatalf("the tombstone on the second page was not reconciled: %v", err)
	}
}

// owesScrub is a key store whose pending records (ids) only owe the
// scrub of the store's files, as a store lists them after Shreds whose
// scrub failed (adapters/mongo: scrub_owed); its Shred returns fail and
// counts the calls.
type owesScrub struct {
	content.Store
	ids      []string
	fail     error
	shredded []string
}

func (s *owesScrub) Pending(context.Context, int) ([]content.Record, error) {
	at := time.Now().Add(-time.Minute)
	var out []content.Record
	for _, id := range s.ids {
		out = append(out, content.Record{ExecutionID: id, CreatedAt: at, ShreddedAt: &at,
			Erasing: &content.Erasure{Actor: "alice", Reason: domain.EraseRequested, At: at}})
	}
	return out, nil
}

func (s *owesScrub) Shred(_ context.Context, id string, _ time.Time) error {
	s.shredded = append(s.shredded, id)
	return s.fail
}

func sweepOwed(t *testing.T, store *owesScrub) error {
	t.Helper()
	keys, err := content.NewKeys(store, make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	er := &content.Eraser{Keys: keys, Ledger: silentLedger(t), AskTimeout: time.Second}
	_, err = er.Sweep(context.Background(), 0, time.Now())
	return err
}

// The erasure of a record that owes only a scrub was recorded before its
// key was shredded: the sweep shreds it again (which scrubs) without
// asking the ledger, so a ledger that does not answer, or no longer
// knows the execution, cannot keep the key's old bytes in the files.
func TestTheSweepScrubsWhatIsOwedWithoutAskingTheLedgerAgain(t *testing.T) {
	store := &owesScrub{Store: content.NewMemoryStore(), ids: []string{"e1"}}
	if err := sweepOwed(t, store); err != nil {
		t.Fatalf("sweep: %v", err)
	}
	if fmt.Sprint(store.shredded) != "[e1]" {
		t.Fatalf("shredded %v, want [e1]", store.shredded)
	}
}

// A scrub is of the whole store and a failed one has tried for ~10 s:
// the sweep does not try again for every other record that owes one.
func TestAFailedScrubEndsTheSweepsScrubsUntilTheNext(t *testing.T) {
	store := &owesScrub{Store: content.NewMemoryStore(), ids: []string{"e1", "e2", "e3"}, fail: errors.New("the log is busy")}
	if err := sweepOwed(t, store); err == nil || !strings.Contains(err.Error(), "the log is busy") {
		t.Fatalf("sweep: %v, want the scrub's failure", err)
	}
	if len(store.shredded) != 1 {
		t.Fatalf("shredded %v, want one try", store.shredded)
	}
}
