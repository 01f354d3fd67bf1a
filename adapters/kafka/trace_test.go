package kafka_test

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/eventstore"
	"github.com/integr8scode/integr8scode/internal/testenv"
)

// A submission's trace crosses the ledger twice, in Kafka headers and never
// in the signed envelope: the asker's command carries it to the writer's
// append span, the appended event carries it on to the projector's handle
// span, although the projector handles what it reads as batches.
func TestASubmissionsTraceReachesTheWriterAndTheProjectorThroughKafkaHeaders(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	prevProvider, prevPropagator := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() { otel.SetTracerProvider(prevProvider); otel.SetTextMapPropagator(prevPropagator) })

	l := testenv.StartLedger(t, "trace", 15*time.Second)
	ask := l.Asker(t, "trace")
	ctx, root := otel.Tracer("test").Start(context.Background(), "submit")
	defer root.End()
	q := domain.ExecutionQueued{Language: "python", Version: "3.11", Input: domain.Sealed("print('traced')"), Limits: domain.DefaultLimits, Owner: "anonymous"}
	const id = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
	if r, err := ask.Ask(ctx, eventstore.Command{Kind: eventstore.CommandSubmit, ExecutionID: id, Actor: "anonymous", Submit: &q}); err != nil || r.Err() != nil {
		t.Fatalf("submit: %v %v", err, r.Err())
	}
	l.WaitView(t, id, func(e domain.Execution) bool { return e.Status == domain.StatusQueued }, 10*time.Second)

	want := root.SpanContext().TraceID()
	found := map[string]bool{}
	deadline := time.Now().Add(10 * time.Second)
	for !found["ledger.append"] || !found["ledger.handle ExecutionQueued"] {
		for _, s := range rec.Ended() {
			if s.SpanContext().TraceID() == want {
				found[s.Name()] = true
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("spans in the submission's trace: %v; want ledger.append and ledger.handle ExecutionQueued", found)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
