package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	mongodrv "go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/integr8scode/integr8scode/accounts"
	"github.com/integr8scode/integr8scode/adapters/kafka"
	"github.com/integr8scode/integr8scode/adapters/keyring"
	"github.com/integr8scode/integr8scode/adapters/mongo"
	"github.com/integr8scode/integr8scode/adapters/sandbox/kubernetes"
	"github.com/integr8scode/integr8scode/adapters/sandbox/oci"
	"github.com/integr8scode/integr8scode/content"
	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/eventstore"
	"github.com/integr8scode/integr8scode/projections"
	"github.com/integr8scode/integr8scode/runner"
	"github.com/integr8scode/integr8scode/web"
)

// platform holds the components of one process. Which ones exist depends on
// the roles it plays; all of them talk to each other only through the
// ledger (Kafka) and the stores (MongoDB).
type platform struct {
	cfg     config
	role    string
	log     *slog.Logger
	stderr  io.Writer
	wlog    watermill.LoggerAdapter
	reg     *prometheus.Registry
	brokers []string

	client *mongodrv.Client
	emb    *mongo.Embedded // the embedded store, in `up` only
	broker *kafka.Embedded // the embedded broker, in `up` and `stores`
	db     *mongo.DB
	views  projections.Store
	hub    *projections.Hub
	runner *runner.Runner
	// keys verify the ledger's signatures; signer (api, up) signs.
	keys   *eventstore.KeySet
	signer eventstore.Signer
	// tokenKeys sign and verify access tokens (api, up).
	tokenKeys accounts.SigningKeys
	// idempotency keys the ids derived from Idempotency-Key headers.
	idempotency []byte
	// content keeps every execution's data key (api, runner, up); eraser
	// erases content and finishes interrupted erasures (api, up).
	content *content.Keys
	eraser  *content.Eraser
	// catchUp says whether the views have caught up with the log as it
	// was when this process started (readiness).
	catchUp *catchUp

	apiMu sync.Mutex
	api   http.Handler

	closers []func() error
	ready   readiness
	getenv  func(string) string
}

// readiness is what /readyz reports: nil once every part is up.
type readiness struct {
	mu  sync.Mutex
	err error
}

func (r *readiness) set(err error) { r.mu.Lock(); r.err = err; r.mu.Unlock() }
func (r *readiness) get() error    { r.mu.Lock(); defer r.mu.Unlock(); return r.err }

func newPlatform(cfg config, log *slog.Logger, stderr io.Writer) *platform {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	p := &platform{cfg: cfg, log: log, wlog: watermill.NewSlogLogger(log.With("component", "watermill")), reg: reg,
		brokers: cfg.brokers(), hub: projections.NewHub(), stderr: stderr}
	p.ready.set(errors.New("starting"))
	return p
}

func (p *platform) onClose(f func() error) { p.closers = append(p.closers, f) }

// close releases everything in reverse order of creation.
func (p *platform) close() {
	for i := len(p.closers) - 1; i >= 0; i-- {
		if err := p.closers[i](); err != nil {
			p.log.Warn("shutdown", "err", err)
		}
	}
}

// startEmbedded runs the embedded broker and store under the data directory
// and points the platform at them.
func (p *platform) startEmbedded(ctx context.Context) error {
	k, err := kafka.StartEmbedded(kafka.EmbeddedConfig{Dir: filepath.Join(p.cfg.DataDir, "kafka"),
		Port: p.cfg.EmbeddedKafkaPort, Partitions: int32(p.cfg.KafkaPartitions), Logger: p.log.With("component", "kafka")})
	if err != nil {
		return fmt.Errorf("embedded kafka: %w", err)
	}
	p.onClose(k.Close)
	p.broker = k
	p.brokers = k.Brokers()
	m, err := mongo.StartEmbedded(ctx, mongo.EmbeddedConfig{Dir: filepath.Join(p.cfg.DataDir, "mongo"),
		Port: p.cfg.EmbeddedMongoPort, Logger: p.storeLogger()})
	if err != nil {
		return fmt.Errorf("embedded mongodb: %w", err)
	}
	p.onClose(m.Close)
	p.emb = m
	p.cfg.MongoURI = m.URI()
	expiry, err := m.CertificateExpiry()
	if err != nil {
		return fmt.Errorf("embedded mongodb: %w", err)
	}
	// Renewed only at a start: an alert tells when a restart is due.
	p.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "integr8scode", Subsystem: "store",
		Name: "certificate_expiry_timestamp_seconds",
		Help: "When the first certificate of the embedded store's TLS set expires (Unix time); a restart within 30 days of it makes a new set."},
		func() float64 { return float64(expiry.Unix()) }))
	p.log.Info("embedded stores up", "kafka", k.Addrs(), "mongodb", m.URI(), "data_dir", p.cfg.DataDir)
	return nil
}

// connect opens MongoDB and makes sure the ledger's topics exist.
func (p *platform) connect(ctx context.Context) error {
	client, err := mongo.Connect(ctx, p.cfg.MongoURI)
	if err != nil {
		return fmt.Errorf("mongodb: %w", err)
	}
	p.client = client
	p.onClose(func() error { return client.Disconnect(context.Background()) })
	if p.emb != nil {
		p.db, err = p.emb.Open(ctx, client, p.cfg.MongoDatabase)
	} else {
		p.db, err = mongo.Open(ctx, client, p.cfg.MongoDatabase)
	}
	if err != nil {
		return fmt.Errorf("mongodb: %w", err)
	}
	p.onClose(p.db.Close)
	p.views = mongo.NewProjections(p.db)
	if err := kafka.EnsureLedgerTopics(ctx, p.brokers, int32(p.cfg.KafkaPartitions), int16(p.cfg.KafkaReplication)); err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	return nil
}

// loadKeys opens the ledger's keys: the signing key ring of the writer
// (created on first start), or for a projector the public keys wherever
// --ledger-keys points.
func (p *platform) loadKeys(ctx context.Context, role string) error {
	src := p.cfg.ledgerKeys()
	if role == "projector" {
		// The API may still be starting: keep asking for a while.
		var err error
		for i := 0; i < 60; i++ {
			if p.keys, err = keyring.Open(ctx, src); err == nil || ctx.Err() != nil {
				break
			}
			p.log.Warn("ledger keys not available yet", "from", src, "err", err)
			time.Sleep(time.Second)
		}
		return err
	}
	ring, err := keyring.LoadOrCreate(src)
	if err != nil {
		return err
	}
	if ring.Signer == nil {
		return fmt.Errorf("ledger keys in %s: no active private key to sign with", src)
	}
	signer := eventstore.NewRotatingSigner(ring.Signer)
	p.keys, p.signer = ring.Keys, signer
	p.log.Info("ledger keys", "dir", src, "signing_key", ring.Signer.KeyID(), "keys", len(ring.Keys.Keys()))
	// A rotation takes effect without a restart: the writer signs with the
	// new key, the API serves and verifies with it (the keys only grow).
	go keyring.Watch(ctx, src, keysReloadEvery, ring.Keys, signer, p.log.With("component", "keys"))
	return nil
}

// keysReloadEvery is how often a running writer looks at its key
// directory for a rotation.
var keysReloadEvery = 10 * time.Second

// asker returns a command client of the ledger writer for this process.
func (p *platform) asker(name string) (*kafka.Asker, error) {
	a, err := kafka.NewAsker(p.brokers, name, p.log.With("component", "asker"))
	if err != nil {
		return nil, fmt.Errorf("ledger commands: %w", err)
	}
	p.onClose(a.Close)
	return a, nil
}

// startWriter runs this process's share of the ledger writer: the command
// partitions the group gives it.
func (p *platform) startWriter(ctx context.Context, wg *sync.WaitGroup) error {
	w, err := kafka.NewWriter(kafka.WriterConfig{Brokers: p.brokers, Group: p.cfg.GroupPrefix + "ledger",
		Decider:    &eventstore.Decider{Signer: p.signer, DefaultLease: p.cfg.LeaseTTL},
		Logger:     p.log.With("component", "ledger"),
		Registerer: p.reg, Failpoint: p.failpoint()})
	if err != nil {
		return err
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := w.Run(ctx); err != nil {
			p.log.Error("ledger writer stopped", "err", err)
		}
	}()
	return nil
}

// startProjector builds the views from the ledger, sharing the partitions
// with other projector processes through the group <prefix>projector.
func (p *platform) startProjector(ctx context.Context, wg *sync.WaitGroup) error {
	parker, err := kafka.NewParker(p.brokers, "projector", p.wlog)
	if err != nil {
		return fmt.Errorf("projector: %w", err)
	}
	p.onClose(parker.Close)
	src := p.cfg.ledgerKeys()
	proj := projections.NewProjector(p.views, p.keys, parker, p.hub, p.log.With("component", "projector"), p.reg).
		RefreshKeys(func(ctx context.Context) (*eventstore.KeySet, error) { return keyring.Open(ctx, src) })
	lag := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "integr8scode", Subsystem: "projector",
		Name: "lag_records", Help: "Records of the ledger's partitions this projector reads that it has not applied yet, by partition."},
		[]string{"partition"})
	p.reg.MustRegister(lag)
	wg.Add(1)
	go func() {
		defer wg.Done()
		err := kafka.Project(ctx, kafka.ProjectConfig{Brokers: p.brokers, Topic: eventstore.Topic,
			Group: p.cfg.GroupPrefix + "projector", Logger: p.log.With("component", "projector"), Lag: lag},
			kafka.LedgerProjection{Projector: proj})
		if err != nil {
			p.log.Error("projector stopped", "err", err)
		}
	}()
	return nil
}

// startRunner proves the sandbox, then follows the ledger and reconciles.
// If the sandbox cannot isolate, it refuses to start: no script ever runs
// unconfined.
func (p *platform) startRunner(ctx context.Context, wg *sync.WaitGroup) error {
	id, err := runnerID(p.cfg.DataDir)
	if err != nil {
		return err
	}
	sb, err := p.sandbox(ctx)
	if err != nil {
		return err
	}
	ask, err := p.asker("runner")
	if err != nil {
		return err
	}
	r, err := runner.New(runner.Config{ID: id, Ledger: ask, Backlog: projections.Backlog{Store: p.views}, Sandbox: sb, Content: p.content,
		Slots: p.cfg.Slots, CPUBudget: p.cfg.cpuBudget(), MemoryBudget: p.cfg.memoryBudget(),
		LeaseTTL: p.cfg.LeaseTTL, Logger: p.log.With("component", "runner"),
		Metrics: runner.NewMetrics(p.reg)})
	if err != nil {
		return err
	}
	p.runner = r
	wg.Add(2)
	go func() {
		defer wg.Done()
		err := kafka.FollowLedger(ctx, p.brokers, p.log.With("component", "runner"), r.HandleEvent)
		if err != nil {
			p.log.Error("runner stopped following the ledger", "err", err)
		}
	}()
	go func() {
		defer wg.Done()
		_ = r.Run(ctx)
	}()
	p.log.Info("runner up", "runner_id", id, "slots", p.cfg.Slots, "cpu_budget_millicores", p.cfg.cpuBudget(),
		"memory_budget_bytes", p.cfg.memoryBudget(), "sandbox", sb.Name())
	return nil
}

func (p *platform) catalog() domain.Catalog {
	return domain.Catalog{
		Runtimes:      []domain.Runtime{{Language: "python", Versions: []string{"3.11"}, DefaultVersion: "3.11", FileExtension: "py"}},
		DefaultLimits: domain.DefaultLimits,
		MaxLimits:     p.cfg.maxLimits(),
	}
}

func (p *platform) readyCheck(ctx context.Context) error {
	if err := p.ready.get(); err != nil {
		return err
	}
	if p.catchUp != nil {
		if err := p.catchUp.check(ctx); err != nil {
			return err
		}
	}
	if p.client != nil {
		if err := p.client.Ping(ctx, nil); err != nil {
			return fmt.Errorf("mongodb: %w", err)
		}
	}
	return nil
}

// serve runs the HTTP server on the listener until ctx ends.
func (p *platform) serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ErrorLog: slog.NewLogLogger(p.log.Handler(), slog.LevelWarn)}
	web.DefaultEdge.Configure(srv)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	return nil
}

func (p *platform) apiHandler(ctx context.Context, ask web.Ledger) (http.Handler, error) {
	origins, _ := web.ParseOrigins(p.cfg.CORSOrigins) // validated with the configuration
	store := mongo.NewAccounts(p.db)
	acc, err := accounts.New(accounts.Config{Store: store, Keys: p.tokenKeys, Logger: p.log.With("component", "accounts")})
	if err != nil {
		return nil, err
	}
	// A rotation (admin rotate-token-key, or the Secret's files replaced)
	// takes effect without a restart.
	dir := p.cfg.authKeys()
	go keyring.WatchDir(ctx, dir, keysReloadEvery, p.log.With("component", "keys"), func() error {
		k, err := keyring.LoadTokenKeys(dir)
		if err != nil {
			return err
		}
		return acc.SetKeys(k)
	})
	quotas := p.cfg.quotas
	p.eraser = &content.Eraser{Keys: p.content, Ledger: ask, Views: mongo.NewProjections(p.db),
		Logger: p.log.With("component", "erasure")}
	return web.NewServer(web.Deps{Content: p.content, Eraser: p.eraser, Ledger: ask, Views: p.views, Hub: p.hub, Backlog: projections.Backlog{Store: p.views},
		Keys: p.keys, Catalog: p.catalog(), Logger: p.log.With("component", "api"), Gatherer: p.reg, Registerer: p.reg,
		Ready: p.readyCheck, CORSOrigins: origins,
		Accounts: acc, Scripts: &accounts.Scripts{Store: store, Catalog: p.catalog()},
		Quotas: &quotas, TrustedProxies: p.cfg.proxies, MaxBacklog: p.cfg.MaxBacklog, IdempotencySecret: p.idempotency,
		StreamsPerClient: p.cfg.MaxStreams}), nil
}

// loadContentKeys opens the content keys: their store is the platform's
// database, their key-encryption key a file beside the token keys, made
// by up or api on first start; a runner waits a while for the api to
// make it.
func (p *platform) loadContentKeys(ctx context.Context, role string) error {
	path := p.cfg.contentKEK()
	var kek []byte
	var err error
	if role == "runner" {
		for i := 0; i < 60; i++ {
			if kek, err = keyring.LoadContentKEK(path); err == nil || ctx.Err() != nil {
				break
			}
			p.log.Warn("content key-encryption key not available yet", "file", path, "err", err)
			time.Sleep(time.Second)
		}
	} else {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return fmt.Errorf("content keys: %w", err)
		}
		kek, err = keyring.LoadOrCreateContentKEK(path)
	}
	if err != nil {
		return err
	}
	p.content, err = content.NewKeys(mongo.NewContentKeys(p.db), kek)
	return err
}

// sweepEvery is how often the erasure sweep runs: every minute, or more
// often for a retention shorter than a few minutes.
func sweepEvery(retention time.Duration) time.Duration {
	if retention > 0 && retention/2 < time.Minute {
		return max(retention/2, time.Second)
	}
	return time.Minute
}

// loadTokenKeys opens the access tokens' signing keys (created on first
// start in the data directory).
func (p *platform) loadTokenKeys() error {
	k, err := keyring.LoadOrCreateTokenKeys(p.cfg.authKeys())
	if err != nil {
		return err
	}
	p.tokenKeys = k
	if p.idempotency, err = keyring.LoadOrCreateIdempotencySecret(p.cfg.authKeys()); err != nil {
		return err
	}
	p.log.Info("token keys", "dir", p.cfg.authKeys(), "signing_key", k.Active, "keys", len(k.Keys))
	return nil
}

func (p *platform) opsHandler() http.Handler {
	return web.NewOps(web.Deps{Gatherer: p.reg, Ready: p.readyCheck, Logger: p.log})
}

// handler returns the API once it is assembled, and a 503 answer before.
func (p *platform) handler() http.Handler {
	p.apiMu.Lock()
	defer p.apiMu.Unlock()
	if p.api == nil {
		return p.opsHandler()
	}
	return p.api
}

func (p *platform) setHandler(h http.Handler) {
	p.apiMu.Lock()
	p.api = h
	p.apiMu.Unlock()
}

// storeLogger is the embedded store's logger. FerretDB logs every connection
// at info level and complains at warn level about commands the official
// driver sends on disconnect (endSessions), so it only speaks up on errors
// unless the operator asked for debug logs.
func (p *platform) storeLogger() *slog.Logger {
	if p.cfg.LogLevel == "debug" {
		return p.log.With("component", "mongo")
	}
	l, _ := newLogger(p.stderr, "error", p.cfg.LogFormat) // both validated at start
	return l.With("role", "up", "component", "mongo")
}

// selfTester is a sandbox that can prove its isolation before taking work.
type selfTester interface {
	SelfTest(ctx context.Context) error
}

// sandbox builds the configured sandbox and proves it. If it cannot
// isolate, the runner refuses to start: no script ever runs unconfined.
func (p *platform) sandbox(ctx context.Context) (runner.Sandbox, error) {
	var sb runner.Sandbox
	switch p.cfg.Runner {
	case "kubernetes":
		pods, err := kubernetes.New(kubernetes.Config{Kubeconfig: p.cfg.Kubeconfig, Namespace: p.cfg.Namespace,
			Image: p.cfg.SandboxImage, RuntimeClass: p.cfg.RuntimeClass, HostUsers: p.cfg.HostUsers,
			OutputCapBytes: int(p.cfg.OutputCap), Warm: p.cfg.Warm,
			Logger: p.log.With("component", "sandbox")})
		if err != nil {
			return nil, fmt.Errorf("kubernetes sandbox: %w", err)
		}
		p.onClose(pods.Close)
		p.registerPool("pods", func() (int, int64, int64) {
			s := pods.PoolStats()
			return s.Waiting, s.Hits, s.Misses
		})
		// Pods a stopped runner left are resumed by the runner that takes
		// their execution over (this one at once if they were its own);
		// the runner's sweep collects those of executions that ended or
		// moved on (runner.Collector), at its first pass and every minute.
		// Its pods by phase, listed at each scrape (the sandboxes dashboard).
		if err := p.reg.Register(pods.Collector()); err != nil {
			return nil, fmt.Errorf("kubernetes sandbox metrics: %w", err)
		}
		p.log.Info("kubernetes sandbox ready", "namespace", pods.Namespace())
		sb = pods
	default:
		runc, err := oci.New(oci.Config{RuncPath: p.cfg.RuncPath, Python: p.cfg.Python,
			StateDir: filepath.Join(p.cfg.DataDir, "sandbox"), Slots: p.cfg.Slots, Warm: p.cfg.Warm,
			OutputCapBytes: int(p.cfg.OutputCap), Logger: p.log.With("component", "sandbox")})
		if err != nil {
			return nil, fmt.Errorf("sandbox: %w", err)
		}
		p.onClose(runc.Close)
		p.registerPool("containers", func() (int, int64, int64) {
			s := runc.PoolStats()
			return s.Waiting, s.Hits, s.Misses
		})
		sb = runc
	}
	if st, ok := sb.(selfTester); ok {
		if err := p.proveSandbox(ctx, st); err != nil {
			return nil, err
		}
	}
	return sb, nil
}

// registerPool exposes the warm pool of the sandbox (runc containers or
// Kubernetes pods): the same series for both, so that one dashboard reads
// either.
func (p *platform) registerPool(what string, stats func() (waiting int, hits, misses int64)) {
	p.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "integr8scode", Subsystem: "sandbox", Name: "warm_waiting",
			Help: "Sandboxes (runc containers or Kubernetes pods) started and waiting for a script (the warm pool)."},
			func() float64 { w, _, _ := stats(); return float64(w) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "integr8scode", Subsystem: "sandbox", Name: "warm_hits_total",
			Help: "Runs that took a waiting sandbox of the warm pool."},
			func() float64 { _, h, _ := stats(); return float64(h) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "integr8scode", Subsystem: "sandbox", Name: "warm_misses_total",
			Help: "Runs that started a sandbox of their own with a warm pool configured (none waited, or, for pods, their memory or CPU differ from the pool's)."},
			func() float64 { _, _, m := stats(); return float64(m) }))
	p.log.Debug("warm pool metrics registered", "of", what)
}

// failpoint is the writer's test hook: INTEGR8SCODE_TEST_KILL_AT=<step>
// makes the process kill itself (SIGKILL, as kill -9 would) at that step of
// the first transaction that decides a submit. Only the crash tests set it.
func (p *platform) failpoint() func(string) {
	at := p.getenv("INTEGR8SCODE_TEST_KILL_AT")
	if at == "" {
		return nil
	}
	p.log.Warn("test failpoint armed: this process kills itself", "step", at)
	return func(step string) {
		if step == at {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // never return: the kill is on its way
		}
	}
}
