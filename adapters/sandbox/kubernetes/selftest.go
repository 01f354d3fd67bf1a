package kubernetes

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/runner"
)

// selfTestScript reports, as JSON, what the isolation checks look at.
const selfTestScript = `import json, os
def status():
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out
def can_write(path):
    try:
        with open(path, "w") as f:
            f.write("x")
        return True
    except OSError:
        return False
def read(*paths):
    for path in paths:
        try:
            with open(path) as f:
                return f.read().strip()
        except OSError:
            pass
    return ""
def root_read_only():
    # The last mount on / is the one in effect.
    opts = [l.split()[5] for l in open("/proc/self/mountinfo") if l.split()[4] == "/"]
    return bool(opts) and "ro" in opts[-1].split(",")
st = status()
print(json.dumps({
    "uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(),
    "uid_map": read("/proc/self/uid_map").split(),
    "routes": open("/proc/net/route").read().splitlines()[1:],
    "cap": [st["CapInh"], st["CapPrm"], st["CapEff"], st["CapBnd"], st["CapAmb"]],
    "no_new_privs": st["NoNewPrivs"], "seccomp": st["Seccomp"],
    "root_ro": root_read_only(), "write_usr": can_write("/usr/selftest"),
    "write_tmp": can_write("/tmp/selftest"),
    "token": os.path.exists("/var/run/secrets/kubernetes.io"),
    "env": sorted(os.environ),
    "memory_limit": read("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory.max"),
    "stdin": os.read(0, 100).decode(),
}))
`

type selfTestReport struct {
	UID, GID    int
	Groups      []int
	UIDMap      []string `json:"uid_map"`
	Routes      []string
	Cap         []string
	NoNewPrivs  string `json:"no_new_privs"`
	Seccomp     string
	RootRO      bool `json:"root_ro"`
	WriteUsr    bool `json:"write_usr"`
	WriteTmp    bool `json:"write_tmp"`
	Token       bool
	Env         []string
	MemoryLimit string `json:"memory_limit"`
	Stdin       string
}

// SelfTest runs a small script in a pod and checks the isolation every run
// relies on: uid 65534 in a user namespace of its own (unless HostUsers),
// no capabilities, no_new_privs and a seccomp filter, a read-only root with
// a writable /tmp, no service account token, no KUBERNETES_* variables,
// the memory limit, stdin, and accounting. The service calls it before it
// takes work. A pod that has a default route is only logged: whether it
// can reach anything is up to the namespace's NetworkPolicy, which the
// pod cannot test without sending traffic.
//
// With a warm pool, it runs a second probe in a pod of the pool (waiting
// for one at most StartTimeout): a waiting pod must hold every property a
// pod created for its run holds.
func (p *Pods) SelfTest(ctx context.Context) error {
	if err := p.selfTest(ctx, domain.Limits{TimeoutMs: 10000, MemoryBytes: 64 << 20, CPUMillicores: 500}, false); err != nil {
		return err
	}
	if p.pool.max == 0 {
		return nil
	}
	limits := p.pool.limits
	limits.TimeoutMs = 10000
	return p.selfTest(ctx, limits, true)
}

func (p *Pods) selfTest(ctx context.Context, limits domain.Limits, warm bool) error {
	what := "kubernetes sandbox self-test"
	hits := int64(0)
	if warm {
		what += " (warm pod)"
		deadline := time.Now().Add(p.cfg.StartTimeout)
		for p.PoolStats().Waiting == 0 {
			if time.Now().After(deadline) || !sleep(ctx, 50*time.Millisecond) {
				return fmt.Errorf("%s: no pod of the warm pool was ready within %s", what, p.cfg.StartTimeout)
			}
		}
		hits = p.PoolStats().Hits
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	res, err := p.Run(ctx, runner.Job{ExecutionID: "selftest-" + hex.EncodeToString(b), Attempt: 1,
		Language: "python", Script: selfTestScript, Stdin: "ping", Limits: limits})
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if warm && p.PoolStats().Hits == hits {
		return fmt.Errorf("%s: the probe did not run in a pod of the pool", what)
	}
	if res.Verdict != domain.VerdictCompleted {
		return fmt.Errorf("%s: verdict %s (%s): %s", what, res.Verdict, res.Message, res.Stderr)
	}
	var rep selfTestReport
	if err := json.Unmarshal([]byte(res.Stdout), &rep); err != nil {
		return fmt.Errorf("%s: bad report %q: %w", what, res.Stdout, err)
	}
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(rep.UID == sandboxUID && rep.GID == sandboxUID, "runs as uid %d gid %d, want %d", rep.UID, rep.GID, sandboxUID)
	check(len(rep.Groups) == 0 || len(rep.Groups) == 1 && rep.Groups[0] == sandboxUID, "supplementary groups %v", rep.Groups)
	if !p.cfg.HostUsers {
		check(len(rep.UIDMap) == 3 && rep.UIDMap[0] == "0" && rep.UIDMap[1] != "0",
			"uid map %v: the pod runs in the host's user namespace (set HostUsers only on clusters without user namespaces)", rep.UIDMap)
	}
	for _, c := range rep.Cap {
		check(strings.Trim(c, "0") == "", "capabilities %v, want none", rep.Cap)
	}
	check(rep.NoNewPrivs == "1", "no_new_privs is %q", rep.NoNewPrivs)
	check(rep.Seccomp == "2", "seccomp mode is %q, want 2 (filter)", rep.Seccomp)
	check(rep.RootRO && !rep.WriteUsr, "the root file system is writable")
	check(rep.WriteTmp, "/tmp is not writable")
	check(!rep.Token, "a service account token is mounted")
	for _, k := range rep.Env {
		check(!strings.HasPrefix(k, "KUBERNETES_"), "the script sees %s", k)
	}
	check(rep.MemoryLimit == fmt.Sprint(limits.MemoryBytes), "memory limit inside is %q, want %d", rep.MemoryLimit, limits.MemoryBytes)
	check(rep.Stdin == "ping", "stdin %q, want %q", rep.Stdin, "ping")
	check(res.Usage.CPUTimeMs > 0 && res.Usage.PeakMemoryBytes > 0, "no accounting: %+v", res.Usage)
	if len(errs) > 0 {
		return fmt.Errorf("%s: isolation is not as expected: %w", what, errors.Join(errs...))
	}
	for _, r := range rep.Routes {
		if f := strings.Fields(r); len(f) > 1 && f[1] == "00000000" {
			p.log.Warn("sandbox pods have a default route: egress is closed only if the namespace's NetworkPolicy denies it",
				"namespace", p.cfg.Namespace)
			break
		}
	}
	return nil
}
