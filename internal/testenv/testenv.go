// Package testenv starts the platform's embedded infrastructure for tests:
// the Kafka-protocol broker and the MongoDB-wire store, reached over TCP
// through the same adapters the platform uses, and authenticated as the
// platform is (SASL/SCRAM for the broker, a TLS client certificate for the
// store): the addresses it hands out carry those credentials. Everything
// stops when the test ends.
package testenv

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/integr8scode/integr8scode/adapters/kafka"
	"github.com/integr8scode/integr8scode/adapters/mongo"
	"github.com/integr8scode/integr8scode/eventstore"
)

// Quiet is a logger that discards everything.
func Quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Store starts the embedded store and opens database name on it.
func Store(t testing.TB, name string) *mongo.DB {
	t.Helper()
	ctx := context.Background()
	m, err := mongo.StartEmbedded(ctx, mongo.EmbeddedConfig{Dir: t.TempDir(), Logger: Quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	client, err := mongo.Connect(ctx, m.URI())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Disconnect(context.Background()) })
	db, err := m.Open(ctx, client, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Ledger is a ledger over the embedded broker and store.
type Ledger struct {
	*eventstore.Ledger
	Heads *mongo.Heads
	// Brokers carry the client credentials (kafka.BrokerURL): pass them to
	// the kafka package as they are, and log kafka.Redact(Brokers).
	Brokers []string
}

// StartLedger starts the embedded broker and store and builds a ledger
// over them, as the platform does.
func StartLedger(t testing.TB, name string) Ledger {
	t.Helper()
	k, err := kafka.StartEmbedded(kafka.EmbeddedConfig{Dir: t.TempDir(), Logger: Quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	heads := mongo.NewHeads(Store(t, name))
	pub, err := kafka.NewPublisher(k.Brokers(), watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Close() })
	return Ledger{Ledger: eventstore.NewLedger(heads, pub), Heads: heads, Brokers: k.Brokers()}
}
