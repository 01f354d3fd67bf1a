package eventstore

import (
	"fmt"
)

// Kinds of problem a reader of the ledger can find in it. The projector
// parks an event with one of them; `integr8scode ledger verify` counts them.
const (
	ProblemMalformed     = "malformed"      // not a ledger envelope at all
	ProblemUnknownSchema = "unknown_schema" // a type or schema_version this code cannot read
	ProblemBadHash       = "bad_hash"       // hash does not match the canonical form
	ProblemBadSignature  = "bad_signature"  // no signature, an unknown key, or a signature that does not verify
	ProblemBadLink       = "bad_link"       // prev_hash is not the hash of the previous event
	ProblemGap           = "gap"            // a sequence number was skipped
	ProblemDuplicate     = "duplicate"      // the same event (same hash) a second time
	ProblemFork          = "fork"           // a different event for a sequence already recorded
)

// ProblemKinds lists every kind, in the order reports show them.
var ProblemKinds = []string{ProblemDuplicate, ProblemFork, ProblemGap, ProblemBadHash, ProblemBadLink,
	ProblemBadSignature, ProblemUnknownSchema, ProblemMalformed}

// Problem is one thing wrong with one record of the ledger.
type Problem struct {
	Kind        string `json:"kind"`
	Partition   int32  `json:"partition"`
	Offset      int64  `json:"offset"`
	ExecutionID string `json:"execution_id,omitempty"`
	Sequence    int64  `json:"sequence,omitempty"`
	Detail      string `json:"detail"`
}

func (p Problem) Error() string {
	return fmt.Sprintf("%s at %d:%d (execution %s, sequence %d): %s",
		p.Kind, p.Partition, p.Offset, p.ExecutionID, p.Sequence, p.Detail)
}

// Checks says which of an event's own proofs hold: its hash matches its
// content, its prev_hash is the hash of the event before it, and its
// signature verifies with a published key.
type Checks struct {
	Hash      bool `json:"hash"`
	Link      bool `json:"link"`
	Signature bool `json:"signature"`
}

// OK reports whether every check holds.
func (c Checks) OK() bool { return c.Hash && c.Link && c.Signature }

// CheckRecord verifies one record that should follow the event whose hash
// is prev ("" before sequence 1). It returns the envelope, which checks
// hold, and the first problem found (kind and detail only).
func CheckRecord(keys *KeySet, record []byte, prev string) (Envelope, Checks, *Problem) {
	env, err := ParseRecord(record)
	if err != nil {
		return env, Checks{}, &Problem{Kind: ProblemMalformed, Detail: err.Error()}
	}
	c, p := CheckParsed(keys, record, env, prev)
	return env, c, p
}

// CheckParsed is CheckRecord for a record already read into env (by
// ParseRecord): a consumer that needs the envelope first does not read the
// record twice.
func CheckParsed(keys *KeySet, record []byte, env Envelope, prev string) (Checks, *Problem) {
	var c Checks
	var first *Problem
	note := func(kind, detail string) {
		if first == nil {
			first = &Problem{Kind: kind, ExecutionID: env.ExecutionID, Sequence: env.Sequence, Detail: detail}
		}
	}
	if h, err := HashRecord(record); err != nil {
		note(ProblemMalformed, err.Error())
	} else if h != env.Hash {
		note(ProblemBadHash, "hash does not match the event's canonical form")
	} else {
		c.Hash = true
	}
	c.Link = env.PrevHash == prev
	if !c.Link {
		note(ProblemBadLink, fmt.Sprintf("prev_hash does not match the hash of sequence %d", env.Sequence-1))
	}
	if err := keys.Verify(env.KeyID, env.Hash, env.Signature); err != nil {
		note(ProblemBadSignature, err.Error())
	} else {
		c.Signature = c.Hash
	}
	if err := Decodable(env); err != nil && first == nil {
		note(ProblemUnknownSchema, err.Error())
	}
	return c, first
}

// VerifyChain checks that evs are one execution's history from sequence 1
// with no gap, each hash correct, linked and signed by a key of keys.
func VerifyChain(keys *KeySet, evs []Envelope) error {
	prev := ""
	for i, e := range evs {
		if e.Sequence != int64(i+1) {
			return fmt.Errorf("event %d of %s has sequence %d", i+1, e.ExecutionID, e.Sequence)
		}
		if i > 0 && e.ExecutionID != evs[0].ExecutionID {
			return fmt.Errorf("sequence %d belongs to %s, not %s", e.Sequence, e.ExecutionID, evs[0].ExecutionID)
		}
		rec, err := e.Record()
		if err != nil {
			return err
		}
		if _, _, p := CheckRecord(keys, rec, prev); p != nil {
			return p
		}
		prev = e.Hash
	}
	return nil
}
