package mongo

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/integr8scode/integr8scode/content"
	contentstoretest "github.com/integr8scode/integr8scode/content/storetest"
)

// The content keys on every code path keep the contract the in-memory
// store keeps too.
func TestContentKeysKeepTheStoreContract(t *testing.T) {
	for _, b := range backends {
		t.Run(string(b), func(t *testing.T) {
			contentstoretest.Run(t, func(t *testing.T) content.Store { return NewContentKeys(newTestDB(t, b)) })
		})
	}
}

// storedCopies counts the copies of b, raw and base64 (FerretDB keeps
// binary fields as base64 in its JSON), in the files of database db on the
// shared server: the database itself and its write-ahead log.
func storedCopies(t *testing.T, db string, b []byte) int {
	t.Helper()
	n := 0
	for _, ext := range []string{".sqlite", ".sqlite-wal"} {
		data, err := os.ReadFile(filepath.Join(testServer.Dir(), db+ext))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		n += bytes.Count(data, b) + bytes.Count(data, []byte(base64.StdEncoding.EncodeToString(b)))
	}
	return n
}

// storeRandomKey stores a random wrapped key for id and returns it.
func storeRandomKey(t *testing.T, s *ContentKeys, id string) []byte {
	t.Helper()
	wrapped := make([]byte, 48)
	_, _ = rand.Read(wrapped)
	if _, err := s.Insert(context.Background(), content.Record{ExecutionID: id, Wrapped: wrapped, KEKID: "kek-1", CreatedAt: at(0)}); err != nil {
		t.Fatal(err)
	}
	return wrapped
}

// holdReader starts a read transaction on database db's SQLite file, on a
// connection of its own, and reads: it then holds the write-ahead log's
// frames written so far until it ends (Rollback, or the test's end).
func holdReader(t *testing.T, db string) *sql.Tx {
	t.Helper()
	file, err := sql.Open("sqlite", "file:"+filepath.ToSlash(filepath.Join(testServer.Dir(), db+sqliteDatabaseFileExt)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { file.Close() })
	reader, err := file.BeginTx(context.Background(), &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reader.Rollback() })
	var n int
	if err := reader.QueryRow("SELECT count(*) FROM " + sqliteMetadataTable).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return reader
}

// A destroyed content key must not survive in the embedded store's files:
// not in the database's free pages (secure_delete), nor in an old frame of
// the write-ahead log (Shred's scrub checkpoints and truncates it).
func TestAShreddedKeyLeavesNoCopyInTheEmbeddedStoresFiles(t *testing.T) {
	d := newTestDB(t, backendEmbedded)
	s := NewContentKeys(d)
	ctx := context.Background()
	wrapped := storeRandomKey(t, s, "e1")
	name := d.Database().Name()
	if storedCopies(t, name, wrapped) == 0 {
		t.Fatal("the stored key is in none of the files: the search cannot see it")
	}
	if err := s.Shred(ctx, "e1", at(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n := storedCopies(t, name, wrapped); n != 0 {
		t.Fatalf("%d copies of the shredded key are left in the store's files", n)
	}
}

// A shred's checkpoint must wait for readers still on older frames of the
// write-ahead log, and SQLite holds every writer of the file back while it
// waits. On a connection with the store's busy timeout (10 s), one reader
// in a long transaction (a client's open cursor, a slow list) stalled
// every write of the store for 10 s a try. The checkpoint now gives up
// within a moment and tries again, writes going through in between; the
// shred completes, and scrubs, once the reader has gone.
func TestAShredWaitingForAReaderDoesNotHoldTheStoresWritesBack(t *testing.T) {
	d := newTestDB(t, backendEmbedded)
	s := NewContentKeys(d)
	ctx := context.Background()
	wrapped := storeRandomKey(t, s, "e1")
	name := d.Database().Name()
	reader := holdReader(t, name)

	shredded := make(chan error, 1)
	go func() { shredded <- s.Shred(ctx, "e1", at(time.Hour)) }()
	time.Sleep(300 * time.Millisecond) // the shred is checkpointing by now, the reader in its way
	select {
	case err := <-shredded:
		t.Fatalf("the shred ended while a reader held the log's frames: %v", err)
	default:
	}
	wrote := make(chan error, 1)
	go func() {
		_, err := s.Insert(ctx, content.Record{ExecutionID: "e2", Wrapped: []byte("another key"), KEKID: "kek-1", CreatedAt: at(0)})
		wrote <- err
	}()
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatalf("a write during the shred: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a write waited 5 s behind a shred that waits for a reader")
	}

	if err := reader.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := <-shredded; err != nil {
		t.Fatalf("the shred, once the reader has gone: %v", err)
	}
	if n := storedCopies(t, name, wrapped); n != 0 {
		t.Fatalf("%d copies of the shredded key are left in the store's files", n)
	}
}

// A scrub that gives up (a reader outlasted its tries; here the caller's
// deadline ends it sooner) leaves the key's old bytes in the write-ahead
// log. The erasure is then not done: the record stays pending, so the
// eraser's sweep shreds it again, and that shred scrubs. That holds for a
// record without an erasure mark too (Reconcile shreds the live key of an
// execution the views say is erased, a key store restored from an older
// backup).
func TestAShredWhoseScrubFailedStaysPendingUntilAScrubSucceeds(t *testing.T) {
	d := newTestDB(t, backendEmbedded)
	s := NewContentKeys(d)
	ctx := context.Background()
	marked, unmarked := storeRandomKey(t, s, "e1"), storeRandomKey(t, s, "e2")
	if err := s.MarkErasing(ctx, "e1", content.Erasure{Actor: "alice", Reason: "requested", At: at(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	name := d.Database().Name()
	reader := holdReader(t, name)

	for _, id := range []string{"e1", "e2"} {
		short, cancel := context.WithTimeout(ctx, time.Second)
		err := s.Shred(short, id, at(time.Hour))
		cancel()
		if err == nil {
			t.Fatalf("the shred of %s succeeded while a reader held the log's frames", id)
		}
		if r, ok, err := s.Get(ctx, id); err != nil || !ok || len(r.Wrapped) != 0 || r.ShreddedAt == nil {
			t.Fatalf("after the failed scrub the key of %s must be gone from the document: %+v, %v, %v", id, r, ok, err)
		}
	}
	got, err := s.Pending(ctx, 10)
	ids := map[string]bool{}
	for _, r := range got {
		ids[r.ExecutionID] = true
	}
	if err != nil || len(got) != 2 || !ids["e1"] || !ids["e2"] {
		t.Fatalf("pending after the failed scrubs: %v, %v; want e1 (marked) and e2 (not)", ids, err)
	}

	if err := reader.Rollback(); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"e1", "e2"} {
		if err := s.Shred(ctx, id, at(2*time.Hour)); err != nil {
			t.Fatalf("the sweep's shred of %s: %v", id, err)
		}
		if r, _, _ := s.Get(ctx, id); !r.ShreddedAt.Equal(at(time.Hour)) {
			t.Fatalf("%s shredded at %v, want the first shred's time %v", id, r.ShreddedAt, at(time.Hour))
		}
	}
	if got, err := s.Pending(ctx, 10); err != nil || len(got) != 0 {
		t.Fatalf("pending after the scrub: %v, %v; want none", got, err)
	}
	if n := storedCopies(t, name, marked) + storedCopies(t, name, unmarked); n != 0 {
		t.Fatalf("%d copies of the shredded keys are left in the store's files", n)
	}
}
