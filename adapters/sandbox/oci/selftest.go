//go:build linux

package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

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
def can_unshare():
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.unshare(0x10000000) == 0  # CLONE_NEWUSER
def unlisted_errno():
    # mlock is on no list of the profile: a default-deny filter says ENOSYS.
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(64)
    return 0 if libc.mlock(buf, 64) == 0 else ctypes.get_errno()
def read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError as e:
        return "error: " + e.strerror
st = status()
print(json.dumps({
    "uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(), "groups": os.getgroups(),
    "uid_map": read("/proc/self/uid_map").split(), "gid_map": read("/proc/self/gid_map").split(),
    "pid": os.getpid(),
    "net": sorted(os.listdir("/sys/class/net")),
    "routes": open("/proc/net/route").read().splitlines()[1:],
    "cap": [st["CapInh"], st["CapPrm"], st["CapEff"], st["CapBnd"], st["CapAmb"]],
    "no_new_privs": st["NoNewPrivs"], "seccomp": st["Seccomp"],
    "write_root": can_write("/selftest"), "write_usr": can_write("/usr/selftest"),
    "write_tmp": can_write("/tmp/selftest"), "unshare_user": can_unshare(),
    "unlisted_errno": unlisted_errno(),
    "env": sorted(os.environ),
    "memory_limit": read("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
    "cpu_quota": read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"),
    "rlimit_cpu": list(__import__("resource").getrlimit(__import__("resource").RLIMIT_CPU)),
    "fds": sorted(int(f) for f in os.listdir("/proc/self/fd")),
    "stdin": os.read(0, 100).decode(),
}))
`

type selfTestReport struct {
	UID, EUID, GID int
	Groups         []int
	UIDMap         []string `json:"uid_map"`
	GIDMap         []string `json:"gid_map"`
	PID            int
	Net            []string
	Routes         []string
	Cap            []string
	NoNewPrivs     string `json:"no_new_privs"`
	Seccomp        string
	WriteRoot      bool `json:"write_root"`
	WriteUsr       bool `json:"write_usr"`
	WriteTmp       bool `json:"write_tmp"`
	UnshareUser    bool `json:"unshare_user"`
	UnlistedErrno  int  `json:"unlisted_errno"`
	Env            []string
	MemoryLimit    string   `json:"memory_limit"`
	CPUQuota       string   `json:"cpu_quota"`
	RlimitCPU      []uint64 `json:"rlimit_cpu"`
	FDs            []int
	Stdin          string
}

// SelfTest runs a small script and checks the isolation that every run
// relies on: the unprivileged user in a user namespace mapped to a slot's
// host range, no capabilities, no_new_privs and a default-deny seccomp
// filter, only a loopback interface without routes, a read-only root with
// a writable /tmp, an environment of our own, the memory limit, stdin, and
// accounting. The service calls it before it takes work.
func (r *Runc) SelfTest(ctx context.Context) error {
	limits := domain.Limits{TimeoutMs: 10000, MemoryBytes: 64 << 20, CPUMillicores: 500}
	res, err := r.Run(ctx, runner.Job{
		ExecutionID: "selftest", Language: "python", Script: selfTestScript,
		Stdin: "ping", Limits: limits,
	})
	if err != nil {
		return fmt.Errorf("oci sandbox self-test: %w", err)
	}
	if res.Verdict != domain.VerdictCompleted {
		return fmt.Errorf("oci sandbox self-test: verdict %s (%s): %s", res.Verdict, res.Message, res.Stderr)
	}
	var rep selfTestReport
	if err := json.Unmarshal([]byte(res.Stdout), &rep); err != nil {
		return fmt.Errorf("oci sandbox self-test: bad report %q: %w", res.Stdout, err)
	}
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(rep.UID == sandboxUID && rep.EUID == sandboxUID && rep.GID == sandboxGID,
		"runs as uid %d gid %d, want %d", rep.EUID, rep.GID, sandboxUID)
	check(len(rep.Groups) == 0 || slices.Equal(rep.Groups, []int{sandboxGID}), "supplementary groups %v", rep.Groups)
	check(r.mappedToSlot(rep.UIDMap) && r.mappedToSlot(rep.GIDMap),
		"user namespace maps uids %v gids %v, want 0 to a slot's range of %d ids from %d", rep.UIDMap, rep.GIDMap, r.slots.size, r.slots.base)
	check(rep.PID == 1, "script is pid %d, not the init of its own pid namespace", rep.PID)
	check(slices.Equal(rep.Net, []string{"lo"}), "network interfaces %v, want only lo", rep.Net)
	check(len(rep.Routes) == 0, "routes %v, want none", rep.Routes)
	for _, c := range rep.Cap {
		check(strings.Trim(c, "0") == "", "capabilities %v, want none", rep.Cap)
	}
	check(rep.NoNewPrivs == "1", "no_new_privs is %q", rep.NoNewPrivs)
	check(rep.Seccomp == "2", "seccomp mode is %q, want 2 (filter)", rep.Seccomp)
	check(!rep.WriteRoot && !rep.WriteUsr, "the root file system is writable")
	check(rep.WriteTmp, "/tmp is not writable")
	check(!rep.UnshareUser, "the script can create a user namespace")
	check(rep.UnlistedErrno == int(unix.ENOSYS), "a system call on no list of the seccomp profile gave errno %d, want ENOSYS (default deny)", rep.UnlistedErrno)
	want := make([]string, 0, len(containerEnv))
	for _, kv := range containerEnv {
		k, _, _ := strings.Cut(kv, "=")
		want = append(want, k)
	}
	slices.Sort(want)
	check(slices.Equal(rep.Env, want), "environment %v, want %v", rep.Env, want)
	check(rep.MemoryLimit == fmt.Sprint(limits.MemoryBytes), "memory limit inside is %q, want %d", rep.MemoryLimit, limits.MemoryBytes)
	// The container was set up at one core and, if it waited in the pool,
	// with the pool's memory limit: the script's must be in place.
	check(rep.CPUQuota == fmt.Sprint(cpuQuotaMicros(limits)), "CPU quota inside is %q, want %d", rep.CPUQuota, cpuQuotaMicros(limits))
	check(slices.Equal(rep.RlimitCPU, []uint64{cpuBackstopSeconds(limits), cpuBackstopSeconds(limits)}),
		"RLIMIT_CPU is %v, want %d", rep.RlimitCPU, cpuBackstopSeconds(limits))
	// stdin, stdout, stderr and the directory listing itself: nothing of
	// the host (the control socket) is left open.
	check(len(rep.FDs) >= 3 && len(rep.FDs) <= 4 && slices.Equal(rep.FDs[:3], []int{0, 1, 2}), "open file descriptors %v, want 0, 1, 2 (and the listing's)", rep.FDs)
	check(rep.Stdin == "ping", "stdin %q, want %q", rep.Stdin, "ping")
	check(res.Usage.CPUTimeMs > 0 && res.Usage.PeakMemoryBytes > 0, "no accounting: %+v", res.Usage)
	if len(errs) > 0 {
		return fmt.Errorf("oci sandbox self-test: isolation is not as expected: %w", errors.Join(errs...))
	}
	return nil
}

// mappedToSlot reports whether an id map read inside a container (one
// "inside host size" line) maps 0 to the start of one of the slots' ranges.
func (r *Runc) mappedToSlot(m []string) bool {
	if len(m) != 3 || m[0] != "0" || m[2] != fmt.Sprint(r.slots.size) {
		return false
	}
	for slot := range cap(r.slots.free) {
		if m[1] == fmt.Sprint(r.slots.hostID(slot)) {
			return true
		}
	}
	return false
}
