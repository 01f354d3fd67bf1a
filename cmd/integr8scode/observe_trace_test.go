package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/integr8scode/integr8scode/internal/testenv"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/integr8scode/integr8scode/deploy/observability"
)

// traceCollector is a real OpenTelemetry Collector
// (deploy/observability/collector: the OTLP receiver, the batch processor
// and the file exporter, built from the Collector's modules through the
// module proxy and cached like Prometheus). The roles export their spans
// to its OTLP/HTTP receiver, as they would to any collector; its file
// exporter writes what it received as OTLP JSON lines, which the test
// reads back.
type traceCollector struct {
	URL  string
	file string
}

type receivedSpan struct {
	TraceID, Name, Process string // Process: the resource's service.instance.id (the role)
	Attrs                  map[string]string
}

func startCollector(t *testing.T, bins observability.Binaries) *traceCollector {
	t.Helper()
	dir := t.TempDir()
	c := &traceCollector{file: filepath.Join(dir, "spans.jsonl")}
	addr := freeAddr(t)
	c.URL = "http://" + addr
	// The Collector's own telemetry (metrics on :8888) is off: it would
	// listen on a fixed port.
	config := fmt.Sprintf(`receivers:
  otlp:
    protocols:
      http:
        endpoint: %q
processors:
  batch:
    timeout: 100ms
exporters:
  file:
    path: %q
    flush_interval: 100ms
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [file]
`, addr, c.file)
	cfgFile := filepath.Join(dir, "otelcol.yaml")
	if err := os.WriteFile(cfgFile, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs testenv.SyncBuffer
	cmd := exec.Command(bins.Collector, "--config", cfgFile)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if t.Failed() {
			t.Logf("collector log:\n%s", logs.String())
		}
	})
	// Ready when the receiver accepts an (empty) export.
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		resp, err := http.Post(c.URL+"/v1/traces", "application/json", strings.NewReader("{}"))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return c
			}
		}
		select {
		case <-done:
			t.Fatalf("the collector exited:\n%s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the collector's OTLP receiver not ready after 60 s:\n%s", logs.String())
		}
	}
}

// env makes a role export its spans to the collector, in batches of at
// most 100 ms.
func (c *traceCollector) env() []string {
	return []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + c.URL, "OTEL_BSP_SCHEDULE_DELAY=100"}
}

// otlpJSON is the part of OTLP's JSON encoding (what the file exporter
// writes, one ExportTraceServiceRequest a line) the test reads. Trace ids
// are hex in this encoding.
type otlpJSON struct {
	ResourceSpans []struct {
		Resource struct {
			Attributes []otlpAttr `json:"attributes"`
		} `json:"resource"`
		ScopeSpans []struct {
			Spans []struct {
				TraceID    string     `json:"traceId"`
				Name       string     `json:"name"`
				Attributes []otlpAttr `json:"attributes"`
			} `json:"spans"`
		} `json:"scopeSpans"`
	} `json:"resourceSpans"`
}

type otlpAttr struct {
	Key   string `json:"key"`
	Value struct {
		StringValue string `json:"stringValue"`
	} `json:"value"`
}

// spans reads every span the collector has written so far. A last line
// still being written is left for the next read.
func (c *traceCollector) spans(t *testing.T) []receivedSpan {
	t.Helper()
	b, err := os.ReadFile(c.file)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[:i+1]
	} else {
		return nil
	}
	var out []receivedSpan
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var req otlpJSON
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			t.Fatalf("the collector wrote a line that is not OTLP JSON: %v: %.200s", err, sc.Text())
		}
		for _, rs := range req.ResourceSpans {
			process := ""
			for _, a := range rs.Resource.Attributes {
				if a.Key == "service.instance.id" {
					process = a.Value.StringValue
				}
			}
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					attrs := map[string]string{}
					for _, a := range s.Attributes {
						attrs[a.Key] = a.Value.StringValue
					}
					out = append(out, receivedSpan{TraceID: strings.ToLower(s.TraceID), Name: s.Name, Process: process, Attrs: attrs})
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// traceOf returns the trace ids of the spans about execution id, and every
// span of those traces.
func (c *traceCollector) traceOf(t *testing.T, id string) (traces []string, spans []receivedSpan) {
	all := c.spans(t)
	for _, s := range all {
		if s.Attrs["execution.id"] == id && !slices.Contains(traces, s.TraceID) {
			traces = append(traces, s.TraceID)
		}
	}
	for _, s := range all {
		if slices.Contains(traces, s.TraceID) {
			spans = append(spans, s)
		}
	}
	return traces, spans
}
