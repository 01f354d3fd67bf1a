package mongo

import (
	"bytes"
	"context"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// TestEmbeddedAuthentication shows that only a client presenting the
// store's client certificate can read or write: the shared server refuses
// a plain connection, TLS without a certificate, and a certificate from
// another CA, while the URI it hands out works.
func TestEmbeddedAuthentication(t *testing.T) {
	ctx := context.Background()
	u, err := url.Parse(testServer.URI())
	if err != nil {
		t.Fatal(err)
	}
	addr := u.Host
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("the store listens on %s, want loopback", addr)
	}
	foreign, _, err := ensureTLS(t.TempDir(), time.Now()) // a CA and client certificate of another store
	if err != nil {
		t.Fatal(err)
	}
	q := func(kv ...string) string {
		v := url.Values{"serverSelectionTimeoutMS": {"500"}, "connectTimeoutMS": {"500"}}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return "mongodb://" + addr + "/?" + v.Encode()
	}

	// A marker written with the platform's credentials, which no refused
	// client must be able to read, nor add to.
	coll := testClient.Database("authcheck").Collection("c")
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "marker"}}); err != nil {
		t.Fatalf("the platform's client cannot write: %v", err)
	}

	for _, c := range []struct{ name, uri string }{
		{"ErrPlainConnection", q()},
		{"ErrTLSWithoutClientCertificate", q("tls", "true", "tlsCAFile", testServer.CAFile())},
		{"ErrClientCertificateOfAnotherCA", q("tls", "true", "tlsCAFile", testServer.CAFile(), "tlsCertificateKeyFile", foreign.client())},
		{"ErrAnotherCANotCheckingTheServer", q("tls", "true", "tlsInsecure", "true", "tlsCertificateKeyFile", foreign.client())},
	} {
		t.Run(c.name, func(t *testing.T) {
			client, err := mongo.Connect(options.Client().ApplyURI(c.uri))
			if err != nil {
				t.Fatal(err)
			}
			defer client.Disconnect(ctx)
			other := client.Database("authcheck").Collection("c")
			n, err := other.CountDocuments(ctx, bson.D{})
			if err == nil {
				t.Fatalf("read %d documents", n)
			}
			t.Log(err)
			if _, err := other.InsertOne(ctx, bson.D{{Key: "_id", Value: c.name}}); err == nil {
				t.Fatal("wrote a document")
			}
		})
	}

	t.Run("OK the platform's URI reads what it wrote and nothing else", func(t *testing.T) {
		client, err := Connect(ctx, testServer.URI())
		if err != nil {
			t.Fatal(err)
		}
		defer client.Disconnect(ctx)
		n, err := client.Database("authcheck").Collection("c").CountDocuments(ctx, bson.D{})
		if err != nil || n != 1 {
			t.Fatalf("count = %d, %v; want only the marker", n, err)
		}
	})
}

func TestEmbeddedCredentialFiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	// A directory that exists with loose permissions is tightened.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	start := func() *Embedded {
		e, err := StartEmbedded(ctx, EmbeddedConfig{Dir: dir, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	e := start()
	for path, want := range map[string]os.FileMode{
		dir:                       0o700,
		filepath.Dir(e.CAFile()):  0o700,
		e.CAFile():                0o600,
		e.ClientCertificateFile(): 0o600,
		e.tls.serverKey():         0o600,
		e.tls.serverCert():        0o600,
	} {
		if st, err := os.Stat(path); err != nil || st.Mode().Perm() != want {
			t.Errorf("%s: %v, %v; want mode %v", path, st.Mode().Perm(), err, want)
		}
	}
	ca, err := os.ReadFile(e.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(e.URI(), "PRIVATE") || !strings.Contains(e.URI(), url.QueryEscape(e.ClientCertificateFile())) {
		t.Errorf("URI %s should name the certificate file, not contain a key", e.URI())
	}
	e.Close()

	// A restart keeps the certificates: clients of other processes go on.
	e = start()
	if again, _ := os.ReadFile(e.CAFile()); !bytes.Equal(again, ca) {
		t.Fatal("a restart generated a new CA")
	}
	c, err := Connect(ctx, e.URI())
	if err != nil {
		t.Fatal(err)
	}
	c.Disconnect(ctx)
	e.Close()

	t.Run("OK a set about to expire is replaced", func(t *testing.T) {
		files, generated, err := ensureTLS(dir, time.Now().Add(certValidity-certRenewBefore/2))
		if err != nil || !generated {
			t.Fatalf("generated %v, %v; want a new set", generated, err)
		}
		if again, _ := os.ReadFile(files.ca()); bytes.Equal(again, ca) {
			t.Fatal("the CA was kept")
		}
		if _, generated, err := ensureTLS(dir, time.Now()); err != nil || generated {
			t.Fatalf("generated %v, %v; want the fresh set kept", generated, err)
		}
	})
}
