package web

import (
	"time"

	"github.com/integr8scode/integr8scode/domain"
)

// Execution is an execution as the API shows it (web/openapi.yaml,
// "Execution"). version_seq is the sequence of the last ledger event the
// answer reflects: it only grows, so a client can use it like an ETag.
type Execution struct {
	ID              string                `json:"execution_id"`
	Status          domain.Status         `json:"status"`
	Language        string                `json:"language"`
	Version         string                `json:"version"`
	Script          string                `json:"script"`
	Stdin           string                `json:"stdin"`
	Owner           string                `json:"owner"`
	Limits          domain.Limits         `json:"limits"`
	Output          string                `json:"output"`
	Errors          string                `json:"errors"`
	ExitCode        *int                  `json:"exit_code"`
	Signal          string                `json:"signal,omitempty"`
	FailureReason   domain.Verdict        `json:"failure_reason,omitempty"`
	OutputTruncated bool                  `json:"output_truncated"`
	ResourceUsage   *domain.ResourceUsage `json:"resource_usage"`
	Attempt         int                   `json:"attempt"`
	Runner          string                `json:"runner,omitempty"`
	Resumes         int                   `json:"resumes,omitempty"`
	VersionSeq      int64                 `json:"version_seq"`
	CreatedAt       time.Time             `json:"created_at"`
	UpdatedAt       time.Time             `json:"updated_at"`
	StartedAt       *time.Time            `json:"started_at"`
	FinishedAt      *time.Time            `json:"finished_at"`
	// Erased says the content (script, stdin, output, errors) was erased,
	// and ErasedAt when (absent when not known).
	Erased   bool       `json:"erased"`
	ErasedAt *time.Time `json:"erased_at,omitempty"`
	// QueuePosition is the 1-based place among queued executions (GET of
	// a queued execution only).
	QueuePosition int `json:"queue_position,omitempty"`
}

// resource is e as the API shows it.
func resource(e domain.Execution) Execution {
	return Execution{ID: e.ID, Status: e.Status, Language: e.Language, Version: e.Version, Script: e.Script,
		Stdin: e.Stdin, Owner: e.Owner, Limits: e.Limits, Output: e.Output, Errors: e.Errors, ExitCode: e.ExitCode,
		Signal: e.Signal, FailureReason: e.FailureReason, OutputTruncated: e.OutputTruncated,
		ResourceUsage: e.ResourceUsage, Attempt: e.Attempt, Runner: e.Runner, Resumes: e.Resumes,
		VersionSeq: e.Sequence, CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt, StartedAt: e.StartedAt,
		FinishedAt: e.FinishedAt, Erased: e.Erased, ErasedAt: e.ErasedAt}
}
