package kafka

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel/trace"

	"github.com/integr8scode/integr8scode/eventstore"
	"github.com/integr8scode/integr8scode/projections"
)

// LedgerProjection feeds the ledger's records to a projector (Project).
type LedgerProjection struct{ *projections.Projector }

// Handle hands records to the projector, as recorded, each with the trace
// that appended it.
func (p LedgerProjection) Handle(ctx context.Context, recs []Record) error {
	ds := make([]projections.Delivery, len(recs))
	for i, rec := range recs {
		ds[i] = projections.Delivery{Partition: rec.Partition, Offset: rec.Offset, Record: rec.Value,
			Trace: trace.SpanContextFromContext(traceFromHeaders(context.Background(), rec.Headers))}
	}
	return p.Projector.HandleBatch(ctx, ds)
}

// FollowLedger follows the ledger (Follow) and hands each event to handle,
// in a span of the trace that appended it. A record that is not an event
// is left to the projector, which parks it.
func FollowLedger(ctx context.Context, brokers []string, log *slog.Logger, handle func(context.Context, eventstore.Envelope) error) error {
	return Follow(ctx, brokers, eventstore.Topic, log, func(ctx context.Context, rec Record) error {
		env, err := eventstore.ParseRecord(rec.Value)
		if err != nil {
			return nil
		}
		ctx, span := eventstore.StartHandleSpan(ctx, env)
		defer span.End()
		return handle(ctx, env)
	})
}
