package observability

import (
	"encoding/json"
	"fmt"
	"strings"
)

//go:generate go run ./cmd/observe dashboards -out dashboards

// The Grafana dashboards are written here, in Go with no Grafana code (its
// code is AGPL; dashboards are plain JSON), and generated into
// dashboards/*.json, which is what users import and what the provisioning
// files point at. TestDashboardFilesAreGenerated keeps the two in step, and
// the end-to-end test in cmd/integr8scode runs every panel's queries
// against a Prometheus scraping the real platform.

// RateInterval is Grafana's window variable; tests put a real window in
// its place to run the queries against Prometheus.
const RateInterval = "$__rate_interval"

// Dashboard is one Grafana dashboard.
type Dashboard struct {
	UID, Title, Description string
	Rows                    []Row
}

// Row is a titled band of panels, laid out left to right.
type Row struct {
	Title  string
	Panels []Panel
}

// Panel is a time series (or stat) panel with its Prometheus queries.
type Panel struct {
	Title, Description string
	Unit               string // Grafana unit: s, reqps, percentunit, bytes, short…
	Stat               bool   // a single number instead of a graph
	Queries            []Query
}

// Query is one PromQL expression and the legend of its series.
type Query struct {
	Expr, Legend string
}

func q(expr, legend string) Query { return Query{Expr: expr, Legend: legend} }

// rate wraps a counter selector in rate() over Grafana's window.
func rate(sel string) string { return "rate(" + sel + "[" + RateInterval + "])" }

// quantiles are p50, p95 and p99 of a histogram, summed over by.
func quantiles(metric, sel, by string) []Query {
	var out []Query
	for _, p := range []string{"0.5", "0.95", "0.99"} {
		legend := "p" + p[2:]
		if len(p[2:]) == 1 {
			legend += "0"
		}
		grp := "le"
		if by != "" {
			grp += ", " + by
			legend = "{{" + by + "}} " + legend
		}
		out = append(out, q(fmt.Sprintf("histogram_quantile(%s, sum by (%s) (%s))", p, grp, rate(metric+"_bucket"+sel)), legend))
	}
	return out
}

// Dashboards are every dashboard the platform ships.
var Dashboards = []Dashboard{overview, ledger, sandboxes, api, goRuntime}

var overview = Dashboard{UID: "integr8scode-overview", Title: "Integr8sCode / Overview",
	Description: "Is the platform running scripts, how fast, and is anything failing? Alerts: deploy/observability/rules; runbooks: docs/operations.md.",
	Rows: []Row{
		{"Throughput and outcomes", []Panel{
			{Title: "Runs finished by verdict", Unit: "ops", Queries: []Query{
				q("sum by (verdict) ("+rate("integr8scode_runner_runs_finished_total")+")", "{{verdict}}")}},
			{Title: "Submissions answered", Unit: "reqps", Queries: []Query{
				q(`sum by (status) (`+rate(`integr8scode_http_requests_total{route="/api/v1/executions",method="POST"}`)+`)`, "{{status}}")}},
			{Title: "Errors", Description: "system_error verdicts (the platform's fault) and 5xx answers of the API.", Unit: "ops", Queries: []Query{
				q(`sum(`+rate(`integr8scode_runner_runs_finished_total{verdict="system_error"}`)+`)`, "system_error runs"),
				// No 5xx yet means no such series: show 0, not "no data".
				q(`sum(`+rate(`integr8scode_http_requests_total{status=~"5.."}`)+`) or vector(0)`, "API 5xx")}},
		}},
		{"Queue and capacity", []Panel{
			{Title: "Queue depth", Description: "From the executions view, as the API sees it (max over API replicas).", Unit: "short", Queries: []Query{
				q(`max by (status) (integr8scode_queue_executions)`, "{{status}}")}},
			{Title: "Oldest queued execution", Unit: "s", Queries: []Query{
				q(`max(integr8scode_queue_oldest_seconds)`, "age")}},
			{Title: "Busy slots", Unit: "short", Queries: []Query{
				q(`sum(integr8scode_runner_busy_slots)`, "busy"),
				q(`sum(integr8scode_runner_slots)`, "slots"),
				q(`sum(integr8scode_runner_ready)`, "runners ready")}},
		}},
		{"Latency", []Panel{
			{Title: "Queue wait (submission → sandbox start)", Unit: "s",
				Queries: quantiles("integr8scode_ledger_queue_wait_seconds", `{attempt="first"}`, "")},
			{Title: "Submission → verdict", Unit: "s",
				Queries: quantiles("integr8scode_ledger_execution_seconds", "", "")},
			{Title: "Start-latency SLO: share of slow starts", Description: "SLO: 99 % of executions start within 5 s (docs/operations.md#slos).",
				Unit: "percentunit", Queries: []Query{
					q(`integr8scode:start_latency_slo:error_ratio_rate5m`, "5m"),
					q(`integr8scode:start_latency_slo:error_ratio_rate1h`, "1h")}},
		}},
	}}

var ledger = Dashboard{UID: "integr8scode-ledger", Title: "Integr8sCode / Ledger",
	Description: "The Kafka ledger: what the writer appends, how fast, and how the projections keep up.",
	Rows: []Row{
		{"Writer", []Panel{
			{Title: "Events appended", Unit: "ops", Queries: []Query{
				q(`sum(`+rate(`integr8scode_ledger_events_appended_total`)+`)`, "events/s")}},
			{Title: "Commands by kind and result", Unit: "ops", Queries: []Query{
				q(`sum by (kind, result) (`+rate(`integr8scode_ledger_commands_total`)+`)`, "{{kind}} {{result}}")}},
			{Title: "Transaction (publish) latency", Unit: "s",
				Queries: quantiles("integr8scode_ledger_transaction_seconds", "", "")},
			{Title: "Leases expired and writer restarts", Unit: "ops", Queries: []Query{
				q(`sum(`+rate(`integr8scode_ledger_leases_expired_total`)+`)`, "leases expired"),
				q(`sum(`+rate(`integr8scode_ledger_partition_restarts_total`)+`)`, "partition restarts")}},
		}},
		{"Projections", []Panel{
			{Title: "Projection lag by partition", Description: "Records not applied yet (transaction markers count: a caught-up partition may show 1).",
				Unit: "short", Queries: []Query{
					q(`max by (partition) (integr8scode_projector_lag_records)`, "partition {{partition}}")}},
			{Title: "Events applied, duplicates, gaps", Unit: "ops", Queries: []Query{
				q(`sum(`+rate(`integr8scode_projector_events_applied_total`)+`)`, "applied"),
				q(`sum(`+rate(`integr8scode_projector_events_duplicate_total`)+`)`, "duplicates"),
				q(`sum(`+rate(`integr8scode_projector_gaps_total`)+`)`, "gaps")}},
			{Title: "Parked events by kind", Description: "Any is an alert: bad_hash, bad_link, bad_signature and fork are verification failures.",
				Unit: "short", Queries: []Query{
					q(`sum by (kind) (increase(integr8scode_projector_events_parked_total[1h]))`, "{{kind}}")}},
			{Title: "Verification failures (1 h)", Stat: true, Unit: "short", Queries: []Query{
				q(`sum(increase(integr8scode_projector_events_parked_total{kind=~"bad_hash|bad_link|bad_signature|fork"}[1h]))`, "failures")}},
		}},
	}}

var sandboxes = Dashboard{UID: "integr8scode-sandboxes", Title: "Integr8sCode / Sandboxes",
	Description: "The runners and their sandboxes (runc or Kubernetes pods): how long runs take, which limits scripts hit, and whether isolation is proven.",
	Rows: []Row{
		{"Runs", []Panel{
			{Title: "Run time (claim → sandbox exit)", Unit: "s",
				Queries: quantiles("integr8scode_runner_run_duration_seconds", "", "")},
			{Title: "Runs started and resumed", Unit: "ops", Queries: []Query{
				q(`sum(`+rate(`integr8scode_runner_runs_started_total`)+`)`, "started"),
				q(`sum(`+rate(`integr8scode_runner_runs_resumed_total`)+`)`, "resumed")}},
			{Title: "Sandbox overhead (run time outside the script)", Description: "Preparing and removing the sandbox: runc bundle and cgroups, or pod creation, scheduling and deletion.",
				Unit: "s", Queries: quantiles("integr8scode_runner_sandbox_overhead_seconds", "", "")},
			{Title: "Limits hit: timeouts, OOM kills, output caps", Unit: "ops", Queries: []Query{
				q(`sum by (verdict) (`+rate(`integr8scode_runner_runs_finished_total{verdict=~"timeout|memory_limit|output_limit"}`)+`)`, "{{verdict}}")}},
		}},
		{"Runners", []Panel{
			{Title: "Busy slots per runner", Unit: "short", Queries: []Query{
				q(`integr8scode_runner_busy_slots`, "{{instance}} busy"),
				q(`integr8scode_runner_slots`, "{{instance}} slots")}},
			{Title: "CPU limits in flight against the budget", Description: "The sum of the CPU limits of the sandboxes running, and what the runner may run at once (--cpu-budget; 0 is unbounded).",
				Unit: "short", Queries: []Query{
					q(`integr8scode_runner_cpu_millicores_in_use`, "{{instance}} in use (m)"),
					q(`integr8scode_runner_cpu_millicores_budget`, "{{instance}} budget (m)")}},
			{Title: "Memory limits in flight against the budget", Unit: "bytes", Queries: []Query{
				q(`integr8scode_runner_memory_bytes_in_use`, "{{instance}} in use"),
				q(`integr8scode_runner_memory_bytes_budget`, "{{instance}} budget")}},
			{Title: "Queued, as each runner's sweep saw it", Unit: "short", Queries: []Query{
				q(`integr8scode_runner_queued_executions`, "{{instance}}")}},
			{Title: "Sandbox self-test (1 = isolation proven)", Stat: true, Unit: "short", Queries: []Query{
				q(`min by (instance) (integr8scode_sandbox_selftest_ok)`, "{{instance}}")}},
			{Title: "Self-tests by result", Unit: "short", Queries: []Query{
				q(`sum by (result) (integr8scode_sandbox_selftests_total)`, "{{result}}")}},
		}},
		{"Warm pool (--warm)", []Panel{
			{Title: "Sandboxes waiting for a script", Description: "Containers (--runner runc) or pods (--runner kubernetes) started, Python ready, each for one run (--warm); follows demand, 1 when idle.",
				Unit: "short", Queries: []Query{
					q(`integr8scode_sandbox_warm_waiting`, "{{instance}}")}},
			{Title: "Runs that found a waiting container", Description: "Below 1, runs started their own sandbox: the pool was smaller than the burst (raise --warm), the host or cluster could not start them fast enough, or (pods) the runs asked for other memory or CPU than the defaults.",
				Unit: "percentunit", Queries: []Query{
					q(`sum(`+rate(`integr8scode_sandbox_warm_hits_total`)+`) / (sum(`+rate(`integr8scode_sandbox_warm_hits_total`)+`) + sum(`+rate(`integr8scode_sandbox_warm_misses_total`)+`))`, "hit ratio")}},
		}},
		{"Kubernetes sandbox pods (--runner kubernetes)", []Panel{
			{Title: "Sandbox pods by phase", Description: "Pods of the sandbox namespace by phase, as the API server reports them; every runner lists the same namespace, hence max. Pending pods that stay are scheduling or image trouble; Failed and Succeeded ones are deleted by the runner.",
				Unit: "short", Queries: []Query{
					q(`max by (phase) (integr8scode_sandbox_pods)`, "{{phase}}")}},
			{Title: "Pod listings failed", Description: "Scrapes at which a runner could not list the sandbox pods (the phases then show its last listing).",
				Unit: "ops", Queries: []Query{
					q(`sum(`+rate(`integr8scode_sandbox_pod_list_errors_total`)+`)`, "errors")}},
		}},
	}}

// KubernetesOnlySeries are the series only runners with the Kubernetes
// sandbox export. A platform on runc has none of them, so the end-to-end
// test on runc leaves the dashboard queries that read them to the
// in-cluster test (deploy/testcluster/manifests).
var KubernetesOnlySeries = []string{"integr8scode_sandbox_pods", "integr8scode_sandbox_pod_list_errors_total"}

var api = Dashboard{UID: "integr8scode-api", Title: "Integr8sCode / API",
	Description: "The REST API: requests by route and status, latency, and the limits and credentials it refuses.",
	Rows: []Row{
		{"Traffic", []Panel{
			{Title: "Requests by route and status", Unit: "reqps", Queries: []Query{
				q(`sum by (route, status) (`+rate(`integr8scode_http_requests_total`)+`)`, "{{route}} {{status}}")}},
			{Title: "5xx ratio", Unit: "percentunit", Queries: []Query{
				q(`(sum(`+rate(`integr8scode_http_requests_total{status=~"5..",route!~"/healthz|/readyz|/metrics"}`)+`) or vector(0)) / sum(`+
					rate(`integr8scode_http_requests_total{route!~"/healthz|/readyz|/metrics"}`)+`)`, "5xx")}},
		}},
		{"Latency", []Panel{
			{Title: "p99 latency by route", Unit: "s",
				Queries: []Query{q(`histogram_quantile(0.99, sum by (le, route) (`+rate(`integr8scode_http_request_duration_seconds_bucket`)+`))`, "{{route}}")}},
			{Title: "p50 latency by route", Unit: "s",
				Queries: []Query{q(`histogram_quantile(0.5, sum by (le, route) (`+rate(`integr8scode_http_request_duration_seconds_bucket`)+`))`, "{{route}}")}},
			{Title: "Read-latency SLO: share of slow reads", Description: "SLO: 99 % of API GETs (streams aside) within 256 ms (docs/operations.md#slos).",
				Unit: "percentunit", Queries: []Query{
					q(`integr8scode:api_read_slo:error_ratio_rate5m`, "5m"),
					q(`integr8scode:api_read_slo:error_ratio_rate1h`, "1h")}},
		}},
		{"Refusals", []Panel{
			{Title: "Rejections by limit", Unit: "reqps", Queries: []Query{
				q(`sum by (gate) (`+rate(`integr8scode_http_rejections_total`)+`)`, "{{gate}}")}},
			{Title: "Auth failures by credential kind", Unit: "reqps", Queries: []Query{
				q(`sum by (kind) (`+rate(`integr8scode_http_auth_failures_total`)+`)`, "{{kind}}")}},
		}},
	}}

var goRuntime = Dashboard{UID: "integr8scode-go-runtime", Title: "Integr8sCode / Go runtime",
	Description: "The Go runtime of each process (every role serves the Go and process collectors on /metrics).",
	Rows: []Row{
		{"CPU and memory", []Panel{
			{Title: "CPU", Unit: "percentunit", Queries: []Query{
				q(rate(`process_cpu_seconds_total{job=~"$job"}`), "{{job}} {{instance}}")}},
			{Title: "Resident memory", Unit: "bytes", Queries: []Query{
				q(`process_resident_memory_bytes{job=~"$job"}`, "{{job}} {{instance}}")}},
			{Title: "Heap in use", Unit: "bytes", Queries: []Query{
				q(`go_memstats_heap_inuse_bytes{job=~"$job"}`, "{{job}} {{instance}}")}},
		}},
		{"Scheduler and GC", []Panel{
			{Title: "Goroutines", Unit: "short", Queries: []Query{
				q(`go_goroutines{job=~"$job"}`, "{{job}} {{instance}}")}},
			{Title: "GC pause time per second", Unit: "s", Queries: []Query{
				q(rate(`go_gc_duration_seconds_sum{job=~"$job"}`), "{{job}} {{instance}}")}},
			{Title: "Threads and open files", Unit: "short", Queries: []Query{
				q(`go_threads{job=~"$job"}`, "{{job}} {{instance}} threads"),
				q(`process_open_fds{job=~"$job"}`, "{{job}} {{instance}} fds")}},
		}},
	}}

// JSON renders d as a Grafana dashboard (schema 39) whose panels read a
// Prometheus data source chosen by the ${datasource} variable.
func (d Dashboard) JSON() ([]byte, error) {
	ds := map[string]any{"type": "prometheus", "uid": "${datasource}"}
	var panels []any
	id, y := 1, 0
	for _, row := range d.Rows {
		panels = append(panels, map[string]any{"id": id, "type": "row", "title": row.Title, "collapsed": false,
			"gridPos": map[string]int{"h": 1, "w": 24, "x": 0, "y": y}, "panels": []any{}})
		id++
		y++
		w := 24 / len(row.Panels)
		for i, p := range row.Panels {
			var targets []any
			for j, qu := range p.Queries {
				targets = append(targets, map[string]any{"refId": string(rune('A' + j)), "datasource": ds,
					"expr": qu.Expr, "legendFormat": qu.Legend, "range": true})
			}
			typ := "timeseries"
			if p.Stat {
				typ = "stat"
			}
			panels = append(panels, map[string]any{"id": id, "type": typ, "title": p.Title, "description": p.Description,
				"datasource": ds, "targets": targets,
				"gridPos":     map[string]int{"h": 8, "w": w, "x": i * w, "y": y},
				"fieldConfig": map[string]any{"defaults": map[string]any{"unit": p.Unit}, "overrides": []any{}},
				"options":     map[string]any{"legend": map[string]any{"displayMode": "list", "placement": "bottom", "showLegend": true}}})
			id++
		}
		y += 8
	}
	templ := []any{map[string]any{"name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus",
		"current": map[string]any{}, "hide": 0}}
	if d.usesJob() {
		templ = append(templ, map[string]any{"name": "job", "label": "Role", "type": "query", "datasource": ds,
			"query":      map[string]any{"query": `label_values(up{job=~"integr8scode.*"}, job)`, "refId": "job"},
			"definition": `label_values(up{job=~"integr8scode.*"}, job)`, "includeAll": true, "multi": true, "allValue": "integr8scode.*",
			"current": map[string]any{"text": "All", "value": "$__all"}, "refresh": 2, "hide": 0})
	}
	return json.MarshalIndent(map[string]any{
		"uid": d.UID, "title": d.Title, "description": d.Description, "tags": []string{"integr8scode"},
		"schemaVersion": 39, "version": 1, "editable": true, "refresh": "30s", "timezone": "browser",
		"time":       map[string]string{"from": "now-1h", "to": "now"},
		"templating": map[string]any{"list": templ},
		"panels":     panels,
	}, "", "  ")
}

func (d Dashboard) usesJob() bool {
	for _, r := range d.Rows {
		for _, p := range r.Panels {
			for _, qu := range p.Queries {
				if strings.Contains(qu.Expr, "$job") {
					return true
				}
			}
		}
	}
	return false
}
