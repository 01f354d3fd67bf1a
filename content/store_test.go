package content_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/integr8scode/integr8scode/adapters/mongo"
	"github.com/integr8scode/integr8scode/content"
	"github.com/integr8scode/integr8scode/internal/testenv"
)

// The MemoryStore stands in for the key store when the API runs without
// one (web.NewServer), so it must keep the same contract as the store the
// platform keeps its keys in: one suite runs against both.
func TestStoresKeepTheContentKeyContract(t *testing.T) {
	stores := map[string]func(t *testing.T) content.Store{
		"memory": func(*testing.T) content.Store { return content.NewMemoryStore() },
		"mongo":  func(t *testing.T) content.Store { return mongo.NewContentKeys(testenv.Store(t, "content_contract")) },
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) { storeContract(t, open(t)) })
	}
}

// at is a time the store keeps to the millisecond, as MongoDB does.
var at = time.Date(2026, 12, 2, 7, 30, 0, 0, time.UTC)

func storeContract(t *testing.T, s content.Store) {
	ctx := context.Background()
	get := func(id string) (content.Record, bool) {
		t.Helper()
		r, ok, err := s.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return r, ok
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	t.Run("Insert keeps the first key of an execution", func(t *testing.T) {
		first := content.Record{ExecutionID: "ins", Wrapped: []byte("first"), KEKID: "k1", CreatedAt: at}
		if got, err := s.Insert(ctx, first); err != nil || string(got.Wrapped) != "first" {
			t.Fatalf("%+v %v", got, err)
		}
		got, err := s.Insert(ctx, content.Record{ExecutionID: "ins", Wrapped: []byte("second"), KEKID: "k1", CreatedAt: at.Add(time.Hour)})
		if err != nil || string(got.Wrapped) != "first" || !got.CreatedAt.Equal(at) {
			t.Fatalf("a second insert returned %+v %v, not the stored record", got, err)
		}
		if r, ok := get("ins"); !ok || string(r.Wrapped) != "first" || r.KEKID != "k1" || r.Erasing != nil || r.ShreddedAt != nil || r.Keyless {
			t.Fatalf("stored %+v %v", r, ok)
		}
		if _, ok := get("never"); ok {
			t.Fatal("a record of an id never inserted")
		}
	})

	t.Run("a mark on an execution without a key makes a keyless record that unmarking removes", func(t *testing.T) {
		must(s.MarkErasing(ctx, "nokey", content.Erasure{Actor: "alice", Reason: "requested", At: at}))
		r, ok := get("nokey")
		if !ok || !r.Keyless || r.Erasing == nil || r.Erasing.Actor != "alice" || len(r.Wrapped) != 0 {
			t.Fatalf("%+v %v", r, ok)
		}
		must(s.Unmark(ctx, "nokey"))
		if r, ok := get("nokey"); ok {
			t.Fatalf("the keyless record outlived its mark: %+v", r)
		}
		must(s.Unmark(ctx, "never")) // nothing to unmark is no error
	})

	t.Run("the first mark wins and unmarking keeps the key", func(t *testing.T) {
		_, err := s.Insert(ctx, content.Record{ExecutionID: "marked", Wrapped: []byte("key"), KEKID: "k1", CreatedAt: at})
		must(err)
		must(s.MarkErasing(ctx, "marked", content.Erasure{Actor: "alice", Reason: "requested", At: at}))
		must(s.MarkErasing(ctx, "marked", content.Erasure{Actor: "retention", Reason: "retention", At: at.Add(time.Minute)}))
		r, _ := get("marked")
		if r.Erasing == nil || r.Erasing.Actor != "alice" || r.Erasing.Reason != "requested" || !r.Erasing.At.Equal(at) {
			t.Fatalf("mark %+v", r.Erasing)
		}
		must(s.Unmark(ctx, "marked"))
		if r, ok := get("marked"); !ok || r.Erasing != nil || string(r.Wrapped) != "key" {
			t.Fatalf("after unmark %+v %v", r, ok)
		}
	})

	t.Run("Pending lists the marked records whose key lives, at most limit", func(t *testing.T) {
		for i := range 3 {
			id := fmt.Sprintf("pending-%d", i)
			_, err := s.Insert(ctx, content.Record{ExecutionID: id, Wrapped: []byte("key"), KEKID: "k1", CreatedAt: at})
			must(err)
			must(s.MarkErasing(ctx, id, content.Erasure{Actor: "alice", Reason: "requested", At: at}))
		}
		must(s.Shred(ctx, "pending-2", at))
		got, err := s.Pending(ctx, 10)
		must(err)
		var ids []string
		for _, r := range got {
			ids = append(ids, r.ExecutionID)
		}
		slices.Sort(ids)
		if !slices.Equal(ids, []string{"pending-0", "pending-1"}) {
			t.Fatalf("pending %v", ids)
		}
		if got, err := s.Pending(ctx, 1); err != nil || len(got) != 1 {
			t.Fatalf("limit 1: %d %v", len(got), err)
		}
	})

	t.Run("Shred leaves a tombstone that keeps the mark, once", func(t *testing.T) {
		_, err := s.Insert(ctx, content.Record{ExecutionID: "shred", Wrapped: []byte("key"), KEKID: "k1", CreatedAt: at})
		must(err)
		must(s.MarkErasing(ctx, "shred", content.Erasure{Actor: "alice", Reason: "requested", At: at}))
		must(s.Shred(ctx, "shred", at.Add(time.Minute)))
		must(s.Shred(ctx, "shred", at.Add(time.Hour)))
		r, _ := get("shred")
		if len(r.Wrapped) != 0 || r.KEKID != "" || r.ShreddedAt == nil || !r.ShreddedAt.Equal(at.Add(time.Minute)) ||
			r.Erasing == nil || r.Erasing.Actor != "alice" || !r.CreatedAt.Equal(at) {
			t.Fatalf("tombstone %+v", r)
		}
		// A tombstone is final: no new mark, and unmarking removes nothing.
		must(s.MarkErasing(ctx, "shred", content.Erasure{Actor: "bob", Reason: "retention", At: at}))
		must(s.Unmark(ctx, "shred"))
		if r, ok := get("shred"); !ok || r.ShreddedAt == nil || r.Erasing == nil || r.Erasing.Actor != "alice" {
			t.Fatalf("after mark and unmark %+v %v", r, ok)
		}
		// Unmarking a keyless tombstone keeps it too.
		must(s.MarkErasing(ctx, "shred-keyless", content.Erasure{Actor: "alice", Reason: "requested", At: at}))
		must(s.Shred(ctx, "shred-keyless", at))
		must(s.Unmark(ctx, "shred-keyless"))
		if r, ok := get("shred-keyless"); !ok || r.ShreddedAt == nil || !r.Keyless {
			t.Fatalf("keyless tombstone %+v %v", r, ok)
		}
	})

	t.Run("Shred of an execution without a record leaves a keyless tombstone", func(t *testing.T) {
		must(s.Shred(ctx, "shred-none", at))
		if r, ok := get("shred-none"); !ok || !r.Keyless || r.ShreddedAt == nil || r.Erasing != nil {
			t.Fatalf("%+v %v", r, ok)
		}
	})

	t.Run("Shredded pages the tombstones in id order", func(t *testing.T) {
		for _, id := range []string{"tomb-c", "tomb-a", "tomb-b"} {
			must(s.Shred(ctx, id, at))
		}
		var all []string
		for after := "tomb-"; ; {
			page, err := s.Shredded(ctx, after, 2)
			must(err)
			for _, r := range page {
				if r.ShreddedAt == nil {
					t.Fatalf("a live record among the tombstones: %+v", r)
				}
				all = append(all, r.ExecutionID)
			}
			if len(page) < 2 {
				break
			}
			after = page[len(page)-1].ExecutionID
		}
		if !slices.Equal(all, []string{"tomb-a", "tomb-b", "tomb-c"}) {
			t.Fatalf("tombstones after tomb-: %v", all)
		}
	})
}
