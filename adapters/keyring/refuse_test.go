package keyring

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/integr8scode/integr8scode/eventstore"
)

// A key directory or keys document that is damaged, or holds a key of
// another kind, is refused with the reason: the writer must never sign
// with, nor an auditor trust, a key it could not read as an Ed25519 key.
func TestDamagedKeysAreRefused(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecPriv, _ := x509.MarshalPKCS8PrivateKey(ec)
	ecPub, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	pemOf := func(typ string, der []byte) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
	}

	for _, c := range []struct {
		name, file, body, want string
	}{
		{"ErrPrivateNotPEM", "aa.pem", "not a key", "is not a PEM private key"},
		{"ErrPrivateWrongBlock", "aa.pem", pemOf("PUBLIC KEY", ecPub), "is not a PEM private key"},
		{"ErrPrivateGarbage", "aa.pem", pemOf("PRIVATE KEY", []byte("garbage")), "aa.pem: asn1"},
		{"ErrPrivateNotEd25519", "aa.pem", pemOf("PRIVATE KEY", ecPriv), "is not an Ed25519 key"},
		{"ErrPublicNotPEM", "aa.pub.pem", "not a key", "is not a PEM public key"},
		{"ErrPublicGarbage", "aa.pub.pem", pemOf("PUBLIC KEY", []byte("garbage")), "aa.pub.pem: asn1"},
		{"ErrPublicNotEd25519", "aa.pub.pem", pemOf("PUBLIC KEY", ecPub), "is not an Ed25519 key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, c.file), []byte(c.body), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Load: %v, want an error saying %q", err, c.want)
			}
			// An auditor pointed at the directory is refused the same way.
			if _, err := Open(context.Background(), dir); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Open: %v, want an error saying %q", err, c.want)
			}
		})
	}

	t.Run("ErrEmptyDirectory", func(t *testing.T) {
		if _, err := Load(t.TempDir()); err == nil || !strings.Contains(err.Error(), "holds no key") {
			t.Fatalf("Load of an empty directory: %v", err)
		}
	})
	t.Run("ErrNoDirectory", func(t *testing.T) {
		if _, err := Load(filepath.Join(t.TempDir(), "missing")); err == nil {
			t.Fatal("Load of a missing directory succeeded")
		}
		if _, err := Open(context.Background(), filepath.Join(t.TempDir(), "missing")); err == nil {
			t.Fatal("Open of a missing path succeeded")
		}
	})
	t.Run("ErrDirectoryIsAFile", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "keys")
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadOrCreate(file); err == nil {
			t.Fatal("LoadOrCreate made a ring in a regular file")
		}
		if _, err := Rotate(file); err == nil {
			t.Fatal("Rotate wrote a key into a regular file")
		}
	})
}

func TestDamagedKeysDocumentsAreRefused(t *testing.T) {
	ring, err := LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	good := ring.Keys.Document()
	doc := func(edit func(*eventstore.KeysDocument)) string {
		b, _ := json.Marshal(good)
		var d eventstore.KeysDocument
		_ = json.Unmarshal(b, &d)
		edit(&d)
		b, _ = json.Marshal(d)
		return string(b)
	}
	for _, c := range []struct{ name, body, want string }{
		{"ErrNotJSON", "<html>", "ledger keys: invalid character"},
		{"ErrNoKey", doc(func(d *eventstore.KeysDocument) { d.Keys = nil }), "holds no key"},
		{"ErrUnknownAlgorithm", doc(func(d *eventstore.KeysDocument) { d.Keys[0].Alg = "RSA" }), `algorithm "RSA"`},
		{"ErrBadPublicKey", doc(func(d *eventstore.KeysDocument) { d.Keys[0].PublicKey = "!!" }), "ledger keys: key ed25519:"},
	} {
		t.Run(c.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "keys.json")
			if err := os.WriteFile(file, []byte(c.body), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := Open(context.Background(), file); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("%v, want an error saying %q", err, c.want)
			}
		})
	}

	t.Run("ErrEndpointAnswersAnError", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		defer srv.Close()
		if _, err := Open(context.Background(), srv.URL+"/api/v1/ledger/keys"); err == nil || !strings.Contains(err.Error(), "404 Not Found") {
			t.Fatalf("%v, want the endpoint's 404", err)
		}
	})
	t.Run("ErrEndpointUnreachable", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		if _, err := Open(context.Background(), url+"/api/v1/ledger/keys"); err == nil || !strings.Contains(err.Error(), "ledger keys from "+url) {
			t.Fatalf("%v, want an error naming the URL", err)
		}
	})
}
