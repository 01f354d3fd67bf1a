package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/IBM/sarama"

	"github.com/integr8scode/integr8scode/eventstore"
)

// EnsureTopic creates topic with the given partition count and replication
// factor (-1: the broker's default) and retention.ms=-1, unless it exists.
//
// An existing topic is checked, never changed: a different partition count,
// a finite retention or a compacting cleanup policy returns ErrTopicMismatch.
// Changing the count would move keys to other partitions and break the
// per-execution order; compaction would keep only each execution's last
// event. Calling EnsureTopic again, or from several processes at once, is
// harmless.
func EnsureTopic(ctx context.Context, brokers []string, topic string, partitions int32, replication int16) error {
	return ensure(ctx, brokers, TopicSpec{Name: topic, Config: ledgerTopicConfig(), SamePartitions: true, Forever: true}, partitions, replication)
}

// EnsureLedgerTopics creates or checks every topic of the ledger
// (TopicSpecs): the ledger itself, the commands and the writer's
// changelog with the same partition count (an execution's commands,
// events and head share the partition murmur2 of its id picks), and the
// replies and parked events.
func EnsureLedgerTopics(ctx context.Context, brokers []string, partitions int32, replication int16) error {
	for _, spec := range TopicSpecs() {
		if err := ensure(ctx, brokers, spec, partitions, replication); err != nil {
			return err
		}
	}
	return nil
}

func ensure(ctx context.Context, brokers []string, spec TopicSpec, partitions int32, replication int16) error {
	topic := spec.Name
	if topic == "" || partitions < 1 || replication == 0 || replication < -1 {
		return fmt.Errorf("ensure topic %q: need a name, partitions >= 1 and replication >= 1 or -1 (got %d, %d)",
			topic, partitions, replication)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("ensure topic %s: %w", topic, err)
	}
	// sarama's admin takes no context: run it aside and stop waiting when
	// ctx ends. The goroutine finishes within sarama's own timeouts.
	done := make(chan error, 1)
	go func() { done <- ensureTopic(brokers, spec, partitions, replication) }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("ensure topic %s: %w", topic, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("ensure topic %s: %w", topic, ctx.Err())
	}
}

func ensureTopic(brokers []string, spec TopicSpec, partitions int32, replication int16) (err error) {
	topic := spec.Name
	addrs, cfg, err := clientConfig(brokers, "integr8scode-admin")
	if err != nil {
		return err
	}
	admin, err := sarama.NewClusterAdmin(addrs, cfg)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, admin.Close()) }()

	entries := map[string]*string{}
	for k, v := range spec.Config {
		entries[k] = &v
	}
	err = admin.CreateTopic(topic, &sarama.TopicDetail{
		NumPartitions:     partitions,
		ReplicationFactor: replication,
		ConfigEntries:     entries,
	}, false)
	if err == nil {
		return nil
	}
	if !errors.Is(err, sarama.ErrTopicAlreadyExists) {
		return fmt.Errorf("create: %w", err)
	}
	return checkTopic(admin, spec, partitions)
}

// checkTopic compares an existing topic with what the ledger needs and
// reports every difference at once.
func checkTopic(admin sarama.ClusterAdmin, spec TopicSpec, partitions int32) error {
	topic := spec.Name
	metas, err := admin.DescribeTopics([]string{topic})
	if err != nil {
		return fmt.Errorf("describe: %w", err)
	}
	if len(metas) != 1 || !errors.Is(metas[0].Err, sarama.ErrNoError) {
		return fmt.Errorf("describe: unexpected answer for %s", topic)
	}
	var problems []string
	if have := int32(len(metas[0].Partitions)); spec.SamePartitions && have != partitions {
		problems = append(problems, fmt.Sprintf("it has %d partitions, %d were asked for "+
			"(the count is never changed: keys would move to other partitions)", have, partitions))
	}

	entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic})
	if err != nil {
		return fmt.Errorf("describe configs: %w", err)
	}
	// Only values that are present and wrong count: a broker that leaves
	// a setting out cannot be judged on it.
	for _, e := range entries {
		switch {
		case spec.Forever && e.Name == "retention.ms" && e.Value != "-1":
			problems = append(problems, "retention.ms is "+e.Value+", the ledger needs -1 (forever)")
		case spec.Forever && e.Name == "retention.bytes" && e.Value != "-1":
			problems = append(problems, "retention.bytes is "+e.Value+", the ledger needs -1 (unlimited)")
		case e.Name == "max.message.bytes" && atoi(e.Value) < MaxMessageBytes:
			problems = append(problems, fmt.Sprintf("max.message.bytes is %s, the ledger needs at least %d", e.Value, MaxMessageBytes))
		case !spec.Compact && e.Name == "cleanup.policy" && strings.Contains(e.Value, "compact"):
			problems = append(problems, "cleanup.policy is "+e.Value+", compaction would drop events")
		case spec.Compact && e.Name == "cleanup.policy" && !strings.Contains(e.Value, "compact"):
			problems = append(problems, "cleanup.policy is "+e.Value+", the writer's changelog needs compact")
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: topic %s exists but %s; nothing was changed",
			ErrTopicMismatch, topic, strings.Join(problems, "; "))
	}
	return nil
}

// MaxMessageBytes is the largest ledger record the topic, the broker and the
// producer accept. The ledger keeps every event well below it (an event's
// data is at most 4 MiB: eventstore.MaxDataBytes), so a record that Kafka
// would refuse is never appended in the first place.
const MaxMessageBytes = 8 << 20

// TopicSpec is one topic of the ledger and what it must look like.
type TopicSpec struct {
	Name   string
	Config map[string]string
	// SamePartitions: the topic must have exactly the ledger's partition count.
	SamePartitions bool
	// Forever: nothing may ever be deleted from it. Compact: it is a
	// changelog, only the latest value per key matters.
	Forever, Compact bool
}

// TopicSpecs lists the ledger's topics: eventstore.Topic and its companions.
func TopicSpecs() []TopicSpec {
	maxBytes := strconv.Itoa(MaxMessageBytes)
	return []TopicSpec{
		{Name: LedgerTopic, Config: ledgerTopicConfig(), SamePartitions: true, Forever: true},
		// Commands are requests, not history: a week covers any outage
		// of the writer, which commits its position transactionally.
		{Name: eventstore.CommandTopic, Config: map[string]string{"retention.ms": "604800000", "max.message.bytes": maxBytes},
			SamePartitions: true},
		{Name: eventstore.StateTopic, Config: map[string]string{"cleanup.policy": "compact", "retention.ms": "-1", "max.message.bytes": maxBytes},
			SamePartitions: true, Compact: true},
		// Replies matter only while their asker waits.
		{Name: eventstore.ReplyTopic, Config: map[string]string{"retention.ms": "86400000", "max.message.bytes": maxBytes},
			SamePartitions: true},
		{Name: eventstore.ParkedTopic, Config: ledgerTopicConfig(), SamePartitions: true, Forever: true},
	}
}

// ledgerTopicConfig is the configuration the ledger topic is created with:
// kept forever, and large enough for an event carrying a script's capped
// output.
func ledgerTopicConfig() map[string]string {
	return map[string]string{
		"retention.ms":      "-1",
		"max.message.bytes": strconv.Itoa(MaxMessageBytes),
	}
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0
	}
	return n
}
