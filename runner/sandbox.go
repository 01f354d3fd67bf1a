// Package runner reacts to ExecutionQueued: it claims the execution in the
// ledger, runs the script in a Sandbox, and appends the outcome.
package runner

import (
	"context"

	"github.com/integr8scode/integr8scode/domain"
)

// Job is one run of one script.
type Job struct {
	ExecutionID string
	Attempt     int
	Language    string
	Version     string
	Script      string
	Stdin       string
	Limits      domain.Limits
}

// Sandbox runs a job in isolation and reports how it ended.
//
// Run returns a Result for everything the script did (including timeout,
// memory and output limits). When ctx is cancelled it kills the whole
// sandbox and returns a Result with VerdictCancelled. It returns an error only
// for the platform's own failures (the sandbox could not be set up); it never
// runs a script unconfined.
type Sandbox interface {
	Run(ctx context.Context, job Job) (domain.Result, error)
	// Name identifies the sandbox kind in ExecutionStarted ("runc", "kubernetes").
	Name() string
}
