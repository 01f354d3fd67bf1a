// Package eventstore is the ledger: the event envelope, its canonical form,
// hash chain and signatures, the codec between stable type names and domain
// events, and appending and subscribing.
package eventstore

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/gowebpki/jcs"
)

// Envelope is one ledger record. Its JSON form (Record) is exactly the value
// that travels on Kafka; hash and signature cover that form, canonicalized.
type Envelope struct {
	EventID       string          `json:"event_id"`
	Type          string          `json:"type"`
	SchemaVersion int             `json:"schema_version"`
	ExecutionID   string          `json:"execution_id"`
	Sequence      int64           `json:"sequence"`
	OccurredAt    time.Time       `json:"occurred_at"`
	CorrelationID string          `json:"correlation_id"`
	CausationID   string          `json:"causation_id"`
	Actor         string          `json:"actor"`
	PrevHash      string          `json:"prev_hash"`
	KeyID         string          `json:"key_id"`
	Data          json.RawMessage `json:"data"`
	Hash          string          `json:"hash"`
	Signature     string          `json:"signature"`
}

// wireEnvelope is Envelope's JSON form, members in the order of the
// catalog, occurred_at as RFC 3339 UTC with nanoseconds.
type wireEnvelope struct {
	EventID       string          `json:"event_id"`
	Type          string          `json:"type"`
	SchemaVersion int             `json:"schema_version"`
	ExecutionID   string          `json:"execution_id"`
	Sequence      int64           `json:"sequence"`
	OccurredAt    string          `json:"occurred_at"`
	CorrelationID string          `json:"correlation_id"`
	CausationID   string          `json:"causation_id"`
	Actor         string          `json:"actor"`
	PrevHash      string          `json:"prev_hash"`
	KeyID         string          `json:"key_id"`
	Data          json.RawMessage `json:"data"`
	Hash          string          `json:"hash"`
	Signature     string          `json:"signature"`
}

// MarshalJSON writes the envelope's record form without HTML escaping.
func (e Envelope) MarshalJSON() ([]byte, error) {
	w := wireEnvelope{EventID: e.EventID, Type: e.Type, SchemaVersion: e.SchemaVersion, ExecutionID: e.ExecutionID,
		Sequence: e.Sequence, OccurredAt: e.OccurredAt.UTC().Format(time.RFC3339Nano), CorrelationID: e.CorrelationID,
		CausationID: e.CausationID, Actor: e.Actor, PrevHash: e.PrevHash, KeyID: e.KeyID, Data: e.Data,
		Hash: e.Hash, Signature: e.Signature}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(w); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// Record is the envelope as written to the ledger: JSON without HTML
// escaping (so that a script's "<" stays readable in exports).
func (e Envelope) Record() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		return nil, fmt.Errorf("record %s: %w", e.EventID, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// ParseRecord reads a ledger record. It checks the shape only; Verify
// checks hash, link and signature.
func ParseRecord(record []byte) (Envelope, error) {
	// Go matches member names without regard to case and lets a repeated
	// name win silently; the record's members must be exactly the
	// catalog's, once each.
	var members map[string]json.RawMessage
	if err := json.Unmarshal(record, &members); err != nil {
		return Envelope{}, fmt.Errorf("ledger record: %w", err)
	}
	for _, name := range requiredMembers {
		if _, ok := members[name]; !ok {
			return Envelope{}, fmt.Errorf("ledger record: no %q member", name)
		}
	}
	if _, err := jcs.Transform(record); err != nil {
		return Envelope{}, fmt.Errorf("ledger record: %w", err)
	}
	var env Envelope
	if err := json.Unmarshal(record, &env); err != nil {
		return Envelope{}, fmt.Errorf("ledger record: %w", err)
	}
	if env.ExecutionID == "" || env.Sequence < 1 || env.Type == "" || env.EventID == "" {
		return Envelope{}, errors.New("ledger record: incomplete envelope")
	}
	return env, nil
}

// requiredMembers are the members every record has (hash and signature
// included: an unsealed envelope is not a record).
var requiredMembers = []string{"event_id", "type", "schema_version", "execution_id", "sequence", "occurred_at",
	"correlation_id", "causation_id", "actor", "prev_hash", "key_id", "data", "hash", "signature"}

// Canonical is the byte string an event's hash covers: the recorded JSON
// object without its "hash" and "signature" members, in the JSON
// Canonicalization Scheme (RFC 8785): members sorted by their UTF-16 code
// units, no insignificant whitespace, strings with only the mandatory
// escapes, numbers in ECMAScript form. Any language with a JCS library
// reproduces it; docs/events/vectors.json has test vectors.
func Canonical(record []byte) ([]byte, error) {
	// I-JSON (RFC 7493), which RFC 8785 builds on: UTF-8 only. Go's
	// decoder would let invalid bytes through a raw member unchanged.
	if !utf8.Valid(record) {
		return nil, errors.New("canonical form: the record is not valid UTF-8")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(record, &obj); err != nil {
		return nil, fmt.Errorf("canonical form: %w", err)
	}
	delete(obj, "hash")
	delete(obj, "signature")
	stripped, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("canonical form: %w", err)
	}
	c, err := jcs.Transform(stripped)
	if err != nil {
		return nil, fmt.Errorf("canonical form: %w", err)
	}
	return c, nil
}

// HashRecord returns the lowercase hex SHA-256 of a record's canonical form.
func HashRecord(record []byte) (string, error) {
	c, err := Canonical(record)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(c)
	return hex.EncodeToString(sum[:]), nil
}

// ComputeHash returns the hash of the envelope as it would be recorded.
func (e Envelope) ComputeHash() (string, error) {
	rec, err := e.Record()
	if err != nil {
		return "", err
	}
	return HashRecord(rec)
}

// Seal links e after the event whose hash is prev, hashes it and signs the
// hash with signer. It returns the record to write.
func (e *Envelope) Seal(prev string, signer Signer) ([]byte, error) {
	if r, ok := signer.(*RotatingSigner); ok {
		signer = r.Snapshot() // one key for key_id and signature alike
	}
	e.PrevHash, e.KeyID, e.Hash, e.Signature = prev, signer.KeyID(), "", ""
	h, err := e.ComputeHash()
	if err != nil {
		return nil, err
	}
	digest, _ := hex.DecodeString(h)
	e.Hash = h
	e.Signature = encodeSignature(signer.Sign(digest))
	return e.Record()
}
