// Package cluster builds, starts and stops a single-node Kubernetes from upstream
// sources: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet,
// containerd, runc and the CNI bridge plugin, with locally built images.
//
// Everything it starts listens on 127.0.0.1 (the apiserver also advertises the
// host's own address in the kubernetes Service, which nothing routes to) and all
// state lives under <repository>/.cluster, so that Down can remove every trace;
// the builds and images it starts from are cached outside, in Builds.
package cluster

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Pinned upstream versions. A change of version builds into a new directory
// under the builds directory, so the old build is never mistaken for the new one.
const (
	KubernetesVersion = "v1.37.2"
	ContainerdVersion = "v2.4.2"
	RuncVersion       = "v1.5.2"
)

// Fixed names and addresses of the test node. The CIDRs are link-local on
// purpose: pods get an address but no route anywhere, and no private or public
// range is ever used.
const (
	NodeName       = "localhost" // the apiserver reaches the kubelet by this name
	PodCIDR        = "169.254.123.0/24"
	ServiceCIDR    = "169.254.124.0/24"
	BridgeName     = "i8c-test0"
	CNINetworkName = "integr8scode-testcluster"
	CgroupRoot     = "/integr8scode-testcluster"
	PodPidsLimit   = 128 // the kubelet's podPidsLimit

	EtcdClientPort = 23790
	EtcdPeerPort   = 23800
	APIServerPort  = 16443
	KubeletPort    = 10250
	KubeletHealthz = 10248
	PauseImage     = "localhost/integr8scode/pause:1"
	PythonImage    = "localhost/integr8scode/python:3.11"
	SmokeNamespace = "testcluster-smoke"
	// SandboxNamespace is the runner's default --namespace; up makes it as
	// deploy/kubernetes/base does (Pod Security restricted, deny-all
	// NetworkPolicy), so that `integr8scode up --runner kubernetes
	// --kubeconfig .cluster/kubeconfig` can run scripts at once.
	SandboxNamespace = "integr8scode-sandbox"
	k8sImageNS       = "k8s.io"
	rootModulePrefix = "module github.com/integr8scode/integr8scode"
)

// Cluster is the test cluster of one repository checkout.
type Cluster struct {
	Repo string // repository root
	Dir  string // Repo/.cluster
	// Builds holds the builds and image archives, shared by every checkout
	// on the machine (a fresh clone starts in seconds, not minutes):
	// $INTEGR8SCODE_TESTCLUSTER_BUILDS, or integr8scode-testcluster in the
	// user's cache directory (.cluster/builds without one). Its entries are named after what they are
	// made of (versions, package lists), and appear complete or not at all.
	Builds string
	Log    *slog.Logger
	Out    io.Writer // progress for the person who ran the command
}

// New finds the repository root from dir (walking up to the root module's
// go.mod) and returns the cluster that keeps its state under .cluster there.
func New(dir string, log *slog.Logger, out io.Writer) (*Cluster, error) {
	repo, err := RepoRoot(dir)
	if err != nil {
		return nil, err
	}
	builds := os.Getenv("INTEGR8SCODE_TESTCLUSTER_BUILDS")
	if builds == "" {
		builds = filepath.Join(repo, ".cluster", "builds") // no user cache directory (no $HOME): this checkout's own
		if cache, err := os.UserCacheDir(); err == nil {
			builds = filepath.Join(cache, "integr8scode-testcluster")
		}
	}
	return &Cluster{Repo: repo, Dir: filepath.Join(repo, ".cluster"), Builds: builds, Log: log, Out: out}, nil
}

// RepoRoot walks up from dir to the directory whose go.mod is the root
// module's (the testcluster module is nested in it).
func RepoRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if isRootModule(filepath.Join(d, "go.mod")) {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no repository root above %s (looked for a go.mod with %q)", dir, rootModulePrefix)
		}
	}
}

func isRootModule(gomod string) bool {
	f, err := os.Open(gomod)
	if err != nil {
		return false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if strings.TrimSpace(s.Text()) == rootModulePrefix {
			return true
		}
	}
	return false
}

// Paths. Bin and Cache survive Down; everything under State does not.
func (c *Cluster) Bin() string        { return filepath.Join(c.Builds, "bin") }
func (c *Cluster) Cache() string      { return filepath.Join(c.Builds, "cache") }
func (c *Cluster) State() string      { return filepath.Join(c.Dir, "state") }
func (c *Cluster) Kubeconfig() string { return filepath.Join(c.Dir, "kubeconfig") }
func (c *Cluster) state(p ...string) string {
	return filepath.Join(append([]string{c.State()}, p...)...)
}
func (c *Cluster) kubeBin(name string) string {
	return filepath.Join(c.Bin(), "kube-"+KubernetesVersion, name)
}
func (c *Cluster) containerdBin(name string) string {
	return filepath.Join(c.Bin(), "containerd-"+ContainerdVersion, name)
}
func (c *Cluster) runcBin() string {
	return filepath.Join(c.Bin(), "runc-"+RuncVersion, "runc")
}
func (c *Cluster) containerdSock() string { return c.state("run", "containerd.sock") }

func (c *Cluster) printf(format string, args ...any) {
	if c.Out != nil {
		fmt.Fprintf(c.Out, format+"\n", args...)
	}
}

// writeFile writes data to path, creating its directory.
func writeFile(path string, data []byte, perm os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, perm)
}

// tail returns the last n lines of a file, for error messages.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// errTail wraps err with the end of a log, if there is one.
func errTail(err error, logPath string) error {
	if t := tail(logPath, 15); t != "" {
		return fmt.Errorf("%w\n--- last lines of %s ---\n%s", err, logPath, t)
	}
	return err
}

var errNotRunning = errors.New("not running")

// Lock takes an exclusive lock on the cluster directory, waiting for another
// testcluster command (say, a parallel test package's `up`) to finish first.
func (c *Cluster) Lock() (unlock func(), err error) { return lockDir(c.Dir) }

// lockBuilds takes an exclusive lock on the shared builds directory, so that
// two checkouts never build into the same .partial directory at once.
func (c *Cluster) lockBuilds() (unlock func(), err error) { return lockDir(c.Builds) }

func lockDir(dir string) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}
