package eventstore

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Handler reacts to one ledger event. Returning an error nacks the message
// so it is delivered again: return errors only for failures that a retry can
// fix (a store that is down), never for the content of the event.
type Handler func(ctx context.Context, env Envelope) error

// Consume subscribes to the ledger topic and feeds every message to handle
// with workers goroutines, until ctx ends. A partition delivers its next
// message only after the previous one is acked, so per-execution order holds
// whatever the number of workers. A message that is not a ledger envelope is
// logged and acked: it can never be handled, and must not block its
// partition forever.
func Consume(ctx context.Context, sub message.Subscriber, workers int, handle Handler, log *slog.Logger) error {
	msgs, err := sub.Subscribe(ctx, Topic)
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", Topic, err)
	}
	if workers < 1 {
		workers = 1
	}
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for msg := range msgs {
				env, err := ParseMessage(msg)
				if err != nil {
					log.Error("skipping a message that is not a ledger envelope", "message_uuid", msg.UUID, "err", err)
					msg.Ack()
					continue
				}
				mctx, span := startHandleSpan(ExtractTrace(msg.Context(), msg), env)
				err = handle(mctx, env)
				if err != nil {
					span.RecordError(err)
				}
				span.End()
				if err != nil {
					if ctx.Err() == nil {
						log.Warn("ledger event not handled; it will be delivered again",
							"execution_id", env.ExecutionID, "sequence", env.Sequence, "type", env.Type, "err", err)
					}
					msg.Nack()
					continue
				}
				msg.Ack()
			}
		}()
	}
	wg.Wait()
	return nil
}
