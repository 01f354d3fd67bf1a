package web

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/integr8scode/integr8scode/domain"
)

// Backlog lists what waits for a sandbox (oldest first) and what runs.
type Backlog interface {
	Queued(ctx context.Context, limit int) ([]domain.Execution, error)
	Running(ctx context.Context, limit int) ([]domain.Execution, error)
}

// queueScan bounds one look at the backlog; beyond it positions are
// reported as "at least".
const queueScan = 1000

// queueView is one snapshot of the backlog: queued executions in the order
// runners take them, and how many run.
type queueView struct {
	at      time.Time
	queued  []string  // execution ids, oldest first
	oldest  time.Time // when the first of queued was submitted
	running int
	partial bool // more than queueScan unsettled executions
}

// queue caches the backlog for a second: a queued execution polled by many
// clients costs one scan per second, not one per request.
type queue struct {
	backlog Backlog
	mu      sync.Mutex
	last    *queueView
}

func (q *queue) view(ctx context.Context) (*queueView, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.last != nil && time.Since(q.last.at) < time.Second {
		return q.last, nil
	}
	queued, err := q.backlog.Queued(ctx, queueScan)
	if err != nil {
		return nil, err
	}
	running, err := q.backlog.Running(ctx, queueScan)
	if err != nil {
		return nil, err
	}
	v := &queueView{at: time.Now(), running: len(running), partial: len(queued) >= queueScan || len(running) >= queueScan}
	for _, e := range queued {
		v.queued = append(v.queued, e.ID)
	}
	if len(queued) > 0 {
		v.oldest = queued[0].CreatedAt
	}
	q.last = v
	return v, nil
}

// position is the 1-based place of id among queued executions, 0 if it is
// not queued (or beyond the scan).
func (v *queueView) position(id string) int {
	for i, q := range v.queued {
		if q == id {
			return i + 1
		}
	}
	return 0
}

type queueResponse struct {
	Queued  int  `json:"queued"`
	Running int  `json:"running"`
	AtLeast bool `json:"at_least"` // the backlog is larger than one scan: counts are lower bounds
}

func (s *server) handleQueue() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.queue == nil {
			writeError(w, r, s.Logger, domain.Errorf(domain.EUNAVAILABLE, "this API has no view of the backlog"))
			return
		}
		v, err := s.queue.view(r.Context())
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		writeJSON(w, http.StatusOK, queueResponse{Queued: len(v.queued), Running: v.running, AtLeast: v.partial})
	}
}

// withPosition is e as the API shows it, with its place in the queue while
// it waits for a sandbox.
func (s *server) withPosition(ctx context.Context, e domain.Execution) (Execution, error) {
	out, err := s.show(ctx, e)
	if err != nil || e.Status != domain.StatusQueued || s.queue == nil {
		return out, err
	}
	if v, err := s.queue.view(ctx); err == nil {
		out.QueuePosition = v.position(e.ID)
	} else {
		s.Logger.Warn("queue position unavailable", "err", err)
	}
	return out, nil
}
