package projections

import (
	"context"
	"sort"
	"sync"

	"github.com/integr8scode/integr8scode/domain"
)

// MemoryStore is a Store in memory. `integr8scode projections compare`
// folds the log into one with the same Projector the platform runs, and
// compares the result with the views in MongoDB: same rules, no second
// implementation of them.
type MemoryStore struct {
	mu        sync.Mutex
	events    map[string]map[int64]ArchivedEvent
	views     map[string]domain.Execution
	positions map[int32]int64
	facts     map[string]Fact
}

// NewMemoryStore returns an empty store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{events: map[string]map[int64]ArchivedEvent{}, views: map[string]domain.Execution{},
		positions: map[int32]int64{}, facts: map[string]Fact{}}
}

func (m *MemoryStore) AddEvents(_ context.Context, evs []ArchivedEvent) ([]bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	added := make([]bool, len(evs))
	for i, ev := range evs {
		id, seq := ev.Envelope.ExecutionID, ev.Envelope.Sequence
		if m.events[id] == nil {
			m.events[id] = map[int64]ArchivedEvent{}
		}
		if _, ok := m.events[id][seq]; !ok {
			m.events[id][seq] = ev
			added[i] = true
		}
	}
	return added, nil
}

func (m *MemoryStore) Event(_ context.Context, id string, seq int64) (ArchivedEvent, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ev, ok := m.events[id][seq]
	return ev, ok, nil
}

func (m *MemoryStore) Events(_ context.Context, id string, after int64) ([]ArchivedEvent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []ArchivedEvent
	for seq, ev := range m.events[id] {
		if seq > after {
			out = append(out, ev)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Envelope.Sequence < out[j].Envelope.Sequence })
	return out, nil
}

func (m *MemoryStore) View(_ context.Context, id string) (domain.Execution, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.views[id]
	if !ok {
		return domain.Execution{}, domain.Errorf(domain.ENOTFOUND, "execution %s not found", id)
	}
	return v, nil
}

func (m *MemoryStore) SaveViews(_ context.Context, ws []ViewWrite) ([]bool, error) {
	if err := CheckViewWrites(ws); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	stale := make([]bool, len(ws))
	for i, w := range ws {
		if m.views[w.View.ID].Sequence != w.Expected {
			stale[i] = true
			continue
		}
		m.views[w.View.ID] = w.View
	}
	return stale, nil
}

func (m *MemoryStore) List(_ context.Context, q ListQuery) ([]domain.Execution, bool, error) {
	if q.Limit < 1 {
		return nil, false, domain.Errorf(domain.EINVALID, "limit must be positive")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var all []domain.Execution
	for _, v := range m.views {
		if (q.Status == "" || v.Status == q.Status) && (q.Owner == "" || v.Owner == q.Owner) &&
			(q.After == nil || v.CreatedAt.Before(q.After.CreatedAt) || (v.CreatedAt.Equal(q.After.CreatedAt) && v.ID < q.After.ID)) {
			all = append(all, v)
		}
	}
	sort.Slice(all, func(i, j int) bool {
		if !all[i].CreatedAt.Equal(all[j].CreatedAt) {
			return all[i].CreatedAt.After(all[j].CreatedAt)
		}
		return all[i].ID > all[j].ID
	})
	more := len(all) > q.Limit
	if more {
		all = all[:q.Limit]
	}
	return all, more, nil
}

func (m *MemoryStore) Position(_ context.Context, p int32) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.positions[p], nil
}

func (m *MemoryStore) SavePositions(_ context.Context, next map[int32]int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for p, n := range next {
		m.positions[p] = n
	}
	return nil
}

// IDs lists the executions the store holds events or a view of.
func (m *MemoryStore) IDs() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := map[string]bool{}
	for id := range m.events {
		seen[id] = true
	}
	for id := range m.views {
		seen[id] = true
	}
	out := make([]string, 0, len(seen))
	for id := range seen {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

func (m *MemoryStore) SaveFacts(_ context.Context, fs []Fact) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, f := range fs {
		m.facts[f.ExecutionID] = f
	}
	return nil
}

func (m *MemoryStore) Facts(_ context.Context, q FactQuery) ([]Fact, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Fact
	for _, f := range m.facts {
		if !f.CreatedAt.Before(q.From) && f.CreatedAt.Before(q.To) && (q.Owner == "" || f.Owner == q.Owner) {
			out = append(out, f)
		}
	}
	return out, nil
}
