// Package kafka connects the ledger to a Kafka-protocol log.
//
// It holds everything that knows about Kafka: the sarama configuration an
// event log needs, Watermill publishers and subscribers that keep every
// execution's events in order, topic creation that never changes a partition
// count, and the embedded single-node broker (kfake) that `integr8scode up`
// runs when no external Kafka is configured.
//
// A broker address is "host:port", or kafka://user:password@host:port for
// a broker that wants SASL/SCRAM (BrokerURL). The embedded broker always
// does, and its Brokers carry the credentials.
//
// Ordering is per execution: every message is keyed on its "execution_id"
// metadata, so all events of one execution land on one partition and are
// read back in the order they were appended.
package kafka
