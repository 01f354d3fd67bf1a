// Package sandboxtest is the contract every runner.Sandbox keeps, as one
// suite (in the spirit of Watermill's pub/sub test suite): each sandbox's
// tests run it against the real thing (a runc container, a Kubernetes
// pod) and declare what it promises beyond the contract. The verdict rules
// themselves are domain.Judge's; this suite proves that each sandbox
// observes the endings they judge.
package sandboxtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/runner"
)

// Features is what a sandbox under test declares.
type Features struct {
	// OutputCap is the sandbox's cap of stdout and of stderr, in bytes.
	OutputCap int64
	// AfterEach runs after every case: the sandbox's own checks (nothing
	// left behind on the host, no pod left in the namespace).
	AfterEach func(t *testing.T)
	// Deadline bounds one run (default two minutes: a pod may need a
	// while to be scheduled on a busy node).
	Deadline time.Duration
}

// Run runs the contract against sb.
func Run(t *testing.T, sb runner.Sandbox, f Features) {
	if f.Deadline == 0 {
		f.Deadline = 2 * time.Minute
	}
	s := suite{sb: sb, f: f}
	for _, c := range []struct {
		name string
		run  func(t *testing.T)
	}{
		{"CompletedWithUsage", s.completed},
		{"RuntimeErrorWithTraceback", s.runtimeError},
		{"ExitCodeOfItsOwn", s.exitCode},
		{"KilledBySignal", s.signal},
		{"StdinAndBothStreamsByteForByte", s.streams},
		{"LargeScriptUnreadStdin", s.largeScript},
		{"Timeout", s.timeout},
		{"MemoryLimit", s.memory},
		{"OutputLimit", s.output},
		{"Cancel", s.cancel},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.run(t)
			if f.AfterEach != nil {
				f.AfterEach(t)
			}
		})
	}
}

type suite struct {
	sb runner.Sandbox
	f  Features
}

// Job makes a job with a unique execution id (a pod's name comes from it).
func Job(script string) runner.Job {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return runner.Job{ExecutionID: "contract-" + hex.EncodeToString(b), Attempt: 1, Language: "python",
		Script: script, Limits: domain.DefaultLimits}
}

func (s suite) run(t *testing.T, j runner.Job) domain.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), s.f.Deadline)
	defer cancel()
	res, err := s.sb.Run(ctx, j)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res
}

// want fails the test unless res has verdict v and message m ("" for any).
func want(t *testing.T, res domain.Result, v domain.Verdict, m string) {
	t.Helper()
	if res.Verdict != v || (m != "" && res.Message != m) {
		t.Fatalf("verdict %s (%q), want %s (%q)\nstdout: %.1000q\nstderr: %.1000q", res.Verdict, res.Message, v, m, res.Stdout, res.Stderr)
	}
}

func exitCodeOf(res domain.Result) string {
	if res.ExitCode == nil {
		return "none"
	}
	return fmt.Sprint(*res.ExitCode)
}

func (s suite) completed(t *testing.T) {
	res := s.run(t, Job(`print("hello, world")`))
	want(t, res, domain.VerdictCompleted, "")
	if res.Stdout != "hello, world\n" || res.Stderr != "" || exitCodeOf(res) != "0" || res.Signal != "" || res.OutputTruncated {
		t.Fatalf("got %+v", res)
	}
	if u := res.Usage; u.WallTimeMs <= 0 || u.CPUTimeMs <= 0 || u.PeakMemoryBytes <= 0 {
		t.Fatalf("usage not reported: %+v", u)
	}
}

func (s suite) runtimeError(t *testing.T) {
	res := s.run(t, Job("import sys\nprint('before')\nprint('oops', file=sys.stderr)\n1/0\n"))
	want(t, res, domain.VerdictRuntimeErr, "exited with code 1")
	head := "oops\nTraceback (most recent call last):\n  File \"/sandbox/main.py\", line 4, in <module>\n"
	if res.Stdout != "before\n" || exitCodeOf(res) != "1" || !strings.HasPrefix(res.Stderr, head) ||
		!strings.HasSuffix(res.Stderr, "ZeroDivisionError: division by zero\n") {
		t.Fatalf("stdout %q, exit %s, stderr %q (want it to start %q: no frame of the sandbox's own)", res.Stdout, exitCodeOf(res), res.Stderr, head)
	}
}

func (s suite) exitCode(t *testing.T) {
	res := s.run(t, Job("print('bye')\nexit(3)\n"))
	want(t, res, domain.VerdictRuntimeErr, "exited with code 3")
	if exitCodeOf(res) != "3" || res.Signal != "" || res.Stdout != "bye\n" {
		t.Fatalf("got %+v", res)
	}
	// 130 is the script's own, not a signal (SIGINT cannot end it).
	res = s.run(t, Job("import sys\nsys.exit(130)\n"))
	want(t, res, domain.VerdictRuntimeErr, "exited with code 130")
	if res.Signal != "" {
		t.Fatalf("exit 130 read as %s", res.Signal)
	}
}

func (s suite) signal(t *testing.T) {
	res := s.run(t, Job("import ctypes\nctypes.string_at(0)\n"))
	want(t, res, domain.VerdictRuntimeErr, "killed by SIGSEGV")
	if res.Signal != "SIGSEGV" || exitCodeOf(res) != "139" {
		t.Fatalf("signal %q exit %s", res.Signal, exitCodeOf(res))
	}
}

func (s suite) streams(t *testing.T) {
	j := Job(`import sys
data = sys.stdin.read()
print("read", len(data), data[:6])
for i in range(3):
    print("out", i, flush=True)
    print("err", i, file=sys.stderr, flush=True)
sys.stdout.buffer.write(b"\x00\r\n\xff binary")
`)
	j.Stdin = "hello\nworld\n" + strings.Repeat("z", 200<<10)
	res := s.run(t, j)
	want(t, res, domain.VerdictCompleted, "")
	wantOut := fmt.Sprintf("read %d hello\n\nout 0\nout 1\nout 2\n\x00\r\n\xff binary", len(j.Stdin))
	if res.Stdout != wantOut || res.Stderr != "err 0\nerr 1\nerr 2\n" {
		t.Fatalf("stdout %q\nstderr %q", res.Stdout, res.Stderr)
	}
}

func (s suite) largeScript(t *testing.T) {
	// Larger than one command-line argument may be (128 KiB), with a stdin
	// larger than a pipe holds that the script never reads.
	j := Job("# " + strings.Repeat("x", 200<<10) + "\nprint('big')\n")
	j.Stdin = strings.Repeat("unread\n", 40000)
	res := s.run(t, j)
	want(t, res, domain.VerdictCompleted, "")
	if res.Stdout != "big\n" {
		t.Fatalf("stdout %q", res.Stdout)
	}
}

func (s suite) timeout(t *testing.T) {
	j := Job("print('spinning', flush=True)\nwhile True: pass\n")
	j.Limits.TimeoutMs = 2000
	begin := time.Now()
	res := s.run(t, j)
	want(t, res, domain.VerdictTimeout, "timed out after 2s")
	if res.Stdout != "spinning\n" {
		t.Fatalf("stdout %q: what the script wrote before the timeout is kept", res.Stdout)
	}
	// Behaviour, not a budget: the timeout is not early, and not minutes late.
	if res.Usage.WallTimeMs < 1900 || time.Since(begin) > 30*time.Second {
		t.Fatalf("wall time %d ms, reported after %s, for a 2 s timeout", res.Usage.WallTimeMs, time.Since(begin))
	}
}

func (s suite) memory(t *testing.T) {
	res := s.run(t, Job("print('allocating', flush=True)\nb = b'x' * (200 << 20)\nprint('survived')\n"))
	want(t, res, domain.VerdictMemoryLimit, "memory limit of 128 MiB exceeded")
	if res.Stdout != "allocating\n" {
		t.Fatalf("stdout %q", res.Stdout)
	}
	res = s.run(t, Job("b = b'x' * (64 << 20)\nprint(len(b))\n"))
	want(t, res, domain.VerdictCompleted, "")
	if res.Usage.PeakMemoryBytes < 64<<20 {
		t.Fatalf("peak memory %d B for a 64 MiB allocation", res.Usage.PeakMemoryBytes)
	}
}

func (s suite) output(t *testing.T) {
	msg := fmt.Sprintf("output exceeded the limit of %d bytes per stream", s.f.OutputCap)
	for name, script := range map[string]string{
		"stdout": "while True: print('x' * 1000)",
		"stderr": "import sys\nwhile True: sys.stderr.write('e' * 1000)",
	} {
		t.Run(name, func(t *testing.T) {
			res := s.run(t, Job(script))
			want(t, res, domain.VerdictOutputLimit, msg)
			n := int64(len(res.Stdout) + len(res.Stderr))
			if !res.OutputTruncated || int64(len(res.Stdout)) > s.f.OutputCap || int64(len(res.Stderr)) > s.f.OutputCap || n < s.f.OutputCap/2 {
				t.Fatalf("stdout %d B, stderr %d B, truncated %v for a cap of %d B", len(res.Stdout), len(res.Stderr), res.OutputTruncated, s.f.OutputCap)
			}
		})
	}
}

func (s suite) cancel(t *testing.T) {
	j := Job("import time\nprint('started', flush=True)\ntime.sleep(60)\n")
	j.Limits.TimeoutMs = 30000
	ctx, cancel := context.WithTimeout(context.Background(), s.f.Deadline)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	go func() { time.Sleep(3 * time.Second); stop() }()
	begin := time.Now()
	res, err := s.sb.Run(runCtx, j)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	want(t, res, domain.VerdictCancelled, "cancelled")
	if d := time.Since(begin); d > 30*time.Second {
		t.Fatalf("a cancel took %s to end the run", d)
	}
}
