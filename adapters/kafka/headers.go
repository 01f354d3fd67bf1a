package kafka

import (
	"context"

	"github.com/IBM/sarama"
	"go.opentelemetry.io/otel"
)

// headerCarrier lets OpenTelemetry read and write trace context
// (traceparent) in Kafka record headers. Trace context never enters the
// envelope: the hash and signature cover facts, not how they were traced.
type headerCarrier struct{ headers *[]sarama.RecordHeader }

func (c headerCarrier) Get(key string) string {
	for _, h := range *c.headers {
		if string(h.Key) == key {
			return string(h.Value)
		}
	}
	return ""
}

func (c headerCarrier) Set(key, value string) {
	for i, h := range *c.headers {
		if string(h.Key) == key {
			(*c.headers)[i].Value = []byte(value)
			return
		}
	}
	*c.headers = append(*c.headers, sarama.RecordHeader{Key: []byte(key), Value: []byte(value)})
}

func (c headerCarrier) Keys() []string {
	keys := make([]string, 0, len(*c.headers))
	for _, h := range *c.headers {
		keys = append(keys, string(h.Key))
	}
	return keys
}

// traceHeaders returns the record headers that carry ctx's trace.
func traceHeaders(ctx context.Context) []sarama.RecordHeader {
	var hs []sarama.RecordHeader
	otel.GetTextMapPropagator().Inject(ctx, headerCarrier{&hs})
	return hs
}

// traceFrom returns ctx carrying the trace of a consumed record.
func traceFrom(ctx context.Context, m *sarama.ConsumerMessage) context.Context {
	return traceFromHeaders(ctx, m.Headers)
}

// traceFromHeaders is traceFrom of a record's headers.
func traceFromHeaders(ctx context.Context, headers []*sarama.RecordHeader) context.Context {
	hs := make([]sarama.RecordHeader, 0, len(headers))
	for _, h := range headers {
		if h != nil {
			hs = append(hs, *h)
		}
	}
	return otel.GetTextMapPropagator().Extract(ctx, headerCarrier{&hs})
}

// partitionOf is the partition of key among n, with the Java client's
// murmur2 hash: the same partition every producer of any language picks.
func partitionOf(key string, n int32) int32 {
	p, err := sarama.NewMurmur2Partitioner("").Partition(&sarama.ProducerMessage{Key: sarama.StringEncoder(key)}, n)
	if err != nil {
		return 0 // only for n < 1, which no topic has
	}
	return p
}
