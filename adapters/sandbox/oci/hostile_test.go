//go:build linux

package oci

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/integr8scode/integr8scode/domain"
)

// hostileCase is one hostile program with the verdict it must get. setup,
// if set, prepares the host side (listeners, helper processes, an earlier
// run) and returns the script and what to check and stop once the run
// ended; check looks at the result beyond the verdict.
type hostileCase struct {
	name    string
	limits  domain.Limits
	script  string
	setup   func(t *testing.T, r *Runc) (script string, after func())
	verdict domain.Verdict
	check   func(t *testing.T, r *Runc, res domain.Result)
}

var (
	// short lets a script run into its timeout quickly; roomy lets one that
	// must finish by itself do so even with eight runs on two CPUs.
	short = domain.Limits{TimeoutMs: 2000, MemoryBytes: 128 << 20, CPUMillicores: 500}
	roomy = domain.Limits{TimeoutMs: 30000, MemoryBytes: 128 << 20, CPUMillicores: 1000}
)

// TestHostile runs each hostile program, checks its verdict, and then that
// the host is clean (no process, cgroup, mount, bundle or uid slot of the
// run left, the host disk untouched) and that a benign run still works.
func TestHostile(t *testing.T) {
	t.Run("Cold", func(t *testing.T) { hostile(t, newSandbox(t, Config{Slots: 8})) })
	// The same attacks on containers that waited in the pool: a waiting
	// container must hold every isolation property of a cold one.
	t.Run("Warm", func(t *testing.T) {
		r := newSandbox(t, Config{Slots: 8, Warm: 4, WarmMin: 4})
		hostile(t, r)
		if s := r.PoolStats(); s.Hits == 0 {
			t.Fatalf("no run took a warm container: %+v", s)
		}
	})
}

func hostile(t *testing.T, r *Runc) {
	mounts := mountPoints(t)
	for _, tc := range hostileCases() {
		t.Run(tc.name, func(t *testing.T) {
			script, after := tc.script, func() {}
			if tc.setup != nil {
				script, after = tc.setup(t, r)
			}
			used := hostBytesUsed(t, r)
			res := run(t, r, job(script, tc.limits))
			after()
			wantVerdict(t, res, tc.verdict)
			if tc.check != nil {
				tc.check(t, r, res)
			}
			assertHostClean(t, r, mounts, used)
		})
	}
	t.Run("EightInParallel", func(t *testing.T) {
		used := hostBytesUsed(t, r)
		runParallel(t, r, parallelCases())
		assertHostClean(t, r, mounts, used)
	})
}

func hostileCases() []hostileCase {
	return []hostileCase{
		{name: "ForkBomb", limits: short, verdict: domain.VerdictTimeout,
			script: "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"},
		{name: "ThreadBomb", limits: roomy, verdict: domain.VerdictCompleted, script: threadBomb, check: threadBombCheck},
		{name: "MemoryBomb", limits: domain.Limits{TimeoutMs: 20000, MemoryBytes: 64 << 20, CPUMillicores: 1000},
			verdict: domain.VerdictMemoryLimit, script: "a = []\nwhile True:\n    a.append(b'x' * (1 << 20))\n"},
		{name: "CPUSpin", limits: short, verdict: domain.VerdictTimeout, script: cpuSpin, check: cpuSpinCheck},
		{name: "SleepPastTimeout", limits: short, verdict: domain.VerdictTimeout,
			script: "import time\nprint('sleeping', flush=True)\ntime.sleep(600)\n", check: stdoutIs("sleeping\n")},
		{name: "SIGTERMIgnored", limits: short, verdict: domain.VerdictTimeout, script: sigtermIgnored},
		{name: "DoubleForkSetsid", limits: roomy, verdict: domain.VerdictCompleted, script: doubleFork,
			check: func(t *testing.T, r *Runc, res domain.Result) {
				if !strings.HasPrefix(res.Stdout, "daemon ") || res.Usage.WallTimeMs > 5000 {
					t.Fatalf("stdout %q after %d ms, want the daemon's pid at once", res.Stdout, res.Usage.WallTimeMs)
				}
			}},
		{name: "ZombieFactory", limits: roomy, verdict: domain.VerdictCompleted, script: zombieFactory, check: zombieCheck},
		{name: "StdoutFlood", limits: roomy, verdict: domain.VerdictOutputLimit,
			script: "import sys\nwhile True:\n    sys.stdout.write('x' * 65536 + '\\n')\n", check: truncatedAt("stdout")},
		{name: "StderrFlood", limits: roomy, verdict: domain.VerdictOutputLimit,
			script: "import sys\nwhile True:\n    sys.stderr.write('e' * 1000 + '\\n')\n", check: truncatedAt("stderr")},
		{name: "HugeLineNoNewline", limits: roomy, verdict: domain.VerdictOutputLimit,
			script: "import sys\nsys.stdout.write('z' * (8 << 20))\n", check: truncatedAt("stdout")},
		{name: "DiskFillTmp", limits: roomy, verdict: domain.VerdictCompleted, script: fillScript("/tmp", false),
			check: stdoutIs("ENOSPC tmpfs of 16 MiB\n")},
		{name: "DiskFillDevShm", limits: roomy, verdict: domain.VerdictCompleted, script: fillScript("/dev/shm", false),
			check: stdoutIs("ENOSPC tmpfs of 16 MiB\n")},
		{name: "InodeFillTmp", limits: roomy, verdict: domain.VerdictCompleted, script: fillScript("/tmp", true),
			check: stdoutIs("ENOSPC tmpfs of 16 MiB\n")},
		{name: "WriteReadOnlyPaths", limits: roomy, verdict: domain.VerdictCompleted, script: readOnlyWrites, check: readOnlyCheck},
		{name: "Network", limits: roomy, verdict: domain.VerdictCompleted, setup: networkSetup, check: networkCheck},
		{name: "Secrets", limits: roomy, verdict: domain.VerdictCompleted, setup: secretSetup, check: secretCheck},
		{name: "KernelInterfaces", limits: roomy, verdict: domain.VerdictCompleted, script: kernelInterfaces,
			check: stdoutIs("ptrace EPERM\nmount EPERM\nunshare EPERM\nkeyctl EPERM\nAF_PACKET EPERM\n")},
		{name: "SetuidSearch", limits: roomy, verdict: domain.VerdictCompleted, script: setuidSearch, check: setuidCheck},
		{name: "KillAll", limits: roomy, verdict: domain.VerdictCompleted, setup: killAllSetup,
			check: stdoutIs("children killed [9, 9, 9]; init alive\n")},
		{name: "CrossRunPersistence", limits: roomy, verdict: domain.VerdictCompleted, setup: persistenceSetup,
			check: stdoutIs(`{"dev_shm": false, "shm_segment": "ENOENT", "sysvipc": 0, "tmp": false}` + "\n")},
		{name: "InfiniteRecursion", limits: roomy, verdict: domain.VerdictRuntimeErr,
			script: "def f():\n    return f()\nf()\n", check: func(t *testing.T, r *Runc, res domain.Result) {
				wantExit(t, res, 1)
				if !strings.Contains(res.Stderr, "RecursionError") {
					t.Fatalf("stderr lacks RecursionError:\n%.2000s", res.Stderr)
				}
			}},
		{name: "Segfault", limits: roomy, verdict: domain.VerdictRuntimeErr, script: "import ctypes\nctypes.string_at(0)\n",
			check: func(t *testing.T, r *Runc, res domain.Result) {
				if res.Signal != "SIGSEGV" {
					t.Fatalf("signal %q, want SIGSEGV", res.Signal)
				}
			}},
	}
}

// parallelCases are eight of the cases above that need nothing of the host.
func parallelCases() []hostileCase {
	want := []string{"ForkBomb", "ThreadBomb", "MemoryBomb", "CPUSpin", "SIGTERMIgnored", "StdoutFlood", "DiskFillTmp", "InodeFillTmp"}
	var out []hostileCase
	for _, tc := range hostileCases() {
		if slices.Contains(want, tc.name) {
			out = append(out, tc)
		}
	}
	return out
}

func runParallel(t *testing.T, r *Runc, cases []hostileCase) {
	var wg sync.WaitGroup
	results := make([]domain.Result, len(cases))
	errs := make([]error, len(cases))
	for i, tc := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = r.Run(context.Background(), job(tc.script, tc.limits))
		}()
	}
	wg.Wait()
	for i, tc := range cases {
		if errs[i] != nil {
			t.Errorf("%s: %v", tc.name, errs[i])
			continue
		}
		if results[i].Verdict != tc.verdict {
			t.Errorf("%s: verdict %s (%s), want %s", tc.name, results[i].Verdict, results[i].Message, tc.verdict)
		}
	}
}

func stdoutIs(want string) func(*testing.T, *Runc, domain.Result) {
	return func(t *testing.T, r *Runc, res domain.Result) {
		if res.Stdout != want {
			t.Fatalf("stdout %q, want %q\nstderr: %.2000s", res.Stdout, want, res.Stderr)
		}
	}
}

func truncatedAt(stream string) func(*testing.T, *Runc, domain.Result) {
	return func(t *testing.T, r *Runc, res domain.Result) {
		got := res.Stdout
		if stream == "stderr" {
			got = res.Stderr
		}
		if !res.OutputTruncated || len(got) != r.cfg.OutputCapBytes {
			t.Fatalf("%s: truncated %v, %d bytes, want exactly the cap %d", stream, res.OutputTruncated, len(got), r.cfg.OutputCapBytes)
		}
	}
}

const threadBomb = `import threading, time
n = 0
try:
    while True:
        threading.Thread(target=time.sleep, args=(600,), daemon=True).start()
        n += 1
except RuntimeError as e:
    print(n, e)
`

func threadBombCheck(t *testing.T, r *Runc, res domain.Result) {
	n, _, _ := strings.Cut(res.Stdout, " ")
	started, err := strconv.Atoi(n)
	if err != nil || started >= int(r.cfg.PidsLimit) || !strings.Contains(res.Stdout, "can't start new thread") {
		t.Fatalf("stdout %q, want fewer than %d threads started and then refused", res.Stdout, r.cfg.PidsLimit)
	}
}

// cpuSpin spins four processes: the CPU quota, not the number of
// processes, bounds the CPU time.
const cpuSpin = `import os
for _ in range(3):
    if os.fork() == 0:
        break
while True:
    pass
`

func cpuSpinCheck(t *testing.T, r *Runc, res domain.Result) {
	// 500m for the 2 s timeout is at most 1000 ms of CPU, whatever the
	// number of processes; setup and the kill add a little. (Less is fine:
	// other tests may hold the host's CPUs.)
	if res.Usage.CPUTimeMs <= 0 || res.Usage.CPUTimeMs > 1400 {
		t.Fatalf("cpu time %d ms, want at most about 1000 ms (500m over 2 s)", res.Usage.CPUTimeMs)
	}
}

const sigtermIgnored = `import signal, time
for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1):
    signal.signal(s, signal.SIG_IGN)
while True:
    time.sleep(1)
`

const doubleFork = `import os, time
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.setsid()
    if os.fork() == 0:
        os.write(w, b"%d" % os.getpid())
        while True:
            time.sleep(1)
    os._exit(0)
os.waitpid(pid, 0)
print("daemon", os.read(r, 32).decode())
`

// zombieFactory leaves every child unreaped: zombies hold their pids, so
// the pids limit ends the factory.
const zombieFactory = `import os
n = 0
try:
    while True:
        if os.fork() == 0:
            os._exit(0)
        n += 1
except OSError as e:
    print(n, e.strerror)
`

func zombieCheck(t *testing.T, r *Runc, res domain.Result) {
	n, _, _ := strings.Cut(res.Stdout, " ")
	if z, err := strconv.Atoi(n); err != nil || z >= int(r.cfg.PidsLimit) || !strings.Contains(res.Stdout, "Resource temporarily unavailable") {
		t.Fatalf("stdout %q, want fewer than %d zombies and then EAGAIN", res.Stdout, r.cfg.PidsLimit)
	}
}

// fillScript writes 1 MiB blocks (or creates empty files) in dir until the
// kernel refuses, and prints the errno and the file system that refused:
// the container's own memory-backed tmpfs, not a host disk.
func fillScript(dir string, inodes bool) string {
	body := "    with open(os.path.join(d, 'fill'), 'wb') as f:\n        while True:\n            f.write(block)\n            f.flush()\n"
	if inodes {
		body = "    i = 0\n    while True:\n        open(os.path.join(d, 'f%d' % i), 'w').close()\n        i += 1\n"
	}
	return fmt.Sprintf(`import errno, os
d = %q
block = b'x' * (1 << 20)
try:
%sexcept OSError as e:
    fs = [l.split()[2] for l in open("/proc/self/mounts") if l.split()[1] == d][0]
    st = os.statvfs(d)
    print(errno.errorcode[e.errno], fs, "of", st.f_blocks * st.f_frsize >> 20, "MiB")
`, dir, body)
}

const readOnlyWrites = `import errno, json, os
out = {}
def attempt(name, fn):
    try:
        fn()
        out[name] = "done"
    except OSError as e:
        out[name] = errno.errorcode[e.errno]
for d in ["/", "/usr", "/usr/lib", "/etc", "/sandbox", "/proc", "/sys", "/sys/fs/cgroup", "/dev"]:
    attempt("create " + d, lambda: open(os.path.join(d, "x"), "w").close())
    attempt("mkdir " + d, lambda: os.mkdir(os.path.join(d, "y")))
attempt("write /sandbox/main.py", lambda: open("/sandbox/main.py", "a").close())
attempt("chmod /sandbox/main.py", lambda: os.chmod("/sandbox/main.py", 0o777))
attempt("unlink /etc/passwd", lambda: os.unlink("/etc/passwd"))
attempt("write /etc/hosts", lambda: open("/etc/hosts", "a").close())
attempt("rename /usr/bin/true", lambda: os.rename("/usr/bin/true", "/usr/bin/true2"))
attempt("symlink /", lambda: os.symlink("/tmp", "/link"))
attempt("write /proc/sys/kernel/hostname", lambda: open("/proc/sys/kernel/hostname", "w").write("x"))
attempt("write /proc/sysrq-trigger", lambda: open("/proc/sysrq-trigger", "w").write("h"))
attempt("write cgroup memory limit", lambda: open("/sys/fs/cgroup/memory/memory.limit_in_bytes", "w").write("-1"))
print(json.dumps(out))
`

func readOnlyCheck(t *testing.T, r *Runc, res domain.Result) {
	var got map[string]string
	if err := json.Unmarshal([]byte(res.Stdout), &got); err != nil {
		t.Fatalf("%v: %q", err, res.Stdout)
	}
	if len(got) < 25 {
		t.Fatalf("only %d attempts reported: %v", len(got), got)
	}
	for what, outcome := range got {
		if outcome == "done" {
			t.Errorf("%s succeeded", what)
		}
	}
}

// kernelInterfaces tries what an escape starts with; the seccomp test has
// the whole list.
const kernelInterfaces = `import ctypes, errno, os, socket
libc = ctypes.CDLL(None, use_errno=True)
def show(name, rc):
    print(name, "ok" if rc == 0 else errno.errorcode[ctypes.get_errno()])
child = os.fork()
if child == 0:
    import time
    time.sleep(60)
    os._exit(0)
show("ptrace", libc.ptrace(16, child, 0, 0))  # PTRACE_ATTACH to its own child
os.kill(child, 9)
show("mount", libc.mount(b"none", b"/tmp", b"tmpfs", 0, None))
show("unshare", libc.unshare(0x10000000 | 0x20000))  # user and mount namespaces
show("keyctl", libc.syscall(250, 0, -3, 1))  # KEYCTL_GET_KEYRING_ID, create the session keyring
try:
    socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    print("AF_PACKET ok")
except OSError as e:
    print("AF_PACKET", errno.errorcode[e.errno])
`

// setuidSearch looks for setuid and setgid files everywhere but /proc and
// /sys, and reports whether each one's mount honours the bit.
const setuidSearch = `import json, os, stat
found = {}
for root, dirs, files in os.walk("/"):
    if root in ("/proc", "/sys"):
        dirs[:] = []
        continue
    for name in files:
        p = os.path.join(root, name)
        try:
            st = os.lstat(p)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_mode & (stat.S_ISUID | stat.S_ISGID):
            found[p] = bool(os.statvfs(p).f_flag & os.ST_NOSUID)
with open("/proc/self/status") as f:
    nnp = [l.split()[1] for l in f if l.startswith("NoNewPrivs")][0]
print(json.dumps({"found": found, "no_new_privs": nnp}))
`

func setuidCheck(t *testing.T, r *Runc, res domain.Result) {
	var got struct {
		Found      map[string]bool
		NoNewPrivs string `json:"no_new_privs"`
	}
	if err := json.Unmarshal([]byte(res.Stdout), &got); err != nil {
		t.Fatalf("%v: %q", err, res.Stdout)
	}
	// The host's /usr has setuid binaries (su, mount, passwd…): every one
	// is masked, so the script finds none, on any mount.
	if len(setuidFiles()) == 0 {
		t.Fatal("the host has no setuid file under /usr: this check proves nothing here")
	}
	for p, nosuid := range got.Found {
		t.Errorf("setuid or setgid file reachable: %s (nosuid mount: %v)", p, nosuid)
	}
	if got.NoNewPrivs != "1" {
		t.Errorf("NoNewPrivs %q", got.NoNewPrivs)
	}
}
