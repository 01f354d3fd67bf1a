package eventstore

import "fmt"

// Audit checks a ledger read in log order (each partition from offset 0),
// as an auditor does: every record's hash, link and signature, and every
// execution's sequence for gaps, duplicates and forks. It keeps the hashes
// of every execution it saw, a few dozen bytes per event.
type Audit struct {
	keys       *KeySet
	chains     map[string][]string // execution → hash of each sequence (index = sequence-1)
	events     int
	problems   []Problem
	counts     map[string]int
	executions int
}

// NewAudit starts an audit that verifies signatures with keys.
func NewAudit(keys *KeySet) *Audit {
	return &Audit{keys: keys, chains: map[string][]string{}, counts: map[string]int{}}
}

// Add checks the record at partition:offset and returns its problems.
func (a *Audit) Add(partition int32, offset int64, record []byte) []Problem {
	a.events++
	env, err := ParseRecord(record)
	if err != nil {
		return a.report(Problem{Kind: ProblemMalformed, Detail: err.Error()}, partition, offset)
	}
	chain, seen := a.chains[env.ExecutionID]
	if !seen {
		a.executions++
	}
	n := int64(len(chain))
	switch {
	case env.Sequence <= n:
		if chain[env.Sequence-1] == env.Hash {
			return a.report(Problem{Kind: ProblemDuplicate, ExecutionID: env.ExecutionID, Sequence: env.Sequence,
				Detail: "the same event again"}, partition, offset)
		}
		return a.report(Problem{Kind: ProblemFork, ExecutionID: env.ExecutionID, Sequence: env.Sequence,
			Detail: "a different event for a sequence already recorded"}, partition, offset)
	case env.Sequence > n+1:
		// Report the gap, then check the record on its own: its link cannot
		// be checked, the missing events are what is wrong.
		out := a.report(Problem{Kind: ProblemGap, ExecutionID: env.ExecutionID, Sequence: env.Sequence,
			Detail: fmt.Sprintf("sequences %d to %d are missing", n+1, env.Sequence-1)}, partition, offset)
		_, _, p := CheckRecord(a.keys, record, env.PrevHash)
		if p != nil {
			out = append(out, a.report(*p, partition, offset)...)
		}
		for int64(len(chain)) < env.Sequence-1 {
			chain = append(chain, "")
		}
		a.chains[env.ExecutionID] = append(chain, env.Hash)
		return out
	}
	prev := ""
	if n > 0 {
		prev = chain[n-1]
	}
	_, _, p := CheckRecord(a.keys, record, prev)
	if p != nil {
		// A record that fails its checks does not extend the chain: the
		// genuine event for this sequence may still follow.
		return a.report(*p, partition, offset)
	}
	a.chains[env.ExecutionID] = append(chain, env.Hash)
	return nil
}

func (a *Audit) report(p Problem, partition int32, offset int64) []Problem {
	p.Partition, p.Offset = partition, offset
	a.problems = append(a.problems, p)
	a.counts[p.Kind]++
	return []Problem{p}
}

// AuditReport is an audit's summary, the JSON of `ledger verify --json`.
type AuditReport struct {
	Events     int            `json:"events"`
	Executions int            `json:"executions"`
	Counts     map[string]int `json:"counts"`
	Problems   []Problem      `json:"problems"`
}

// Report summarises the audit so far: one count per problem kind (zero
// included), the events and executions read, and every problem.
func (a *Audit) Report() AuditReport {
	r := AuditReport{Events: a.events, Executions: a.executions, Counts: map[string]int{}, Problems: a.problems}
	for _, k := range ProblemKinds {
		r.Counts[k] = a.counts[k]
	}
	if r.Problems == nil {
		r.Problems = []Problem{}
	}
	return r
}
