package kafka

import (
	"errors"
	"net"
	"slices"
	"testing"

	"github.com/IBM/sarama"
)

func TestEmbedded(t *testing.T) {
	t.Run("ListensOnLoopbackOnChosenPort", func(t *testing.T) {
		e := startBroker(t, t.TempDir())
		addrs := e.Addrs()
		if len(addrs) != 1 {
			t.Fatalf("Addrs() = %v, want one broker", addrs)
		}
		host, port, err := net.SplitHostPort(addrs[0])
		if err != nil {
			t.Fatalf("broker address %q: %v", addrs[0], err)
		}
		if host != "127.0.0.1" || port == "0" {
			t.Fatalf("broker address %q, want 127.0.0.1 and the port the kernel chose", addrs[0])
		}
		metas, err := newAdmin(t, e.Brokers()).DescribeTopics([]string{LedgerTopic})
		if err != nil || len(metas) != 1 || len(metas[0].Partitions) != int(DefaultPartitions) {
			t.Fatalf("ledger topic over %s: %+v, %v; want %d partitions", addrs[0], metas, err, DefaultPartitions)
		}
	})

	t.Run("ReopensRecordsAndCommittedOffsets", func(t *testing.T) {
		dir := t.TempDir()
		first := startBroker(t, dir)
		executions := executionIDs("reopen", 10)
		published := publishEvents(t, newPublisher(t, first.Brokers()), executions, 5)
		consumeAndCommit(t, first.Brokers(), "G", len(published))
		if err := first.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}

		// Port 0 again: the new broker may listen elsewhere, so every
		// client below is built from its Brokers().
		second := startBroker(t, dir)
		assertReopened(t, second.Brokers(), executions, published)
	})

	t.Run("RefusesOtherPartitionCountOnReopen", func(t *testing.T) {
		dir := t.TempDir()
		e, err := StartEmbedded(EmbeddedConfig{Dir: dir, Partitions: 3})
		if err != nil {
			t.Fatalf("StartEmbedded: %v", err)
		}
		if err := e.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}

		// kfake itself would silently keep the stored count for both.
		for _, n := range []int32{2, 12} {
			if _, err := StartEmbedded(EmbeddedConfig{Dir: dir, Partitions: n}); !errors.Is(err, ErrTopicMismatch) {
				t.Fatalf("reopen with %d partitions: err = %v, want ErrTopicMismatch", n, err)
			}
		}
		// The refused starts released the directory and changed nothing:
		// the stored count (3) is what a start without a count gets.
		e = startBroker(t, dir)
		metas, err := newAdmin(t, e.Brokers()).DescribeTopics([]string{LedgerTopic})
		if err != nil || len(metas) != 1 || len(metas[0].Partitions) != 3 {
			t.Fatalf("ledger topic after refused reopen: %+v, %v; want 3 partitions", metas, err)
		}
	})

	t.Run("LocksDataDir", func(t *testing.T) {
		dir := t.TempDir()
		e := startBroker(t, dir)
		if _, err := StartEmbedded(EmbeddedConfig{Dir: dir}); !errors.Is(err, ErrDirLocked) {
			t.Fatalf("second broker on one directory: err = %v, want ErrDirLocked", err)
		}
		if err := e.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		startBroker(t, dir) // free again after Close
	})

	t.Run("DoesNotCreateTopicsOnDemand", func(t *testing.T) {
		e := startBroker(t, t.TempDir())
		// The client asks for creation; the broker must still refuse.
		addrs, cfg, err := clientConfig(e.Brokers(), "test-autocreate")
		if err != nil {
			t.Fatal(err)
		}
		cfg.Metadata.AllowAutoTopicCreation = true
		cfg.Metadata.Retry.Max = 0
		client, err := sarama.NewClient(addrs, cfg)
		if err != nil {
			t.Fatalf("NewClient: %v", err)
		}
		defer client.Close()
		if err := client.RefreshMetadata("executoins"); !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
			t.Fatalf("metadata of a misspelt topic: err = %v, want ErrUnknownTopicOrPartition", err)
		}
		topics, err := newAdmin(t, e.Brokers()).ListTopics()
		if err != nil {
			t.Fatalf("ListTopics: %v", err)
		}
		if _, ok := topics["executoins"]; ok {
			t.Fatal("asking for a misspelt topic created it")
		}
	})

	t.Run("ErrDirRequired", func(t *testing.T) {
		if _, err := StartEmbedded(EmbeddedConfig{}); err == nil {
			t.Fatal("StartEmbedded without Dir succeeded")
		}
	})
}

// assertReopened checks a restarted broker against what was published and
// consumed by group "G" before the restart: a new group reads every event
// from the oldest offset, and G, whose offsets survived, reads only events
// published after the restart.
func assertReopened(t *testing.T, brokers []string, executions []string, published []string) {
	t.Helper()
	ends := endOffsets(t, brokers, LedgerTopic)
	if total(ends) != int64(len(published)) {
		t.Fatalf("after restart the log holds %d records, want %d", total(ends), len(published))
	}
	committed := committedOffsets(t, brokers, "G", ends)
	for p, end := range ends {
		// -1: nothing committed, right for a partition that got nothing.
		if c := committed[p]; c != end && !(c == -1 && end == 0) {
			t.Fatalf("group G committed %v, want the end offsets %v", committed, ends)
		}
	}

	var fresh []string
	for _, r := range consumeAndCommit(t, brokers, "new-group", len(published)) {
		fresh = append(fresh, r.payload)
	}
	if !sameElements(fresh, published) {
		t.Fatalf("new group read %d events that differ from the %d published", len(fresh), len(published))
	}

	// One more event per execution reaches every partition G reads. Had G
	// lost its offsets it would start at the oldest offset, and old events
	// would come before these on each partition.
	pub := newPublisher(t, brokers)
	var later []string
	for _, x := range executions {
		m := event(x, 1000)
		if err := pub.Publish(LedgerTopic, m); err != nil {
			t.Fatalf("publish after restart: %v", err)
		}
		later = append(later, string(m.Payload))
	}
	var readByG []string
	for _, r := range consumeAndCommit(t, brokers, "G", len(later)) {
		readByG = append(readByG, r.payload)
	}
	if !sameElements(readByG, later) {
		t.Fatalf("group G read %v after restart, want only the new events %v", readByG, later)
	}
}

func sameElements(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
