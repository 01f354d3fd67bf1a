//go:build linux

package oci

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/runner"
)

// These tests run real containers: they need root, runc and cgroup v1.

func runcPath(tb testing.TB) string {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Fatal("the sandbox tests need root (the README test command runs as root)")
	}
	p := os.Getenv("INTEGR8SCODE_RUNC")
	if p == "" {
		p = "runc"
		if _, err := os.Stat("/usr/sbin/runc"); err == nil {
			p = "/usr/sbin/runc"
		}
	}
	path, err := exec.LookPath(p)
	if err != nil {
		tb.Fatalf("runc not found (deploy/host/setup.sh installs it): %v", err)
	}
	return path
}

func newSandbox(tb testing.TB, cfg Config) *Runc {
	tb.Helper()
	cfg.RuncPath = runcPath(tb)
	if cfg.StateDir == "" {
		cfg.StateDir = filepath.Join(tb.TempDir(), "sandbox")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(testWriter{tb}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	r, err := New(cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(func() {
		if err := r.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return r
}

type testWriter struct{ tb testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

var fast = domain.Limits{TimeoutMs: 10000, MemoryBytes: 128 << 20, CPUMillicores: 1000}

func job(script string, limits domain.Limits) runner.Job {
	return runner.Job{ExecutionID: "0b7e-test", Attempt: 1, Language: "python", Script: script, Limits: limits}
}

func run(t *testing.T, r *Runc, j runner.Job) domain.Result {
	t.Helper()
	res, err := r.Run(context.Background(), j)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !res.Verdict.Valid() {
		t.Fatalf("invalid verdict %q", res.Verdict)
	}
	// Every result must be encodable for the ledger, whatever the script wrote.
	if _, err := json.Marshal(res); err != nil {
		t.Fatalf("result does not encode as JSON: %v", err)
	}
	return res
}

func wantVerdict(t *testing.T, res domain.Result, want domain.Verdict) {
	t.Helper()
	if res.Verdict != want {
		t.Fatalf("verdict %s (%s), want %s\nstdout: %.2000s\nstderr: %.2000s", res.Verdict, res.Message, want, res.Stdout, res.Stderr)
	}
}

func wantExit(t *testing.T, res domain.Result, code int) {
	t.Helper()
	if res.ExitCode == nil || *res.ExitCode != code {
		t.Fatalf("exit code %v, want %d", fmtCode(res.ExitCode), code)
	}
}

func fmtCode(p *int) string {
	if p == nil {
		return "none"
	}
	return strconv.Itoa(*p)
}

// assertClean checks that no run left anything: no bundle, no runc
// container, no cgroup, no process in this sandbox's cgroups, no uid slot
// taken.
func assertClean(t *testing.T, r *Runc) {
	t.Helper()
	waiting := r.pool.pause(t)
	defer r.pool.resume()
	all, err := r.leftovers()
	if err != nil {
		t.Fatalf("leftovers: %v", err)
	}
	var left []string
	for _, l := range all {
		if !ofWaiting(l, waiting) {
			left = append(left, l)
		}
	}
	if len(left) > 0 {
		t.Fatalf("left behind: %v", left)
	}
	if procs := processesUnder(t, r.cgroups.parent, waiting); len(procs) > 0 {
		t.Fatalf("processes still running in %s: %v", r.cgroups.parent, procs)
	}
	if n := r.slots.busy(); n != len(waiting) {
		t.Fatalf("%d uid slots still taken (%d by waiting containers)", n, len(waiting))
	}
}

// processesUnder lists host processes whose pids cgroup is under parent,
// except those of the waiting containers named in skip.
func processesUnder(t *testing.T, parent string, skip ...map[string]bool) []string {
	t.Helper()
	out, err := listProcessesUnder(parent, skip...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func listProcessesUnder(parent string, skip ...map[string]bool) ([]string, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cgroup"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			parts := strings.SplitN(line, ":", 3)
			if len(parts) != 3 || !strings.Contains(parts[1], "pids") || !strings.HasPrefix(parts[2], parent+"/") {
				continue
			}
			leaf, _, _ := strings.Cut(strings.TrimPrefix(parts[2], parent+"/"), "/")
			if len(skip) > 0 && skip[0][leaf] {
				continue
			}
			cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			out = append(out, e.Name()+" "+strings.ReplaceAll(string(cmd), "\x00", " "))
		}
	}
	return out, nil
}

// TestRun is what the runc sandbox promises beyond the contract every
// sandbox keeps (contract_test.go, runner/sandboxtest).
func TestRun(t *testing.T) {
	r := newSandbox(t, Config{Slots: 8})

	t.Run("StdinEchoed", func(t *testing.T) {
		j := job("import sys\nsys.stdout.write(sys.stdin.read())\n", fast)
		j.Stdin = "line one\nline two\n"
		res := run(t, r, j)
		wantVerdict(t, res, domain.VerdictCompleted)
		if res.Stdout != j.Stdin {
			t.Fatalf("stdout %q, want %q", res.Stdout, j.Stdin)
		}
		// More than a pipe holds, both ways.
		j.Stdin = strings.Repeat("0123456789abcdef", 16<<10)
		res = run(t, r, j)
		wantVerdict(t, res, domain.VerdictCompleted)
		if res.Stdout != j.Stdin {
			t.Fatalf("large stdin: got %d bytes back, want %d", len(res.Stdout), len(j.Stdin))
		}
		assertClean(t, r)
	})

	t.Run("InvalidUTF8Output", func(t *testing.T) {
		res := run(t, r, job("import sys\nsys.stdout.buffer.write(b'\\xff\\xfe ok\\n')\n", fast))
		wantVerdict(t, res, domain.VerdictCompleted)
		if res.Stdout != "\xff\xfe ok\n" {
			t.Fatalf("stdout %q, want the bytes as written", res.Stdout)
		}
		assertClean(t, r)
	})

	t.Run("Timeout", func(t *testing.T) {
		limits := domain.Limits{TimeoutMs: 1000, MemoryBytes: 64 << 20, CPUMillicores: 100}
		start := time.Now()
		res := run(t, r, job("print('spinning')\nwhile True:\n    pass\n", limits))
		elapsed := time.Since(start)
		wantVerdict(t, res, domain.VerdictTimeout)
		if elapsed > 4*time.Second {
			t.Fatalf("timeout took %s", elapsed)
		}
		if res.Stdout != "spinning\n" {
			t.Fatalf("stdout before the timeout %q, want it kept", res.Stdout)
		}
		if res.Usage.CPUTimeMs > 300 {
			t.Fatalf("cpu time %d ms in 1 s at 100m: the quota is not applied", res.Usage.CPUTimeMs)
		}
		t.Logf("elapsed %s usage %+v", elapsed, res.Usage)
		assertClean(t, r)
	})

	t.Run("MemoryBomb", func(t *testing.T) {
		limits := domain.Limits{TimeoutMs: 20000, MemoryBytes: 64 << 20, CPUMillicores: 1000}
		res := run(t, r, job("a = []\nwhile True:\n    a.append(b'x' * (1 << 20))\n", limits))
		wantVerdict(t, res, domain.VerdictMemoryLimit)
		if res.Signal != "SIGKILL" {
			t.Fatalf("signal %q, want SIGKILL", res.Signal)
		}
		if res.Usage.PeakMemoryBytes < 48<<20 || res.Usage.PeakMemoryBytes > 64<<20 {
			t.Fatalf("peak memory %d, want close to the 64 MiB limit", res.Usage.PeakMemoryBytes)
		}
		assertClean(t, r)
	})

	t.Run("SelfKillIsNotMemoryLimit", func(t *testing.T) {
		// Exit code 137 without an OOM kill is the script's own doing.
		res := run(t, r, job("import sys\nsys.exit(137)\n", fast))
		wantVerdict(t, res, domain.VerdictRuntimeErr)
		wantExit(t, res, 137)
		assertClean(t, r)
	})

	t.Run("ForkBomb", func(t *testing.T) {
		limits := domain.Limits{TimeoutMs: 3000, MemoryBytes: 128 << 20, CPUMillicores: 500}
		script := "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
		res := run(t, r, job(script, limits))
		if res.Verdict != domain.VerdictTimeout && res.Verdict != domain.VerdictRuntimeErr {
			t.Fatalf("verdict %s (%s), want timeout or runtime_error", res.Verdict, res.Message)
		}
		assertClean(t, r)
		res = run(t, r, job(`print("still fine")`, domain.DefaultLimits))
		wantVerdict(t, res, domain.VerdictCompleted)
		assertClean(t, r)
	})

	t.Run("OutputFlood", func(t *testing.T) {
		res := run(t, r, job("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n", fast))
		wantVerdict(t, res, domain.VerdictOutputLimit)
		if !res.OutputTruncated || len(res.Stdout) != r.cfg.OutputCapBytes {
			t.Fatalf("truncated %v, %d bytes of stdout, want exactly the cap %d", res.OutputTruncated, len(res.Stdout), r.cfg.OutputCapBytes)
		}
		res = run(t, r, job("import sys\nwhile True:\n    print('e' * 1000, file=sys.stderr)\n", fast))
		wantVerdict(t, res, domain.VerdictOutputLimit)
		if !res.OutputTruncated || len(res.Stderr) != r.cfg.OutputCapBytes {
			t.Fatalf("stderr: truncated %v, %d bytes", res.OutputTruncated, len(res.Stderr))
		}
		assertClean(t, r)
	})

	t.Run("OutputAtCapIsNotTruncated", func(t *testing.T) {
		script := fmt.Sprintf("import sys\nsys.stdout.write('y' * %d)\n", r.cfg.OutputCapBytes)
		res := run(t, r, job(script, fast))
		wantVerdict(t, res, domain.VerdictCompleted)
		if res.OutputTruncated || len(res.Stdout) != r.cfg.OutputCapBytes {
			t.Fatalf("truncated %v, %d bytes", res.OutputTruncated, len(res.Stdout))
		}
		assertClean(t, r)
	})

	t.Run("Network", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		var accepted atomic.Int64
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				accepted.Add(1)
				c.Close()
			}
		}()
		port := ln.Addr().(*net.TCPAddr).Port
		script := fmt.Sprintf(`import json, os, socket
try:
    socket.create_connection(("127.0.0.1", %d), timeout=2).close()
    host = "connected"
except OSError as e:
    host = type(e).__name__
print(json.dumps({
    "host_loopback": host,
    "interfaces": sorted(os.listdir("/sys/class/net")),
    "dev": [l.split(":")[0].strip() for l in open("/proc/net/dev").read().splitlines()[2:]],
    "routes": open("/proc/net/route").read().splitlines()[1:],
}))
`, port)
		res := run(t, r, job(script, fast))
		wantVerdict(t, res, domain.VerdictCompleted)
		var got struct {
			HostLoopback string   `json:"host_loopback"`
			Interfaces   []string `json:"interfaces"`
			Dev          []string `json:"dev"`
			Routes       []string `json:"routes"`
		}
		if err := json.Unmarshal([]byte(res.Stdout), &got); err != nil {
			t.Fatalf("%v: %q", err, res.Stdout)
		}
		if got.HostLoopback == "connected" || accepted.Load() != 0 {
			t.Fatalf("the script reached the host's loopback (%s, %d accepted)", got.HostLoopback, accepted.Load())
		}
		if fmt.Sprint(got.Interfaces) != "[lo]" || fmt.Sprint(got.Dev) != "[lo]" || len(got.Routes) != 0 {
			t.Fatalf("network: %+v, want only lo and no routes", got)
		}
		assertClean(t, r)
	})

	t.Run("ReadOnlyRoot", func(t *testing.T) {
		script := `import json
out = {}
for p in ["/x", "/usr/x", "/etc/passwd", "/sandbox/main.py", "/sandbox/x", "/proc/sys/kernel/hostname", "/sys/x", "/tmp/x", "/dev/shm/x"]:
    try:
        with open(p, "w") as f:
            f.write("x")
        out[p] = "written"
    except OSError as e:
        out[p] = e.strerror
print(json.dumps(out))
`
		res := run(t, r, job(script, fast))
		wantVerdict(t, res, domain.VerdictCompleted)
		var got map[string]string
		if err := json.Unmarshal([]byte(res.Stdout), &got); err != nil {
			t.Fatalf("%v: %q", err, res.Stdout)
		}
		for p, outcome := range got {
			writable := p == "/tmp/x" || p == "/dev/shm/x"
			if (outcome == "written") != writable {
				t.Errorf("write %s: %s", p, outcome)
			}
		}
		assertClean(t, r)
	})

	t.Run("NoHostEnvironment", func(t *testing.T) {
		secret := fmt.Sprintf("s3cr3t-%d", time.Now().UnixNano())
		t.Setenv("INTEGR8SCODE_TEST_SECRET", secret)
		script := `import os
print(open("/proc/1/environ", "rb").read())
print(open("/proc/self/environ", "rb").read())
print(dict(os.environ))
print(open("/proc/1/cmdline", "rb").read())
`
		res := run(t, r, job(script, fast))
		wantVerdict(t, res, domain.VerdictCompleted)
		if strings.Contains(res.Stdout, secret) || strings.Contains(res.Stdout, "INTEGR8SCODE_TEST_SECRET") {
			t.Fatalf("the service's environment reached the sandbox:\n%s", res.Stdout)
		}
		if !strings.Contains(res.Stdout, "HOME=/tmp") {
			t.Fatalf("environment not as configured:\n%s", res.Stdout)
		}
		assertClean(t, r)
	})

	t.Run("CancelBeforeStart", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		res, err := r.Run(ctx, job("print('never')\n", fast))
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		wantVerdict(t, res, domain.VerdictCancelled)
		assertClean(t, r)
	})

	t.Run("CancelDuringSetup", func(t *testing.T) {
		// Cancels land while runc is still building the container.
		for _, delay := range []time.Duration{time.Millisecond, 5 * time.Millisecond, 15 * time.Millisecond, 30 * time.Millisecond} {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(delay, cancel)
			res, err := r.Run(ctx, job("while True:\n    pass\n", fast))
			cancel()
			if err != nil {
				t.Fatalf("after %s: Run: %v", delay, err)
			}
			wantVerdict(t, res, domain.VerdictCancelled)
			assertClean(t, r)
		}
	})

	t.Run("DaemonGone", func(t *testing.T) {
		script := `import os, sys, time
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.setsid()
    if os.fork() == 0:
        os.write(w, b"%d" % os.getpid())
        time.sleep(600)  # keeps stdout and stderr open
    os._exit(0)
os.waitpid(pid, 0)
print("daemon", os.read(r, 32).decode())
`
		start := time.Now()
		res := run(t, r, job(script, fast))
		wantVerdict(t, res, domain.VerdictCompleted)
		if elapsed := time.Since(start); elapsed > 5*time.Second {
			t.Fatalf("the run waited for the daemon: %s", elapsed)
		}
		if !strings.HasPrefix(res.Stdout, "daemon ") {
			t.Fatalf("stdout %q", res.Stdout)
		}
		assertClean(t, r)
	})

	t.Run("Seccomp", func(t *testing.T) {
		script := `import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
for name, flags in [("user", 0x10000000), ("net", 0x40000000), ("mount", 0x00020000)]:
    rc = libc.unshare(flags)
    print(name, rc, os.strerror(ctypes.get_errno()))
pid = os.fork()
if pid == 0:
    os._exit(7)
print("fork", os.waitpid(pid, 0)[1] >> 8)
`
		res := run(t, r, job(script, fast))
		wantVerdict(t, res, domain.VerdictCompleted)
		want := "user -1 Operation not permitted\nnet -1 Operation not permitted\nmount -1 Operation not permitted\nfork 7\n"
		if res.Stdout != want {
			t.Fatalf("stdout %q, want %q", res.Stdout, want)
		}
		assertClean(t, r)
	})

	t.Run("Int80Blocked", func(t *testing.T) {
		// getpid through the 32-bit ABI (int 0x80), which a filter written
		// for x86_64 alone would not see: libseccomp kills the caller.
		wantSIGSYS(t, r, "0xb8, 20, 0, 0, 0, 0xcd, 0x80, 0xc3") // mov eax, 20; int 0x80; ret
	})

	t.Run("Concurrent", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan string, 4)
		for i := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				j := job(fmt.Sprintf("print(%d)", i), fast)
				res, err := r.Run(context.Background(), j)
				if err != nil || res.Verdict != domain.VerdictCompleted || res.Stdout != fmt.Sprintf("%d\n", i) {
					errs <- fmt.Sprintf("run %d: %v %+v", i, err, res)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
		assertClean(t, r)
	})

	t.Run("SelfTest", func(t *testing.T) {
		if err := r.SelfTest(context.Background()); err != nil {
			t.Fatal(err)
		}
		assertClean(t, r)
	})
}

func TestNew(t *testing.T) {
	t.Run("MissingRunc", func(t *testing.T) {
		runcPath(t)
		_, err := New(Config{RuncPath: "/nonexistent/runc", StateDir: t.TempDir()})
		if err == nil || !strings.Contains(err.Error(), "runc not found") {
			t.Fatalf("err %v, want runc not found", err)
		}
	})
	t.Run("MissingPython", func(t *testing.T) {
		_, err := New(Config{RuncPath: runcPath(t), Python: "/usr/bin/python-nonexistent", StateDir: t.TempDir()})
		if err == nil || !strings.Contains(err.Error(), "python") {
			t.Fatalf("err %v, want a python error", err)
		}
	})
	t.Run("PythonOutsideUsr", func(t *testing.T) {
		_, err := New(Config{RuncPath: runcPath(t), Python: "/root/.pyenv/shims/python3", StateDir: t.TempDir()})
		if err == nil || !strings.Contains(err.Error(), "under /usr") {
			t.Fatalf("err %v, want a refusal", err)
		}
	})
	t.Run("StateDirInUse", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "sandbox")
		newSandbox(t, Config{StateDir: dir})
		_, err := New(Config{RuncPath: runcPath(t), StateDir: dir})
		if err == nil || !strings.Contains(err.Error(), "in use") {
			t.Fatalf("err %v, want state dir in use", err)
		}
	})
}

// TestSlots: a run beyond the slots waits a moment for one (a finished
// run's cleanup may still hold it), then is refused as the platform's
// error.
func TestSlots(t *testing.T) {
	r := newSandbox(t, Config{Slots: 1})
	r.slotWait = 200 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan domain.Result)
	go func() {
		res, _ := r.Run(ctx, job("import time\ntime.sleep(60)\n", domain.Limits{TimeoutMs: 60000, MemoryBytes: 64 << 20, CPUMillicores: 100}))
		done <- res
	}()
	for r.slots.busy() == 0 {
		time.Sleep(time.Millisecond)
	}
	if _, err := r.Run(context.Background(), job(`print("hi")`, fast)); err == nil || !strings.Contains(err.Error(), "slots") {
		t.Fatalf("err %v, want all slots busy", err)
	}
	cancel()
	if res := <-done; res.Verdict != domain.VerdictCancelled {
		t.Fatalf("verdict %s", res.Verdict)
	}
	assertClean(t, r)
}

// TestRuncFailure checks that a container runc cannot start is the
// platform's error, not the script's runtime_error, and leaves nothing.
func TestRuncFailure(t *testing.T) {
	r := newSandbox(t, Config{})
	r.python = "/usr/bin/no-such-python"
	res, err := r.Run(context.Background(), job(`print("hi")`, fast))
	if err == nil {
		t.Fatalf("Run succeeded with %+v, want an error", res)
	}
	t.Logf("error: %v", err)
	assertClean(t, r)
}

// TestLeftoversFromCrash kills a process in the middle of a run and checks
// that the next New removes its container, processes, cgroups and bundle.
func TestLeftoversFromCrash(t *testing.T) {
	runc := runcPath(t)
	dir := filepath.Join(t.TempDir(), "sandbox")
	helper := exec.Command(os.Args[0])
	helper.Env = append(os.Environ(), "OCI_CRASH_HELPER_DIR="+dir, "OCI_CRASH_HELPER_RUNC="+runc)
	stdout, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	helper.Stderr = testWriter{t}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	defer helper.Process.Kill()
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "RUNNING ") {
				line <- strings.TrimPrefix(sc.Text(), "RUNNING ")
			}
		}
		close(line)
	}()
	var parent string
	select {
	case parent = <-line:
	case <-time.After(20 * time.Second):
		t.Fatal("the helper did not start its run")
	}
	if parent == "" {
		t.Fatal("the helper exited")
	}
	helper.Process.Signal(syscall.SIGKILL)
	helper.Wait()
	if procs := processesUnder(t, parent); len(procs) == 0 {
		t.Fatal("expected the crashed process's container to be still running")
	}
	known, err := exec.Command(runc, "--root", filepath.Join(dir, "runc"), "list", "--quiet").Output()
	if id := containerID(job("", fast), 1); err != nil || !strings.Contains(string(known), id) {
		t.Fatalf("runc does not list the crashed process's container %s: %q %v", id, known, err)
	}

	r := newSandbox(t, Config{StateDir: dir})
	assertClean(t, r)
	res := run(t, r, job(`print("hi")`, domain.DefaultLimits))
	wantVerdict(t, res, domain.VerdictCompleted)
	assertClean(t, r)
}

// TestMain lets this test binary, started again by TestLeftoversFromCrash
// with OCI_CRASH_HELPER_DIR set, be the process that test kills mid-run.
func TestMain(m *testing.M) {
	if dir := os.Getenv("OCI_CRASH_HELPER_DIR"); dir != "" {
		os.Exit(crashHelper(dir, os.Getenv("OCI_CRASH_HELPER_RUNC")))
	}
	os.Exit(m.Run())
}

// crashHelper starts a long run, says where its container is, and waits to
// be killed.
func crashHelper(dir, runc string) int {
	r, err := New(Config{RuncPath: runc, StateDir: dir})
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash helper:", err)
		return 1
	}
	go func() {
		for {
			// Its Python (the bootstrap names the script's path), not just
			// runc's init in the cgroup: runc records the container only
			// once its process runs, and the test wants a container runc
			// knows, as a crash mid-run leaves it.
			procs, _ := listProcessesUnder(r.cgroups.parent)
			python := slices.ContainsFunc(procs, func(p string) bool { return strings.Contains(p, scriptPath) })
			if r.cgroups.exists(containerID(job("", fast), 1)) && python {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		fmt.Println("RUNNING " + r.cgroups.parent)
	}()
	r.Run(context.Background(), job("import time\ntime.sleep(600)\n", domain.Limits{TimeoutMs: 600000, MemoryBytes: 64 << 20, CPUMillicores: 100}))
	fmt.Fprintln(os.Stderr, "crash helper: the run ended before the helper was killed")
	return 1
}

// exists reports whether any hierarchy still has the container's cgroup
// (the crash helper's sign that its run started).
func (t *cgroupTree) exists(id string) bool {
	for _, mnt := range t.all {
		if _, err := os.Stat(filepath.Join(mnt, t.path(id))); err == nil {
			return true
		}
	}
	return false
}

// BenchmarkHelloWorld is a whole Run: bundle, runc run --keep, accounting,
// runc delete and cleanup. Compare with BenchmarkBareRuncRun.
func BenchmarkHelloWorld(b *testing.B) {
	r := newSandbox(b, Config{})
	for _, limits := range benchLimits {
		b.Run(fmt.Sprintf("cpu=%dm", limits.CPUMillicores), func(b *testing.B) {
			j := job(`print("hi")`, limits)
			for b.Loop() {
				res, err := r.Run(context.Background(), j)
				if err != nil || res.Verdict != domain.VerdictCompleted {
					b.Fatalf("%v %+v", err, res)
				}
			}
		})
	}
}

// BenchmarkWarmHelloWorld is a whole Run that takes a container of the
// warm pool: handoff, the script, accounting, runc delete and cleanup. The
// pool's refill is not timed: between runs the benchmark waits for it.
func BenchmarkWarmHelloWorld(b *testing.B) {
	r := newSandbox(b, Config{Slots: 1, Warm: 1})
	for _, limits := range benchLimits {
		b.Run(fmt.Sprintf("cpu=%dm", limits.CPUMillicores), func(b *testing.B) {
			j := job(`print("hi")`, limits)
			for b.Loop() {
				b.StopTimer()
				for r.PoolStats().Waiting == 0 {
					time.Sleep(time.Millisecond)
				}
				b.StartTimer()
				res, err := r.Run(context.Background(), j)
				if err != nil || res.Verdict != domain.VerdictCompleted {
					b.Fatalf("%v %+v", err, res)
				}
			}
			if s := r.PoolStats(); s.Misses != 0 {
				b.Fatalf("runs found no waiting container: %+v", s)
			}
		})
	}
}

var benchLimits = []domain.Limits{
	domain.DefaultLimits,
	{TimeoutMs: 5000, MemoryBytes: 128 << 20, CPUMillicores: 1000},
}

// BenchmarkMinimalRuncRun is the lowest floor: `runc run` of the same
// script with the same limits (memory, CPU, pids), a read-only root and no
// network, but none of the hardening (no user namespace, no seccomp
// filter, no masked paths), as a minimal container runtime would start it.
func BenchmarkMinimalRuncRun(b *testing.B) { benchBareRunc(b, true) }

// BenchmarkBareRuncRun is the floor: `runc run` of the same bundle (same
// config.json, same limits), with runc deleting the container itself, and
// nothing else.
func BenchmarkBareRuncRun(b *testing.B) { benchBareRunc(b, false) }

// benchBareRunc times plain `runc run`s of a bundle written once, with
// the sandbox's hardened config.json or, with minimal, Floor's minimal one.
func benchBareRunc(b *testing.B, minimal bool) {
	r := newSandbox(b, Config{})
	for _, limits := range benchLimits {
		b.Run(fmt.Sprintf("cpu=%dm", limits.CPUMillicores), func(b *testing.B) {
			c, err := r.newContainer("bare", 0)
			if err != nil {
				b.Fatal(err)
			}
			defer r.cleanup(c)
			if err := r.writeBundle(c, job(`print("hi")`, limits)); err != nil {
				b.Fatal(err)
			}
			if minimal {
				cfg, err := json.Marshal(r.minimalSpec(c, limits))
				if err != nil {
					b.Fatal(err)
				}
				if err := os.WriteFile(c.file(configFile), cfg, 0o400); err != nil {
					b.Fatal(err)
				}
			}
			for b.Loop() {
				cmd := exec.Command(r.cfg.RuncPath, "--root", r.runcRoot, "run", "--bundle", c.bundle, c.id)
				cmd.Stdout = io.Discard
				if err := cmd.Run(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
