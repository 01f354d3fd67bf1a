//go:build !linux

package oci

import (
	"context"
	"errors"
	"time"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/runner"
)

var errUnsupported = errors.New("oci sandbox: runc containers need Linux")

// Runc is the runc sandbox; on this platform New always fails.
type Runc struct{}

// New fails: runc containers need Linux.
func New(cfg Config) (*Runc, error) { return nil, errUnsupported }

func (r *Runc) Name() string { return "runc" }

func (r *Runc) Close() error { return nil }

func (r *Runc) Run(ctx context.Context, job runner.Job) (domain.Result, error) {
	return domain.Result{}, errUnsupported
}

func (r *Runc) SelfTest(ctx context.Context) error { return errUnsupported }

// PoolStats is empty: there is no pool.
func (r *Runc) PoolStats() PoolStats { return PoolStats{} }

// Floor fails: runc containers need Linux.
func (r *Runc) Floor(ctx context.Context, job runner.Job, n int, minimal bool) ([]time.Duration, error) {
	return nil, errUnsupported
}
