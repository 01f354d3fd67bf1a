package eventstore

import (
	"context"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel"
)

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
