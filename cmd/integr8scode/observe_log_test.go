package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

func TestLogFormat(t *testing.T) {
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5},
		TraceFlags: trace.FlagsSampled})
	ctx := trace.ContextWithSpanContext(context.Background(), sc)

	t.Run("OK json lines carry the trace of their context", func(t *testing.T) {
		var b bytes.Buffer
		log, err := newLogger(&b, "info", "json")
		if err != nil {
			t.Fatal(err)
		}
		log = log.With("role", "api")
		log.InfoContext(ctx, "ledger event appended", "execution_id", "e1", "request_id", "r1")
		log.Info("no context, no trace")
		log.Debug("below the level")
		lines := strings.Split(strings.TrimSpace(b.String()), "\n")
		if len(lines) != 2 {
			t.Fatalf("want 2 lines, got %q", b.String())
		}
		var first, second map[string]any
		if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(lines[1]), &second); err != nil {
			t.Fatal(err)
		}
		if first["trace_id"] != sc.TraceID().String() || first["span_id"] != sc.SpanID().String() ||
			first["execution_id"] != "e1" || first["role"] != "api" || first["msg"] != "ledger event appended" {
			t.Errorf("first line %v", first)
		}
		if _, ok := second["trace_id"]; ok {
			t.Errorf("a line without a span got a trace id: %v", second)
		}
	})
	t.Run("OK text is the default", func(t *testing.T) {
		var b bytes.Buffer
		log, err := newLogger(&b, "info", "")
		if err != nil {
			t.Fatal(err)
		}
		log.InfoContext(ctx, "hello", "execution_id", "e1")
		if got := b.String(); !strings.Contains(got, "msg=hello execution_id=e1 trace_id="+sc.TraceID().String()) {
			t.Errorf("text line %q", got)
		}
	})
	t.Run("ErrUnknownFormat", func(t *testing.T) {
		if _, err := newLogger(&bytes.Buffer{}, "info", "xml"); err == nil || !strings.Contains(err.Error(), "--log-format") {
			t.Errorf("got %v", err)
		}
	})
}
