package eventstore

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Tracer names the ledger's spans. Trace context travels in Kafka record
// headers (traceparent), never in the envelope: hash and signature cover
// facts, not how they were observed.
func Tracer() trace.Tracer { return otel.Tracer("github.com/integr8scode/integr8scode/eventstore") }

// StartAppendSpan starts the writer's span for one command: a child of the
// trace of whoever asked, and the parent of every consumer's handling of
// the events it appends.
func StartAppendSpan(ctx context.Context, cmd Command) (context.Context, trace.Span) {
	return Tracer().Start(ctx, "ledger.append", trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(attribute.String("execution.id", cmd.ExecutionID), attribute.String("ledger.command", cmd.Kind)))
}

// StartHandleSpan starts a consumer's span for one ledger event, as a child
// of the trace that appended it.
func StartHandleSpan(ctx context.Context, env Envelope) (context.Context, trace.Span) {
	return Tracer().Start(ctx, "ledger.handle "+env.Type, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.String("execution.id", env.ExecutionID), attribute.Int64("ledger.sequence", env.Sequence)))
}
