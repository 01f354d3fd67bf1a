package kafka

import (
	"time"

	"github.com/IBM/sarama"
)

// SaramaConfig returns the sarama configuration of every ledger client:
// producers, consumer groups and admin. Each setting favours an event log
// that must neither lose, reorder nor invent events over raw throughput.
func SaramaConfig(clientID string) *sarama.Config {
	c := sarama.NewConfig()
	c.ClientID = clientID

	// Protocol 3.6: new enough for idempotence and modern group and admin
	// requests, old enough for any Kafka in service. kfake accepts it (it
	// implements Kafka 4.x request versions and their minimums, e.g.
	// Produce v3+, Fetch v4+, which 3.6 clears).
	c.Version = sarama.V3_6_0_0

	// An event is appended once every in-sync replica has it: a leader
	// failing right after answering cannot lose it.
	c.Producer.RequiredAcks = sarama.WaitForAll
	// Idempotence lets the broker drop a retried batch it already wrote, so
	// a retry neither duplicates nor reorders events. sarama requires acks
	// from all, Retry.Max >= 1 and at most one request in flight for it.
	c.Producer.Idempotent = true
	c.Net.MaxOpenRequests = 1
	// Ride out a leader election or broker restart (seconds) before the
	// append fails back to the caller: up to 10 retries, backing off
	// exponentially from 100 ms to 2 s: about 13 s of waiting in all.
	c.Producer.Retry.Max = 10
	c.Producer.Retry.BackoffFunc = exponentialBackoff(100*time.Millisecond, 2*time.Second)
	// SyncProducer (Watermill's) needs successes reported: Publish returns
	// only when the broker has acknowledged the event.
	c.Producer.Return.Successes = true
	// Events carry a script's capped output: allow records up to the
	// topic's limit (sarama's default is 1 MB).
	c.Producer.MaxMessageBytes = MaxMessageBytes
	c.Producer.Return.Errors = true
	// Key → partition with the Java client's murmur2 hash, so producers in
	// other languages put an execution on the same partition. sarama's
	// default (FNV-1a) would disagree with them, and the choice can never
	// change once events are stored.
	c.Producer.Partitioner = sarama.NewMurmur2Partitioner

	// A new consumer group reads the ledger from the beginning: projections
	// and auditors need every event, not only those after they started.
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	// Offsets of acked messages are committed every second and on Close.
	// A crash re-delivers at most the last second; consumers de-duplicate
	// on event id and sequence anyway. Committing on every ack would cost a
	// round trip and an fsync per event, and slow a full replay by orders
	// of magnitude.
	c.Consumer.Offsets.AutoCommit.Enable = true
	c.Consumer.Offsets.AutoCommit.Interval = time.Second
	// Group and fetch errors reach the subscriber, which logs them, instead
	// of disappearing into sarama's global logger.
	c.Consumer.Return.Errors = true
	// A member that stops heartbeating is declared dead after 10 s and its
	// partitions move on; heartbeats every 3 s (a third of that).
	c.Consumer.Group.Session.Timeout = 10 * time.Second
	c.Consumer.Group.Heartbeat.Interval = 3 * time.Second
	// Members get 30 s to finish the message in hand and rejoin during a
	// rebalance (sarama's default is 60 s). Handlers must not hold a
	// message for long anyway: the whole group waits for the slowest one.
	c.Consumer.Group.Rebalance.Timeout = 30 * time.Second
	// Sticky assignment moves as few partitions as possible on a rebalance,
	// so fewer in-flight events are handed to a second member. Range stays
	// as a fallback for members of an older configuration.
	c.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{
		sarama.NewBalanceStrategySticky(), sarama.NewBalanceStrategyRange(),
	}

	// Refresh every minute (sarama: 10), so a moved leader is found before
	// a request fails on it. Metadata.Full stays true: with it false,
	// sarama's ClusterAdmin cannot find the controller ("no specific topics
	// to update metadata").
	c.Metadata.RefreshFrequency = time.Minute
	c.Metadata.Retry.Max = 5
	c.Metadata.Retry.Backoff = 250 * time.Millisecond
	// Never create a topic by asking for its metadata: topics are created
	// on purpose, with their partition count and retention (EnsureTopic).
	c.Metadata.AllowAutoTopicCreation = false

	return c
}

// exponentialBackoff doubles from base on each retry, capped at limit.
func exponentialBackoff(base, limit time.Duration) func(retries, maxRetries int) time.Duration {
	return func(retries, _ int) time.Duration {
		d := base
		for i := 1; i < retries && d < limit; i++ {
			d *= 2
		}
		return min(d, limit)
	}
}
