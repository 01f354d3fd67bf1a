package web

import (
	"net/http"
	"testing"

	"github.com/integr8scode/integr8scode/domain"
)

// An API without a view of the backlog (Deps.Backlog is optional) says so
// for the queue (503, not a made-up zero) and shows a queued execution
// without a position, rather than failing the read.
func TestQueueWithoutBacklog(t *testing.T) {
	a := startAPI(t, func(d *Deps, _ *http.Server) { d.Backlog = nil })
	q := call(t, http.MethodGet, a.URL+"/api/v1/queue", "")
	if q.Status != http.StatusServiceUnavailable || q.errorCode(t) != domain.EUNAVAILABLE {
		t.Fatalf("queue: %d %s", q.Status, q.Body)
	}
	sub := call(t, http.MethodPost, a.URL+"/api/v1/executions", `{"script":"print(1)"}`)
	if sub.Status != http.StatusAccepted {
		t.Fatalf("submit: %d %s", sub.Status, sub.Body)
	}
	e := decodeExecution(t, sub)
	got := call(t, http.MethodGet, a.URL+"/api/v1/executions/"+e.ID, "")
	if got.Status != http.StatusOK {
		t.Fatalf("get: %d %s", got.Status, got.Body)
	}
	if g := decodeExecution(t, got); g.Status != domain.StatusQueued || g.QueuePosition != 0 {
		t.Fatalf("a queued execution without a backlog view: %+v", g)
	}
}
