package web

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/integr8scode/integr8scode/accounts"
	"github.com/integr8scode/integr8scode/adapters/mongo"
	"github.com/integr8scode/integr8scode/content"
	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/eventstore"
	"github.com/integr8scode/integr8scode/internal/testenv"
	"github.com/integr8scode/integr8scode/projections"
)

// api is the real HTTP API on the embedded broker and store (the ledger
// writer and a projector run), behind a real http.Server configured as the
// platform configures it. No runner runs: executions stay queued, which is
// what edge tests want (streams stay open, nothing finishes under them).
type api struct {
	URL      string
	handler  http.Handler
	srv      *httptest.Server
	reg      *prometheus.Registry
	accounts *accounts.Service // the one the server uses, for making admins
	ledger   testenv.Ledger
}

// startAPI starts the API; tune may adjust its dependencies and the server.
func startAPI(t testing.TB, tune func(*Deps, *http.Server)) *api {
	t.Helper()
	l := testenv.StartLedger(t, "web_test", 15*time.Second)
	reg := prometheus.NewRegistry()
	catalog := domain.Catalog{
		Runtimes:      []domain.Runtime{{Language: "python", Versions: []string{"3.11"}, DefaultVersion: "3.11", FileExtension: "py"}},
		DefaultLimits: domain.DefaultLimits, MaxLimits: domain.DefaultMaxLimits}
	store := mongo.NewAccounts(l.DB)
	acc, err := accounts.New(accounts.Config{Store: store, Keys: testTokenKeys, Logger: testenv.Quiet()})
	if err != nil {
		t.Fatal(err)
	}
	// Limits far above what any test submits; the quota tests set their own.
	roomy := accounts.Quota{PerMinute: 100000, Burst: 10000, Concurrent: 10000}
	ask := l.Asker(t, "api")
	d := Deps{Ledger: ask, Views: l.Views, Content: l.Content,
		Eraser: &content.Eraser{Keys: l.Content, Ledger: ask, Views: l.Views, Logger: testenv.Quiet()}, Backlog: projections.Backlog{Store: l.Views}, Keys: l.Keys,
		Catalog: catalog, Logger: testenv.Quiet(), Gatherer: reg, Registerer: reg,
		Accounts: acc, Scripts: &accounts.Scripts{Store: store, Catalog: catalog},
		Quotas: &accounts.Quotas{Anonymous: roomy, User: roomy, Admin: roomy}}
	ts := httptest.NewUnstartedServer(nil)
	DefaultEdge.Configure(ts.Config)
	if tune != nil {
		tune(&d, ts.Config)
	}
	h := NewServer(d)
	ts.Config.Handler = h
	ts.Start()
	t.Cleanup(ts.Close)
	return &api{URL: ts.URL, handler: h, srv: ts, reg: reg, accounts: d.Accounts, ledger: l}
}

// testTokenKeys sign the access tokens of the test servers.
var testTokenKeys = accounts.SigningKeys{Active: "k1", Keys: map[string][]byte{"k1": []byte("0123456789abcdef0123456789abcdef")}}

type answer struct {
	Status int
	Header http.Header
	Body   []byte
}

// errorCode returns the code of a {"error":{"code","message"}} body and
// fails the test if the body is not one.
func (a answer) errorCode(t testing.TB) string {
	t.Helper()
	var e struct {
		Error *struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal(a.Body, &e); err != nil || e.Error == nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("not a JSON error (%d): %q", a.Status, a.Body)
	}
	return e.Error.Code
}

func (a answer) message(t testing.TB) string {
	t.Helper()
	var e struct{ Error struct{ Message string } }
	_ = json.Unmarshal(a.Body, &e)
	return e.Error.Message
}

// call sends one request; header is name, value pairs. A string body is
// sent as JSON unless a Content-Type is given.
func call(t testing.TB, method, url, body string, header ...string) answer {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return send(t, req)
}

func send(t testing.TB, req *http.Request) answer {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{Status: resp.StatusCode, Header: resp.Header, Body: bytes.TrimSpace(b)}
}

func decodeExecution(t testing.TB, a answer) Execution {
	t.Helper()
	var e Execution
	if err := json.Unmarshal(a.Body, &e); err != nil {
		t.Fatalf("decode %s: %v", a.Body, err)
	}
	return e
}

// finish plays the runner's part through the real ledger writer, since no
// sandbox runs here: it claims the execution and reports res, its output
// sealed under the execution's key as a runner seals it.
func (a *api) finish(t testing.TB, id string, res domain.Result) {
	t.Helper()
	ask := a.ledger.Asker(t, "runner")
	claim := testenv.Ask(t, ask, eventstore.Command{Kind: eventstore.CommandClaim, ExecutionID: id, Actor: "runner",
		Runner: &eventstore.RunnerArgs{Runner: "test-runner", Sandbox: "runc", Mode: eventstore.ClaimStart, LeaseMs: 60000}})
	if err := claim.Err(); err != nil {
		t.Fatalf("claim %s: %v", id, err)
	}
	sealed, err := eventstore.SealResult(res, func(out domain.Output) (domain.Sealed, error) {
		return a.ledger.Content.SealOutput(context.Background(), id, out)
	})
	if err != nil {
		t.Fatal(err)
	}
	rep := testenv.Ask(t, ask, eventstore.Command{Kind: eventstore.CommandReport, ExecutionID: id, Actor: "runner",
		Report: &eventstore.ReportArgs{Runner: "test-runner", Attempt: claim.Head.Attempt, Result: sealed, Genuine: true}})
	if err := rep.Err(); err != nil {
		t.Fatalf("report %s: %v", id, err)
	}
}
