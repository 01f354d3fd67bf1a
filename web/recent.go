package web

import (
	"sync"
	"time"

	"github.com/integr8scode/integr8scode/domain"
)

// recent remembers, for a minute, the executions this API process changed
// (from the ledger writer's replies), so that a client reads its own write
// at once even before the projection has caught up. Another API process
// learns of the change through the view, a moment later.
type recent struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[string]recentEntry
	// pruned is when expired entries were last dropped: a sweep of the
	// map per submit would cost as much as the map is large.
	pruned time.Time
}

type recentEntry struct {
	e  domain.Execution
	at time.Time
}

func newRecent(ttl time.Duration) *recent {
	return &recent{ttl: ttl, m: map[string]recentEntry{}}
}

func (r *recent) put(e domain.Execution) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if old, ok := r.m[e.ID]; ok && old.e.Sequence > e.Sequence {
		return
	}
	r.m[e.ID] = recentEntry{e: e, at: now}
	if now.Sub(r.pruned) < r.ttl/4 {
		return
	}
	r.pruned = now
	for id, x := range r.m { // the map holds about a minute of writes
		if now.Sub(x.at) > r.ttl {
			delete(r.m, id)
		}
	}
}

func (r *recent) get(id string) (domain.Execution, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	x, ok := r.m[id]
	if !ok || time.Since(x.at) > r.ttl {
		return domain.Execution{}, false
	}
	return x.e, true
}

// forget drops what this process remembers of id (its content was erased:
// the view, which folds the erasure, is the one to read).
func (r *recent) forget(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.m, id)
}
