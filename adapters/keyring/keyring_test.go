package keyring

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/integr8scode/integr8scode/eventstore"
)

func sign(t *testing.T, s eventstore.Signer) (hash, sig string) {
	t.Helper()
	env := eventstore.Envelope{EventID: "e", Type: "ExecutionQueued", SchemaVersion: 1, ExecutionID: "x", Sequence: 1, Data: []byte(`{}`)}
	if _, err := env.Seal("", s); err != nil {
		t.Fatal(err)
	}
	return env.Hash, env.Signature
}

func TestRotationKeepsOldSignaturesVerifiable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	first, err := LoadOrCreate(dir)
	if err != nil || first.Signer == nil {
		t.Fatalf("first key: %v", err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("key directory mode: %v %v", fi.Mode(), err)
	}
	h1, s1 := sign(t, first.Signer)
	id, err := Rotate(dir)
	if err != nil {
		t.Fatal(err)
	}
	second, err := Load(dir)
	if err != nil || second.Signer.KeyID() != id || id == first.Signer.KeyID() {
		t.Fatalf("after rotation the writer signs with %v, want the new %s (%v)", second.Signer, id, err)
	}
	if err := second.Keys.Verify(first.Signer.KeyID(), h1, s1); err != nil {
		t.Fatalf("an event signed before the rotation no longer verifies: %v", err)
	}
	if n := len(second.Keys.Keys()); n != 2 {
		t.Fatalf("%d keys after one rotation, want 2", n)
	}
	again, err := LoadOrCreate(dir)
	if err != nil || again.Signer.KeyID() != id {
		t.Fatalf("LoadOrCreate on an existing ring made another key: %v", err)
	}
}

func TestPublicKeysAlone(t *testing.T) {
	ring, err := LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h, s := sign(t, ring.Signer)
	t.Run("OK a directory of public keys verifies, and cannot sign", func(t *testing.T) {
		pub := t.TempDir()
		if err := ExportPublic(ring, pub); err != nil {
			t.Fatal(err)
		}
		r, err := Load(pub)
		if err != nil || r.Signer != nil {
			t.Fatalf("public copy: signer %v, %v", r.Signer, err)
		}
		if err := r.Keys.Verify(ring.Signer.KeyID(), h, s); err != nil {
			t.Fatal(err)
		}
	})
	doc, _ := json.Marshal(ring.Keys.Document())
	t.Run("OK a keys document from a file or a URL", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "keys.json")
		if err := os.WriteFile(file, doc, 0o644); err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(doc) }))
		defer srv.Close()
		for _, src := range []string{file, srv.URL + "/api/v1/ledger/keys"} {
			ks, err := Open(context.Background(), src)
			if err != nil {
				t.Fatalf("%s: %v", src, err)
			}
			if err := ks.Verify(ring.Signer.KeyID(), h, s); err != nil {
				t.Fatalf("%s: %v", src, err)
			}
		}
	})
	t.Run("ErrKeyUnderAnotherID a document cannot name a key as another", func(t *testing.T) {
		var d eventstore.KeysDocument
		_ = json.Unmarshal(doc, &d)
		d.Keys[0].KeyID = "ed25519:0000000000000000"
		b, _ := json.Marshal(d)
		if _, err := Parse(b); err == nil {
			t.Fatal("a key under a made-up id was accepted")
		}
	})
	t.Run("ErrNoActivePrivateKey", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "active"), []byte("00000000000000aa\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(dir); err == nil {
			t.Fatal("an active key without its private key was accepted")
		}
	})
}
