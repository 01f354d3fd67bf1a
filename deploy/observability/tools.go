// Package observability builds and locates the Prometheus, Alertmanager,
// VictoriaLogs and OpenTelemetry Collector binaries that check the alert
// rules, run the end-to-end observability test and `go tool task observe`.
// They are built from their Go modules through the module proxy at pinned
// versions, once per machine, into a cache shared by every checkout (like
// the test cluster's builds): a fresh clone finds them built, and only the
// first build on a machine pays the compile (several minutes for
// Prometheus on two cores).
package observability

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"time"
)

// The pinned versions. Prometheus's Go module versions are v0.3MM.P for
// release 3.MM.P.
const (
	PrometheusVersion   = "v0.316.0"
	AlertmanagerVersion = "v0.35.0"
	VictoriaLogsVersion = "v1.52.1"
	// CollectorVersion is the OpenTelemetry Collector release that
	// collector/go.mod pins (its core modules; the contrib file exporter
	// at the same release).
	CollectorVersion = "v0.161.0"
)

// component is one Go module whose commands are built together.
type component struct {
	name    string // directory name in the cache, with the version
	module  string
	version string
	cmds    []string // package paths below module
	// prepare, if set, is given a writable copy of the module's source to
	// fix up before the build; without it the commands are built with
	// `go install module/cmd@version` straight from the module cache.
	prepare func(src string) error
	// local, if set, is a module of this repository to build instead
	// (`go build` in that directory, its go.mod and go.sum pinning every
	// dependency, fetched through the module proxy); the cache directory
	// is named after a hash of its files, so an edit rebuilds it.
	local string
}

var (
	prometheus   = component{"prometheus", "github.com/prometheus/prometheus", PrometheusVersion, []string{"cmd/prometheus", "cmd/promtool"}, nil, ""}
	alertmanager = component{"alertmanager", "github.com/prometheus/alertmanager", AlertmanagerVersion, []string{"cmd/alertmanager", "cmd/amtool"},
		placeholderUI, ""}
	victoriaLogs = component{"victoria-logs", "github.com/VictoriaMetrics/VictoriaLogs", VictoriaLogsVersion, []string{"app/victoria-logs"}, nil, ""}
	// collector: the minimal Collector of ./collector (OTLP receiver,
	// batch processor, file exporter), what the Collector's builder would
	// generate for that list.
	collector = component{name: "otelcol", module: "github.com/integr8scode/integr8scode/deploy/observability/collector",
		version: CollectorVersion, cmds: []string{"."}, local: collectorDir()}
)

// collectorDir is ./collector beside this file's source. The builds run
// from a checkout (tests, `go run`), where the source is at hand.
func collectorDir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return ""
	}
	return filepath.Join(filepath.Dir(file), "collector")
}

// placeholderUI stands in for Alertmanager's web UI. Its package embeds
// ui/app/dist, which the release process builds with npm and Elm and which
// is not part of the Go module, so the module does not compile as
// published. Alertmanager's API (what Prometheus, amtool and the tests
// use) does not need the UI; its pages say so instead.
func placeholderUI(src string) error {
	page := []byte("<!doctype html><title>Alertmanager</title><p>This Alertmanager was built from its Go module without " +
		"its web UI (integr8scode, deploy/observability). Use its API: <a href=\"api/v2/alerts\">/api/v2/alerts</a>, or amtool.\n")
	// The UI package serves HTML only precompressed: gzip, or brotli to
	// clients that accept it (browsers do), with no fallback between them.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(page); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	for _, d := range []string{"elm", "mantine"} {
		dir := filepath.Join(src, "ui", "app", "dist", d)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "index.html.gz"), gz.Bytes(), 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "index.html.br"), storedBrotli(page), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Binaries are the paths of the built commands.
type Binaries struct {
	Prometheus, Promtool, Alertmanager, Amtool, VictoriaLogs string
	// Collector is the OpenTelemetry Collector (otelcol-integr8scode).
	Collector string
}

// CacheDir is where the builds live: $INTEGR8SCODE_OBSERVABILITY_BUILDS,
// or integr8scode-observability in the user's cache directory (~/.cache).
func CacheDir() (string, error) {
	if d := os.Getenv("INTEGR8SCODE_OBSERVABILITY_BUILDS"); d != "" {
		return filepath.Abs(d)
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "integr8scode-observability"), nil
}

// Ensure returns the binaries, building whatever is missing first. Build
// output and timings go to log. A lock file keeps two checkouts (or two
// test binaries) from building at once; the second waits and then finds
// the first one's result.
func Ensure(ctx context.Context, log io.Writer) (Binaries, error) {
	root, err := CacheDir()
	if err != nil {
		return Binaries{}, err
	}
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		return Binaries{}, err
	}
	unlock, err := lock(filepath.Join(root, "lock"))
	if err != nil {
		return Binaries{}, err
	}
	defer unlock()
	dirs := map[string]string{}
	for _, c := range []component{prometheus, alertmanager, victoriaLogs, collector} {
		d, err := c.ensure(ctx, root, log)
		if err != nil {
			return Binaries{}, err
		}
		dirs[c.name] = d
	}
	return Binaries{
		Prometheus:   filepath.Join(dirs["prometheus"], "prometheus"),
		Promtool:     filepath.Join(dirs["prometheus"], "promtool"),
		Alertmanager: filepath.Join(dirs["alertmanager"], "alertmanager"),
		Amtool:       filepath.Join(dirs["alertmanager"], "amtool"),
		VictoriaLogs: filepath.Join(dirs["victoria-logs"], "victoria-logs"),
		Collector:    filepath.Join(dirs["otelcol"], "otelcol-integr8scode"),
	}, nil
}

// ensure builds c into <root>/bin/<name>-<version> unless that directory
// exists. The build goes to a .partial directory renamed when complete,
// so an interrupted build is never mistaken for a finished one.
func (c component) ensure(ctx context.Context, root string, log io.Writer) (string, error) {
	dir := filepath.Join(root, "bin", c.name+"-"+c.version)
	if c.local != "" {
		sum, err := treeHash(c.local)
		if err != nil {
			return "", fmt.Errorf("%s: %w", c.name, err)
		}
		dir += "-" + sum
	}
	if _, err := os.Stat(dir); err == nil {
		return dir, nil
	}
	partial := dir + ".partial"
	if err := os.RemoveAll(partial); err != nil {
		return "", err
	}
	if err := os.MkdirAll(partial, 0o755); err != nil {
		return "", err
	}
	// An empty module-less directory: `go install pkg@version` then
	// builds exactly the module's own go.mod, whatever the caller's
	// working directory (this repository's go.mod or go.work) says.
	work, err := os.MkdirTemp("", "integr8scode-observability-build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	fmt.Fprintf(log, "building %s %s (the first build on a machine takes minutes; cached in %s)\n", c.name, c.version, root)
	begin := time.Now()
	// CGO off: static binaries, and no C toolchain needed. GOFLAGS from
	// the caller (-mod=vendor and the like) would not apply to these
	// modules; GOWORK=off for the same reason.
	env := append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false", "GOWORK=off")
	goCmd := func(dir string, env []string, args ...string) error {
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir, cmd.Env = dir, env
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("go %v: %w", args, err)
		}
		return nil
	}
	switch {
	case c.local != "":
		// The module's own go.mod and go.sum pin every dependency.
		if err := goCmd(c.local, env, "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(partial, "otelcol-integr8scode"), "."); err != nil {
			return "", err
		}
	case c.prepare == nil:
		args := []string{"install", "-trimpath", "-ldflags=-s -w"}
		for _, cmd := range c.cmds {
			args = append(args, c.module+"/"+cmd+"@"+c.version)
		}
		if err := goCmd(work, append(env, "GOBIN="+partial), args...); err != nil {
			return "", err
		}
	default:
		src, err := c.source(ctx, work, env)
		if err != nil {
			return "", err
		}
		if err := c.prepare(src); err != nil {
			return "", err
		}
		args := []string{"build", "-trimpath", "-ldflags=-s -w", "-o", partial + "/"}
		for _, cmd := range c.cmds {
			args = append(args, "./"+cmd)
		}
		// The module's own go.mod and go.sum pin every dependency, as
		// `go install module@version` would use them.
		if err := goCmd(src, env, args...); err != nil {
			return "", err
		}
	}
	took := time.Since(begin).Round(time.Second)
	if err := os.Rename(partial, dir); err != nil {
		return "", err
	}
	fmt.Fprintf(log, "built %s %s in %s\n", c.name, c.version, took)
	f, err := os.OpenFile(filepath.Join(root, "BUILD-TIMES"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err == nil {
		fmt.Fprintf(f, "%s\t%s-%s\t%s\t%s/%s\t%d cpus\n", time.Now().UTC().Format(time.RFC3339), c.name, c.version, took,
			runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
		f.Close()
	}
	return dir, nil
}

// treeHash is the first 12 hex digits of a SHA-256 over the names and
// contents of the regular files in dir (not below it).
func treeHash(dir string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, e := range entries { // sorted by name
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %d\n", e.Name(), len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}

// storedBrotli is b as a brotli stream (RFC 7932) of one uncompressed
// meta-block, which any brotli decoder reads; the standard library has no
// brotli encoder, and b is a short page. b must be 1 to 65536 bytes.
func storedBrotli(b []byte) []byte {
	// Bits, least significant first: WBITS 0 (a 64 KiB window), ISLAST 0,
	// MNIBBLES 0 (four nibbles), MLEN-1 in 16 bits, ISUNCOMPRESSED 1;
	// then padding to the byte, the bytes, and a last, empty meta-block
	// (ISLAST 1, ISLASTEMPTY 1).
	n := uint32(len(b) - 1)
	bits := n<<4 | 1<<20
	out := []byte{byte(bits), byte(bits >> 8), byte(bits >> 16)}
	out = append(out, b...)
	return append(out, 0x03)
}

// source downloads the module through the module proxy (`go mod
// download`) and copies it, read-only in the module cache, to a writable
// directory under work.
func (c component) source(ctx context.Context, work string, env []string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", c.module+"@"+c.version)
	cmd.Dir, cmd.Env = work, env
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go mod download %s@%s: %w", c.module, c.version, err)
	}
	var m struct{ Dir, Error string }
	if err := json.Unmarshal(out, &m); err != nil || m.Dir == "" {
		return "", fmt.Errorf("go mod download %s@%s: %s %v", c.module, c.version, m.Error, err)
	}
	src := filepath.Join(work, "src")
	return src, os.CopyFS(src, os.DirFS(m.Dir))
}

// lock takes an exclusive flock on path, waiting for it.
func lock(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
