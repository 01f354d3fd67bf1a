package web

import (
	"net/http"
	"time"
)

// Edge holds the limits the HTTP server enforces before any handler runs.
// docs/security.md ("The API edge") lists them with every other bound.
type Edge struct {
	// ReadHeader bounds reading a request's headers.
	ReadHeader time.Duration
	// Read bounds reading a whole request, headers and body. Streams and
	// ?wait=true lift it once the body is read (they only write after).
	Read time.Duration
	// Write bounds writing an answer, counted from the end of the headers.
	// Streams and ?wait=true move it forward as they go.
	Write time.Duration
	// Idle bounds how long a keep-alive connection waits for its next request.
	Idle time.Duration
	// MaxHeaderBytes bounds the request line and headers together.
	MaxHeaderBytes int
}

// DefaultEdge is what the platform serves with.
var DefaultEdge = Edge{
	ReadHeader:     10 * time.Second,
	Read:           30 * time.Second,
	Write:          30 * time.Second,
	Idle:           60 * time.Second,
	MaxHeaderBytes: 32 << 10,
}

// Configure applies the limits to srv.
func (e Edge) Configure(srv *http.Server) {
	srv.ReadHeaderTimeout = e.ReadHeader
	srv.ReadTimeout = e.Read
	srv.WriteTimeout = e.Write
	srv.IdleTimeout = e.Idle
	srv.MaxHeaderBytes = e.MaxHeaderBytes
}

// holdOpen lifts the read deadline of a request whose body is read and sets
// its write deadline to until, for answers that legitimately take longer
// than the server's timeouts (streams, ?wait=true). Without it the read
// deadline would cancel the request's context while it waits.
func holdOpen(w http.ResponseWriter, until time.Time) {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(until)
}
