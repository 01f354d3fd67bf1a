package keyring

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The tests run as root, for whom permissions deny nothing: a path that
// cannot be written or read is made of a directory, or a dangling link,
// where a file is expected.

// blockWith makes name in dir a non-empty directory, which no rename can
// replace and no read can read as a file.
func blockWith(t *testing.T, dir, name string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, name, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
}

// leftovers fails t if dir holds a temporary file of writeFileOf.
func leftovers(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

func TestARotationThatCannotRepointActiveFailsAndLeavesNoTemporaryFile(t *testing.T) {
	dir := t.TempDir()
	blockWith(t, dir, activeFile)
	if _, err := Rotate(dir); err == nil || !strings.HasPrefix(err.Error(), "ledger keys: rename") {
		t.Fatalf("Rotate: %v, want the failed rename", err)
	}
	leftovers(t, dir)

	tokens := t.TempDir()
	blockWith(t, tokens, activeFile)
	if _, err := RotateTokenKey(tokens); err == nil || !strings.HasPrefix(err.Error(), "token keys: rename") {
		t.Fatalf("RotateTokenKey: %v, want the failed rename", err)
	}
	leftovers(t, tokens)
}

// A writer whose active file cannot be read must not start as a verifier
// without a signer, which is what a directory without that file is.
func TestAnUnreadableActiveFileIsAnErrorNotAVerifiersCopy(t *testing.T) {
	dir := t.TempDir()
	if _, err := Rotate(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, activeFile)); err != nil {
		t.Fatal(err)
	}
	blockWith(t, dir, activeFile)
	if r, err := Load(dir); err == nil {
		t.Fatalf("loaded a ring with signer %v from a directory whose active file is a directory", r.Signer)
	}
}

func TestAKeyFileThatCannotBeReadIsRefused(t *testing.T) {
	for _, name := range []string{"aa.pem", "aa.pub.pem"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.Symlink(filepath.Join(dir, "gone"), filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
			if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "no such file") {
				t.Fatalf("Load: %v, want the unreadable %s reported", err, name)
			}
		})
	}
}

func TestExportPublicReportsWhereItCannotWrite(t *testing.T) {
	ring, err := LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ExportPublic(ring, file); err == nil {
		t.Fatal("exported into a regular file")
	}
	dir := t.TempDir()
	blockWith(t, dir, strings.TrimPrefix(ring.Signer.KeyID(), "ed25519:")+".pub.pem")
	if err := ExportPublic(ring, dir); err == nil {
		t.Fatal("exported over a directory in place of the key file")
	}
}

func TestOpenOfAKeyDirectoryVerifiesItsSignatures(t *testing.T) {
	dir := t.TempDir()
	ring, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	h, s := sign(t, ring.Signer)
	ks, err := Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := ks.Verify(ring.Signer.KeyID(), h, s); err != nil {
		t.Fatal(err)
	}
}

func TestKeysFetchedOverHTTPFailOnABadURLOrACutBody(t *testing.T) {
	if _, err := Open(context.Background(), "http://[::1/keys"); err == nil || !strings.HasPrefix(err.Error(), "ledger keys: parse") {
		t.Fatalf("a malformed URL: %v", err)
	}
	// The server promises more than it sends, then drops the connection.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		_, _ = w.Write([]byte(`{"keys":[`))
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}))
	defer srv.Close()
	if _, err := Open(context.Background(), srv.URL); err == nil || !strings.Contains(err.Error(), "unexpected EOF") {
		t.Fatalf("a cut body: %v, want it reported, not parsed", err)
	}
}

func TestTokenKeysRefuseWhatTheyCannotRead(t *testing.T) {
	t.Run("ErrDirectoryIsAFile", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "auth-keys")
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadOrCreateTokenKeys(file); err == nil {
			t.Fatal("made token keys in a regular file")
		}
	})
	t.Run("ErrNoActiveFile", func(t *testing.T) {
		if _, err := LoadTokenKeys(t.TempDir()); err == nil || !strings.Contains(err.Error(), "active") {
			t.Fatalf("%v, want the missing active file reported", err)
		}
	})
	for _, c := range []struct {
		name  string
		plant func(t *testing.T, dir string)
		want  string
	}{
		{"ErrKeyNotBase64", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, "bad.key"), []byte("!!!\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "bad.key is not base64"},
		{"ErrKeyUnreadable", func(t *testing.T, dir string) {
			if err := os.Symlink(filepath.Join(dir, "gone"), filepath.Join(dir, "bad.key")); err != nil {
				t.Fatal(err)
			}
		}, "no such file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := LoadOrCreateTokenKeys(dir); err != nil {
				t.Fatal(err)
			}
			c.plant(t, dir)
			if _, err := LoadTokenKeys(dir); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("%v, want an error saying %q", err, c.want)
			}
		})
	}
}

// The idempotency secret and the key-encryption key are never replaced: a
// new idempotency secret would run retried requests again, a new
// key-encryption key would lose every execution's content. So a damaged
// one stops the first token key from being made, and stays as it was.
func TestADamagedSecretBesideTheTokenKeysIsKeptAndStopsKeyCreation(t *testing.T) {
	for _, name := range []string{IdempotencySecretFile, ContentKEKFile} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			damaged := []byte("c2hvcnQ=\n")
			if err := os.WriteFile(filepath.Join(dir, name), damaged, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := LoadOrCreateTokenKeys(dir); err == nil || !strings.Contains(err.Error(), name) {
				t.Fatalf("%v, want the damaged %s reported", err, name)
			}
			if b, _ := os.ReadFile(filepath.Join(dir, name)); string(b) != string(damaged) {
				t.Fatalf("%s was overwritten", name)
			}
			if _, err := os.Stat(filepath.Join(dir, activeFile)); err == nil {
				t.Fatal("a token key was made active all the same")
			}
		})
	}
}

func TestTheIdempotencySecretIsReadOrMadeOnlyWhereItCanBe(t *testing.T) {
	dir := t.TempDir()
	first, err := LoadOrCreateIdempotencySecret(dir)
	if err != nil || len(first) != 32 {
		t.Fatalf("%d bytes, %v", len(first), err)
	}
	if again, err := LoadOrCreateIdempotencySecret(dir); err != nil || string(again) != string(first) {
		t.Fatalf("a second start read another secret: %v", err)
	}
	if _, err := LoadOrCreateIdempotencySecret(filepath.Join(dir, "missing")); err == nil ||
		!strings.Contains(err.Error(), "rotate-token-key") {
		t.Fatalf("a directory that cannot hold it: %v, want the hint how to make it", err)
	}
	blocked := t.TempDir()
	blockWith(t, blocked, IdempotencySecretFile)
	if _, err := LoadOrCreateIdempotencySecret(blocked); err == nil || !strings.HasPrefix(err.Error(), "token keys: read") {
		t.Fatalf("an unreadable secret: %v", err)
	}
}
