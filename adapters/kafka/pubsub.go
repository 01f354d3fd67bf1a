package kafka

import (
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
)

// KeyMetadata is the Watermill metadata key whose value becomes the Kafka
// message key, and so chooses the partition. It must equal
// eventstore.MetaExecutionID.
const KeyMetadata = "execution_id"

// nackResendSleep is how long a nacked message waits before it is handed to
// the handler again. Watermill re-sends a nacked message forever and blocks
// its partition meanwhile; half a second keeps a failing handler from
// spinning while still retrying a transient failure promptly. Parking
// poison messages is the handler middleware's job.
const nackResendSleep = 500 * time.Millisecond

// NewPublisher returns a Watermill publisher for the ledger. Publish returns
// once the broker has acknowledged each message (all in-sync replicas,
// idempotent producer, see SaramaConfig). A message without "execution_id"
// metadata is refused with ErrNoExecutionID and nothing of it is sent.
//
// Publish sends its messages one by one and stops at the first failure: the
// ones before it are stored. Callers retry the whole call and consumers
// de-duplicate.
func NewPublisher(brokers []string, logger watermill.LoggerAdapter) (message.Publisher, error) {
	addrs, cfg, err := clientConfig(brokers, "integr8scode-publisher")
	if err != nil {
		return nil, fmt.Errorf("kafka publisher: %w", err)
	}
	pub, err := wkafka.NewPublisher(wkafka.PublisherConfig{
		Brokers: addrs,
		// watermill-kafka's default marshaler sets no key: random
		// partition, no order. The partitioning marshaler sets one.
		Marshaler:             wkafka.NewWithPartitioningMarshaler(executionKey),
		OverwriteSaramaConfig: cfg,
	}, logger)
	if err != nil {
		return nil, fmt.Errorf("kafka publisher: %w", err)
	}
	return pub, nil
}

// executionKey keys a message on its execution, so all of an execution's
// events share a partition and keep their order.
func executionKey(topic string, msg *message.Message) (string, error) {
	id := msg.Metadata.Get(KeyMetadata)
	if id == "" {
		return "", fmt.Errorf("message %s to %s: %w", msg.UUID, topic, ErrNoExecutionID)
	}
	return id, nil
}

// NewSubscriber returns a Watermill subscriber that reads as consumer group
// group. A group that has committed nothing starts at the oldest event;
// acked messages are committed (see SaramaConfig for when). Each partition
// is handed out one message at a time: the next one comes after the ack.
func NewSubscriber(brokers []string, group string, logger watermill.LoggerAdapter) (message.Subscriber, error) {
	if group == "" {
		// Without a group watermill-kafka reads every partition from the
		// start on each run and commits nothing: not a ledger consumer.
		return nil, errors.New("kafka subscriber: consumer group is required")
	}
	addrs, cfg, err := clientConfig(brokers, "integr8scode-subscriber")
	if err != nil {
		return nil, fmt.Errorf("kafka subscriber %s: %w", group, err)
	}
	sub, err := wkafka.NewSubscriber(wkafka.SubscriberConfig{
		Brokers:               addrs,
		Unmarshaler:           wkafka.DefaultMarshaler{},
		OverwriteSaramaConfig: cfg,
		ConsumerGroup:         group,
		NackResendSleep:       nackResendSleep,
	}, logger)
	if err != nil {
		return nil, fmt.Errorf("kafka subscriber %s: %w", group, err)
	}
	return sub, nil
}
