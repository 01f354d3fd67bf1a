package eventstore

import (
	"context"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// tracer names the ledger's spans.
func tracer() trace.Tracer { return otel.Tracer("github.com/integr8scode/integr8scode/eventstore") }

// metadataCarrier lets OpenTelemetry read and write trace context
// (traceparent) in a Watermill message's metadata, which watermill-kafka sends
// as Kafka headers. Trace context never enters the envelope.
type metadataCarrier message.Metadata

func (c metadataCarrier) Get(key string) string { return message.Metadata(c).Get(key) }
func (c metadataCarrier) Set(key, value string) { message.Metadata(c).Set(key, value) }
func (c metadataCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

func injectTrace(ctx context.Context, m *message.Message) {
	otel.GetTextMapPropagator().Inject(ctx, metadataCarrier(m.Metadata))
}

// ExtractTrace returns ctx carrying the trace context of a ledger message.
func ExtractTrace(ctx context.Context, m *message.Message) context.Context {
	return otel.GetTextMapPropagator().Extract(ctx, metadataCarrier(m.Metadata))
}

// startHandleSpan starts the consumer span of one ledger event, as a child
// of the trace that appended it.
func startHandleSpan(ctx context.Context, env Envelope) (context.Context, trace.Span) {
	return tracer().Start(ctx, "ledger.handle "+env.Type, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.String("execution.id", env.ExecutionID), attribute.Int64("ledger.sequence", env.Sequence)))
}
