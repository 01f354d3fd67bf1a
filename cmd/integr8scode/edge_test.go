package main

import (
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestEdgeEndToEnd checks the HTTP edge through the real program: what a
// request id becomes in the ledger, how a resumed stream of a finished
// execution ends, and that the server runs with the edge's limits.
func TestEdgeEndToEnd(t *testing.T) {
	base, _ := startUp(t, t.TempDir())
	api := base + "/api/v1"

	t.Run("OK a plain request id becomes the correlation id", func(t *testing.T) {
		r := do(t, http.MethodPost, api+"/executions", map[string]any{"script": "print(1)"}, "X-Request-Id", "trace-me.1")
		e := decodeID(t, r)
		if evs := waitEvents(t, base, e, 30*time.Second); evs[0].CorrelationID != "trace-me.1" {
			t.Fatalf("correlation id %q", evs[0].CorrelationID)
		}
	})

	t.Run("ErrAnUnboundedRequestIDIsNotStored", func(t *testing.T) {
		huge := strings.Repeat("A", 20<<10)
		r := do(t, http.MethodPost, api+"/executions", map[string]any{"script": "print(1)"}, "X-Request-Id", huge)
		e := decodeID(t, r)
		evs := waitEvents(t, base, e, 30*time.Second)
		for _, ev := range evs {
			if _, err := uuid.Parse(ev.CorrelationID); err != nil && ev.Actor != "runner" {
				t.Fatalf("stored correlation id of %d bytes", len(ev.CorrelationID))
			}
		}
		if r.Header.Get("X-Request-Id") != evs[0].CorrelationID {
			t.Fatalf("answered request id %q, stored %q", r.Header.Get("X-Request-Id"), evs[0].CorrelationID)
		}
	})

	t.Run("OK a stream resumed at or past the end ends at once", func(t *testing.T) {
		id := decodeID(t, do(t, http.MethodPost, api+"/executions?wait=true", map[string]any{"script": "print(1)"}))
		waitEvents(t, base, id, 30*time.Second)
		for _, last := range []string{"3", "4", "999"} {
			began := time.Now()
			r := do(t, http.MethodGet, api+"/executions/"+id+"/stream", nil, "Last-Event-ID", last)
			if r.Status != http.StatusNoContent || time.Since(began) > 5*time.Second {
				t.Fatalf("Last-Event-ID %s: %d after %s", last, r.Status, time.Since(began))
			}
		}
	})

	t.Run("ErrHeadersPastTheBoundAre431", func(t *testing.T) {
		conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 64<<10) + "\r\n\r\n"))
		buf := make([]byte, 64)
		n, _ := conn.Read(buf)
		if !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 431") {
			t.Fatalf("got %q", buf[:n])
		}
	})
}

func decodeID(t *testing.T, r apiResponse) string {
	t.Helper()
	var e struct {
		ID string `json:"execution_id"`
	}
	r.decode(t, &e)
	if e.ID == "" {
		t.Fatalf("no execution: %d %s", r.Status, r.Body)
	}
	return e.ID
}
