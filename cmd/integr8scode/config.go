package main

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/integr8scode/integr8scode/accounts"
	"github.com/integr8scode/integr8scode/adapters/kafka"
	"github.com/integr8scode/integr8scode/adapters/keyring"
	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/web"
)

// config is every setting of every role. Each flag has an environment
// variable: --kafka-brokers is INTEGR8SCODE_KAFKA_BROKERS. Flags win.
type config struct {
	Listen      string
	DataDir     string
	LogLevel    string
	LogFormat   string
	CORSOrigins string

	KafkaBrokers      string
	KafkaSASLUser     string
	KafkaSASLPassFile string
	KafkaSASLMech     string
	kafkaSASLPassword string // read from KafkaSASLPassFile by loadSecrets
	KafkaPartitions   int
	KafkaReplication  int
	MongoURI          string
	MongoDatabase     string
	EmbeddedKafkaPort int
	EmbeddedMongoPort int

	Runner       string
	Kubeconfig   string
	Namespace    string
	SandboxImage string
	RuntimeClass string
	HostUsers    bool
	RuncPath     string
	Python       string
	Slots        int
	Warm         int
	CPUBudget    int64
	MemoryBudget int64
	OutputCap    int64
	LeaseTTL     time.Duration
	MaxTimeout   time.Duration
	MaxMemory    int64
	MaxCPU       int64

	LedgerKeys  string
	GroupPrefix string

	AuthKeys       string
	TrustedProxies string
	QuotaAnonymous string
	QuotaUser      string
	QuotaAdmin     string
	MaxBacklog     int
	MaxStreams     int
	ContentKEK     string
	Retention      time.Duration
	quotas         accounts.Quotas // parsed from the Quota* flags by validate
	proxies        []netip.Prefix  // parsed from TrustedProxies by validate
}

// authKeys is where the access tokens' signing keys are: --auth-keys, or
// auth-keys in the data directory.
func (c *config) authKeys() string {
	if c.AuthKeys != "" {
		return c.AuthKeys
	}
	return filepath.Join(c.DataDir, "auth-keys")
}

// contentKEK is the key-encryption key of the content keys: --content-kek,
// or content.kek beside the token keys.
func (c *config) contentKEK() string {
	if c.ContentKEK != "" {
		return c.ContentKEK
	}
	return filepath.Join(c.authKeys(), keyring.ContentKEKFile)
}

// ledgerKeys is where the ledger writer's keys are: --ledger-keys, or
// ledger-keys in the data directory.
func (c *config) ledgerKeys() string {
	if c.LedgerKeys != "" {
		return c.LedgerKeys
	}
	return filepath.Join(c.DataDir, "ledger-keys")
}

func (c *config) register(fs *flag.FlagSet, role string) {
	fs.StringVar(&c.Listen, "listen", "127.0.0.1:8080", "address of the HTTP server (API, /healthz, /readyz, /metrics)")
	fs.StringVar(&c.DataDir, "data-dir", "./data", "directory for this process's local state")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", "text", "text (key=value) or json (one JSON object a line, for a log store)")
	if role == "up" || role == "api" {
		fs.StringVar(&c.CORSOrigins, "cors-origins", "", "comma-separated origins (https://app.example.com) whose web pages may call the API; empty: same origin only")
		fs.StringVar(&c.AuthKeys, "auth-keys", "", "directory of the access tokens' HMAC signing keys (default: auth-keys in --data-dir, "+
			"created with a first key if missing); every api replica must read the same one")
		fs.StringVar(&c.TrustedProxies, "trusted-proxies", "", "comma-separated addresses or CIDR prefixes of reverse proxies whose X-Forwarded-For "+
			"and X-Forwarded-Proto are believed; empty: none (the peer address is the client)")
		q := accounts.DefaultQuotas
		fs.StringVar(&c.QuotaAnonymous, "quota-anonymous", quotaString(q.Anonymous), "limits of each anonymous client address: submissions per minute, burst, executions at once")
		fs.StringVar(&c.QuotaUser, "quota-user", quotaString(q.User), "limits of each user (an admin may set other limits per user)")
		fs.StringVar(&c.QuotaAdmin, "quota-admin", quotaString(q.Admin), "limits of each admin")
		fs.IntVar(&c.MaxBacklog, "max-backlog", 500, "queued executions beyond which new submissions are answered 503 (at most 1000)")
		fs.IntVar(&c.MaxStreams, "max-streams-per-client", 8, "event streams one client (a user, else an address) may hold open at once; more are answered 429")
		fs.DurationVar(&c.Retention, "retention", 0, "erase the content (script, stdin, output) of executions that ended longer ago than this, e.g. 720h; "+
			"0 keeps it forever (the events stay either way)")
	}
	if role == "up" || role == "api" || role == "runner" {
		fs.StringVar(&c.ContentKEK, "content-kek", "", "file of the key-encryption key that wraps every execution's content key "+
			"(default: content.kek in the token keys' directory, made by up or api on first start); every api and runner reads the same one")
	}
	if embedded(role) {
		fs.IntVar(&c.EmbeddedKafkaPort, "embedded-kafka-port", 0, "loopback port of the embedded Kafka broker, SASL/SCRAM only (0: any free port)")
		fs.IntVar(&c.EmbeddedMongoPort, "embedded-mongodb-port", 0, "loopback port of the embedded MongoDB-wire store, TLS with a client certificate only (0: any free port)")
	} else {
		fs.StringVar(&c.KafkaBrokers, "kafka-brokers", "", "comma-separated Kafka bootstrap brokers (required)")
		fs.StringVar(&c.KafkaSASLUser, "kafka-sasl-user", "", "SASL/SCRAM user of the Kafka brokers (empty: no authentication)")
		fs.StringVar(&c.KafkaSASLPassFile, "kafka-sasl-password-file", "", "file holding the SASL password (required with --kafka-sasl-user)")
		fs.StringVar(&c.KafkaSASLMech, "kafka-sasl-mechanism", kafka.MechanismSCRAMSHA512, "SASL mechanism: SCRAM-SHA-512 or SCRAM-SHA-256")
		fs.StringVar(&c.MongoURI, "mongodb-uri", "", "MongoDB connection URI (required)")
	}
	fs.IntVar(&c.KafkaPartitions, "kafka-partitions", 6, "partitions of the executions topic when this process creates it")
	fs.IntVar(&c.KafkaReplication, "kafka-replication", 1, "replication factor of the executions topic when this process creates it")
	fs.StringVar(&c.MongoDatabase, "mongodb-database", "integr8scode", "MongoDB database name")
	if role == "up" || role == "api" || role == "projector" {
		fs.StringVar(&c.GroupPrefix, "group-prefix", "integr8scode.", "prefix of the platform's own Kafka consumer groups "+
			"(<prefix>ledger, <prefix>projector) and of the writer's transactional ids; consumers outside the platform use other names")
		fs.StringVar(&c.LedgerKeys, "ledger-keys", "", "the ledger's signing keys: a directory (default: ledger-keys in --data-dir; "+
			"the api creates a key there if none exists), or for a projector the URL of an API's /api/v1/ledger/keys")
	}
	if role == "up" || role == "runner" {
		fs.StringVar(&c.Runner, "runner", "runc", "sandbox kind: runc (a container per script on this host) or kubernetes (a pod per script)")
		fs.StringVar(&c.Kubeconfig, "kubeconfig", "", "kubernetes runner: kubeconfig file (empty: in-cluster configuration)")
		fs.StringVar(&c.Namespace, "namespace", "integr8scode-sandbox", "kubernetes runner: namespace of the sandbox pods")
		fs.StringVar(&c.SandboxImage, "sandbox-image", "", "kubernetes runner: the Python image of the sandbox pods (required)")
		fs.StringVar(&c.RuntimeClass, "runtime-class", "", "kubernetes runner: RuntimeClass of the sandbox pods (gVisor, Kata)")
		fs.BoolVar(&c.HostUsers, "host-users", false, "kubernetes runner: sandbox pods share the node's user namespace (only for clusters without user namespace support: weaker)")
		fs.StringVar(&c.RuncPath, "runc-path", "runc", "runc binary (looked up in PATH)")
		fs.StringVar(&c.Python, "python", "/usr/bin/python3", "Python interpreter on the host, mounted read-only into sandboxes")
		fs.IntVar(&c.Slots, "slots", 10*runtime.NumCPU(), "most sandboxes running at once (the CPU and memory budgets usually bind first)")
		fs.Int64Var(&c.CPUBudget, "cpu-budget", -1, "most CPU millicores the limits of the sandboxes running at once may add up to "+
			"(-1: the host's cores × 1000 for runc, unbounded for kubernetes, whose scheduler places pods; 0: unbounded)")
		fs.Int64Var(&c.MemoryBudget, "memory-budget", -1, "most bytes the memory limits of the sandboxes running at once may add up to "+
			"(-1: half the host's memory for runc, unbounded for kubernetes; 0: unbounded)")
		fs.IntVar(&c.Warm, "warm", 10*runtime.NumCPU(), "most sandboxes (runc containers, or pods with --runner kubernetes) kept started and waiting for a script, each used once "+
			"(the warm pool follows demand and keeps 1 when idle; 0: every run starts its own)")
		fs.Int64Var(&c.OutputCap, "output-cap-bytes", 1<<20, "cap of stdout and of stderr per run")
		fs.DurationVar(&c.LeaseTTL, "lease-ttl", 15*time.Second, "how long a runner's claim lives without renewal")
	}
	fs.DurationVar(&c.MaxTimeout, "max-timeout", domain.DefaultMaxLimits.Timeout(), "largest timeout a request may ask for")
	fs.Int64Var(&c.MaxMemory, "max-memory-bytes", domain.DefaultMaxLimits.MemoryBytes, "largest memory limit a request may ask for")
	fs.Int64Var(&c.MaxCPU, "max-cpu-millicores", domain.DefaultMaxLimits.CPUMillicores, "largest CPU limit a request may ask for")
}

// parseFlags parses args after applying INTEGR8SCODE_* environment variables
// as defaults.
func parseFlags(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		env := "INTEGR8SCODE_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		f.Usage += " [$" + env + "]"
		if v := getenv(env); v != "" {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", env, v, err))
			}
			f.DefValue = v
		}
	})
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errUsage
		}
		return errUsage
	}
	return nil
}

func (c *config) validate(role string) error {
	var errs []error
	if !embedded(role) {
		if c.KafkaBrokers == "" {
			errs = append(errs, errors.New("--kafka-brokers (INTEGR8SCODE_KAFKA_BROKERS) is required"))
		}
		if c.MongoURI == "" {
			errs = append(errs, errors.New("--mongodb-uri (INTEGR8SCODE_MONGODB_URI) is required"))
		}
		if c.KafkaSASLUser != "" && strings.Contains(c.KafkaBrokers, "://") {
			errs = append(errs, errors.New("--kafka-sasl-user needs --kafka-brokers as plain host:port addresses"))
		}
		if (c.KafkaSASLUser == "") != (c.KafkaSASLPassFile == "") {
			errs = append(errs, errors.New("--kafka-sasl-user and --kafka-sasl-password-file go together"))
		}
		if m := c.KafkaSASLMech; m != kafka.MechanismSCRAMSHA512 && m != kafka.MechanismSCRAMSHA256 {
			errs = append(errs, fmt.Errorf("--kafka-sasl-mechanism %q is not supported (have SCRAM-SHA-512, SCRAM-SHA-256)", m))
		}
	}
	if c.KafkaPartitions < 1 {
		errs = append(errs, errors.New("--kafka-partitions must be at least 1"))
	}
	if c.CPUBudget < -1 || c.MemoryBudget < -1 || c.Warm < 0 || c.Slots < 1 && (role == "up" || role == "runner") {
		errs = append(errs, errors.New("--slots must be at least 1, --warm at least 0, and --cpu-budget and --memory-budget -1 (automatic), 0 (unbounded) or positive"))
	}
	switch {
	case role != "up" && role != "runner":
	case c.Runner == "runc":
	case c.Runner == "kubernetes" && c.SandboxImage == "":
		errs = append(errs, errors.New("--runner kubernetes needs --sandbox-image (INTEGR8SCODE_SANDBOX_IMAGE)"))
	case c.Runner == "kubernetes":
	default:
		errs = append(errs, fmt.Errorf("--runner %q is not available (have: runc, kubernetes)", c.Runner))
	}
	if _, err := web.ParseOrigins(c.CORSOrigins); err != nil {
		errs = append(errs, fmt.Errorf("--cors-origins: %w", err))
	}
	if role == "up" || role == "api" {
		var err error
		if c.proxies, err = web.ParseTrustedProxies(c.TrustedProxies); err != nil {
			errs = append(errs, fmt.Errorf("--trusted-proxies: %w", err))
		}
		for _, q := range []struct {
			flag, value string
			into        *accounts.Quota
			base        accounts.Quota
		}{
			{"--quota-anonymous", c.QuotaAnonymous, &c.quotas.Anonymous, accounts.DefaultQuotas.Anonymous},
			{"--quota-user", c.QuotaUser, &c.quotas.User, accounts.DefaultQuotas.User},
			{"--quota-admin", c.QuotaAdmin, &c.quotas.Admin, accounts.DefaultQuotas.Admin},
		} {
			if *q.into, err = accounts.ParseQuota(q.value, q.base); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", q.flag, err))
			}
		}
		if c.MaxBacklog < 1 || c.MaxBacklog > 1000 {
			errs = append(errs, errors.New("--max-backlog must be from 1 to 1000"))
		}
		if c.MaxStreams < 1 || c.MaxStreams > 100000 {
			errs = append(errs, errors.New("--max-streams-per-client must be from 1 to 100000"))
		}
		if c.Retention < 0 {
			errs = append(errs, errors.New("--retention must not be negative (0 keeps content forever)"))
		}
	}
	if c.MaxTimeout < domain.DefaultLimits.Timeout() || c.MaxMemory < domain.DefaultLimits.MemoryBytes || c.MaxCPU < domain.DefaultLimits.CPUMillicores {
		errs = append(errs, errors.New("the maximum limits must not be below the default limits (5s, 128 MiB, 100m)"))
	}
	return errors.Join(errs...)
}

// embedded tells whether a role runs the embedded broker and store itself.
func embedded(role string) bool { return role == "up" || role == "stores" }

// loadSecrets reads the files that hold secrets (the Kafka SASL password),
// so that a password never has to appear in a command line or the
// environment.
func (c *config) loadSecrets() error {
	if c.KafkaSASLPassFile == "" {
		return nil
	}
	b, err := os.ReadFile(c.KafkaSASLPassFile)
	if err != nil {
		return fmt.Errorf("--kafka-sasl-password-file: %w", err)
	}
	if c.kafkaSASLPassword = strings.TrimSpace(string(b)); c.kafkaSASLPassword == "" {
		return fmt.Errorf("--kafka-sasl-password-file %s is empty", c.KafkaSASLPassFile)
	}
	return nil
}

// brokers are the Kafka brokers to dial, carrying the SASL credentials if
// there are any (kafka.BrokerURL): log kafka.Redact(brokers) instead.
func (c *config) brokers() []string {
	var out []string
	for _, b := range strings.Split(c.KafkaBrokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			if c.KafkaSASLUser != "" {
				b = kafka.BrokerURL(b, kafka.SASL{Mechanism: c.KafkaSASLMech, User: c.KafkaSASLUser, Password: c.kafkaSASLPassword})
			}
			out = append(out, b)
		}
	}
	return out
}

// quotaString is a quota as the --quota-* flags take it.
func quotaString(q accounts.Quota) string {
	return fmt.Sprintf("per-minute=%d,burst=%d,concurrent=%d", q.PerMinute, q.Burst, q.Concurrent)
}

func (c *config) maxLimits() domain.Limits {
	return domain.Limits{TimeoutMs: c.MaxTimeout.Milliseconds(), MemoryBytes: c.MaxMemory, CPUMillicores: c.MaxCPU}
}

// cpuBudget resolves --cpu-budget: automatic means the host's cores for
// runc, whose sandboxes share this host, and unbounded for Kubernetes,
// whose scheduler places the pods by their requests.
func (c *config) cpuBudget() int64 {
	switch {
	case c.CPUBudget >= 0:
		return c.CPUBudget
	case c.Runner == "runc":
		return int64(runtime.NumCPU()) * 1000
	}
	return 0
}

// memoryBudget resolves --memory-budget as cpuBudget does, with half the
// host's memory for runc (unbounded when /proc/meminfo cannot say).
func (c *config) memoryBudget() int64 {
	switch {
	case c.MemoryBudget >= 0:
		return c.MemoryBudget
	case c.Runner == "runc":
		return hostMemory() / 2
	}
	return 0
}

// hostMemory is MemTotal of /proc/meminfo in bytes, 0 if unknown.
func hostMemory() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}
