package eventstore

import "fmt"

// Audit checks a ledger read in log order (each partition from offset 0),
// as an auditor does: every record's hash, signature and link, and every
// execution's sequence for gaps, duplicates and forks. It keeps the hashes
// of every execution it saw, a few dozen bytes per event.
// docs/events/verify_ledger.py implements the same rules without Go.
type Audit struct {
	keys     *KeySet
	chains   map[string][]string // execution → hash of each sequence (index = sequence-1; "" = not seen)
	events   int
	problems []Problem
	counts   map[string]int
}

// NewAudit starts an audit that verifies signatures with keys.
func NewAudit(keys *KeySet) *Audit {
	return &Audit{keys: keys, chains: map[string][]string{}, counts: map[string]int{}}
}

// Add checks the record at partition:offset and returns its problems. A
// record that fails its own proofs (hash, signature) or its link never
// extends its execution's chain: the genuine event for that sequence may
// still follow.
func (a *Audit) Add(partition int32, offset int64, record []byte) []Problem {
	a.events++
	env, err := ParseRecord(record)
	if err != nil {
		return a.report(Problem{Kind: ProblemMalformed, Detail: err.Error()}, partition, offset)
	}
	id, seq := env.ExecutionID, env.Sequence
	chain, seen := a.chains[id]
	if !seen {
		a.chains[id] = nil
	}
	// Its own proofs first: an unsigned or altered record proves nothing
	// about the chain, not even that it duplicates an event.
	_, p := CheckParsed(a.keys, record, env, env.PrevHash)
	if p != nil && p.Kind != ProblemUnknownSchema {
		return a.report(*p, partition, offset)
	}
	schema := p
	n := int64(len(chain))
	if seq <= n && chain[seq-1] != "" {
		if chain[seq-1] == env.Hash {
			return a.report(Problem{Kind: ProblemDuplicate, ExecutionID: id, Sequence: seq,
				Detail: "the same event again"}, partition, offset)
		}
		return a.report(Problem{Kind: ProblemFork, ExecutionID: id, Sequence: seq,
			Detail: "a different, validly signed event for a sequence already recorded"}, partition, offset)
	}
	var out []Problem
	if seq > n+1 {
		out = append(out, a.report(Problem{Kind: ProblemGap, ExecutionID: id, Sequence: seq,
			Detail: fmt.Sprintf("sequences %d to %d are missing", n+1, seq-1)}, partition, offset)...)
	}
	// The link can be checked only when the previous event is known.
	if seq == 1 || (seq-2 < n && chain[seq-2] != "") {
		prev := ""
		if seq > 1 {
			prev = chain[seq-2]
		}
		if env.PrevHash != prev {
			return append(out, a.report(Problem{Kind: ProblemBadLink, ExecutionID: id, Sequence: seq,
				Detail: fmt.Sprintf("prev_hash does not match the hash of sequence %d", seq-1)}, partition, offset)...)
		}
	}
	if schema != nil {
		out = append(out, a.report(*schema, partition, offset)...)
	}
	for int64(len(chain)) < seq {
		chain = append(chain, "")
	}
	chain[seq-1] = env.Hash
	a.chains[id] = chain
	return out
}

func (a *Audit) report(p Problem, partition int32, offset int64) []Problem {
	p.Partition, p.Offset = partition, offset
	a.problems = append(a.problems, p)
	a.counts[p.Kind]++
	return []Problem{p}
}

// AuditReport is an audit's summary.
type AuditReport struct {
	Events     int            `json:"events"`
	Executions int            `json:"executions"`
	Counts     map[string]int `json:"counts"`
	Problems   []Problem      `json:"problems"`
}

// Report summarises the audit so far: one count per problem kind (zero
// included), the events and executions read, and every problem.
func (a *Audit) Report() AuditReport {
	r := AuditReport{Events: a.events, Executions: len(a.chains), Counts: map[string]int{}, Problems: a.problems}
	for _, k := range ProblemKinds {
		r.Counts[k] = a.counts[k]
	}
	if r.Problems == nil {
		r.Problems = []Problem{}
	}
	return r
}
