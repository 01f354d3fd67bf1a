package mongo

import (
	"bytes"
	"context"
	"crypto/rand"
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

// A destroyed content key must not survive in the embedded store's files:
// not in the database's free pages (secure_delete), nor in an old frame of
// the write-ahead log (Shred's scrub checkpoints and truncates it).
func TestAShreddedKeyLeavesNoCopyInTheEmbeddedStoresFiles(t *testing.T) {
	d := newTestDB(t, backendEmbedded)
	s := NewContentKeys(d)
	ctx := context.Background()
	wrapped := make([]byte, 48)
	_, _ = rand.Read(wrapped)
	if _, err := s.Insert(ctx, content.Record{ExecutionID: "e1", Wrapped: wrapped, KEKID: "kek-1", CreatedAt: at(0)}); err != nil {
		t.Fatal(err)
	}
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
