//go:build kubernetes

package kubernetes

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/integr8scode/integr8scode/domain"
)

func TestHelloWorld(t *testing.T) {
	f := newFixture(t, nil)
	res := f.run(t, job(t, `print("hello, world")`))
	if res.Verdict != domain.VerdictCompleted || res.Stdout != "hello, world\n" || res.Stderr != "" ||
		res.ExitCode == nil || *res.ExitCode != 0 {
		t.Fatalf("got %+v", res)
	}
	if res.Usage.WallTimeMs <= 0 || res.Usage.CPUTimeMs <= 0 || res.Usage.PeakMemoryBytes <= 0 {
		t.Errorf("usage not reported: %+v", res.Usage)
	}
}

func TestRuntimeError(t *testing.T) {
	f := newFixture(t, nil)
	res := f.run(t, job(t, "import sys\nprint('before')\nprint('oops', file=sys.stderr)\n1/0\n"))
	if res.Verdict != domain.VerdictRuntimeErr || res.ExitCode == nil || *res.ExitCode != 1 {
		t.Fatalf("got %+v", res)
	}
	if res.Stdout != "before\n" {
		t.Errorf("stdout %q", res.Stdout)
	}
	want := "oops\nTraceback (most recent call last):\n  File \"/sandbox/main.py\", line 4, in <module>\n"
	if !strings.HasPrefix(res.Stderr, want) || !strings.HasSuffix(res.Stderr, "ZeroDivisionError: division by zero\n") {
		t.Errorf("stderr %q, want it to start with %q (no frame of the supervisor)", res.Stderr, want)
	}
	if res.Message != "exited with code 1" {
		t.Errorf("message %q", res.Message)
	}

	res = f.run(t, job(t, "import os\nos.kill(os.getpid(), 9)\n"))
	if res.Verdict != domain.VerdictRuntimeErr || res.Signal != "SIGKILL" || *res.ExitCode != 137 {
		t.Fatalf("self-kill: got %+v", res)
	}
	res = f.run(t, job(t, "exit(3)"))
	if res.Verdict != domain.VerdictRuntimeErr || *res.ExitCode != 3 || res.Signal != "" {
		t.Fatalf("exit(3): got %+v", res)
	}
}

func TestStdinAndStreams(t *testing.T) {
	f := newFixture(t, nil)
	j := job(t, `import sys, os
data = sys.stdin.read()
print("read", len(data), data[:6])
for i in range(3):
    print("out", i, flush=True)
    print("err", i, file=sys.stderr, flush=True)
sys.stdout.buffer.write(b"\x00\r\n\xff binary")
`)
	j.Stdin = "hello\nworld\n" + strings.Repeat("z", 200<<10)
	res := f.run(t, j)
	if res.Verdict != domain.VerdictCompleted {
		t.Fatalf("got %+v", res)
	}
	wantOut := fmt.Sprintf("read %d hello\n\nout 0\nout 1\nout 2\n\x00\r\n\xff binary", len(j.Stdin))
	if res.Stdout != wantOut || res.Stderr != "err 0\nerr 1\nerr 2\n" {
		t.Errorf("stdout %q\nstderr %q", res.Stdout, res.Stderr)
	}

	// A script larger than one command-line argument may be (128 KiB),
	// with stdin it never reads.
	j = job(t, "# "+strings.Repeat("x", 200<<10)+"\nprint('big')\n")
	j.Stdin = strings.Repeat("unread\n", 40000)
	res = f.run(t, j)
	if res.Verdict != domain.VerdictCompleted || res.Stdout != "big\n" {
		t.Fatalf("big script: got %+v", res)
	}
}

func TestTimeout(t *testing.T) {
	f := newFixture(t, nil)
	j := job(t, "print('spinning', flush=True)\nwhile True: pass\n")
	j.Limits.TimeoutMs = 2000
	begin := time.Now()
	res := f.run(t, j)
	if res.Verdict != domain.VerdictTimeout || res.Stdout != "spinning\n" || res.Message != "timed out after 2s" {
		t.Fatalf("got %+v", res)
	}
	if res.Usage.WallTimeMs < 2000 || res.Usage.WallTimeMs > 2500 {
		t.Errorf("wall time %d ms for a 2 s timeout", res.Usage.WallTimeMs)
	}
	if d := time.Since(begin); d > 8*time.Second {
		t.Errorf("a 2 s timeout took %s to report", d)
	}
}

// The runner enforces the timeout itself too, in case the pod's supervisor
// does not: here the supervisor is told a timeout ten times longer.
func TestTimeoutEnforcedByRunner(t *testing.T) {
	f := newFixture(t, nil)
	f.pods.mutatePod = func(p *corev1.Pod) {
		c := p.Spec.Containers[0].Command
		c[len(c)-4] = "60000"
	}
	j := job(t, "import time\nprint('sleeping', flush=True)\ntime.sleep(60)\n")
	j.Limits.TimeoutMs = 1000
	begin := time.Now()
	res := f.run(t, j)
	if res.Verdict != domain.VerdictTimeout || res.Stdout != "sleeping\n" {
		t.Fatalf("got %+v", res)
	}
	if d := time.Since(begin); d > 1*time.Second+killGrace+5*time.Second {
		t.Errorf("the runner's deadline took %s", d)
	}
}

func TestMemoryLimit(t *testing.T) {
	f := newFixture(t, nil)
	res := f.run(t, job(t, "print('allocating', flush=True)\nb = b'x' * (200 << 20)\nprint('survived')\n"))
	if res.Verdict != domain.VerdictMemoryLimit || res.Stdout != "allocating\n" || res.Message != "memory limit of 128 MiB exceeded" {
		t.Fatalf("got %+v", res)
	}
	// A script that stays within the limit is fine.
	res = f.run(t, job(t, "b = b'x' * (64 << 20)\nprint(len(b))\n"))
	if res.Verdict != domain.VerdictCompleted || res.Usage.PeakMemoryBytes < 64<<20 {
		t.Fatalf("64 MiB: got %+v", res)
	}
}

func TestOutputLimit(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.OutputCapBytes = 64 << 10 })
	for name, script := range map[string]string{
		"stdout": "while True: print('x' * 1000)",
		"stderr": "import sys\nwhile True: sys.stderr.write('e' * 1000)",
		// Behind the supervisor's back, straight into the container's
		// stdout: no frames, so the runner's own cap must hold.
		"raw": "import os\nfd = os.open('/proc/1/fd/1', os.O_WRONLY)\nwhile True: os.write(fd, b'r' * 4096)",
	} {
		t.Run(name, func(t *testing.T) {
			res := f.run(t, job(t, script))
			if res.Verdict != domain.VerdictOutputLimit || !res.OutputTruncated {
				t.Fatalf("got verdict %s message %q", res.Verdict, res.Message)
			}
			if len(res.Stdout) > 64<<10 || len(res.Stderr) > 64<<10 || len(res.Stdout)+len(res.Stderr) < 60<<10 {
				t.Errorf("stdout %d B, stderr %d B for a 64 KiB cap", len(res.Stdout), len(res.Stderr))
			}
		})
	}
}
