package kafka

import (
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/integr8scode/integr8scode/eventstore"
)

// TestATransactionalIDReusedAfterAKillCommitsReadably is the ledger
// writer's restart after a kill -9, reduced to its Kafka steps: a
// transactional producer (a STABLE transactional id, as each partition's
// writer has) dies inside a transaction with the broker, and after the
// restart a producer with the same id commits a transaction on the same
// partition. A read_committed reader must see that commit, and must never
// see what the dead transaction wrote, in the life after the kill nor in
// the one after a second kill.
//
// Without StartEmbedded's repair (txnrepair.go), the commit is invisible:
// after a kill kfake replays the
// log, counts the open transaction as aborted, but writes no abort marker.
// The fetch response then names the producer id as aborted from the dead
// batch on, and the client (sarama, the Java client, franz-go) drops every
// transactional batch of that producer id until it reads an abort marker,
// which never comes: the new life's commit has the same producer id (kfake
// derives it from the transactional id). The writer never saw its fence
// record ("rebuild: context deadline exceeded" for ever). A second kill
// made it worse: the replay then took the new commit marker as the end of
// the dead transaction and showed its records as committed.
func TestATransactionalIDReusedAfterAKillCommitsReadably(t *testing.T) {
	const (
		txid      = "integr8scode.ledger.0"
		partition = 0
	)
	topics := []string{eventstore.StateTopic, LedgerTopic}
	dir := t.TempDir()

	// Life 1: a transaction with a record on each topic, every batch
	// acknowledged (so on disk), then kill -9 before the commit.
	child, broker := startBrokerChild(t, dir)
	p1 := newTxnProducer(t, []string{broker}, txid)
	if err := p1.BeginTxn(); err != nil {
		t.Fatalf("begin: %v", err)
	}
	for _, topic := range topics {
		sendTo(t, p1, topic, partition, "dead")
	}
	killChild(t, child)

	// Life 2: the same transactional id fences the dead one (InitProducerID
	// in NewSyncProducer) and commits.
	child, broker = startBrokerChild(t, dir)
	p2 := newTxnProducer(t, []string{broker}, txid)
	if err := p2.BeginTxn(); err != nil {
		t.Fatalf("begin after restart: %v", err)
	}
	for _, topic := range topics {
		sendTo(t, p2, topic, partition, "committed")
	}
	if err := p2.CommitTxn(); err != nil {
		t.Fatalf("commit after restart: %v", err)
	}
	for _, topic := range topics {
		assertReadCommitted(t, []string{broker}, topic, partition, "committed")
	}
	killChild(t, child)

	// Life 3, in this process: kfake replays the log once more.
	e := startBroker(t, dir)
	for _, topic := range topics {
		assertReadCommitted(t, e.Brokers(), topic, partition, "committed")
	}
}

// newTxnProducer opens a transactional producer with the ledger's client
// settings; closed when the test ends (after a kill, closing fails, which
// does not matter).
func newTxnProducer(t testing.TB, brokers []string, txid string) sarama.SyncProducer {
	t.Helper()
	addrs, conf, err := clientConfig(brokers, txid)
	if err != nil {
		t.Fatal(err)
	}
	conf.Producer.Transaction.ID = txid
	conf.Producer.Partitioner = sarama.NewManualPartitioner
	conf.Producer.Transaction.Timeout = 15 * time.Second
	// Against a dead broker, fail fast instead of retrying for 13 s.
	conf.Producer.Retry.Max = 1
	p, err := sarama.NewSyncProducer(addrs, conf)
	if err != nil {
		t.Fatalf("transactional producer %s: %v", txid, err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// sendTo produces value to topic/partition in the open transaction and
// returns once the broker has acknowledged it.
func sendTo(t testing.TB, p sarama.SyncProducer, topic string, partition int32, value string) {
	t.Helper()
	if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: partition,
		Key: sarama.StringEncoder("k"), Value: sarama.StringEncoder(value)}); err != nil {
		t.Fatalf("produce %q to %s/%d: %v", value, topic, partition, err)
	}
}

// killChild kills a broker child with SIGKILL and waits for it to go.
func killChild(t testing.TB, child *exec.Cmd) {
	t.Helper()
	if err := child.Process.Kill(); err != nil {
		t.Fatalf("kill broker: %v", err)
	}
	child.Wait()
}

// assertReadCommitted reads topic/partition from the start as a
// read_committed consumer until it reads want, and fails unless want is
// the only value it read. Whatever the dead transaction wrote is at lower
// offsets than want, so it would be read first.
func assertReadCommitted(t testing.TB, brokers []string, topic string, partition int32, want string) {
	t.Helper()
	got, err := readCommittedUntil(brokers, topic, partition, want, 10*time.Second)
	if err != nil {
		t.Fatalf("read_committed %s/%d: %v (read %q, want only %q)", topic, partition, err, got, want)
	}
	if len(got) != 1 {
		t.Fatalf("read_committed %s/%d read %q, want only %q", topic, partition, got, want)
	}
}

// readCommittedUntil returns the values a read_committed consumer reads
// from the start of topic/partition, up to and including want.
func readCommittedUntil(brokers []string, topic string, partition int32, want string, within time.Duration) ([]string, error) {
	addrs, conf, err := clientConfig(brokers, "test-read-committed")
	if err != nil {
		return nil, err
	}
	conf.Consumer.IsolationLevel = sarama.ReadCommitted
	consumer, err := sarama.NewConsumer(addrs, conf)
	if err != nil {
		return nil, err
	}
	defer consumer.Close()
	pc, err := consumer.ConsumePartition(topic, partition, sarama.OffsetOldest)
	if err != nil {
		return nil, err
	}
	defer pc.Close()
	var got []string
	deadline := time.After(within)
	for {
		select {
		case m := <-pc.Messages():
			got = append(got, string(m.Value))
			if string(m.Value) == want {
				return got, nil
			}
		case err := <-pc.Errors():
			return got, err
		case <-deadline:
			return got, fmt.Errorf("%q not read within %s", want, within)
		}
	}
}

// TestOnlyAKilledLifeGetsAbortMarkers: the repair writes its markers after
// a kill only, not on every start.
func TestOnlyAKilledLifeGetsAbortMarkers(t *testing.T) {
	dir := t.TempDir()
	child, broker := startBrokerChild(t, dir)
	p := newTxnProducer(t, []string{broker}, "integr8scode.ledger.0")
	if err := p.BeginTxn(); err != nil {
		t.Fatal(err)
	}
	sendTo(t, p, eventstore.StateTopic, 0, "committed")
	if err := p.CommitTxn(); err != nil {
		t.Fatal(err)
	}
	before := endOffsets(t, []string{broker}, eventstore.StateTopic)[0] // the record and its commit marker
	killChild(t, child)

	// After the kill: one abort marker for the one producer.
	e, err := StartEmbedded(EmbeddedConfig{Dir: dir, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	afterKill := endOffsets(t, e.Brokers(), eventstore.StateTopic)[0]
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if afterKill != before+1 {
		t.Fatalf("after a kill the end offset went from %d to %d, want one abort marker more", before, afterKill)
	}

	// After a clean shutdown: nothing.
	e = startBroker(t, dir)
	if end := endOffsets(t, e.Brokers(), eventstore.StateTopic)[0]; end != afterKill {
		t.Fatalf("after a clean shutdown the end offset went from %d to %d, want no change", afterKill, end)
	}
	assertReadCommitted(t, e.Brokers(), eventstore.StateTopic, 0, "committed")
}
