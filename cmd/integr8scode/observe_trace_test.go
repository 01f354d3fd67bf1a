package main

import (
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// traceReceiver is an OTLP/HTTP trace receiver: it decodes what the
// platform's exporter sends (protobuf ExportTraceServiceRequest on
// /v1/traces, the wire format every collector speaks) with the protocol's
// own generated types, and keeps the spans.
type traceReceiver struct {
	URL   string
	mu    sync.Mutex
	spans []receivedSpan
}

type receivedSpan struct {
	TraceID, Name, Process string // Process: the resource's service.instance.id (the role)
	Attrs                  map[string]string
}

func newTraceReceiver(t *testing.T) *traceReceiver {
	r := &traceReceiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		var export coltracepb.ExportTraceServiceRequest
		if err == nil {
			err = proto.Unmarshal(body, &export)
		}
		if req.URL.Path != "/v1/traces" || err != nil {
			http.Error(w, "want an OTLP ExportTraceServiceRequest on /v1/traces", http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		for _, rs := range export.ResourceSpans {
			process := ""
			for _, a := range rs.GetResource().GetAttributes() {
				if a.Key == "service.instance.id" {
					process = a.GetValue().GetStringValue()
				}
			}
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					attrs := map[string]string{}
					for _, a := range s.Attributes {
						attrs[a.Key] = a.GetValue().GetStringValue()
					}
					r.spans = append(r.spans, receivedSpan{TraceID: hex.EncodeToString(s.TraceId), Name: s.Name, Process: process, Attrs: attrs})
				}
			}
		}
		r.mu.Unlock()
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	}))
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

// env makes a role export its spans here, in batches of at most 100 ms.
func (r *traceReceiver) env() []string {
	return []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + r.URL, "OTEL_BSP_SCHEDULE_DELAY=100"}
}

// traceOf returns the trace ids of the spans about execution id, and every
// span of those traces.
func (r *traceReceiver) traceOf(id string) (traces []string, spans []receivedSpan) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.spans {
		if s.Attrs["execution.id"] == id && !slices.Contains(traces, s.TraceID) {
			traces = append(traces, s.TraceID)
		}
	}
	for _, s := range r.spans {
		if slices.Contains(traces, s.TraceID) {
			spans = append(spans, s)
		}
	}
	return traces, spans
}
