// Package eventstore is the ledger: the event envelope, its hash chain, the
// codec between stable type names and domain events, and appending and
// subscribing through Watermill.
package eventstore

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"time"
)

// Envelope is one ledger record, exactly as it travels on Kafka (JSON).
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
	Hash          string          `json:"hash"`
	Data          json.RawMessage `json:"data"`
}

// MarshalJSON writes occurred_at as RFC 3339 UTC with nanoseconds.
func (e Envelope) MarshalJSON() ([]byte, error) {
	type plain Envelope
	return json.Marshal(struct {
		plain
		OccurredAt string `json:"occurred_at"`
	}{plain(e), e.OccurredAt.UTC().Format(time.RFC3339Nano)})
}

// canonical is the byte string the hash covers: every envelope field but
// hash, keys sorted, data canonicalized the same way, no insignificant
// whitespace. It survives any storage round trip that keeps JSON values.
func (e Envelope) canonical() ([]byte, error) {
	var data any
	if len(e.Data) > 0 {
		dec := json.NewDecoder(bytes.NewReader(e.Data))
		dec.UseNumber()
		if err := dec.Decode(&data); err != nil {
			return nil, fmt.Errorf("canonical data of %s: %w", e.EventID, err)
		}
	}
	m := map[string]any{
		"event_id":       e.EventID,
		"type":           e.Type,
		"schema_version": e.SchemaVersion,
		"execution_id":   e.ExecutionID,
		"sequence":       e.Sequence,
		"occurred_at":    e.OccurredAt.UTC().Format(time.RFC3339Nano),
		"correlation_id": e.CorrelationID,
		"causation_id":   e.CausationID,
		"actor":          e.Actor,
		"prev_hash":      e.PrevHash,
		"data":           data,
	}
	var buf bytes.Buffer
	if err := writeCanonical(&buf, m); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func writeCanonical(buf *bytes.Buffer, v any) error {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		buf.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				buf.WriteByte(',')
			}
			kb, _ := json.Marshal(k)
			buf.Write(kb)
			buf.WriteByte(':')
			if err := writeCanonical(buf, x[k]); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	case []any:
		buf.WriteByte('[')
		for i, el := range x {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeCanonical(buf, el); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	default:
		enc := json.NewEncoder(buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(x); err != nil {
			return err
		}
		buf.Truncate(buf.Len() - 1) // Encode appends a newline
	}
	return nil
}

// ComputeHash returns the hex SHA-256 of the canonical envelope.
func (e Envelope) ComputeHash() (string, error) {
	c, err := e.canonical()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(c)
	return hex.EncodeToString(sum[:]), nil
}

// Seal sets prev_hash and hash, linking e after the event whose hash is prev.
func (e *Envelope) Seal(prev string) error {
	e.PrevHash = prev
	h, err := e.ComputeHash()
	if err != nil {
		return err
	}
	e.Hash = h
	return nil
}

// VerifyChain checks that events are one execution's history from sequence 1
// with no gap, each hash correct and linked to the one before.
func VerifyChain(events []Envelope) error {
	prev := ""
	for i, e := range events {
		if e.Sequence != int64(i+1) {
			return fmt.Errorf("event %d of %s has sequence %d", i+1, e.ExecutionID, e.Sequence)
		}
		if i > 0 && e.ExecutionID != events[0].ExecutionID {
			return fmt.Errorf("sequence %d belongs to %s, not %s", e.Sequence, e.ExecutionID, events[0].ExecutionID)
		}
		if e.PrevHash != prev {
			return fmt.Errorf("%s seq %d: prev_hash does not match the hash of seq %d", e.ExecutionID, e.Sequence, e.Sequence-1)
		}
		h, err := e.ComputeHash()
		if err != nil {
			return err
		}
		if h != e.Hash {
			return fmt.Errorf("%s seq %d: hash does not match its content", e.ExecutionID, e.Sequence)
		}
		prev = e.Hash
	}
	return nil
}
