package web

import (
	"context"
	"hash/fnv"
	"net/http"
	"sync"
	"time"

	"github.com/integr8scode/integr8scode/accounts"
	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/projections"
)

// Submissions pass three gates before the ledger hears of them:
//
//  1. the platform's backlog: more than MaxBacklog queued executions → 503;
//  2. the caller's executions queued or running at once (Quota.Concurrent)
//     → 429, Retry-After = when the earliest of them must end;
//  3. the caller's submission rate (Quota.PerMinute, Burst) → 429,
//     Retry-After = when the next token arrives, not the whole window.
//
// The caller is the user, or for anonymous callers the client address
// (clientip.go). A user's executions in flight are read from the view (so
// they count across API replicas) joined with what this process queued
// moments ago (the view may not have it yet); an address's from what this
// process queued (executions do not record addresses). Rates are per
// process. Admission and the ledger's decision run under a lock per caller,
// so a burst of parallel requests cannot slip past the concurrency bound.

// defaultMaxBacklog is MaxBacklog's default.
const defaultMaxBacklog = 500

type admission struct {
	rates *accounts.KeyedLimiter
	locks [64]sync.Mutex

	mu       sync.Mutex
	inflight map[string]map[string]domain.Execution // caller → execution id → as submitted
	// pending counts, per caller, the submissions admitted and not decided
	// yet: they hold a place in the caller's concurrency without the gate
	// being held while the ledger decides them.
	pending map[string]int
	swept   time.Time
}

func newAdmission() *admission {
	return &admission{rates: accounts.NewKeyedLimiter(nil), inflight: map[string]map[string]domain.Execution{},
		pending: map[string]int{}}
}

// reserve counts an admitted submission of key until settle.
func (a *admission) reserve(key string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.pending[key]++
}

// settle ends a reservation: the submission was decided, and e is what it
// queued (nil if nothing).
func (a *admission) settle(key string, e *domain.Execution) {
	a.mu.Lock()
	if a.pending[key]--; a.pending[key] <= 0 {
		delete(a.pending, key)
	}
	a.mu.Unlock()
	if e != nil && !e.Status.Terminal() {
		a.remember(key, *e)
	}
}

func (a *admission) pendingOf(key string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.pending[key]
}

// lock serialises the gate's checks for one caller.
func (a *admission) lock(key string) func() {
	h := fnv.New32a()
	h.Write([]byte(key))
	m := &a.locks[h.Sum32()%uint32(len(a.locks))]
	m.Lock()
	return m.Unlock
}

func (a *admission) remember(key string, e domain.Execution) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sweep(time.Now())
	if a.inflight[key] == nil {
		a.inflight[key] = map[string]domain.Execution{}
	}
	a.inflight[key][e.ID] = e
}

// sweep forgets, once a minute, what callers who never came back left:
// executions past their own bound (see active) cannot hold a slot anyway.
func (a *admission) sweep(now time.Time) {
	if now.Sub(a.swept) < time.Minute {
		return
	}
	a.swept = now
	for key, m := range a.inflight {
		for id, e := range m {
			if now.Sub(e.CreatedAt) > e.Limits.Timeout()+10*time.Minute {
				delete(m, id)
			}
		}
		if len(m) == 0 {
			delete(a.inflight, key)
		}
	}
}

func (a *admission) forget(key, id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.inflight[key], id)
	if len(a.inflight[key]) == 0 {
		delete(a.inflight, key)
	}
}

func (a *admission) remembered(key string) []domain.Execution {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]domain.Execution, 0, len(a.inflight[key]))
	for _, e := range a.inflight[key] {
		out = append(out, e)
	}
	return out
}

// admit runs the gates for a submission of r's caller; the caller must
// call the returned done once its submission was decided, with the
// execution queued (nil if none was). Until then the submission holds a
// place in the caller's concurrency, so that many submissions at once
// never pass the limit together, while the gate itself is held only for
// its checks, not for the ledger's decision.
func (s *server) admit(r *http.Request) (done func(*domain.Execution), err error) {
	ctx := r.Context()
	if s.backlog != nil {
		v, err := s.backlog.view(ctx)
		if err != nil {
			return nil, err
		}
		if v.partial || len(v.queued) >= s.MaxBacklog {
			s.metrics.rejections.WithLabelValues("backlog").Inc()
			return nil, domain.RetryLater(10*time.Second, domain.EUNAVAILABLE,
				"the platform has %d or more executions waiting; retry in a moment", len(v.queued))
		}
	}
	p := principal(r)
	key := s.quotaKey(r)
	q := s.Quotas.For(p)
	unlock := s.admission.lock(key)
	defer unlock()
	pending := s.admission.pendingOf(key)
	active, err := s.active(ctx, p, key, q.Concurrent-pending)
	if err != nil {
		return nil, err
	}
	if len(active)+pending >= q.Concurrent {
		s.metrics.rejections.WithLabelValues("concurrent").Inc()
		return nil, domain.RetryLater(earliestEnd(active, time.Now()), domain.ETOOMANY,
			"you have %d executions queued or running, the most allowed at once; retry when one ends", len(active))
	}
	if d := s.admission.rates.Take(key, q.PerMinute, q.Burst); d > 0 {
		s.metrics.rejections.WithLabelValues("rate").Inc()
		return nil, domain.RetryLater(d, domain.ETOOMANY,
			"you submitted %d executions in the last minute, the most allowed; retry shortly", q.PerMinute)
	}
	s.admission.reserve(key)
	return func(e *domain.Execution) { s.admission.settle(key, e) }, nil
}

// active returns the caller's executions that are queued or running, or,
// when what it remembers cannot reach limit even if none of it ended, that
// without reading any: the gate then admits without a lookup per
// execution in flight. (The gate holds the caller's lock while it reads,
// so a lookup per remembered execution made every submission of a busy
// client wait for all of them: 80 at once from one address took 10 s.)
func (s *server) active(ctx context.Context, p accounts.Principal, key string, limit int) ([]domain.Execution, error) {
	seen := map[string]domain.Execution{}
	if p.Signed() {
		limit := s.Quotas.For(p).Concurrent + 1
		for _, st := range []domain.Status{domain.StatusQueued, domain.StatusRunning} {
			list, _, err := s.Views.List(ctx, projections.ListQuery{Owner: p.User.ID, Status: st, Limit: limit})
			if err != nil {
				return nil, err
			}
			for _, e := range list {
				seen[e.ID] = e
			}
		}
	}
	remembered := s.admission.remembered(key)
	verify := len(seen)+len(remembered) >= limit || len(remembered) > rememberedUnchecked
	for _, e := range remembered {
		if _, ok := seen[e.ID]; ok {
			continue
		}
		if !verify {
			if time.Since(e.CreatedAt) > e.Limits.Timeout()+10*time.Minute {
				s.admission.forget(key, e.ID)
				continue
			}
			seen[e.ID] = e
			continue
		}
		now, err := s.lookup(ctx, e.ID)
		switch {
		case err == nil && now.Status.Terminal():
			s.admission.forget(key, e.ID)
			continue
		case err == nil:
			e = now
		case domain.ErrorCode(err) != domain.ENOTFOUND:
			return nil, err
		}
		// Never trust the memory past the execution's own bound: a view
		// that never comes (a lost projection) must not hold a slot.
		if time.Since(e.CreatedAt) > e.Limits.Timeout()+10*time.Minute {
			s.admission.forget(key, e.ID)
			continue
		}
		seen[e.ID] = e
	}
	out := make([]domain.Execution, 0, len(seen))
	for _, e := range seen {
		out = append(out, e)
	}
	return out, nil
}

// rememberedUnchecked bounds how many executions the gate remembers for
// one caller before it looks up which ended, so that a client with a
// large quota does not grow the memory for the ten minutes an entry may
// live.
const rememberedUnchecked = 64

// earliestEnd is how long until the first of active must have ended: a
// running execution by its start plus its timeout, a queued one at the
// earliest after its timeout. At least a second.
func earliestEnd(active []domain.Execution, now time.Time) time.Duration {
	best := time.Duration(-1)
	for _, e := range active {
		d := e.Limits.Timeout()
		if e.StartedAt != nil {
			d = e.StartedAt.Add(e.Limits.Timeout()).Sub(now)
		}
		if best < 0 || d < best {
			best = d
		}
	}
	return max(best, time.Second)
}
