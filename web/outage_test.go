package web

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/integr8scode/integr8scode/adapters/kafka"
	"github.com/integr8scode/integr8scode/adapters/mongo"
	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/eventstore"
	"github.com/integr8scode/integr8scode/internal/testenv"
	"github.com/integr8scode/integr8scode/projections"
)

// TestALostViewStoreAnswers500AndQueuesNothing: when the connection to the
// views' store is gone, an open stream says so with an error event and
// ends, every read and a user's submissions answer 500 "internal error"
// (the cause is logged, never shown), and a submission the gates could not
// check never reaches the ledger. The views get a store of their
// own here so that sign-in (the accounts, in the ledger's store) still
// works and each handler's own read is the one that fails.
func TestALostViewStoreAnswers500AndQueuesNothing(t *testing.T) {
	log, logged := capturedLogger()
	var views *mongo.DB
	a := startAPI(t, func(d *Deps, _ *http.Server) {
		views = testenv.Store(t, "web_views_lost")
		v := mongo.NewProjections(views)
		d.Views, d.Backlog, d.Logger = v, projections.Backlog{Store: v}, log
	})
	u := register(t, a, "stranded")

	sub := call(t, http.MethodPost, a.URL+"/api/v1/executions", `{"script":"print('before')"}`)
	if sub.Status != http.StatusAccepted {
		t.Fatalf("submit before the outage: %d %s", sub.Status, sub.Body)
	}
	id := decodeExecution(t, sub).ID
	stream, err := http.Get(a.URL + "/api/v1/executions/" + id + "/stream")
	if err != nil || stream.StatusCode != http.StatusOK {
		t.Fatalf("stream: %v %v", err, stream)
	}
	defer stream.Body.Close()

	// The store is gone: its client disconnected and, the embedded store
	// answering some reads from a local index, that index closed too.
	if err := views.Database().Client().Disconnect(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := views.Close(); err != nil {
		t.Fatal(err)
	}

	t.Run("ErrStreamEndsWithAnErrorEvent", func(t *testing.T) {
		var lines []string
		sc := bufio.NewScanner(stream.Body)
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
		got := strings.Join(lines, "\n")
		if !strings.Contains(got, "event: error\ndata: {\"code\":\"internal\",\"message\":\"internal error\"}") {
			t.Fatalf("the stream ended with %q", got)
		}
	})
	t.Run("ErrInternal", func(t *testing.T) {
		other := uuid.NewString()
		for _, c := range []struct {
			method, path, body string
			header             []string
		}{
			{http.MethodGet, "/api/v1/executions/" + id, "", nil},
			{http.MethodGet, "/api/v1/executions/" + other + "/events", "", nil},
			{http.MethodGet, "/api/v1/executions/" + other + "/stream", "", nil},
			{http.MethodGet, "/api/v1/executions/" + other + "/result", "", nil},
			{http.MethodPost, "/api/v1/executions/" + id + "/cancel", "", nil},
			{http.MethodDelete, "/api/v1/executions/" + id + "/content", "", nil},
			{http.MethodGet, "/api/v1/executions", "", u.bearer()},
			{http.MethodGet, "/api/v1/stats", "", u.bearer()},
			{http.MethodGet, "/api/v1/queue", "", nil},
			// A user's submissions: the concurrency gate reads the user's
			// executions. (An anonymous one may pass in the second the
			// backlog's view is cached: the ledger, which is up, decides.)
			{http.MethodPost, "/api/v1/executions", `{"script":"print('during')"}`, u.bearer()},
			{http.MethodPost, "/api/v1/execute", `{"script":"print('during')"}`, u.bearer()},
		} {
			r := call(t, c.method, a.URL+c.path, c.body, c.header...)
			if r.Status != http.StatusInternalServerError || r.errorCode(t) != domain.EINTERNAL || r.message(t) != "internal error" {
				t.Fatalf("%s %s: %d %s", c.method, c.path, r.Status, r.Body)
			}
		}
		if !strings.Contains(logged.String(), "client is disconnected") {
			t.Fatalf("the cause was not logged:\n%s", logged)
		}
		if r := call(t, http.MethodGet, a.URL+"/healthz", ""); r.Status != http.StatusOK {
			t.Fatalf("healthz: %d", r.Status)
		}
	})
	t.Run("OK the ledger holds only the submission from before", func(t *testing.T) {
		rd, err := kafka.NewLogReader(a.ledger.Brokers)
		if err != nil {
			t.Fatal(err)
		}
		defer rd.Close()
		var ids []string
		if err := rd.ReadAll(context.Background(), eventstore.Topic, func(rec kafka.Record) error {
			ids = append(ids, string(rec.Key))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if len(ids) != 1 || ids[0] != id {
			t.Fatalf("the ledger holds %v; want only %s", ids, id)
		}
	})
}
