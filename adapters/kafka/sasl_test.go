package kafka

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

func TestEmbeddedAuthentication(t *testing.T) {
	dir := t.TempDir()
	e := startBroker(t, dir)

	t.Run("OK the platform's client with the generated credentials", func(t *testing.T) {
		published := publishEvents(t, newPublisher(t, e.Brokers()), executionIDs("auth", 3), 2)
		if got := consumeAndCommit(t, e.Brokers(), "auth-ok", len(published)); len(got) != len(published) {
			t.Fatalf("read %d events, want %d", len(got), len(published))
		}
	})

	t.Run("ErrUnauthenticated sarama client is refused", func(t *testing.T) {
		cfg := SaramaConfig("test-anonymous")
		cfg.Metadata.Retry.Max = 0
		cfg.Net.DialTimeout, cfg.Net.ReadTimeout = 2*time.Second, 2*time.Second
		if admin, err := sarama.NewClusterAdmin(e.Addrs(), cfg); err == nil {
			topics, lerr := admin.ListTopics()
			admin.Close()
			t.Fatalf("an unauthenticated admin connected and listed %d topics (err %v)", len(topics), lerr)
		}
		if _, err := NewPublisher(e.Addrs(), wmLogger()); err == nil {
			t.Fatal("a publisher without credentials was built: it reached the broker")
		}
		// Nothing that reached the broker without credentials was stored.
		if n := total(endOffsets(t, e.Brokers(), LedgerTopic)); n != 6 {
			t.Fatalf("the ledger holds %d records, want the 6 published with credentials", n)
		}
	})

	t.Run("ErrWrongPassword from another client library is refused", func(t *testing.T) {
		for _, m := range []struct {
			name string
			mech func(scram.Auth) sasl.Mechanism
		}{
			{"SCRAM-SHA-512", func(a scram.Auth) sasl.Mechanism { return a.AsSha512Mechanism() }},
			{"SCRAM-SHA-256", func(a scram.Auth) sasl.Mechanism { return a.AsSha256Mechanism() }},
		} {
			for _, pass := range []string{"admin", e.SASL().Password + "x"} {
				err := produceWithKgo(t, e.Addrs(), m.mech(scram.Auth{User: EmbeddedUser, Pass: pass}))
				if err == nil {
					t.Fatalf("%s with a wrong password produced a record", m.name)
				}
			}
		}
		// The same library with the right password is let in: the refusals
		// above were about the password, not the client.
		if err := produceWithKgo(t, e.Addrs(), scram.Auth{User: EmbeddedUser, Pass: e.SASL().Password}.AsSha512Mechanism()); err != nil {
			t.Fatalf("kgo with the right password: %v", err)
		}
	})

	t.Run("OK the password is private and survives a restart", func(t *testing.T) {
		st, err := os.Stat(e.PasswordFile())
		if err != nil {
			t.Fatal(err)
		}
		if perm := st.Mode().Perm(); perm != 0o600 {
			t.Fatalf("password file mode %v, want 0600", perm)
		}
		if dst, err := os.Stat(dir); err != nil || dst.Mode().Perm() != 0o700 {
			t.Fatalf("data directory: %v, %v; want mode 0700", dst.Mode(), err)
		}
		before := e.SASL()
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
		again := startBroker(t, dir)
		if again.SASL() != before {
			t.Fatal("the password changed on restart: clients of other processes would be locked out")
		}
		if n := total(endOffsets(t, again.Brokers(), LedgerTopic)); n != 7 {
			t.Fatalf("after restart the ledger holds %d records, want 7", n)
		}
	})
}

// produceWithKgo produces one record to the ledger topic with franz-go
// authenticating with mech.
func produceWithKgo(t *testing.T, addrs []string, mech sasl.Mechanism) error {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.SASL(mech),
		kgo.RequestRetries(0), kgo.RecordRetries(1), kgo.MetadataMinAge(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Ping first: a refused login fails it at once, where a produce would
	// retry its metadata until the deadline.
	if err := cl.Ping(ctx); err != nil {
		return err
	}
	return cl.ProduceSync(ctx, &kgo.Record{Topic: LedgerTopic, Key: []byte("kgo"), Value: []byte("kgo")}).FirstErr()
}

// A data directory written before the broker required authentication
// (kfake persisted an empty user list there) opens with the generated
// credentials and keeps its records.
func TestEmbeddedAuthOnPreAuthDataDir(t *testing.T) {
	dir := t.TempDir()
	old, err := kfake.NewCluster(kfake.Ports(0), kfake.DataDir(dir), kfake.SeedTopics(DefaultPartitions, LedgerTopic))
	if err != nil {
		t.Fatal(err)
	}
	cfg := SaramaConfig("test-old")
	producer, err := sarama.NewSyncProducer(old.ListenAddrs(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := producer.SendMessage(&sarama.ProducerMessage{Topic: LedgerTopic, Key: sarama.StringEncoder("x"), Value: sarama.StringEncoder("old")}); err != nil {
		t.Fatal(err)
	}
	producer.Close()
	old.Close()
	if _, err := os.Stat(filepath.Join(dir, kfakeSASLFile)); err != nil {
		t.Fatalf("kfake left no %s to test against: %v", kfakeSASLFile, err)
	}

	e := startBroker(t, dir)
	if n := total(endOffsets(t, e.Brokers(), LedgerTopic)); n != 1 {
		t.Fatalf("the reopened ledger holds %d records, want 1", n)
	}
}

func TestBrokerURL(t *testing.T) {
	s := SASL{User: "u", Password: "p@ss:/?#"}
	t.Run("OK round trip", func(t *testing.T) {
		addrs, got, err := parseBrokers([]string{BrokerURL("127.0.0.1:1", s), "127.0.0.1:2"})
		if err != nil || got == nil || *got != s || !slices.Equal(addrs, []string{"127.0.0.1:1", "127.0.0.1:2"}) {
			t.Fatalf("parse: %v %+v %v", addrs, got, err)
		}
		s256 := SASL{Mechanism: MechanismSCRAMSHA256, User: "u", Password: "p"}
		if _, got, err := parseBrokers([]string{BrokerURL("h:1", s256)}); err != nil || *got != s256 {
			t.Fatalf("SCRAM-SHA-256: %+v %v", got, err)
		}
	})
	t.Run("OK plain addresses carry no credentials", func(t *testing.T) {
		if _, got, err := parseBrokers([]string{"127.0.0.1:1"}); err != nil || got != nil {
			t.Fatalf("%+v %v", got, err)
		}
	})
	t.Run("ErrConflictingCredentials", func(t *testing.T) {
		other := SASL{User: "v", Password: "p"}
		if _, _, err := parseBrokers([]string{BrokerURL("h:1", s), BrokerURL("h:2", other)}); err == nil {
			t.Fatal("two identities accepted")
		}
	})
	t.Run("ErrUnsupportedMechanism", func(t *testing.T) {
		_, _, err := parseBrokers([]string{"kafka://u:secret@h:1?mechanism=PLAIN"})
		if err == nil || strings.Contains(err.Error(), "secret") {
			t.Fatalf("err = %v, want a refusal that does not show the password", err)
		}
	})
	t.Run("OK Redact hides the password", func(t *testing.T) {
		r := Redact([]string{BrokerURL("h:1", s), "h:2"})
		if strings.Contains(r[0], "ss:") || !strings.Contains(r[0], "u:") || r[1] != "h:2" {
			t.Fatalf("Redact = %v", r)
		}
	})
}
