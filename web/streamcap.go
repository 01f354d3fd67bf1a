package web

import (
	"sync"
)

// streamCap bounds the concurrent event streams of one client, so that one
// client cannot hold every connection and every store poll. A client is its
// address (clientip.go), or the user when signed in.
type streamCap struct {
	max  int
	mu   sync.Mutex
	open map[string]int
}

func newStreamCap(max int) *streamCap { return &streamCap{max: max, open: map[string]int{}} }

// acquire takes a stream slot for r's client; ok is false when the client
// already holds max streams. release must be called once the stream ends.
func (c *streamCap) acquire(client string) (release func(), ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open[client] >= c.max {
		return nil, false
	}
	c.open[client]++
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.open[client]--; c.open[client] == 0 {
			delete(c.open, client)
		}
	}, true
}
