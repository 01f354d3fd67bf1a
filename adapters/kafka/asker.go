package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/eventstore"
)

// Asker sends commands to the ledger writer (through Watermill, keyed by
// execution id, so that an execution's commands keep their order in its
// partition) and waits for the writer's reply, which arrives on the one
// partition of the reply topic that this asker's id hashes to.
type Asker struct {
	id       string
	pub      message.Publisher
	client   sarama.Client
	consumer sarama.Consumer
	pc       sarama.PartitionConsumer
	log      *slog.Logger

	mu      sync.Mutex
	waiters map[string]chan eventstore.Reply
	done    chan struct{}
}

// NewAsker starts an asker named after who asks ("api", "runner-…"); a
// random suffix keeps two processes of the same name apart.
func NewAsker(brokers []string, name string, log *slog.Logger) (*Asker, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pub, err := NewPublisher(brokers, watermill.NewSlogLogger(log.With("component", "watermill")))
	if err != nil {
		return nil, err
	}
	addrs, conf, err := clientConfig(brokers, "integr8scode-"+name)
	if err != nil {
		pub.Close()
		return nil, fmt.Errorf("asker: %w", err)
	}
	conf.Consumer.IsolationLevel = sarama.ReadCommitted
	client, err := sarama.NewClient(addrs, conf)
	if err != nil {
		pub.Close()
		return nil, fmt.Errorf("asker: %w", err)
	}
	a := &Asker{id: name + "-" + uuid.NewString(), pub: pub, client: client, log: log,
		waiters: map[string]chan eventstore.Reply{}, done: make(chan struct{})}
	ps, err := client.Partitions(eventstore.ReplyTopic)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("asker: %w", err), a.Close())
	}
	if a.consumer, err = sarama.NewConsumerFromClient(client); err != nil {
		return nil, errors.Join(fmt.Errorf("asker: %w", err), a.Close())
	}
	// From the end as of now: only replies to commands not yet sent.
	if a.pc, err = a.consumer.ConsumePartition(eventstore.ReplyTopic, partitionOf(a.id, int32(len(ps))), sarama.OffsetNewest); err != nil {
		return nil, errors.Join(fmt.Errorf("asker: %w", err), a.Close())
	}
	go a.receive()
	return a, nil
}

func (a *Asker) receive() {
	defer close(a.done)
	for {
		select {
		case m, ok := <-a.pc.Messages():
			if !ok {
				return
			}
			if string(m.Key) != a.id {
				continue // another asker on the same partition
			}
			var r eventstore.Reply
			if err := json.Unmarshal(m.Value, &r); err != nil {
				a.log.Warn("unreadable reply", "offset", m.Offset, "err", err)
				continue
			}
			a.mu.Lock()
			ch := a.waiters[r.CommandID]
			delete(a.waiters, r.CommandID)
			a.mu.Unlock()
			if ch != nil {
				ch <- r
			}
		case err, ok := <-a.pc.Errors():
			if !ok {
				return
			}
			a.log.Warn("reading replies", "err", err)
		}
	}
}

// Ask sends cmd and waits for its reply until ctx ends. A command whose
// reply does not come in time may still take effect: commands are
// idempotent by state, so asking again is safe.
func (a *Asker) Ask(ctx context.Context, cmd eventstore.Command) (eventstore.Reply, error) {
	if cmd.ID == "" {
		cmd.ID = uuid.NewString()
	}
	cmd.ReplyTo = a.id
	body, err := json.Marshal(cmd)
	if err != nil {
		return eventstore.Reply{}, err
	}
	ch := make(chan eventstore.Reply, 1)
	a.mu.Lock()
	a.waiters[cmd.ID] = ch
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		delete(a.waiters, cmd.ID)
		a.mu.Unlock()
	}()
	msg := message.NewMessage(cmd.ID, body)
	msg.Metadata.Set(KeyMetadata, cmd.ExecutionID)
	otel.GetTextMapPropagator().Inject(ctx, metadataCarrier(msg.Metadata))
	if err := a.pub.Publish(eventstore.CommandTopic, msg); err != nil {
		return eventstore.Reply{}, domain.Errorf(domain.EUNAVAILABLE, "the ledger cannot take commands now: %v", err)
	}
	select {
	case r := <-ch:
		return r, nil
	case <-ctx.Done():
		return eventstore.Reply{}, domain.Errorf(domain.EUNAVAILABLE,
			"the ledger writer did not answer in time (%v); the %s may still take effect", ctx.Err(), cmd.Kind)
	}
}

// Close stops the asker.
func (a *Asker) Close() error {
	var errs []error
	if a.pc != nil {
		errs = append(errs, a.pc.Close())
		<-a.done
	}
	if a.consumer != nil {
		errs = append(errs, a.consumer.Close())
	}
	errs = append(errs, a.client.Close(), a.pub.Close())
	return errors.Join(errs...)
}

// metadataCarrier lets OpenTelemetry write trace context into a Watermill
// message's metadata, which watermill-kafka sends as Kafka headers.
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
