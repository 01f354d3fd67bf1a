package mongo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// EmbeddedConfig configures the in-process MongoDB-wire server.
type EmbeddedConfig struct {
	// Dir holds the SQLite database files (one per database); created if missing.
	Dir string
	// Port to listen on at 127.0.0.1; 0 picks a free port.
	Port int
	// Logger receives FerretDB's logs; nil means slog.Default().
	Logger *slog.Logger
}

// Embedded is FerretDB running inside this process with the SQLite backend.
// It listens on the loopback interface only: it has no authentication, so
// nothing outside this machine may reach it.
type Embedded struct {
	dir  string
	uri  string
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
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("embedded mongo: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// FerretDB wants a "file:" URI of an existing directory ending in "/";
	// it keeps one <database>.sqlite file per database in it.
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.Port))},
		Logger:    log.With("component", "ferretdb"),
		Handler:   "sqlite",
		SQLiteURL: "file:" + filepath.ToSlash(dir) + "/",
	})
	if err != nil {
		return nil, fmt.Errorf("embedded mongo: %w", err)
	}
	// The listener is bound by New; Run only accepts. Its context is not the
	// caller's: the server must outlive a start-up deadline.
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	e := &Embedded{dir: dir, log: log, stop: stop, done: make(chan struct{})}
	go func() {
		defer close(e.done)
		_ = f.Run(runCtx) // always nil; it returns when runCtx ends
	}()
	e.uri = f.MongoDBURI()
	log.Info("embedded mongo started", "uri", e.uri, "dir", dir)
	return e, nil
}

// URI is the mongodb:// address to pass to Connect.
func (e *Embedded) URI() string { return e.uri }

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
