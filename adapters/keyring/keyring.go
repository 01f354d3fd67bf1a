// Package keyring keeps the ledger writer's Ed25519 signing keys in a
// directory: the embedded platform's data directory, or a Kubernetes
// Secret mounted as one. File names use only [a-z0-9.], which a Secret's
// keys allow.
//
//	<id>.pem      a private key (PKCS #8 PEM), 0600; the writer may sign with it
//	<id>.pub.pem  a public key (PKIX PEM) kept after its private key was retired
//	active        the id of the key the writer signs with now
//
// <id> is the hex part of eventstore.KeyIDOf. Rotation adds a key and
// points active at it; old keys stay, so every event ever signed stays
// verifiable.
package keyring

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/integr8scode/integr8scode/eventstore"
)

const activeFile = "active"

// Ring is the keys found in a directory.
type Ring struct {
	// Signer signs with the active key; nil when the directory holds no
	// private key (a verifier's copy).
	Signer *eventstore.Ed25519Signer
	// Keys verifies every signature any of the ring's keys made.
	Keys *eventstore.KeySet
}

// LoadOrCreate opens the ring in dir, creating dir (0700) and a first key
// if it holds none.
func LoadOrCreate(dir string) (Ring, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Ring{}, fmt.Errorf("ledger keys: %w", err)
	}
	if _, err := os.Stat(filepath.Join(dir, activeFile)); errors.Is(err, fs.ErrNotExist) {
		if _, err := Rotate(dir); err != nil {
			return Ring{}, err
		}
	}
	return Load(dir)
}

// Load opens the ring in dir without changing it.
func Load(dir string) (Ring, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return Ring{}, fmt.Errorf("ledger keys: %w", err)
	}
	var pubs []eventstore.PublicKey
	privs := map[string]ed25519.PrivateKey{}
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, ".pub.pem"):
			k, err := readPublic(filepath.Join(dir, name))
			if err != nil {
				return Ring{}, err
			}
			pubs = append(pubs, eventstore.PublicKey{KeyID: eventstore.KeyIDOf(k), Key: k})
		case strings.HasSuffix(name, ".pem"):
			k, err := readPrivate(filepath.Join(dir, name))
			if err != nil {
				return Ring{}, err
			}
			pub := k.Public().(ed25519.PublicKey)
			id := eventstore.KeyIDOf(pub)
			privs[id] = k
			pubs = append(pubs, eventstore.PublicKey{KeyID: id, Key: pub})
		}
	}
	keys, err := eventstore.NewKeySet(pubs...)
	if err != nil {
		return Ring{}, fmt.Errorf("ledger keys in %s: %w", dir, err)
	}
	r := Ring{Keys: keys}
	active, err := os.ReadFile(filepath.Join(dir, activeFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if len(pubs) == 0 {
			return Ring{}, fmt.Errorf("ledger keys: %s holds no key", dir)
		}
		return r, nil
	case err != nil:
		return Ring{}, fmt.Errorf("ledger keys: %w", err)
	}
	id := "ed25519:" + strings.TrimSpace(string(active))
	k, ok := privs[id]
	if !ok {
		return Ring{}, fmt.Errorf("ledger keys: the active key %s has no private key in %s", id, dir)
	}
	r.Signer = eventstore.NewEd25519Signer(k)
	return r, nil
}

// Rotate adds a new key to dir and makes it the active one. It returns the
// new key's id.
func Rotate(dir string) (string, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", fmt.Errorf("ledger keys: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", fmt.Errorf("ledger keys: %w", err)
	}
	id := eventstore.KeyIDOf(pub)
	hexID := strings.TrimPrefix(id, "ed25519:")
	if err := writeFile(dir, hexID+".pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
		return "", err
	}
	if err := writeFile(dir, activeFile, []byte(hexID+"\n")); err != nil {
		return "", err
	}
	return id, nil
}

// ExportPublic writes the public key of every key in r to dir as
// <id>.pub.pem: the copy a verifier (a projector in another process, an
// auditor) needs, without any private key.
func ExportPublic(r Ring, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, k := range r.Keys.Keys() {
		der, err := x509.MarshalPKIXPublicKey(k.Key)
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(k.KeyID, "ed25519:") + ".pub.pem"
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// writeFile writes name in dir atomically (a temporary file renamed), 0600.
func writeFile(dir, name string, data []byte) error {
	return writeFileOf("ledger keys", dir, name, data)
}

// writeFileOf is writeFile with errors prefixed by what.
func writeFileOf(what, dir, name string, data []byte) error {
	tmp, err := os.CreateTemp(dir, "."+name+".*")
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

func readPrivate(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ledger keys: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("ledger keys: %s is not a PEM private key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("ledger keys: %s: %w", path, err)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("ledger keys: %s is not an Ed25519 key", path)
	}
	return ek, nil
}

func readPublic(path string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ledger keys: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("ledger keys: %s is not a PEM public key", path)
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("ledger keys: %s: %w", path, err)
	}
	ek, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("ledger keys: %s is not an Ed25519 key", path)
	}
	return ek, nil
}
