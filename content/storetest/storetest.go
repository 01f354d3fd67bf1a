// Package storetest is the contract every content.Store keeps: one suite
// that runs against the MemoryStore (an API started without a key store,
// and the tests of package content) and against adapters/mongo on every
// code path, so that an erasure means the same in both.
package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/integr8scode/integr8scode/content"
	"github.com/integr8scode/integr8scode/domain"
)

// t0 has nanoseconds on purpose: every time must survive storage exactly.
var t0 = time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

// Run runs the contract against stores that open returns, a fresh empty
// one for each subtest.
func Run(t *testing.T, open func(t *testing.T) content.Store) {
	t.Run("InsertKeepsTheFirstRecord", func(t *testing.T) { insert(t, open(t)) })
	t.Run("MarkErasing", func(t *testing.T) { mark(t, open(t)) })
	t.Run("Unmark", func(t *testing.T) { unmark(t, open(t)) })
	t.Run("Shred", func(t *testing.T) { shred(t, open(t)) })
	t.Run("Pending", func(t *testing.T) { pending(t, open(t)) })
	t.Run("ShreddedPagesInIDOrder", func(t *testing.T) { shredded(t, open(t)) })
}

func keyed(id string) content.Record {
	return content.Record{ExecutionID: id, Wrapped: []byte("wrapped key of " + id), KEKID: "kek-1", CreatedAt: at(0)}
}

var (
	alice = content.Erasure{Actor: "alice", Reason: "asked", At: at(time.Minute)}
	bob   = content.Erasure{Actor: "bob", Reason: "retention", At: at(2 * time.Minute)}
)

// get reads id, failing t on an error.
func get(t *testing.T, s content.Store, id string) (content.Record, bool) {
	t.Helper()
	r, ok, err := s.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r, ok
}

// same fails t unless got is want, times compared as instants.
func same(t *testing.T, what string, got, want content.Record) {
	t.Helper()
	eqTime := func(a, b *time.Time) bool { return (a == nil) == (b == nil) && (a == nil || a.Equal(*b)) }
	eqErasure := func(a, b *content.Erasure) bool {
		return (a == nil) == (b == nil) && (a == nil || a.Actor == b.Actor && a.Reason == b.Reason && a.At.Equal(b.At))
	}
	if got.ExecutionID != want.ExecutionID || string(got.Wrapped) != string(want.Wrapped) || got.KEKID != want.KEKID ||
		!got.CreatedAt.Equal(want.CreatedAt) || !eqErasure(got.Erasing, want.Erasing) ||
		!eqTime(got.ShreddedAt, want.ShreddedAt) || got.Keyless != want.Keyless {
		t.Fatalf("%s:\n got %s\nwant %s", what, show(got), show(want))
	}
}

func show(r content.Record) string {
	s := fmt.Sprintf("{%s wrapped=%q kek=%q created=%s keyless=%v", r.ExecutionID, r.Wrapped, r.KEKID, r.CreatedAt, r.Keyless)
	if r.Erasing != nil {
		s += fmt.Sprintf(" erasing=%+v", *r.Erasing)
	}
	if r.ShreddedAt != nil {
		s += fmt.Sprintf(" shredded=%s", r.ShreddedAt)
	}
	return s + "}"
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func insert(t *testing.T, s content.Store) {
	ctx := context.Background()
	if _, ok := get(t, s, "e1"); ok {
		t.Fatal("a record in an empty store")
	}
	first := keyed("e1")
	got, err := s.Insert(ctx, first)
	must(t, err)
	same(t, "the first insert", got, first)
	second := keyed("e1")
	second.Wrapped, second.CreatedAt = []byte("another key"), at(time.Hour)
	got, err = s.Insert(ctx, second)
	must(t, err)
	same(t, "a second insert returns the record stored", got, first)
	stored, _ := get(t, s, "e1")
	same(t, "stored", stored, first)
}

func mark(t *testing.T, s content.Store) {
	ctx := context.Background()
	_, err := s.Insert(ctx, keyed("e1"))
	must(t, err)
	must(t, s.MarkErasing(ctx, "e1", alice))
	must(t, s.MarkErasing(ctx, "e1", bob))
	want := keyed("e1")
	want.Erasing = &alice
	got, _ := get(t, s, "e1")
	same(t, "the first mark is kept", got, want)

	// An execution without a key (recorded before sealing) gets a
	// keyless record carrying the mark.
	must(t, s.MarkErasing(ctx, "e2", bob))
	got, ok := get(t, s, "e2")
	if !ok {
		t.Fatal("no record made for an execution without a key")
	}
	same(t, "keyless", got, content.Record{ExecutionID: "e2", CreatedAt: bob.At, Erasing: &bob, Keyless: true})

	// A key already destroyed is never marked again.
	_, err = s.Insert(ctx, keyed("e3"))
	must(t, err)
	must(t, s.Shred(ctx, "e3", at(time.Hour)))
	must(t, s.MarkErasing(ctx, "e3", alice))
	got, _ = get(t, s, "e3")
	if got.Erasing != nil {
		t.Fatalf("a shredded record was marked: %s", show(got))
	}
}

func unmark(t *testing.T, s content.Store) {
	ctx := context.Background()
	must(t, s.Unmark(ctx, "nothing")) // nothing to drop is no error

	_, err := s.Insert(ctx, keyed("e1"))
	must(t, err)
	must(t, s.MarkErasing(ctx, "e1", alice))
	must(t, s.Unmark(ctx, "e1"))
	got, _ := get(t, s, "e1")
	same(t, "an unmarked key", got, keyed("e1"))

	must(t, s.MarkErasing(ctx, "e2", alice))
	must(t, s.Unmark(ctx, "e2"))
	if got, ok := get(t, s, "e2"); ok {
		t.Fatalf("the record the mark made is still there: %s", show(got))
	}

	// Once shredded the record is history: the mark stays with it.
	_, err = s.Insert(ctx, keyed("e3"))
	must(t, err)
	must(t, s.MarkErasing(ctx, "e3", alice))
	must(t, s.Shred(ctx, "e3", at(time.Hour)))
	must(t, s.Unmark(ctx, "e3"))
	got, _ = get(t, s, "e3")
	same(t, "a shredded record", got, content.Record{ExecutionID: "e3", CreatedAt: at(0), Erasing: &alice, ShreddedAt: ptime(at(time.Hour))})
}

func shred(t *testing.T, s content.Store) {
	ctx := context.Background()
	_, err := s.Insert(ctx, keyed("e1"))
	must(t, err)
	must(t, s.MarkErasing(ctx, "e1", alice))
	must(t, s.Shred(ctx, "e1", at(time.Hour)))
	tomb := content.Record{ExecutionID: "e1", CreatedAt: at(0), Erasing: &alice, ShreddedAt: ptime(at(time.Hour))}
	got, _ := get(t, s, "e1")
	same(t, "the tombstone", got, tomb)
	must(t, s.Shred(ctx, "e1", at(2*time.Hour)))
	got, _ = get(t, s, "e1")
	same(t, "a second shred keeps the first time", got, tomb)

	// An execution that never had a key gets a tombstone all the same,
	// so that reading its content says erased, not "no key".
	must(t, s.Shred(ctx, "e2", at(time.Hour)))
	got, _ = get(t, s, "e2")
	same(t, "a keyless tombstone", got, content.Record{ExecutionID: "e2", CreatedAt: at(time.Hour), ShreddedAt: ptime(at(time.Hour)), Keyless: true})
}

func pending(t *testing.T, s content.Store) {
	ctx := context.Background()
	for _, id := range []string{"e1", "e2", "e3", "e4"} {
		_, err := s.Insert(ctx, keyed(id))
		must(t, err)
	}
	for _, id := range []string{"e1", "e2", "e3"} {
		must(t, s.MarkErasing(ctx, id, alice))
	}
	must(t, s.Shred(ctx, "e3", at(time.Hour)))
	got, err := s.Pending(ctx, 10)
	must(t, err)
	ids := map[string]bool{}
	for _, r := range got {
		ids[r.ExecutionID] = true
		if r.Erasing == nil || r.ShreddedAt != nil || string(r.Wrapped) != "wrapped key of "+r.ExecutionID {
			t.Errorf("pending %s", show(r))
		}
	}
	if len(got) != 2 || !ids["e1"] || !ids["e2"] {
		t.Fatalf("pending %v, want e1 and e2 (marked, not shredded)", ids)
	}
	if got, err := s.Pending(ctx, 1); err != nil || len(got) != 1 {
		t.Fatalf("pending at most 1: %d, %v", len(got), err)
	}
	// A limit of 0 is no limit to MongoDB and nothing to a slice: every
	// store refuses it, and a negative one.
	for _, limit := range []int{0, -1} {
		if got, err := s.Pending(ctx, limit); domain.ErrorCode(err) != domain.EINVALID {
			t.Errorf("pending, limit %d: %d records, %v; want an invalid-input error", limit, len(got), err)
		}
		if got, err := s.Shredded(ctx, "", limit); domain.ErrorCode(err) != domain.EINVALID {
			t.Errorf("shredded, limit %d: %d records, %v; want an invalid-input error", limit, len(got), err)
		}
	}
}

func shredded(t *testing.T, s content.Store) {
	ctx := context.Background()
	for _, id := range []string{"e5", "e1", "e4", "e2"} {
		_, err := s.Insert(ctx, keyed(id))
		must(t, err)
		must(t, s.Shred(ctx, id, at(time.Hour)))
	}
	_, err := s.Insert(ctx, keyed("e3")) // not shredded: never listed
	must(t, err)
	var got []string
	after := ""
	for {
		page, err := s.Shredded(ctx, after, 3)
		must(t, err)
		if len(page) == 0 {
			break
		}
		for _, r := range page {
			if r.ShreddedAt == nil || len(r.Wrapped) != 0 {
				t.Errorf("listed %s", show(r))
			}
			got = append(got, r.ExecutionID)
		}
		after = page[len(page)-1].ExecutionID
	}
	if fmt.Sprint(got) != "[e1 e2 e4 e5]" {
		t.Fatalf("tombstones %v, want [e1 e2 e4 e5] in id order", got)
	}
}

func ptime(t time.Time) *time.Time { return &t }
