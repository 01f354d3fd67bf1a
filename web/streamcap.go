package web

import (
	"net"
	"net/http"
	"sync"
)

// streamCap bounds the concurrent event streams of one client, so that one
// client cannot hold every connection and every store poll. A client is its
// remote IP for now: behind a proxy that is the proxy, and accounts (with
// trusted proxies) will key it better.
type streamCap struct {
	max  int
	mu   sync.Mutex
	open map[string]int
}

func newStreamCap(max int) *streamCap { return &streamCap{max: max, open: map[string]int{}} }

// acquire takes a stream slot for r's client; ok is false when the client
// already holds max streams. release must be called once the stream ends.
func (c *streamCap) acquire(r *http.Request) (release func(), ok bool) {
	client := clientOf(r)
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

// clientOf is the remote IP of a request (RemoteAddr is set by net/http,
// never by the client).
func clientOf(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
