package keyring

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/integr8scode/integr8scode/eventstore"
)

func TestWatchSwitchesToARotatedKeyAndKeepsTheOldOnes(t *testing.T) {
	dir := t.TempDir()
	ring, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	first := ring.Signer.KeyID()
	signer := eventstore.NewRotatingSigner(ring.Signer)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go Watch(ctx, dir, 20*time.Millisecond, ring.Keys, signer, slog.New(slog.NewTextHandler(io.Discard, nil)))

	second, err := Rotate(dir)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for signer.KeyID() != second {
		if time.Now().After(deadline) {
			t.Fatalf("still signing with %s after the rotation to %s", signer.KeyID(), second)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !ring.Keys.Has(first) || !ring.Keys.Has(second) {
		t.Fatal("the key set lost the old key or lacks the new one")
	}
	// A sealed event names the key that signed it, and verifies.
	env := eventstore.Envelope{EventID: "e", Type: "ExecutionQueued", SchemaVersion: 1, ExecutionID: "x", Sequence: 1,
		OccurredAt: time.Now(), Data: []byte(`{}`)}
	if _, err := env.Seal("", signer); err != nil {
		t.Fatal(err)
	}
	if env.KeyID != second || ring.Keys.Verify(env.KeyID, env.Hash, env.Signature) != nil {
		t.Fatalf("sealed with %s; verifies: %v", env.KeyID, ring.Keys.Verify(env.KeyID, env.Hash, env.Signature))
	}
	// A half-written directory (active names a key that is not there)
	// changes nothing.
	if err := writeFile(dir, activeFile, []byte("0000000000000000\n")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if signer.KeyID() != second {
		t.Fatalf("switched to %s on a broken directory", signer.KeyID())
	}
}

// A Secret volume is a directory of links into a timestamped directory
// (..data -> ..2025_…/): the fingerprint follows the links to the files'
// contents, and the directories themselves change nothing.
func TestFingerprintFollowsLinksToContentsAndIgnoresDirectories(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "..2025_01_01")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "active"), []byte("aa\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(data, "active"), filepath.Join(dir, "active")); err != nil {
		t.Fatal(err)
	}
	before := fingerprint(dir)
	if err := os.Mkdir(filepath.Join(dir, "..2025_01_02"), 0o700); err != nil {
		t.Fatal(err)
	}
	if fingerprint(dir) != before {
		t.Fatal("a new directory changed the fingerprint")
	}
	if err := os.WriteFile(filepath.Join(data, "active"), []byte("bb\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if fingerprint(dir) == before {
		t.Fatal("new contents behind a link left the fingerprint as it was")
	}
}

func TestWatchDirReturnsWhenItsContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	WatchDir(ctx, t.TempDir(), time.Hour, slog.New(slog.DiscardHandler), func() error {
		t.Error("reloaded with nothing changed")
		return nil
	})
}
