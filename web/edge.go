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
	// Read bounds reading a whole request, headers and body. (net/http
	// clears it once the body is read, so it never cuts a long answer.)
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

// extendWrite moves the write deadline of an answer that legitimately
// takes longer than the server's write timeout (?wait=true; streams move it
// with every write) to until.
func extendWrite(w http.ResponseWriter, until time.Time) {
	_ = http.NewResponseController(w).SetWriteDeadline(until)
}
