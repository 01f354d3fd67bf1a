package mongo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// EmbeddedConfig configures the in-process MongoDB-wire server.
type EmbeddedConfig struct {
	// Dir holds the SQLite database files (one per database) and the TLS
	// certificates (tls/); created if missing, made 0700.
	Dir string
	// Port to listen on at 127.0.0.1; 0 picks a free port.
	Port int
	// Logger receives FerretDB's logs; nil means slog.Default().
	Logger *slog.Logger
}

// Embedded is FerretDB running inside this process with the SQLite backend.
//
// It listens on 127.0.0.1 only, and only with TLS that demands a client
// certificate signed by the store's own CA (see tls.go): any process on
// the host can reach the port, but only one that can read the client
// certificate in the 0700 data directory can read or write a view.
type Embedded struct {
	dir  string
	uri  string
	tls  tlsFiles
	log  *slog.Logger
	stop context.CancelFunc
	done chan struct{}
	once sync.Once
}

// StartEmbedded starts FerretDB and returns once it accepts connections.
// ctx bounds the start only; the server runs until Close.
func StartEmbedded(ctx context.Context, cfg EmbeddedConfig) (*Embedded, error) {
	if cfg.Dir == "" {
		return nil, errors.New("embedded mongo: data directory is required")
	}
	if cfg.Port < 0 || cfg.Port > 65535 {
		return nil, fmt.Errorf("embedded mongo: port %d out of range", cfg.Port)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("embedded mongo: %w", err)
	}
	// The directory holds the views and the client's key: 0700, even if
	// it existed with looser permissions.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded mongo: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded mongo: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	certs, generated, err := ensureTLS(dir, time.Now())
	if err != nil {
		return nil, fmt.Errorf("embedded mongo: %w", err)
	}
	if generated {
		log.Info("embedded mongo: generated its CA, server and client certificates", "dir", certs.dir)
	}
	// FerretDB 1.24's New does not close the SQLite backend it built when
	// its listener cannot bind, and the backend's leak check then panics
	// the process at a later garbage collection. So a taken port is
	// refused here, before New (narrowing the window, not closing it).
	if cfg.Port != 0 {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.Port)))
		if err != nil {
			return nil, fmt.Errorf("embedded mongo: port %d: %w", cfg.Port, err)
		}
		_ = l.Close()
	}
	// FerretDB wants a "file:" URI of an existing directory ending in "/";
	// it keeps one <database>.sqlite file per database in it.
	f, err := ferretdb.New(&ferretdb.Config{
		// TLS only, no plain TCP or Unix listener. With a CA file FerretDB
		// requires and verifies a client certificate.
		Listener: ferretdb.ListenerConfig{
			TLS:         net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.Port)),
			TLSCertFile: certs.serverCert(),
			TLSKeyFile:  certs.serverKey(),
			TLSCAFile:   certs.ca(),
		},
		Logger:  slog.New(newLazyAttrs(log.Handler())).With("component", "ferretdb"),
		Handler: "sqlite",
		// Every connection of FerretDB overwrites deleted content with
		// zeros (content keys destroyed by an erasure must not linger in
		// free pages; see embeddedDialect.scrub for the WAL).
		SQLiteURL: "file:" + filepath.ToSlash(dir) + "/?" + sqliteSecureDelete,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded mongo: %w", err)
	}
	// The listener is bound by New; Run only accepts. Its context is not the
	// caller's: the server must outlive a start-up deadline.
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	e := &Embedded{dir: dir, tls: certs, log: log, stop: stop, done: make(chan struct{})}
	go func() {
		defer close(e.done)
		_ = f.Run(runCtx) // always nil; it returns when runCtx ends
	}()
	if e.uri, err = clientURI(f.MongoDBURI(), certs); err != nil {
		stop()
		<-e.done
		return nil, fmt.Errorf("embedded mongo: %w", err)
	}
	log.Info("embedded mongo started", "uri", e.uri, "dir", dir)
	return e, nil
}

// clientURI is FerretDB's own URI (mongodb://127.0.0.1:port/?tls=true)
// with the CA to check the server against and the client certificate to
// present. It names files, it holds no secret.
func clientURI(base string, certs tlsFiles) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Set("tls", "true")
	q.Set("tlsCAFile", certs.ca())
	q.Set("tlsCertificateKeyFile", certs.client())
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// URI is the mongodb:// address to pass to Connect. It names the CA and
// client certificate files, which any client of this server needs: a
// process that cannot read them cannot connect.
func (e *Embedded) URI() string { return e.uri }

// ClientCertificateFile is the client's certificate and key (PEM), which
// the URI passes as tlsCertificateKeyFile.
func (e *Embedded) ClientCertificateFile() string { return e.tls.client() }

// CAFile is the certificate of the CA that signed the server's and the
// client's certificates.
func (e *Embedded) CAFile() string { return e.tls.ca() }

// Dir is the directory holding the database files.
func (e *Embedded) Dir() string { return e.dir }

// Close stops accepting, waits for open connections to end and closes the
// SQLite databases. Disconnect clients first, or Close waits for them.
func (e *Embedded) Close() error {
	e.once.Do(func() {
		e.stop()
		<-e.done
		e.log.Info("embedded mongo stopped")
	})
	return nil
}

// AttachEmbedded is the embedded store that another process on this
// machine runs from dir (a running `integr8scode up`), for a tool that
// reaches it over the wire with uri: opened with (*Embedded).Open, the
// database works on that store's files as the running process does (its
// SQLite indexes, and scrubbing the write-ahead log after a content key
// is destroyed). Close does nothing: the store is not this process's.
func AttachEmbedded(dir, uri string) *Embedded {
	return &Embedded{dir: dir, uri: uri, log: slog.New(slog.DiscardHandler), stop: func() {}, done: closedChan()}
}

func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}
