package main

import (
	"context"
	"fmt"
	"sync"

	"github.com/integr8scode/integr8scode/adapters/kafka"
	"github.com/integr8scode/integr8scode/eventstore"
	"github.com/integr8scode/integr8scode/projections"
)

// catchUp answers readiness for the views: ready once the projection's
// position in every partition has passed the end of the log as it was when
// this process started (after a deleted store, once the views are rebuilt).
type catchUp struct {
	reader *kafka.LogReader
	store  projections.Store
	ends   map[int32]int64

	mu   sync.Mutex
	done bool
}

func newCatchUp(brokers []string, store projections.Store) (*catchUp, error) {
	r, err := kafka.NewLogReader(brokers)
	if err != nil {
		return nil, err
	}
	ends, err := r.Ends(eventstore.Topic)
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("end of the ledger: %w", err)
	}
	return &catchUp{reader: r, store: store, ends: ends}, nil
}

func (c *catchUp) close() error { return c.reader.Close() }

// check returns nil once caught up (and from then on).
func (c *catchUp) check(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		return nil
	}
	for p, end := range c.ends {
		pos, err := c.store.Position(ctx, p)
		if err != nil {
			return err
		}
		if pos >= end {
			continue
		}
		// What lies between may be only transaction markers.
		pending, err := c.reader.Pending(ctx, eventstore.Topic, p, pos, end)
		if err != nil {
			return err
		}
		if pending {
			return fmt.Errorf("the views are catching up with the ledger (partition %d at %d of %d)", p, pos, end)
		}
	}
	c.done = true
	return nil
}
