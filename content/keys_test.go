package content_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/integr8scode/integr8scode/adapters/mongo"
	"github.com/integr8scode/integr8scode/content"
	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/internal/testenv"
)

// disconnected returns a database on the embedded store whose client is
// gone: every operation on it fails, as on a store that went away.
func disconnected(t *testing.T) *mongo.DB {
	t.Helper()
	db := testenv.Store(t, "content_gone")
	if err := db.Database().Client().Disconnect(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db
}

// corrupt overwrites the stored wrapped key of id.
func corrupt(t *testing.T, db *mongo.DB, id string, wrapped []byte) {
	t.Helper()
	_, err := db.Database().Collection(mongo.CollContentKeys).UpdateOne(context.Background(), bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "wrapped", Value: wrapped}}}})
	if err != nil {
		t.Fatal(err)
	}
}

func TestAStoredKeyThatWasTamperedWithNeverOpens(t *testing.T) {
	ctx := context.Background()
	db := testenv.Store(t, "content_keys")
	keys := testenv.ContentKeys(t, db)
	sealed, err := keys.SealInput(ctx, "tampered", domain.Input{Script: "print('secret')"})
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := keys.Store().Get(ctx, "tampered")
	if err != nil {
		t.Fatal(err)
	}

	flipped := append([]byte(nil), r.Wrapped...)
	flipped[len(flipped)-1] ^= 1
	corrupt(t, db, "tampered", flipped)
	if _, err := keys.OpenInput(ctx, "tampered", sealed); err == nil || !strings.Contains(err.Error(), "does not open") {
		t.Fatalf("a flipped bit in the wrapped key: %v", err)
	}

	corrupt(t, db, "tampered", r.Wrapped[:5])
	if _, err := keys.Get(ctx, "tampered"); err == nil || !strings.Contains(err.Error(), "malformed") {
		t.Fatalf("a truncated wrapped key: %v", err)
	}

	// A key moved to another execution's record does not open there: the
	// wrapping is bound to the execution's id.
	if _, err := keys.Create(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	corrupt(t, db, "other", r.Wrapped)
	if _, err := keys.Get(ctx, "other"); err == nil || !strings.Contains(err.Error(), "does not open") {
		t.Fatalf("a key moved to another execution: %v", err)
	}
	e := domain.Execution{ID: "other", SealedInput: sealed}
	if err := keys.Reveal(ctx, &e); err == nil || e.Erased || e.Script != "" {
		t.Fatalf("reveal with a key that does not open: %+v %v", e, err)
	}
}

func TestARecordWithoutAKeyReadsAsNoKeyNotAsErased(t *testing.T) {
	ctx := context.Background()
	keys := testenv.ContentKeys(t, testenv.Store(t, "content_keys"))
	// A record that holds no key, as one written before content was sealed.
	if _, err := keys.Store().Insert(ctx, content.Record{ExecutionID: "legacy", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Get(ctx, "legacy"); !errors.Is(err, content.ErrNoKey) {
		t.Fatalf("got %v", err)
	}
	sealed, err := keys.SealInput(ctx, "never-made", domain.Input{Script: "x"})
	if err != nil {
		t.Fatal(err)
	}
	// The same ciphertext under an id that has no key.
	if _, err := keys.OpenInput(ctx, "legacy", sealed); !errors.Is(err, content.ErrNoKey) {
		t.Fatalf("open without a key: %v", err)
	}
	e := domain.Execution{ID: "legacy", SealedInput: sealed}
	if err := keys.Reveal(ctx, &e); !errors.Is(err, content.ErrNoKey) || e.Erased {
		t.Fatalf("reveal without a key: %+v %v", e, err)
	}
}

func TestRevealOpensTheInputAndTheOutputOfItsOwnExecution(t *testing.T) {
	ctx := context.Background()
	keys := testenv.ContentKeys(t, testenv.Store(t, "content_keys"))
	in, err := keys.SealInput(ctx, "e1", domain.Input{Script: "print('hi')", Stdin: "data"})
	if err != nil {
		t.Fatal(err)
	}
	out, err := keys.SealOutput(ctx, "e1", domain.Output{Stdout: "hi\n", Stderr: "warning\n"})
	if err != nil {
		t.Fatal(err)
	}
	e := domain.Execution{ID: "e1", SealedInput: in, SealedOutput: out}
	if err := keys.Reveal(ctx, &e); err != nil {
		t.Fatal(err)
	}
	if e.Script != "print('hi')" || e.Stdin != "data" || e.Output != "hi\n" || e.Errors != "warning\n" || e.Erased {
		t.Fatalf("revealed %+v", e)
	}
	// An execution with nothing sealed, or erased, is left as it is.
	for _, e := range []domain.Execution{{ID: "e1"}, {ID: "e1", SealedInput: in, Erased: true}} {
		before := e
		if err := keys.Reveal(ctx, &e); err != nil || e.Script != "" || e.Erased != before.Erased {
			t.Fatalf("reveal of %+v: %+v %v", before, e, err)
		}
	}
	// Once the key is being destroyed, the output does not open either, and
	// the stderr the view holds goes with it.
	if err := keys.Store().MarkErasing(ctx, "e1", content.Erasure{Actor: "alice", Reason: domain.EraseRequested, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.SealInput(ctx, "e1", domain.Input{Script: "again"}); !errors.Is(err, content.ErrErased) {
		t.Fatalf("sealed new content under a key being erased: %v", err)
	}
	e = domain.Execution{ID: "e1", SealedInput: in, SealedOutput: out, Errors: "Traceback"}
	if err := keys.Reveal(ctx, &e); err != nil || !e.Erased || e.Errors != "" || e.Script != "" || e.Output != "" {
		t.Fatalf("reveal while erasing: %+v %v", e, err)
	}
}

func TestKeysOfAStoreThatIsGoneFailWithoutMakingOrOpeningAnything(t *testing.T) {
	ctx := context.Background()
	keys := testenv.ContentKeys(t, disconnected(t))
	if _, err := keys.Create(ctx, "e1"); err == nil || errors.Is(err, content.ErrNoKey) || !strings.Contains(err.Error(), "content key of e1") {
		t.Fatalf("create: %v", err)
	}
	if _, err := keys.SealInput(ctx, "e1", domain.Input{Script: "x"}); err == nil {
		t.Fatal("sealed without a stored key")
	}
	for _, err := range []error{
		func() error { _, err := keys.Get(ctx, "e1"); return err }(),
		func() error { _, err := keys.SealOutput(ctx, "e1", domain.Output{Stdout: "x"}); return err }(),
	} {
		if err == nil || errors.Is(err, content.ErrNoKey) || errors.Is(err, content.ErrErased) {
			t.Fatalf("a store that is gone read as an answer: %v", err)
		}
	}
}
