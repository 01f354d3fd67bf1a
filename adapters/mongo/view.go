package mongo

import (
	"time"

	"github.com/integr8scode/integr8scode/domain"
)

// viewDoc is the executions view as stored: one document per execution,
// its checkpoint (version_seq) in the same document. The field names are
// the store's contract (indexes, the SQLite fast paths and queries name
// them), kept apart from the domain type. The view holds a script, its
// stdin and its output only sealed, as the events carry them (the API
// opens them with the execution's key), and none of it once erased.
type viewDoc struct {
	ID              string         `bson:"_id"`
	Status          domain.Status  `bson:"status"`
	Language        string         `bson:"language"`
	Version         string         `bson:"version"`
	SealedInput     string         `bson:"sealed_input,omitempty"`
	Owner           string         `bson:"owner"`
	Limits          limitsDoc      `bson:"limits"`
	SealedOutput    string         `bson:"sealed_output,omitempty"`
	Errors          string         `bson:"errors"`
	Erased          bool           `bson:"erased,omitempty"`
	ErasedAt        *time.Time     `bson:"erased_at,omitempty"`
	ExitCode        *int           `bson:"exit_code"`
	Signal          string         `bson:"signal,omitempty"`
	FailureReason   domain.Verdict `bson:"failure_reason,omitempty"`
	OutputTruncated bool           `bson:"output_truncated"`
	ResourceUsage   *usageDoc      `bson:"resource_usage"`
	Attempt         int            `bson:"attempt"`
	Runner          string         `bson:"runner,omitempty"`
	Resumes         int            `bson:"resumes,omitempty"`
	VersionSeq      int64          `bson:"version_seq"`
	CreatedAt       time.Time      `bson:"created_at"`
	UpdatedAt       time.Time      `bson:"updated_at"`
	StartedAt       *time.Time     `bson:"started_at"`
	FinishedAt      *time.Time     `bson:"finished_at"`
}

type limitsDoc struct {
	TimeoutMs     int64 `bson:"timeout_ms"`
	MemoryBytes   int64 `bson:"memory_bytes"`
	CPUMillicores int64 `bson:"cpu_millicores"`
}

type usageDoc struct {
	WallTimeMs      int64 `bson:"wall_time_ms"`
	CPUTimeMs       int64 `bson:"cpu_time_ms"`
	PeakMemoryBytes int64 `bson:"peak_memory_bytes"`
}

func toViewDoc(e domain.Execution) viewDoc {
	d := viewDoc{ID: e.ID, Status: e.Status, Language: e.Language, Version: e.Version,
		SealedInput: string(e.SealedInput), Owner: e.Owner,
		Limits:       limitsDoc{TimeoutMs: e.Limits.TimeoutMs, MemoryBytes: e.Limits.MemoryBytes, CPUMillicores: e.Limits.CPUMillicores},
		SealedOutput: string(e.SealedOutput), Errors: e.Errors, Erased: e.Erased, ErasedAt: e.ErasedAt, ExitCode: e.ExitCode, Signal: e.Signal, FailureReason: e.FailureReason,
		OutputTruncated: e.OutputTruncated, Attempt: e.Attempt, Runner: e.Runner, Resumes: e.Resumes,
		VersionSeq: e.Sequence, CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt, StartedAt: e.StartedAt, FinishedAt: e.FinishedAt}
	if u := e.ResourceUsage; u != nil {
		d.ResourceUsage = &usageDoc{WallTimeMs: u.WallTimeMs, CPUTimeMs: u.CPUTimeMs, PeakMemoryBytes: u.PeakMemoryBytes}
	}
	return d
}

func (d viewDoc) execution() domain.Execution {
	e := domain.Execution{ID: d.ID, Status: d.Status, Language: d.Language, Version: d.Version,
		SealedInput: domain.Sealed(d.SealedInput), Owner: d.Owner,
		Limits:       domain.Limits{TimeoutMs: d.Limits.TimeoutMs, MemoryBytes: d.Limits.MemoryBytes, CPUMillicores: d.Limits.CPUMillicores},
		SealedOutput: domain.Sealed(d.SealedOutput), Errors: d.Errors, Erased: d.Erased, ErasedAt: d.ErasedAt, ExitCode: d.ExitCode, Signal: d.Signal, FailureReason: d.FailureReason,
		OutputTruncated: d.OutputTruncated, Attempt: d.Attempt, Runner: d.Runner, Resumes: d.Resumes,
		Sequence: d.VersionSeq, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt, StartedAt: d.StartedAt, FinishedAt: d.FinishedAt}
	if u := d.ResourceUsage; u != nil {
		e.ResourceUsage = &domain.ResourceUsage{WallTimeMs: u.WallTimeMs, CPUTimeMs: u.CPUTimeMs, PeakMemoryBytes: u.PeakMemoryBytes}
	}
	return e
}
