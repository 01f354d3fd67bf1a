package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/integr8scode/integr8scode/adapters/kafka"
	"github.com/integr8scode/integr8scode/adapters/mongo"
)

// runUp runs every role in one process on the embedded broker and store.
func runUp(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	return start(ctx, "up", args, getenv, stderr)
}

// runRole runs one role: api, runner or projector against external Kafka
// and MongoDB, or stores, the embedded broker and store alone.
func runRole(ctx context.Context, role string, args []string, getenv func(string) string, stderr io.Writer) error {
	return start(ctx, role, args, getenv, stderr)
}

func start(ctx context.Context, role string, args []string, getenv func(string) string, stderr io.Writer) error {
	var cfg config
	fs := flag.NewFlagSet(role, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.register(fs, role)
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	if err := cfg.validate(role); err != nil {
		return err
	}
	if err := cfg.loadSecrets(); err != nil {
		return err
	}
	log, err := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	log = log.With("role", role)
	if cfg.DataDir, err = filepath.Abs(cfg.DataDir); err != nil {
		return fmt.Errorf("--data-dir: %w", err)
	}
	if role == "up" || role == "runner" || role == "stores" {
		// Only these keep state there: embedded stores, sandbox bundles and
		// the runner's identity. An api or projector needs no directory.
		unlock, err := lockDataDir(cfg.DataDir)
		if err != nil {
			return err
		}
		defer unlock()
	}

	// Listen first: a taken port fails at once, and /readyz answers 503
	// while the rest starts.
	shutdownTracing, err := setupTracing(ctx, role, getenv)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = shutdownTracing(sctx)
	}()

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	p := newPlatform(cfg, log, stderr)
	p.getenv = getenv
	p.role = role
	defer p.close()

	var handler http.Handler
	if role == "up" || role == "api" {
		handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { p.handler().ServeHTTP(w, r) })
	} else {
		handler = p.opsHandler()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	serveErr := make(chan error, 1)
	go func() { serveErr <- p.serve(ctx, ln, handler) }()
	log.Info("listening", "addr", ln.Addr().String())

	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	if err := p.assemble(ctx, role, &wg); err != nil {
		return err
	}
	p.ready.set(nil)
	log.Info("ready", "addr", ln.Addr().String())
	if role == "stores" {
		printConnection(stderr, p.broker, p.emb)
	}
	if role == "up" {
		// For the admin command line on this machine (admintools.go).
		f := filepath.Join(cfg.DataDir, storesFile)
		if err := os.WriteFile(f, []byte(storesEnv(p.broker, p.emb)), 0o600); err != nil {
			return err
		}
		defer os.Remove(f)
	}
	select {
	case <-ctx.Done():
		log.Info("shutting down")
		return nil
	case err := <-serveErr:
		return err
	}
}

// assemble starts the components of a role.
func (p *platform) assemble(ctx context.Context, role string, wg *sync.WaitGroup) error {
	if embedded(role) {
		if err := p.startEmbedded(ctx); err != nil {
			return err
		}
	}
	// For stores too: it creates the ledger topic and the store's indexes
	// (the _id index FerretDB lacks) before any other role connects.
	if err := p.connect(ctx); err != nil {
		return err
	}
	if role == "stores" {
		return nil
	}
	if role == "up" || role == "api" || role == "projector" {
		if err := p.loadKeys(ctx, role); err != nil {
			return err
		}
		// Ready only once the views hold the log as it is now.
		cu, err := newCatchUp(p.brokers, p.views)
		if err != nil {
			return err
		}
		p.onClose(cu.close)
		p.catchUp = cu
	}
	if role == "up" || role == "api" {
		if err := p.startWriter(ctx, wg); err != nil {
			return err
		}
		if err := p.loadTokenKeys(); err != nil {
			return err
		}
		if err := p.loadContentKeys(ctx, role); err != nil {
			return err
		}
		ask, err := p.asker("api")
		if err != nil {
			return err
		}
		h, err := p.apiHandler(ctx, ask)
		if err != nil {
			return err
		}
		p.setHandler(h)
		// Erasures left half-done, and the retention period (--retention).
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.eraser.Run(ctx, p.cfg.Retention, sweepEvery(p.cfg.Retention))
		}()
	}
	if role == "up" || role == "projector" {
		if err := p.startProjector(ctx, wg); err != nil {
			return err
		}
	}
	if role == "runner" {
		if err := p.loadContentKeys(ctx, role); err != nil {
			return err
		}
	}
	if role == "up" || role == "runner" {
		if err := p.startRunner(ctx, wg); err != nil {
			return err
		}
	}
	return nil
}

// printConnection tells how api, runner and projector processes connect to
// the stores of this process, as environment variables in shell syntax.
// It names files rather than printing the password: a process that can
// read them (the data directory is 0700) may connect, no other.
func printConnection(w io.Writer, k *kafka.Embedded, m *mongo.Embedded) {
	io.WriteString(w, "# api, runner and projector processes connect to these stores with:\n"+storesEnv(k, m))
}

// storesEnv is how to reach the embedded stores, as environment
// variables in shell syntax.
func storesEnv(k *kafka.Embedded, m *mongo.Embedded) string {
	env := []struct{ name, value string }{
		{"INTEGR8SCODE_KAFKA_BROKERS", strings.Join(k.Addrs(), ",")},
		{"INTEGR8SCODE_KAFKA_SASL_MECHANISM", k.SASL().Mechanism},
		{"INTEGR8SCODE_KAFKA_SASL_USER", k.SASL().User},
		{"INTEGR8SCODE_KAFKA_SASL_PASSWORD_FILE", k.PasswordFile()},
		{"INTEGR8SCODE_MONGODB_URI", m.URI()},
	}
	var b strings.Builder
	for _, e := range env {
		fmt.Fprintf(&b, "%s=%s\n", e.name, shellQuote(e.value))
	}
	return b.String()
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
