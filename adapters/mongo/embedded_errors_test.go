package mongo

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/integr8scode/integr8scode/projections"
)

// The secondary indexes are MongoDB's alone (Open skips them on FerretDB):
// FerretDB 1.x refuses the TTL index that expires sign-in records.
func TestFerretDBRefusesTheTTLIndexesSoOpenCreatesIndexesOnMongoDBOnly(t *testing.T) {
	d := newTestDB(t, backendMongoDB)
	err := createIndexes(context.Background(), d.Database())
	if err == nil || !strings.Contains(err.Error(), "expireAfterSeconds") {
		t.Fatalf("createIndexes on FerretDB: %v, want the TTL option refused", err)
	}
}

func TestStartEmbeddedRefusesABadConfigurationWithTheReason(t *testing.T) {
	quiet := slog.New(slog.DiscardHandler)
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	damaged := t.TempDir()
	if _, _, err := ensureTLS(damaged, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(damaged, tlsDirName, serverCertName), []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A port some other listener holds.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().(*net.TCPAddr).Port

	for _, c := range []struct {
		name string
		ctx  context.Context
		cfg  EmbeddedConfig
		want string
	}{
		{"ErrNoDirectory", context.Background(), EmbeddedConfig{}, "data directory is required"},
		{"ErrPortOutOfRange", context.Background(), EmbeddedConfig{Dir: t.TempDir(), Port: 65536}, "port 65536 out of range"},
		{"ErrDirectoryIsAFile", context.Background(), EmbeddedConfig{Dir: file}, "not a directory"},
		{"ErrCancelled", cancelled, EmbeddedConfig{Dir: t.TempDir()}, context.Canceled.Error()},
		{"ErrDamagedCertificate", context.Background(), EmbeddedConfig{Dir: damaged}, "delete the directory to have a new set generated"},
		// Refused before FerretDB is built: its New leaks the backend on a
		// failed bind, and the leak check panics the process later.
		{"ErrPortTaken", context.Background(), EmbeddedConfig{Dir: t.TempDir(), Port: taken}, "embedded mongo: port " + strconv.Itoa(taken) + ": listen tcp"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.Logger = quiet
			e, err := StartEmbedded(c.ctx, c.cfg)
			if err == nil {
				e.Close()
				t.Fatal("started")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("%v, want an error saying %q", err, c.want)
			}
		})
	}
	// The damaged set is reported, not replaced behind the operator's back.
	if b, _ := os.ReadFile(filepath.Join(damaged, tlsDirName, serverCertName)); string(b) != "not a certificate" {
		t.Fatal("the damaged certificate was replaced")
	}
}

// A tool attaches to the store another process runs: it reaches the data
// over the wire and the SQLite indexes through the files, and its Close
// leaves the running store alone.
func TestAnAttachedStoreWorksOnTheRunningStoresFilesAndCloseLeavesItRunning(t *testing.T) {
	ctx := context.Background()
	d := newTestDB(t, backendEmbedded)
	name := d.Database().Name()
	if err := projections.SaveView(ctx, NewProjections(d), sampleExecution("ex-1"), 0); err != nil {
		t.Fatal(err)
	}
	attached := AttachEmbedded(testServer.Dir(), testServer.URI())
	client, err := Connect(ctx, attached.URI())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(ctx)
	tool, err := attached.Open(ctx, client, name)
	if err != nil {
		t.Fatal(err)
	}
	defer tool.Close()
	if tool.dialect.name() != "embedded" {
		t.Fatalf("the tool works through %s, want the embedded store's SQLite index", tool.dialect.name())
	}
	page, _, err := NewProjections(tool).List(ctx, projections.ListQuery{Limit: 10})
	if err != nil || len(page) != 1 || page[0].ID != "ex-1" {
		t.Fatalf("the tool lists %v, %v; want ex-1", page, err)
	}
	if err := attached.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := NewProjections(d).View(ctx, "ex-1"); err != nil {
		t.Fatalf("the running store after the tool's Close: %v", err)
	}
}

// A directory that is not the store's (a tool pointed at the wrong one)
// is refused, not written into: a SQLite file without FerretDB's metadata,
// or a FerretDB database without this package's collections.
func TestSQLiteFilesThatAreNotTheStoresAreRefused(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	e := AttachEmbedded(dir, "")
	plain := filepath.Join(dir, "plain.sqlite")
	conn, err := sql.Open("sqlite", "file:"+plain)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Exec("CREATE TABLE t (x)"); err != nil {
		t.Fatal(err)
	}
	if err := e.EnsureIDIndexes(ctx, "plain"); err == nil || !strings.Contains(err.Error(), "no such table: "+sqliteMetadataTable) {
		t.Errorf("EnsureIDIndexes: %v, want FerretDB's metadata missed", err)
	}
	if _, err := e.openSQLiteIndex(ctx, "plain"); err == nil || !strings.Contains(err.Error(), "no such table: "+sqliteMetadataTable) {
		t.Errorf("openSQLiteIndex: %v, want FerretDB's metadata missed", err)
	}

	// A database of the shared server that has some other collection only.
	other := "t" + strconv.FormatInt(testDBSeq.Add(1), 10)
	db := testClient.Database(other)
	t.Cleanup(func() { _ = db.Drop(context.Background()) })
	if err := db.CreateCollection(ctx, "docs"); err != nil {
		t.Fatal(err)
	}
	if _, err := testServer.openSQLiteIndex(ctx, other); err == nil || !strings.Contains(err.Error(), "lacks one of the collections") {
		t.Errorf("openSQLiteIndex: %v, want the missing collections named", err)
	}
}

func TestCertificateExpiryReportsMissingAndDamagedCertificates(t *testing.T) {
	setup := func(t *testing.T) tlsFiles {
		files, _, err := ensureTLS(t.TempDir(), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return files
	}
	t.Run("ErrMissing", func(t *testing.T) {
		files := setup(t)
		if err := os.Remove(files.client()); err != nil {
			t.Fatal(err)
		}
		if _, err := (&Embedded{tls: files}).CertificateExpiry(); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%v, want the missing file", err)
		}
	})
	t.Run("ErrDamaged", func(t *testing.T) {
		files := setup(t)
		if err := os.WriteFile(files.ca(), pemBlock("CERTIFICATE", []byte("garbage")), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := (&Embedded{tls: files}).CertificateExpiry(); err == nil || !strings.Contains(err.Error(), files.ca()) {
			t.Fatalf("%v, want the damaged CA named", err)
		}
	})
	t.Run("ErrNoCertificate", func(t *testing.T) {
		files := setup(t)
		for _, f := range []string{files.ca(), files.serverCert(), files.client()} {
			if err := os.WriteFile(f, pemBlock("PRIVATE KEY", []byte("k")), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := (&Embedded{tls: files}).CertificateExpiry(); err == nil || !strings.Contains(err.Error(), "no certificate") {
			t.Fatalf("%v, want no certificate found", err)
		}
	})
}

// A conditional write on FerretDB compares in Go what MongoDB compares in
// its filter: a field that is missing or of another type does not hold.
func TestAConditionHoldsOnlyForTheSameValueOfTheSameType(t *testing.T) {
	doc, err := bson.Marshal(bson.D{{Key: "seq", Value: int64(3)}, {Key: "small", Value: int32(3)}, {Key: "name", Value: "a"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		cond cond
		want bool
	}{
		{cond{"seq", int64(3)}, true},
		{cond{"small", int64(3)}, true}, // an int32 stored by another writer is the same number
		{cond{"seq", int64(4)}, false},
		{cond{"name", "a"}, true},
		{cond{"name", "b"}, false},
		{cond{"seq", "3"}, false},
		{cond{"name", int64(3)}, false},
		{cond{"missing", int64(0)}, false},
		{cond{"seq", 3}, false}, // an int is no type the callers use
	} {
		if got := c.cond.holds(doc); got != c.want {
			t.Errorf("%v holds: %v, want %v", c.cond, got, c.want)
		}
	}
}
