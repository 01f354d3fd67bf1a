package content_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/integr8scode/integr8scode/adapters/kafka"
	"github.com/integr8scode/integr8scode/adapters/mongo"
	"github.com/integr8scode/integr8scode/content"
	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/eventstore"
	"github.com/integr8scode/integr8scode/internal/testenv"
)

func TestKeys(t *testing.T) {
	ctx := context.Background()
	store := content.NewMemoryStore()
	kek := bytes.Repeat([]byte{1}, 32)
	keys, err := content.NewKeys(store, kek)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("OK the same key for a retried submission", func(t *testing.T) {
		a, err := keys.Create(ctx, "e1")
		if err != nil {
			t.Fatal(err)
		}
		b, err := keys.Create(ctx, "e1")
		if err != nil || a != b {
			t.Fatal("a second Create made another key")
		}
		s1, _ := keys.SealInput(ctx, "e1", domain.Input{Script: "x"})
		s2, _ := keys.SealInput(ctx, "e1", domain.Input{Script: "x"})
		if s1 != s2 {
			t.Fatal("the same submission sealed twice differs")
		}
		in, err := keys.OpenInput(ctx, "e1", s1)
		if err != nil || in.Script != "x" {
			t.Fatalf("%+v %v", in, err)
		}
	})
	t.Run("ErrAnotherKeyEncryptionKey", func(t *testing.T) {
		other, _ := content.NewKeys(store, bytes.Repeat([]byte{2}, 32))
		if _, err := other.Get(ctx, "e1"); err == nil {
			t.Fatal("a key wrapped under another key-encryption key opened")
		}
		if _, err := content.NewKeys(store, []byte("short")); err == nil {
			t.Fatal("a short key-encryption key was taken")
		}
		if _, err := content.NewKeys(nil, kek); err == nil {
			t.Fatal("keys without a store")
		}
	})
	t.Run("ErrNoKey", func(t *testing.T) {
		if _, err := keys.Get(ctx, "never"); !errors.Is(err, content.ErrNoKey) {
			t.Fatalf("got %v", err)
		}
		if _, err := keys.SealOutput(ctx, "never", domain.Output{Stdout: "x"}); !errors.Is(err, content.ErrNoKey) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("ErrErased once shredded, and never made again", func(t *testing.T) {
		if err := store.Shred(ctx, "e1", time.Now()); err != nil {
			t.Fatal(err)
		}
		if _, err := keys.Get(ctx, "e1"); !errors.Is(err, content.ErrErased) {
			t.Fatalf("got %v", err)
		}
		if _, err := keys.Create(ctx, "e1"); !errors.Is(err, content.ErrErased) {
			t.Fatalf("a key was made again for an erased execution: %v", err)
		}
		e := domain.Execution{ID: "e1", SealedInput: "AQAA"}
		if err := keys.Reveal(ctx, &e); err != nil || !e.Erased {
			t.Fatalf("reveal of an erased execution: %+v %v", e, err)
		}
	})
}

// world is the ledger over the embedded broker and store, with an eraser.
type world struct {
	testenv.Ledger
	user   *kafka.Asker
	eraser *content.Eraser
}

func newWorld(t *testing.T) world {
	l := testenv.StartLedger(t, "content_test", 15*time.Second)
	user := l.Asker(t, "user")
	// The ledger is given as long as testenv.Ask gives it: on a loaded
	// machine (or while the store scrubs its log) an answer can take
	// longer than the default 10 s, and a sweep that gave up would fail
	// the test for no fault of the eraser.
	return world{Ledger: l, user: user, eraser: &content.Eraser{Keys: l.Content, Ledger: user, Views: l.Views, Logger: testenv.Quiet(),
		AskTimeout: 30 * time.Second}}
}

// ended submits a script and cancels it: an ended execution.
func (w world) ended(t *testing.T, script string) string {
	t.Helper()
	env := testenv.Submit(t, w.user, w.Content, script)
	testenv.Ask(t, w.user, eventstore.Command{Kind: eventstore.CommandCancel, ExecutionID: env.ExecutionID, Actor: "anonymous"})
	w.WaitView(t, env.ExecutionID, func(e domain.Execution) bool { return e.Status.Terminal() }, 10*time.Second)
	return env.ExecutionID
}

func (w world) types(t *testing.T, id string) []string {
	var out []string
	for _, e := range w.History(t, id) {
		out = append(out, e.Type)
	}
	return out
}

func (w world) record(t *testing.T, id string) content.Record {
	t.Helper()
	r, _, err := w.Content.Store().Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestEraser(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)

	t.Run("OK erased: the event, the key gone from the store and its files", func(t *testing.T) {
		id := w.ended(t, "print('shred-me')")
		wrapped := w.record(t, id).Wrapped
		if len(wrapped) == 0 {
			t.Fatal("no key was made")
		}
		// The store keeps binary data as base64 in its SQLite files.
		needle := []byte(base64.StdEncoding.EncodeToString(wrapped))
		if found := grep(t, w.StoreDir, needle); len(found) == 0 {
			t.Fatal("the store's files do not show the wrapped key: this search would prove nothing")
		}
		out, err := w.eraser.Erase(ctx, id, "alice", domain.EraseRequested)
		if err != nil || !out.Appended || out.InTheClear {
			t.Fatalf("%+v %v", out, err)
		}
		if got := w.types(t, id); got[len(got)-1] != domain.TypeExecutionErased {
			t.Fatalf("history %v", got)
		}
		v := w.WaitView(t, id, func(e domain.Execution) bool { return e.Erased }, 10*time.Second)
		if v.SealedInput != "" || v.SealedOutput != "" {
			t.Fatalf("the view keeps sealed content: %+v", v)
		}
		if r := w.record(t, id); len(r.Wrapped) != 0 || r.ShreddedAt == nil {
			t.Fatalf("record %+v", r)
		}
		if found := grep(t, w.StoreDir, needle); len(found) > 0 {
			t.Fatalf("the destroyed key is still in %v", found)
		}
		if err := eventstore.VerifyChain(w.Keys, w.History(t, id)); err != nil {
			t.Fatalf("the chain after erasure: %v", err)
		}
		again, err := w.eraser.Erase(ctx, id, "alice", domain.EraseRequested)
		if err != nil || again.Appended {
			t.Fatalf("second erase: %+v %v", again, err)
		}
	})

	t.Run("ErrRunning: refused, the mark dropped, the content readable", func(t *testing.T) {
		env := testenv.Submit(t, w.user, w.Content, "print('live')")
		if _, err := w.eraser.Erase(ctx, env.ExecutionID, "alice", domain.EraseRequested); domain.ErrorCode(err) != domain.ECONFLICT {
			t.Fatalf("erased a queued execution: %v", err)
		}
		if r := w.record(t, env.ExecutionID); r.Erasing != nil || len(r.Wrapped) == 0 {
			t.Fatalf("record after a refusal: %+v", r)
		}
		var q domain.ExecutionQueued
		ev, _ := eventstore.Decode(env)
		q = ev.(domain.ExecutionQueued)
		if in, err := w.Content.OpenInput(ctx, env.ExecutionID, q.Input); err != nil || in.Script != "print('live')" {
			t.Fatalf("%+v %v", in, err)
		}
	})

	t.Run("OK the sweep finishes an erasure that stopped after its mark", func(t *testing.T) {
		id := w.ended(t, "print(1)")
		// A crash right after step 1: marked, nothing in the ledger.
		if err := w.Content.Store().MarkErasing(ctx, id, content.Erasure{Actor: "alice", Reason: domain.EraseRequested, At: time.Now()}); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Content.Get(ctx, id); !errors.Is(err, content.ErrErased) {
			t.Fatalf("a marked key still opens: %v", err)
		}
		if _, err := w.eraser.Sweep(ctx, 0, time.Now()); err != nil {
			t.Fatal(err)
		}
		if got := w.types(t, id); got[len(got)-1] != domain.TypeExecutionErased {
			t.Fatalf("history %v", got)
		}
		if r := w.record(t, id); r.ShreddedAt == nil || len(r.Wrapped) != 0 {
			t.Fatalf("record %+v", r)
		}
	})

	t.Run("OK the sweep destroys the key of an erasure the ledger recorded", func(t *testing.T) {
		id := w.ended(t, "print(2)")
		// A crash right after step 2: marked and recorded, key still there.
		if err := w.Content.Store().MarkErasing(ctx, id, content.Erasure{Actor: "retention", Reason: domain.EraseRetention, At: time.Now()}); err != nil {
			t.Fatal(err)
		}
		testenv.Ask(t, w.user, eventstore.Command{Kind: eventstore.CommandErase, ExecutionID: id, Actor: "retention",
			Erase: &eventstore.EraseArgs{Reason: domain.EraseRetention}})
		if _, err := w.eraser.Sweep(ctx, 0, time.Now()); err != nil {
			t.Fatal(err)
		}
		if r := w.record(t, id); r.ShreddedAt == nil || len(r.Wrapped) != 0 {
			t.Fatalf("record %+v", r)
		}
		n := 0
		for _, typ := range w.types(t, id) {
			if typ == domain.TypeExecutionErased {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%d ExecutionErased events", n)
		}
	})

	t.Run("OK reconcile destroys a key restored after its erasure", func(t *testing.T) {
		id := w.ended(t, "print('restored')")
		before := w.record(t, id)
		if _, err := w.eraser.Erase(ctx, id, "alice", domain.EraseRequested); err != nil {
			t.Fatal(err)
		}
		w.WaitView(t, id, func(e domain.Execution) bool { return e.Erased }, 10*time.Second)
		// A key store restored from a backup taken before the erasure.
		_, err := w.DB.Database().Collection(mongo.CollContentKeys).ReplaceOne(ctx, bson.D{{Key: "_id", Value: id}},
			bson.D{{Key: "_id", Value: id}, {Key: "wrapped", Value: before.Wrapped}, {Key: "kek_id", Value: before.KEKID},
				{Key: "created_at", Value: before.CreatedAt}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Content.Get(ctx, id); err != nil {
			t.Fatalf("the restored key does not open: %v", err)
		}
		n, err := w.eraser.Reconcile(ctx, time.Now())
		if err != nil || n < 1 {
			t.Fatalf("reconciled %d: %v", n, err)
		}
		if r := w.record(t, id); r.ShreddedAt == nil || len(r.Wrapped) != 0 {
			t.Fatalf("record %+v", r)
		}
	})

	t.Run("OK reconcile records the erasure of a key destroyed without it", func(t *testing.T) {
		id := w.ended(t, "print('lost event')")
		if err := w.Content.Store().Shred(ctx, id, time.Now()); err != nil {
			t.Fatal(err)
		}
		n, err := w.eraser.Reconcile(ctx, time.Now())
		if err != nil || n < 1 {
			t.Fatalf("reconciled %d: %v", n, err)
		}
		w.WaitView(t, id, func(e domain.Execution) bool { return e.Erased }, 10*time.Second)
		if got := w.types(t, id); got[len(got)-1] != domain.TypeExecutionErased {
			t.Fatalf("history %v", got)
		}
		if n, err := w.eraser.Reconcile(ctx, time.Now()); err != nil || n != 0 {
			t.Fatalf("a second reconcile repaired %d: %v", n, err)
		}
	})

	t.Run("OK retention erases what ended before it, and nothing newer", func(t *testing.T) {
		old := w.ended(t, "print('old')")
		v := w.WaitView(t, old, func(e domain.Execution) bool { return e.FinishedAt != nil }, 10*time.Second)
		fresh := w.ended(t, "print('fresh')")
		// "now" is a moment after the old one ended: the fresh one ended
		// later, within the retention period.
		now := v.FinishedAt.Add(time.Hour)
		f := w.WaitView(t, fresh, func(e domain.Execution) bool { return e.FinishedAt != nil }, 10*time.Second)
		retention := now.Sub(*v.FinishedAt) - f.FinishedAt.Sub(*v.FinishedAt)/2
		n, err := w.eraser.Sweep(ctx, retention, now)
		if err != nil || n < 1 {
			t.Fatalf("swept %d: %v", n, err)
		}
		w.WaitView(t, old, func(e domain.Execution) bool { return e.Erased }, 10*time.Second)
		if v, _ := w.Views.View(ctx, fresh); v.Erased {
			t.Fatal("erased an execution within the retention period")
		}
		hist := w.History(t, old)
		if last := hist[len(hist)-1]; last.Type != domain.TypeExecutionErased || last.Actor != "retention" {
			t.Fatalf("last event %+v", last)
		}
	})

	t.Run("OK an execution recorded before sealing is erased from the views, honestly", func(t *testing.T) {
		id := uuid.Must(uuid.NewV7()).String()
		// A queued event whose content is in the clear, as an upcast
		// version 1 event has it (no key was ever made).
		plain := domain.Sealed(base64.RawURLEncoding.EncodeToString(append([]byte{0}, []byte(`{"script":"print('legacy')"}`)...)))
		testenv.Ask(t, w.user, eventstore.Command{Kind: eventstore.CommandSubmit, ExecutionID: id, Actor: "anonymous",
			Submit: &domain.ExecutionQueued{Language: "python", Version: "3.11", Input: plain, Limits: domain.DefaultLimits, Owner: "anonymous"}})
		testenv.Ask(t, w.user, eventstore.Command{Kind: eventstore.CommandCancel, ExecutionID: id, Actor: "anonymous"})
		v := w.WaitView(t, id, func(e domain.Execution) bool { return e.Status.Terminal() }, 10*time.Second)
		if v = w.Reveal(t, v); v.Script != "print('legacy')" {
			t.Fatalf("legacy content: %q", v.Script)
		}
		out, err := w.eraser.Erase(ctx, id, "alice", domain.EraseRequested)
		if err != nil || !out.InTheClear || !out.Appended {
			t.Fatalf("%+v %v", out, err)
		}
		if v := w.WaitView(t, id, func(e domain.Execution) bool { return e.Erased }, 10*time.Second); v.SealedInput != "" {
			t.Fatal("the view keeps the content")
		}
	})
}

// grep lists the files under dir that contain needle.
func grep(t *testing.T, dir string, needle []byte) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, needle) {
			found = append(found, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}
