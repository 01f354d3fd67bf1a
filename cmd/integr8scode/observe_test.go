package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/integr8scode/integr8scode/internal/testenv"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"go.yaml.in/yaml/v3"

	"github.com/integr8scode/integr8scode/adapters/kafka"
	"github.com/integr8scode/integr8scode/deploy/observability"
	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/eventstore"
)

// TestObservability runs the platform as separate roles (stores, api,
// projector, a runner, and a second runner whose sandbox cannot pass its
// self-test) under a real Prometheus and Alertmanager, built from their Go
// modules (deploy/observability). After a small load:
//
//   - every query of every shipped dashboard returns data, and every
//     series the alert rules read exists (a metric renamed in the code
//     fails here, not silently in production);
//
//   - the spans the roles export over OTLP, through a real OpenTelemetry
//     Collector (built from its modules, deploy/observability/collector),
//     form one trace per execution, from the HTTP request to the
//     projection, and the JSON log lines about it carry its trace id;
//     shipped to a real VictoriaLogs, they are found by the execution's id;
//
// then three faults, each of which must reach a webhook receiver through
// Alertmanager: the broken runner's self-test (SandboxSelfTestFailing), a
// forged event on the ledger (LedgerEventUnverifiable), and the only good
// runner killed with work queued (NoRunnerReady). The rules are the
// shipped ones with their `for:` shortened to 2 s; everything listens on
// loopback.
func TestObservability(t *testing.T) {
	var buildLog bytes.Buffer
	bins, err := observability.Ensure(t.Context(), &buildLog)
	if err != nil {
		t.Fatalf("building Prometheus and Alertmanager: %v\n%s", err, buildLog.String())
	}
	bin := buildBinary(t)
	kafkaAddr, mongoAddr := freeAddr(t), freeAddr(t)
	stores := startRole(t, bin, "stores", nil, "--data-dir", t.TempDir(),
		"--embedded-kafka-port", port(t, kafkaAddr), "--embedded-mongodb-port", port(t, mongoAddr))
	traces := startCollector(t, bins)
	env := append(connectionEnv(t, stores), traces.env()...)
	kek := filepath.Join(t.TempDir(), "content.kek")
	api := startRole(t, bin, "api", env, "--data-dir", t.TempDir(), "--log-format", "json", "--content-kek", kek)
	base := "http://" + api.addr
	projector := startRole(t, bin, "projector", env, "--ledger-keys", base+"/api/v1/ledger/keys")
	runner := startRole(t, bin, "runner", env, "--data-dir", t.TempDir(), "--slots", "2", "--log-format", "json", "--content-kek", kek)
	// /usr/bin/false passes the interpreter checks (under /usr,
	// executable) but runs no script: the self-test fails, and the runner
	// stays up, not ready, reporting it.
	broken := startUnready(t, bin, "runner", env, "--data-dir", t.TempDir(), "--python", "/usr/bin/false", "--content-kek", kek)

	hook := newAlertHook(t)
	rules := shortenedRules(t)
	prom := startStack(t, bins, hook.URL, rules, map[string][]string{
		"integr8scode-stores": {stores.addr}, "integr8scode-api": {api.addr}, "integr8scode-projector": {projector.addr},
		"integr8scode-runner": {runner.addr, broken.addr}})

	// A small load: outcomes of several kinds, reads, a refused credential.
	var ids []string
	for _, body := range []map[string]any{
		{"script": "print('" + secretMarker + "')", "stdin": secretMarker},
		{"script": "import sys\nprint(sys.stdin.read())", "stdin": "in"},
		{"script": "raise SystemExit(3)"},
		{"script": "while True: pass", "limits": map[string]any{"timeout_ms": domain.MinTimeoutMs}},
		{"script": "print('again')"},
	} {
		ids = append(ids, submit(t, base, body).ID)
	}
	for _, id := range ids {
		if e := waitDone(t, base, id, 60*time.Second); !e.Status.Terminal() {
			t.Fatalf("%s did not end: %+v", id, e)
		}
		do(t, http.MethodGet, base+"/api/v1/executions/"+id+"/events", nil)
	}
	do(t, http.MethodGet, base+"/api/v1/queue", nil)
	if r := do(t, http.MethodGet, base+"/api/v1/auth/me", nil, "Authorization", "Bearer not-a-token"); r.Status != http.StatusUnauthorized {
		t.Fatalf("a made-up token: %d", r.Status)
	}

	var traceID string
	t.Run("OK one trace from the request through the ledger and the sandbox to the projection", func(t *testing.T) {
		traceID = checkTrace(t, traces, ids[0])
	})

	t.Run("OK json logs follow an execution and never hold its script", func(t *testing.T) {
		checkLogs(t, ids[0], traceID, api, runner)
	})

	t.Run("OK shipped to a log store, an execution's lines are found by its id", func(t *testing.T) {
		checkLogStore(t, bins, ids[0], traceID, api, runner)
	})

	t.Run("OK every dashboard query returns data", func(t *testing.T) {
		queries := dashboardQueries(t)
		if len(queries) < 40 {
			t.Fatalf("only %d dashboard queries found", len(queries))
		}
		empty := prom.untilAll(t, queries, func(res promResult) bool { return len(res.Result) > 0 })
		for _, q := range empty {
			t.Errorf("no data: %s", q)
		}
		// A query may fall back to `or vector(0)`; the series it reads
		// must exist all the same.
		for _, q := range prom.untilAll(t, seriesCounts(metricNames(queries)), func(res promResult) bool { return len(res.Result) > 0 }) {
			t.Errorf("a dashboard reads a series nothing exports: %s", q)
		}
	})

	t.Run("OK every alert expression is valid and every series it reads exists", func(t *testing.T) {
		exprs := ruleExpressions(t)
		for _, e := range exprs {
			if _, err := prom.query(e); err != nil {
				t.Errorf("invalid: %s: %v", e, err)
			}
		}
		for _, q := range prom.untilAll(t, seriesCounts(metricNames(exprs)), func(res promResult) bool { return len(res.Result) > 0 }) {
			t.Errorf("the rules read a series nothing exports: %s", q)
		}
	})

	t.Run("OK a failing sandbox self-test fires its alert", func(t *testing.T) {
		a := hook.waitFiring(t, "Integr8scodeSandboxSelfTestFailing", 90*time.Second)
		if a.Labels["instance"] != broken.addr {
			t.Errorf("the alert names %q, want the broken runner %s", a.Labels["instance"], broken.addr)
		}
		if a.Annotations["runbook"] != "docs/operations.md#sandbox-self-test-failing" {
			t.Errorf("annotations %v", a.Annotations)
		}
	})

	t.Run("OK a forged event on the ledger fires its alert", func(t *testing.T) {
		forgeEvent(t, env, ids[0])
		a := hook.waitFiring(t, "Integr8scodeLedgerEventUnverifiable", 90*time.Second)
		if a.Labels["kind"] != eventstore.ProblemBadSignature {
			t.Errorf("the alert says kind %q, want %s", a.Labels["kind"], eventstore.ProblemBadSignature)
		}
	})

	t.Run("OK the only runner stopped with work queued fires NoRunnerReady", func(t *testing.T) {
		// Not firing while the runner is ready (right after Prometheus
		// starts, before its first scrapes, it may have been pending or
		// fired: no series yet reads as no runner).
		firing := `ALERTS{alertname="Integr8scodeNoRunnerReady",alertstate="firing"}`
		if left := prom.untilAll(t, []string{firing}, func(res promResult) bool { return len(res.Result) == 0 }); len(left) > 0 {
			t.Fatalf("NoRunnerReady fires while a runner is ready: %v", left)
		}
		since := hook.mark()
		runner.kill()
		queued := []string{submit(t, base, map[string]any{"script": "print(1)"}).ID, submit(t, base, map[string]any{"script": "print(2)"}).ID}
		hook.waitFiringSince(t, since, "Integr8scodeNoRunnerReady", 90*time.Second)
		// The backlog shows where the runners cannot: in the API's series.
		left := prom.untilAll(t, []string{`max(integr8scode_queue_executions{status="queued"}) >= 2`},
			func(res promResult) bool { return len(res.Result) > 0 })
		if len(left) > 0 {
			t.Errorf("the queue metric never showed the %d queued executions", len(queued))
		}
		for _, id := range queued {
			if e := get(t, base, id); e.Status != domain.StatusQueued {
				t.Errorf("%s: %s without a runner", id, e.Status)
			}
		}
	})
}

// secretMarker stands for what a script, its stdin and its output may hold
// that must never reach the platform's logs.
const secretMarker = "do-not-log-7f3a9c"

// checkTrace waits for the spans of execution id to arrive and returns
// their one trace: started by the HTTP request in the api, through the
// ledger writer (api), the runner's handling and sandbox, to the
// projector, each process exporting its own spans.
func checkTrace(t *testing.T, r *traceCollector, id string) string {
	t.Helper()
	want := []struct{ process, name string }{
		{"api", "POST /api/v1/executions"},
		{"api", "ledger.append"},
		{"runner", "ledger.handle " + domain.TypeExecutionQueued},
		{"runner", "sandbox.run"},
		{"projector", "ledger.handle " + domain.TypeExecutionQueued},
		{"projector", "ledger.handle " + domain.TypeExecutionCompleted},
	}
	var traces []string
	var missing []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		var spans []receivedSpan
		traces, spans = r.traceOf(t, id)
		missing = nil
		for _, w := range want {
			if !slices.ContainsFunc(spans, func(s receivedSpan) bool { return s.Process == w.process && s.Name == w.name }) {
				missing = append(missing, w.process+": "+w.name)
			}
		}
		if (len(missing) == 0 && len(traces) == 1) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(traces) != 1 || len(missing) > 0 {
		t.Fatalf("the spans of %s form %d traces (want 1); missing %v", id, len(traces), missing)
	}
	return traces[0]
}

// checkLogs reads the JSON logs of the api and the runner: every line is
// a JSON object, the ledger writer logged each event of execution id once
// with the submitting request's id and the execution's trace, and any
// other line about it carries the same request. No line holds the script,
// stdin or output.
func checkLogs(t *testing.T, id, traceID string, api, runner *role) {
	t.Helper()
	types := map[string]int{}
	requests := map[string]bool{}
	for _, r := range []*role{api, runner} {
		logs := r.logs.String()
		if strings.Contains(logs, secretMarker) {
			t.Errorf("the %s's log holds the script's content", r.name)
		}
		for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
			var l map[string]any
			if err := json.Unmarshal([]byte(line), &l); err != nil {
				t.Errorf("%s: not a JSON line: %q", r.name, line)
				continue
			}
			if l["execution_id"] != id {
				continue
			}
			if rid, _ := l["request_id"].(string); rid != "" {
				requests[rid] = true
			} else if l["msg"] == "ledger event appended" {
				t.Errorf("%s: no request_id: %v", r.name, l)
			}
			if l["msg"] == "ledger event appended" {
				types[l["type"].(string)]++
				if l["trace_id"] != traceID {
					t.Errorf("%s: trace_id %v, want the execution's trace %s: %v", r.name, l["trace_id"], traceID, l)
				}
			}
		}
	}
	if types[domain.TypeExecutionQueued] != 1 || types[domain.TypeExecutionStarted] != 1 || types[domain.TypeExecutionCompleted] != 1 {
		t.Errorf("ledger event lines of %s by type: %v, want one each of queued, started, completed", id, types)
	}
	if len(requests) != 1 {
		t.Errorf("the lines of %s name request ids %v, want the one submission's", id, requests)
	}
}

// checkLogStore ships the JSON logs of the api and the runner to a real
// VictoriaLogs, as a log shipper would, and finds the lines of execution
// id there by its id: the ledger writer's line for each of its events,
// with its trace.
func checkLogStore(t *testing.T, bins observability.Binaries, id, traceID string, roles ...*role) {
	t.Helper()
	logs := &testenv.SyncBuffer{}
	store, err := observability.StartLogStore(t.Context(), bins, t.TempDir(), freeAddr(t), logs)
	if err != nil {
		t.Fatalf("%v\n%s", err, tail(logs.String(), 20))
	}
	defer store.Stop()
	for _, r := range roles {
		if err := store.Ship([]byte(r.logs.String())); err != nil {
			t.Fatal(err)
		}
	}
	q := fmt.Sprintf(`execution_id:=%q`, id)
	var found []map[string]string
	deadline := time.Now().Add(20 * time.Second)
	for len(found) < 3 && time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
		if found, err = store.Query(q); err != nil {
			t.Fatal(err)
		}
	}
	appended := 0
	for _, l := range found {
		if l["_msg"] == "ledger event appended" {
			appended++
			if l["trace_id"] != traceID || l["role"] != "api" {
				t.Errorf("a line found in the store: %v, want role api and trace %s", l, traceID)
			}
		}
	}
	if appended != 3 {
		t.Fatalf("the store found %d lines for %s (%d of appended events), want the 3 events': %v", len(found), q, appended, found)
	}
}

// startUnready starts a role without waiting for /readyz (it may never be
// ready), only for its HTTP server to answer.
func startUnready(t *testing.T, bin, name string, env []string, args ...string) *role {
	t.Helper()
	r := &role{name: name, addr: freeAddr(t), logs: &testenv.SyncBuffer{}, done: make(chan error, 1)}
	r.cmd = exec.Command(bin, append([]string{name, "--listen", r.addr}, args...)...)
	r.cmd.Env = append(os.Environ(), env...)
	r.cmd.Stdout, r.cmd.Stderr = r.logs, r.logs
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.done <- r.cmd.Wait() }()
	t.Cleanup(func() {
		r.kill()
		if t.Failed() {
			t.Logf("%s (unready) log:\n%s", name, tail(r.logs.String(), 40))
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + r.addr + "/healthz"); err == nil {
			resp.Body.Close()
			return r
		}
		select {
		case err := <-r.done:
			t.Fatalf("%s exited: %v\n%s", name, err, tail(r.logs.String(), 40))
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("%s never answered", name)
	return nil
}

// shortenedRules is the shipped rule file with every `for:` at 2 s, so
// that alerts fire within seconds of their condition.
func shortenedRules(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../deploy/observability/rules/integr8scode.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	short := regexp.MustCompile(`(?m)^(\s+for: )\S+$`).ReplaceAll(b, []byte("${1}2s"))
	f := filepath.Join(t.TempDir(), "integr8scode.rules.yml")
	if err := os.WriteFile(f, short, 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// dashboardQueries are the expressions of every panel of every shipped
// dashboard, with Grafana's variables given the values they have by default.
func dashboardQueries(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("../../deploy/observability/dashboards/*.json")
	if err != nil || len(files) < 5 {
		t.Fatalf("dashboards: %v %v", files, err)
	}
	vars := strings.NewReplacer(observability.RateInterval, "1m", "$job", "integr8scode.*")
	var out []string
	kubernetesOnly := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			Panels []struct {
				Targets []struct {
					Expr string `json:"expr"`
				} `json:"targets"`
			} `json:"panels"`
		}
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, p := range d.Panels {
			for _, tg := range p.Targets {
				if slices.ContainsFunc(observability.KubernetesOnlySeries, func(m string) bool { return strings.Contains(tg.Expr, m) }) {
					kubernetesOnly++
					continue
				}
				out = append(out, vars.Replace(tg.Expr))
			}
		}
	}
	if kubernetesOnly != len(observability.KubernetesOnlySeries) {
		t.Fatalf("%d queries read the Kubernetes sandbox's series, want one each for %v (the in-cluster test checks them)",
			kubernetesOnly, observability.KubernetesOnlySeries)
	}
	return out
}

// metricNames are the platform's series (integr8scode_*, and the recording
// rules' integr8scode:*) that the expressions read, label values aside.
func metricNames(exprs []string) []string {
	quoted := regexp.MustCompile(`"[^"]*"`)
	name := regexp.MustCompile(`\bintegr8scode[_:][a-zA-Z0-9_:]*`)
	seen := map[string]bool{}
	var names []string
	for _, e := range exprs {
		for _, n := range name.FindAllString(quoted.ReplaceAllString(e, `""`), -1) {
			if !seen[n] {
				seen[n] = true
				names = append(names, n)
			}
		}
	}
	sort.Strings(names)
	return names
}

// seriesCounts are queries that return data when a series of each name exists.
func seriesCounts(names []string) []string {
	var out []string
	for _, n := range names {
		out = append(out, fmt.Sprintf(`count({__name__=%q})`, n))
	}
	return out
}

// ruleExpressions are the expressions of the shipped rules.
func ruleExpressions(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../deploy/observability/rules/integr8scode.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rf struct {
		Groups []struct {
			Rules []struct {
				Expr string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &rf); err != nil {
		t.Fatal(err)
	}
	var exprs []string
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, r.Expr)
		}
	}
	if n := len(metricNames(exprs)); len(exprs) < 10 || n < 10 {
		t.Fatalf("%d expressions reading %d series: the rule file did not parse as expected", len(exprs), n)
	}
	return exprs
}

// forgeEvent appends to the ledger, straight to the topic as someone with
// access to Kafka could, the next event of execution id signed with a key
// the ledger never published.
func forgeEvent(t *testing.T, env []string, id string) {
	t.Helper()
	vars := map[string]string{}
	for _, e := range env {
		k, v, _ := strings.Cut(e, "=")
		vars[k] = v
	}
	password, err := os.ReadFile(vars["INTEGR8SCODE_KAFKA_SASL_PASSWORD_FILE"])
	if err != nil {
		t.Fatal(err)
	}
	brokers := []string{kafka.BrokerURL(vars["INTEGR8SCODE_KAFKA_BROKERS"], kafka.SASL{Mechanism: vars["INTEGR8SCODE_KAFKA_SASL_MECHANISM"],
		User: vars["INTEGR8SCODE_KAFKA_SASL_USER"], Password: strings.TrimSpace(string(password))})}
	r, err := kafka.NewLogReader(brokers)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var last []byte
	if err := r.ReadAll(t.Context(), eventstore.Topic, func(rec kafka.Record) error {
		if string(rec.Key) == id {
			last = rec.Value
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if last == nil {
		t.Fatalf("no record of %s on the ledger", id)
	}
	e, err := eventstore.ParseRecord(last)
	if err != nil {
		t.Fatal(err)
	}
	_, forger := testKeyPair()
	prev := e.Hash
	e.Sequence, e.EventID = e.Sequence+1, "forged-by-the-observability-test"
	rec, err := e.Seal(prev, forger)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := kafka.NewPublisher(brokers, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if err := publishRaw(pub, id, rec); err != nil {
		t.Fatal(err)
	}
}

// promStack is a running Prometheus (and Alertmanager) for one test.
type promStack struct{ url string }

type promResult struct {
	ResultType string            `json:"resultType"`
	Result     []json.RawMessage `json:"result"`
}

func startStack(t *testing.T, bins observability.Binaries, webhook, rules string, targets map[string][]string) *promStack {
	t.Helper()
	logs := &testenv.SyncBuffer{}
	s, err := observability.StartStack(t.Context(), bins, observability.StackConfig{Dir: t.TempDir(), Targets: targets,
		RuleFiles: []string{rules}, Interval: time.Second, PrometheusAddr: freeAddr(t), AlertmanagerAddr: freeAddr(t),
		WebhookURL: webhook, GroupWait: time.Second, GroupInterval: time.Second, Log: logs})
	if err != nil {
		t.Fatalf("%v\n%s", err, tail(logs.String(), 40))
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("prometheus and alertmanager:\n%s", tail(logs.String(), 40))
		}
	})
	return &promStack{url: s.PrometheusURL}
}

// query runs an instant query; an error is Prometheus refusing it.
func (p *promStack) query(q string) (promResult, error) {
	resp, err := http.Get(p.url + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return promResult{}, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string     `json:"status"`
		Error  string     `json:"error"`
		Data   promResult `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return promResult{}, err
	}
	if body.Status != "success" {
		return promResult{}, fmt.Errorf("%s", body.Error)
	}
	return body.Data, nil
}

// untilAll runs the queries until each has once satisfied ok (series need
// a few scrapes, rules a few evaluations), for at most a minute, and
// returns those that never did, with why.
func (p *promStack) untilAll(t *testing.T, queries []string, ok func(promResult) bool) []string {
	t.Helper()
	pending := map[string]string{}
	for _, q := range queries {
		pending[q] = "not run"
	}
	deadline := time.Now().Add(60 * time.Second)
	for len(pending) > 0 && time.Now().Before(deadline) {
		for q := range pending {
			res, err := p.query(q)
			switch {
			case err != nil:
				pending[q] = err.Error()
			case ok(res):
				delete(pending, q)
			default:
				pending[q] = "empty"
			}
		}
		time.Sleep(time.Second)
	}
	var out []string
	for q, why := range pending {
		out = append(out, q+" ("+why+")")
	}
	sort.Strings(out)
	return out
}

// alertHook is a webhook receiver for Alertmanager's notifications.
type alertHook struct {
	URL string
	mu  sync.Mutex
	got []hookAlert
}

type hookAlert struct {
	Status      string            `json:"status"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

func newAlertHook(t *testing.T) *alertHook {
	h := &alertHook{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n struct {
			Alerts []hookAlert `json:"alerts"`
		}
		if err := json.NewDecoder(r.Body).Decode(&n); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		h.got = append(h.got, n.Alerts...)
		h.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	h.URL = srv.URL + "/alerts"
	return h
}

// mark is a position in the notifications received so far.
func (h *alertHook) mark() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.got)
}

func (h *alertHook) firing(name string, since int) (hookAlert, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, a := range h.got[since:] {
		if a.Labels["alertname"] == name && a.Status == "firing" {
			return a, true
		}
	}
	return hookAlert{}, false
}

func (h *alertHook) waitFiring(t *testing.T, name string, within time.Duration) hookAlert {
	t.Helper()
	return h.waitFiringSince(t, 0, name, within)
}

// waitFiringSince waits for a firing notification of alert name received
// after mark since.
func (h *alertHook) waitFiringSince(t *testing.T, since int, name string, within time.Duration) hookAlert {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), within)
	defer cancel()
	for {
		if a, ok := h.firing(name, since); ok {
			return a
		}
		select {
		case <-ctx.Done():
			h.mu.Lock()
			defer h.mu.Unlock()
			t.Fatalf("%s never reached the webhook within %s; it got %+v", name, within, h.got)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
