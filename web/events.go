package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/eventstore"
)

// eventsResponse is an execution's ledger events as recorded, each with
// where it is in the log and which of its proofs verify against the
// published keys (GET /api/v1/ledger/keys). A client that trusts none of
// this checks the records itself (docs/events.md).
type eventsResponse struct {
	ExecutionID string          `json:"execution_id"`
	Events      []recordedEvent `json:"events"`
	// ChainValid says whether the events form an unbroken, signed chain
	// from sequence 1 (false while a later event waits for an earlier one).
	ChainValid bool `json:"chain_valid"`
}

type recordedEvent struct {
	Partition int32             `json:"partition"`
	Offset    int64             `json:"offset"`
	Verified  eventstore.Checks `json:"verified"`
	Record    json.RawMessage   `json:"record"`
}

func (s *server) handleEvents() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := chi.URLParam(r, "id")
		if _, err := s.lookupFor(r, id); err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		evs, err := s.Views.Events(r.Context(), id, 0)
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		resp := eventsResponse{ExecutionID: id, Events: []recordedEvent{}, ChainValid: len(evs) > 0}
		prev := ""
		for i, a := range evs {
			checks, _ := eventstore.CheckParsed(s.Keys, a.Record, a.Envelope, prev)
			resp.ChainValid = resp.ChainValid && checks.OK() && a.Envelope.Sequence == int64(i+1)
			resp.Events = append(resp.Events, recordedEvent{Partition: a.Partition, Offset: a.Offset,
				Verified: checks, Record: json.RawMessage(a.Record)})
			prev = a.Envelope.Hash
		}
		writeJSON(w, http.StatusOK, resp)
	}
}

// Stream bounds. A stream's write deadline moves forward with every
// write; the keepalive keeps proxies from closing a quiet stream and lets
// the server notice a client that went away.
const (
	streamWriteWindow = 30 * time.Second
	streamRetryAfter  = "5" // seconds, for a client over its stream cap
)

// streamKeepaliveEvery is a variable only so tests need not wait 15 s.
var streamKeepaliveEvery = 15 * time.Second

// handleStream sends an execution's ledger events as Server-Sent Events, in
// sequence order and without gaps, and ends after the terminal one. A client
// that reconnects with Last-Event-ID (the sequence) continues after it; one
// that already has the terminal event gets 204, which tells a browser's
// EventSource to stop reconnecting.
func (s *server) handleStream() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := chi.URLParam(r, "id")
		last, err := parseLastEventID(r.Header.Get("Last-Event-ID"))
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		e, err := s.lookupFor(r, id)
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		switch {
		case e.Status.Terminal() && last >= e.Sequence:
			w.WriteHeader(http.StatusNoContent)
			return
		case last > e.Sequence:
			writeError(w, r, s.Logger, domain.Errorf(domain.EINVALID,
				"Last-Event-ID %d is beyond the execution's last event (%d)", last, e.Sequence))
			return
		}
		release, ok := s.streams.acquire(s.quotaKey(r))
		if !ok {
			w.Header().Set("Retry-After", streamRetryAfter)
			writeError(w, r, s.Logger, domain.Errorf(domain.ETOOMANY,
				"this client already holds %d open streams; close one or retry later", s.streams.max))
			return
		}
		defer release()
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Accel-Buffering", "no")
		if r.Method == http.MethodHead {
			return
		}
		w.WriteHeader(http.StatusOK)
		if err := http.NewResponseController(w).Flush(); err != nil {
			return
		}
		s.stream(r.Context(), w, id, last)
	}
}

// parseLastEventID reads the Last-Event-ID header: empty (from the start)
// or a sequence number of at most 18 digits, nothing else (no sign, no
// spaces), so that what a client sends is bounded before it is used.
func parseLastEventID(h string) (int64, error) {
	if h == "" {
		return 0, nil
	}
	if len(h) > 18 {
		return 0, domain.Errorf(domain.EINVALID, "Last-Event-ID must be a sequence number")
	}
	var n int64
	for i := 0; i < len(h); i++ {
		if h[i] < '0' || h[i] > '9' {
			return 0, domain.Errorf(domain.EINVALID, "Last-Event-ID must be a sequence number")
		}
		n = n*10 + int64(h[i]-'0')
	}
	return n, nil
}

// stream writes events after last until the terminal one, the client goes
// away or a write misses its deadline.
func (s *server) stream(ctx context.Context, w http.ResponseWriter, id string, last int64) {
	rc := http.NewResponseController(w)
	send := func(format string, args ...any) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(streamWriteWindow))
		if _, err := fmt.Fprintf(w, format, args...); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	watch := s.watch(id)
	defer watch.close()
	keepalive := time.NewTicker(streamKeepaliveEvery)
	defer keepalive.Stop()
	for {
		evs, err := s.Views.Events(ctx, id, last)
		if err != nil {
			if ctx.Err() == nil {
				s.Logger.Warn("stream read failed", "execution_id", id, "err", err)
				send("event: error\ndata: {\"code\":\"internal\",\"message\":\"internal error\"}\n\n")
			}
			return
		}
		for _, a := range evs {
			e := a.Envelope
			if e.Sequence != last+1 {
				break // an earlier event is still on its way: never skip it
			}
			terminal := e.Type == domain.TypeExecutionCompleted || e.Type == domain.TypeExecutionFailed
			if terminal {
				// The archive holds an event a moment before the view
				// does: a client that reads the execution when the stream
				// ends must find it ended.
				s.awaitViewAt(ctx, watch, id, e.Sequence)
			}
			// The record as the ledger holds it: one line of JSON (a
			// record never holds a raw newline; JSON escapes them).
			if !send("id: %d\nevent: %s\ndata: %s\n\n", e.Sequence, e.Type, a.Record) {
				return
			}
			last = e.Sequence
			if terminal {
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-watch.changed:
		case <-watch.tick.C:
		case <-keepalive.C:
			if !send(": keepalive\n\n") {
				return
			}
		}
	}
}

// awaitViewAt waits, at most two seconds, until the view of id holds
// sequence seq.
func (s *server) awaitViewAt(ctx context.Context, w *watcher, id string, seq int64) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	for {
		if v, err := s.Views.View(ctx, id); err == nil && v.Sequence >= seq {
			return
		}
		if !w.wait(ctx) {
			return
		}
	}
}
