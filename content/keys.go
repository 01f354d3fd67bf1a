// Package content keeps users' content erasable in a ledger that keeps
// every event forever (docs/events.md, "Erasure"). Every execution's
// script, stdin and output enter the log only sealed under a data key of
// its own (eventstore.Seal); Keys keeps those keys outside the log,
// wrapped under a key-encryption key; Eraser records an erasure in the
// ledger and destroys the key, after which the sealed content in every
// copy of the log is noise while every hash and signature still verifies.
package content

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/eventstore"
)

// Record is what the key store holds of one execution: its data key,
// wrapped, while the content may be read; afterwards a tombstone that says
// when and why it was destroyed. The key store is primary data (like
// accounts), not a view: nothing rebuilds it from the log.
type Record struct {
	ExecutionID string
	// Wrapped is the data key sealed under the key-encryption key KEKID
	// (nil once shredded, and for executions recorded before sealing).
	Wrapped   []byte
	KEKID     string
	CreatedAt time.Time
	// Erasing is set when an erasure was asked for (and by whom, why);
	// ShreddedAt once the key is destroyed.
	Erasing    *Erasure
	ShreddedAt *time.Time
	// Keyless marks a record that an erasure made for an execution that
	// had no key: one recorded before content was sealed.
	Keyless bool
}

// Erasure says who asked to erase an execution's content, and why.
type Erasure struct {
	Actor  string
	Reason string
	At     time.Time
}

// Store keeps the records (adapters/mongo, collection content_keys).
type Store interface {
	// Insert stores r unless a record of r.ExecutionID exists, and returns
	// the record stored now (r, or the one that was there).
	Insert(ctx context.Context, r Record) (Record, error)
	// Get returns the record of id; false if there is none.
	Get(ctx context.Context, id string) (Record, bool, error)
	// MarkErasing records that id is to be erased (creating a Keyless
	// record if there is none); it keeps an earlier mark.
	MarkErasing(ctx context.Context, id string, e Erasure) error
	// Unmark drops the mark of an erasure the ledger refused (and the
	// record, if the mark made it and it holds nothing else).
	Unmark(ctx context.Context, id string) error
	// Shred destroys id's wrapped key for good, leaving the tombstone, and
	// makes sure no copy of it is left in the store's files; when that
	// last part fails, the record (marked or not) stays Pending until a
	// Shred of it succeeds.
	Shred(ctx context.Context, id string, at time.Time) error
	// Pending lists the erasures not done: records marked for erasure
	// and not shredded yet, and records shredded by a Shred that failed
	// (which may carry no mark); at most limit (CheckLimit).
	Pending(ctx context.Context, limit int) ([]Record, error)
	// Shredded lists tombstones with an id above after, in id order, at
	// most limit (CheckLimit).
	Shredded(ctx context.Context, after string, limit int) ([]Record, error)
}

// CheckLimit refuses a listing's limit below 1, as every Store does:
// MongoDB reads a limit of 0 as no limit at all, a slice as nothing.
func CheckLimit(limit int) error {
	if limit < 1 {
		return domain.Errorf(domain.EINVALID, "limit %d: must be at least 1", limit)
	}
	return nil
}

// Errors of reading content.
var (
	// ErrErased: the execution's content was erased; it never opens again.
	ErrErased = errors.New("the content of this execution was erased")
	// ErrNoKey: there is no key for the execution (none was made).
	ErrNoKey = errors.New("no content key for this execution")
)

// Keys makes, reads and destroys data keys. A data key is stored wrapped
// (AES-256-GCM, bound to its execution's id) under the key-encryption key,
// which lives beside the other secrets, not in the store: a dump of the
// store alone opens nothing.
type Keys struct {
	store Store
	kek   cipher.AEAD
	kekID string
	now   func() time.Time
}

// NewKeys returns the keys of store under the 32-byte key-encryption key kek.
func NewKeys(store Store, kek []byte) (*Keys, error) {
	if store == nil {
		return nil, errors.New("content keys: a store is required")
	}
	if len(kek) != 32 {
		return nil, errors.New("content keys: the key-encryption key must be 32 bytes")
	}
	block, _ := aes.NewCipher(kek) // cannot fail: the length is checked above
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err // GODEBUG=fips140=only forbids GCM with nonces made by the caller
	}
	sum := sha256.Sum256(append([]byte("integr8scode kek id "), kek...))
	return &Keys{store: store, kek: aead, kekID: hex.EncodeToString(sum[:8]), now: time.Now}, nil
}

// Create returns id's data key, making it if there is none yet: a retried
// submit (the same execution id) gets the same key, so its sealed content
// comes out the same. It fails with ErrErased once the content was erased.
func (k *Keys) Create(ctx context.Context, id string) (eventstore.DataKey, error) {
	dk, err := eventstore.NewDataKey()
	if err != nil {
		return dk, err
	}
	nonce := make([]byte, k.kek.NonceSize())
	_, _ = rand.Read(nonce) // never fails (Go 1.24+: it crashes the program instead)
	wrapped := k.kek.Seal(nonce, nonce, dk[:], []byte(id))
	r, err := k.store.Insert(ctx, Record{ExecutionID: id, Wrapped: wrapped, KEKID: k.kekID, CreatedAt: k.now().UTC()})
	if err != nil {
		return eventstore.DataKey{}, fmt.Errorf("content key of %s: %w", id, err)
	}
	return k.unwrap(r)
}

// Get returns id's data key: ErrErased once the content was erased (or
// is being erased), ErrNoKey if there never was one.
func (k *Keys) Get(ctx context.Context, id string) (eventstore.DataKey, error) {
	r, ok, err := k.store.Get(ctx, id)
	if err != nil {
		return eventstore.DataKey{}, fmt.Errorf("content key of %s: %w", id, err)
	}
	if !ok {
		return eventstore.DataKey{}, ErrNoKey
	}
	return k.unwrap(r)
}

func (k *Keys) unwrap(r Record) (eventstore.DataKey, error) {
	var dk eventstore.DataKey
	if r.ShreddedAt != nil || r.Erasing != nil {
		return dk, ErrErased
	}
	if len(r.Wrapped) == 0 {
		return dk, ErrNoKey
	}
	if r.KEKID != k.kekID {
		return dk, fmt.Errorf("content key of %s is wrapped under key-encryption key %s, this process has %s", r.ExecutionID, r.KEKID, k.kekID)
	}
	n := k.kek.NonceSize()
	if len(r.Wrapped) < n {
		return dk, fmt.Errorf("content key of %s is malformed", r.ExecutionID)
	}
	plain, err := k.kek.Open(nil, r.Wrapped[:n], r.Wrapped[n:], []byte(r.ExecutionID))
	if err != nil || len(plain) != len(dk) {
		return dk, fmt.Errorf("content key of %s does not open under key-encryption key %s", r.ExecutionID, k.kekID)
	}
	copy(dk[:], plain)
	return dk, nil
}

// SealInput seals a submission's script and stdin under id's key, making
// the key if needed.
func (k *Keys) SealInput(ctx context.Context, id string, in domain.Input) (domain.Sealed, error) {
	dk, err := k.Create(ctx, id)
	if err != nil {
		return "", err
	}
	return eventstore.Seal(dk, id, eventstore.PurposeInput, in)
}

// OpenInput opens an execution's sealed script and stdin.
func (k *Keys) OpenInput(ctx context.Context, id string, s domain.Sealed) (domain.Input, error) {
	var in domain.Input
	err := k.open(ctx, id, eventstore.PurposeInput, s, &in)
	return in, err
}

// SealOutput seals what a run of id printed.
func (k *Keys) SealOutput(ctx context.Context, id string, out domain.Output) (domain.Sealed, error) {
	dk, err := k.Get(ctx, id)
	if err != nil {
		return "", err
	}
	return eventstore.Seal(dk, id, eventstore.PurposeOutput, out)
}

func (k *Keys) open(ctx context.Context, id, purpose string, s domain.Sealed, v any) error {
	if !eventstore.NeedsKey(s) {
		return eventstore.Open(nil, id, purpose, s, v) // empty, or recorded in the clear
	}
	dk, err := k.Get(ctx, id)
	if err != nil {
		return err
	}
	return eventstore.Open(&dk, id, purpose, s, v)
}

// Reveal opens e's sealed content into its plain fields, for the one who
// may read it. An erased execution (or one whose key is being destroyed)
// reveals nothing, and says so in e.Erased.
func (k *Keys) Reveal(ctx context.Context, e *domain.Execution) error {
	if e.Erased || (e.SealedInput == "" && e.SealedOutput == "") {
		return nil
	}
	var in domain.Input
	var out domain.Output
	err := k.open(ctx, e.ID, eventstore.PurposeInput, e.SealedInput, &in)
	if err == nil {
		err = k.open(ctx, e.ID, eventstore.PurposeOutput, e.SealedOutput, &out)
	}
	if errors.Is(err, ErrErased) {
		e.Erased = true
		e.Errors = ""
		return nil
	}
	if err != nil {
		return err
	}
	e.Reveal(&in, &out)
	return nil
}

// Store is where the keys are kept (for tools and tests that read the
// records themselves).
func (k *Keys) Store() Store { return k.store }
