package eventstore

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
)

// Signer signs the hashes of the events the ledger writer appends. The
// private key never leaves it; KeyID names the public key that verifies.
type Signer interface {
	KeyID() string
	// Sign returns the signature of digest, the 32 raw bytes of an event's hash.
	Sign(digest []byte) []byte
}

// Ed25519Signer signs with an Ed25519 private key.
type Ed25519Signer struct {
	id  string
	key ed25519.PrivateKey
}

// NewEd25519Signer returns a signer whose key id is derived from the public
// key (KeyIDOf), so a key id can never name two different keys.
func NewEd25519Signer(key ed25519.PrivateKey) *Ed25519Signer {
	return &Ed25519Signer{id: KeyIDOf(key.Public().(ed25519.PublicKey)), key: key}
}

func (s *Ed25519Signer) KeyID() string             { return s.id }
func (s *Ed25519Signer) Sign(digest []byte) []byte { return ed25519.Sign(s.key, digest) }

// Public returns the signer's public key.
func (s *Ed25519Signer) Public() PublicKey {
	return PublicKey{KeyID: s.id, Key: s.key.Public().(ed25519.PublicKey)}
}

// KeyIDOf names a public key: "ed25519:" and the first 16 hex digits of the
// SHA-256 of its 32 bytes.
func KeyIDOf(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return "ed25519:" + hex.EncodeToString(sum[:8])
}

// PublicKey is a key that verifies ledger signatures.
type PublicKey struct {
	KeyID string
	Key   ed25519.PublicKey
}

// KeySet holds the public keys an event's signature may be checked against:
// the writer's current key and every key it used before (rotation never
// makes an old event unverifiable).
// A KeySet only ever grows (Add), so it is safe to share and to update
// while events are verified with it.
type KeySet struct {
	mu   sync.RWMutex
	keys map[string]ed25519.PublicKey
}

// NewKeySet returns a key set of keys, refusing a key whose id does not
// match its bytes.
func NewKeySet(keys ...PublicKey) (*KeySet, error) {
	ks := &KeySet{keys: map[string]ed25519.PublicKey{}}
	if err := ks.Add(keys...); err != nil {
		return nil, err
	}
	return ks, nil
}

// Add puts keys into the set (a rotation's new key), refusing them all if
// one's id does not match its bytes.
func (ks *KeySet) Add(keys ...PublicKey) error {
	for _, k := range keys {
		if len(k.Key) != ed25519.PublicKeySize {
			return fmt.Errorf("key %s: %d bytes, an Ed25519 public key has %d", k.KeyID, len(k.Key), ed25519.PublicKeySize)
		}
		if KeyIDOf(k.Key) != k.KeyID {
			return fmt.Errorf("key %s: its id does not match its bytes (%s)", k.KeyID, KeyIDOf(k.Key))
		}
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	for _, k := range keys {
		ks.keys[k.KeyID] = k.Key
	}
	return nil
}

// Has reports whether the set holds the key named keyID.
func (ks *KeySet) Has(keyID string) bool {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	_, ok := ks.keys[keyID]
	return ok
}

// Keys lists the set's keys ordered by key id.
func (ks *KeySet) Keys() []PublicKey {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	out := make([]PublicKey, 0, len(ks.keys))
	for id, k := range ks.keys {
		out = append(out, PublicKey{KeyID: id, Key: k})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].KeyID < out[j].KeyID })
	return out
}

// Verify checks signature (base64url without padding) of the hex hash by
// the key named keyID.
func (ks *KeySet) Verify(keyID, hash, signature string) error {
	ks.mu.RLock()
	pub, ok := ks.keys[keyID]
	ks.mu.RUnlock()
	if !ok {
		return fmt.Errorf("signed with unknown key %q", keyID)
	}
	digest, err := hex.DecodeString(hash)
	if err != nil || len(digest) != sha256.Size {
		return fmt.Errorf("hash %q is not 64 hex digits", hash)
	}
	sig, err := base64.RawURLEncoding.DecodeString(signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return fmt.Errorf("signature is not %d bytes of base64url", ed25519.SignatureSize)
	}
	if !ed25519.Verify(pub, digest, sig) {
		return fmt.Errorf("signature does not verify with key %s", keyID)
	}
	return nil
}

// RotatingSigner signs with whichever key was set last: the ledger
// writer's signer while the key directory can be rotated under a running
// process (keyring.Watch). Seal takes one Snapshot per event, so an
// event's key_id and signature always come from the same key.
type RotatingSigner struct {
	cur atomic.Pointer[Ed25519Signer]
}

// NewRotatingSigner starts with s.
func NewRotatingSigner(s *Ed25519Signer) *RotatingSigner {
	r := &RotatingSigner{}
	r.cur.Store(s)
	return r
}

// Set makes s the key new events are signed with.
func (r *RotatingSigner) Set(s *Ed25519Signer) { r.cur.Store(s) }

// Snapshot is the signer of this moment.
func (r *RotatingSigner) Snapshot() Signer     { return r.cur.Load() }
func (r *RotatingSigner) KeyID() string        { return r.cur.Load().KeyID() }
func (r *RotatingSigner) Sign(d []byte) []byte { return r.cur.Load().Sign(d) }

func encodeSignature(sig []byte) string { return base64.RawURLEncoding.EncodeToString(sig) }

// EncodePublicKey is the public key's 32 bytes in base64url without padding,
// as served by GET /api/v1/ledger/keys.
func EncodePublicKey(k ed25519.PublicKey) string { return base64.RawURLEncoding.EncodeToString(k) }

// DecodePublicKey reverses EncodePublicKey.
func DecodePublicKey(s string) (ed25519.PublicKey, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("public key is not %d bytes of base64url", ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}

// KeysDocument is how public keys are published (GET /api/v1/ledger/keys)
// and archived by auditors: {"keys":[{"key_id","alg","public_key"}]}.
type KeysDocument struct {
	Keys []DocumentKey `json:"keys"`
}

// DocumentKey is one key of a KeysDocument; public_key is its 32 bytes in
// base64url without padding.
type DocumentKey struct {
	KeyID     string `json:"key_id"`
	Alg       string `json:"alg"`
	PublicKey string `json:"public_key"`
}

// Document is the keys document of the set.
func (ks *KeySet) Document() KeysDocument {
	doc := KeysDocument{Keys: []DocumentKey{}}
	for _, k := range ks.Keys() {
		doc.Keys = append(doc.Keys, DocumentKey{KeyID: k.KeyID, Alg: "Ed25519", PublicKey: EncodePublicKey(k.Key)})
	}
	return doc
}
