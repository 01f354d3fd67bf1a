package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
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
		if _, err := s.lookup(r.Context(), id); err != nil {
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
			_, checks, _ := eventstore.CheckRecord(s.Keys, a.Record, prev)
			resp.ChainValid = resp.ChainValid && checks.OK() && a.Envelope.Sequence == int64(i+1)
			resp.Events = append(resp.Events, recordedEvent{Partition: a.Partition, Offset: a.Offset,
				Verified: checks, Record: json.RawMessage(a.Record)})
			prev = a.Envelope.Hash
		}
		writeJSON(w, http.StatusOK, resp)
	}
}

// handleStream sends an execution's ledger events as Server-Sent Events, in
// sequence order and without gaps, and ends after the terminal one. A client
// that reconnects with Last-Event-ID (the sequence) continues after it.
func (s *server) handleStream() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := chi.URLParam(r, "id")
		if _, err := s.lookup(r.Context(), id); err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		flusher, ok := w.(http.Flusher)
		if !ok {
			writeError(w, r, s.Logger, fmt.Errorf("streaming unsupported by the response writer"))
			return
		}
		var last int64
		if h := r.Header.Get("Last-Event-ID"); h != "" {
			n, err := strconv.ParseInt(h, 10, 64)
			if err != nil || n < 0 {
				writeError(w, r, s.Logger, domain.Errorf(domain.EINVALID, "Last-Event-ID must be a sequence number"))
				return
			}
			last = n
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Accel-Buffering", "no")
		w.WriteHeader(http.StatusOK)
		flusher.Flush()
		s.stream(r.Context(), w, flusher, id, last)
	}
}

func (s *server) stream(ctx context.Context, w http.ResponseWriter, f http.Flusher, id string, last int64) {
	var changed <-chan struct{}
	if s.Hub != nil {
		ch, stop := s.Hub.Subscribe(id)
		defer stop()
		changed = ch
	}
	tick := time.NewTicker(s.PollEvery)
	defer tick.Stop()
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
		evs, err := s.Views.Events(ctx, id, last)
		if err != nil {
			if ctx.Err() == nil {
				s.Logger.Warn("stream read failed", "execution_id", id, "err", err)
				fmt.Fprintf(w, "event: error\ndata: {\"code\":\"internal\",\"message\":\"internal error\"}\n\n")
				f.Flush()
			}
			return
		}
		for _, a := range evs {
			e := a.Envelope
			if e.Sequence != last+1 {
				break // an earlier event is still on its way: never skip it
			}
			// The record as the ledger holds it: one line of JSON (a
			// record never holds a raw newline; JSON escapes them).
			fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", e.Sequence, e.Type, a.Record)
			last = e.Sequence
			if e.Type == domain.TypeExecutionCompleted || e.Type == domain.TypeExecutionFailed {
				f.Flush()
				return
			}
		}
		f.Flush()
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-tick.C:
		case <-keepalive.C:
			fmt.Fprint(w, ": keepalive\n\n")
			f.Flush()
		}
	}
}
