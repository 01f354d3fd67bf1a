package content

import (
	"context"
	"sort"
	"sync"
	"time"
)

// MemoryStore is a Store in memory, for tests and for an API started
// without a key store (its content is unreadable after a restart).
type MemoryStore struct {
	mu      sync.Mutex
	records map[string]Record
}

// NewMemoryStore returns an empty store.
func NewMemoryStore() *MemoryStore { return &MemoryStore{records: map[string]Record{}} }

func (m *MemoryStore) Insert(_ context.Context, r Record) (Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if have, ok := m.records[r.ExecutionID]; ok {
		return have, nil
	}
	m.records[r.ExecutionID] = r
	return r, nil
}

func (m *MemoryStore) Get(_ context.Context, id string) (Record, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.records[id]
	return r, ok, nil
}

func (m *MemoryStore) MarkErasing(_ context.Context, id string, e Erasure) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.records[id]
	if !ok {
		r = Record{ExecutionID: id, CreatedAt: e.At, Keyless: true}
	}
	if r.Erasing == nil && r.ShreddedAt == nil {
		r.Erasing = &e
	}
	m.records[id] = r
	return nil
}

func (m *MemoryStore) Unmark(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.records[id]
	if !ok || r.ShreddedAt != nil {
		return nil
	}
	if r.Keyless {
		delete(m.records, id)
		return nil
	}
	r.Erasing = nil
	m.records[id] = r
	return nil
}

func (m *MemoryStore) Shred(_ context.Context, id string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.records[id]
	if !ok {
		r = Record{ExecutionID: id, CreatedAt: at, Keyless: true}
	}
	if r.ShreddedAt == nil {
		t := at
		r.ShreddedAt = &t
	}
	r.Wrapped, r.KEKID = nil, ""
	m.records[id] = r
	return nil
}

func (m *MemoryStore) Pending(_ context.Context, limit int) ([]Record, error) {
	if err := CheckLimit(limit); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Record
	for _, r := range m.records {
		if r.Erasing != nil && r.ShreddedAt == nil && len(out) < limit {
			out = append(out, r)
		}
	}
	return out, nil
}

func (m *MemoryStore) Shredded(_ context.Context, after string, limit int) ([]Record, error) {
	if err := CheckLimit(limit); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Record
	for id, r := range m.records {
		if r.ShreddedAt != nil && id > after {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ExecutionID < out[j].ExecutionID })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}
