package projections

import (
	"context"
	"slices"

	"github.com/integr8scode/integr8scode/domain"
)

// Backlog answers what is waiting and what runs from the executions view:
// the runners' sweep and the API's queue positions read it. The view may
// lag the log by a moment; every claim is still decided by the ledger
// writer.
type Backlog struct {
	Store Store
}

// Queued lists queued executions, oldest first, at most limit of them (the
// oldest limit when more wait).
func (b Backlog) Queued(ctx context.Context, limit int) ([]domain.Execution, error) {
	all, err := b.all(ctx, domain.StatusQueued, 10*limit)
	if err != nil {
		return nil, err
	}
	slices.Reverse(all) // the view lists newest first
	if len(all) > limit {
		all = all[:limit]
	}
	return all, nil
}

// Running lists running executions, at most limit of them.
func (b Backlog) Running(ctx context.Context, limit int) ([]domain.Execution, error) {
	return b.all(ctx, domain.StatusRunning, limit)
}

// Execution returns one execution's view.
func (b Backlog) Execution(ctx context.Context, id string) (domain.Execution, error) {
	return b.Store.View(ctx, id)
}

// all pages through the executions of one status, newest first, up to max.
func (b Backlog) all(ctx context.Context, st domain.Status, max int) ([]domain.Execution, error) {
	q := ListQuery{Status: st, Limit: 100}
	var out []domain.Execution
	for len(out) < max {
		page, more, err := b.Store.List(ctx, q)
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if !more || len(page) == 0 {
			break
		}
		last := page[len(page)-1]
		q.After = &Cursor{CreatedAt: last.CreatedAt, ID: last.ID}
	}
	return out, nil
}
