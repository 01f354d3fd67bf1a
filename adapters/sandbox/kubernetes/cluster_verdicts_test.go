//go:build kubernetes

package kubernetes

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/runner/sandboxtest"
)

// TestSelfKill: in a pod the supervisor is the pid namespace's init, not
// the script, so a script can kill itself with SIGKILL (in a runc container
// the script is init and the kernel ignores it).
func TestSelfKill(t *testing.T) {
	warmOrCold(t, nil, testSelfKill)
}

func testSelfKill(t *testing.T, f fixture) {
	res := f.run(t, job(t, "import os\nos.kill(os.getpid(), 9)\n"))
	if res.Verdict != domain.VerdictRuntimeErr || res.Signal != "SIGKILL" || *res.ExitCode != 137 {
		t.Fatalf("self-kill: got %+v", res)
	}
}

// The runner enforces the timeout itself too, in case the pod's supervisor
// does not: here the supervisor is told a timeout ten times longer.
func TestTimeoutEnforcedByRunner(t *testing.T) {
	f := newFixture(t, nil)
	f.pods.mutatePod = func(p *corev1.Pod) {
		c := p.Spec.Containers[0].Command
		c[len(c)-4] = "60000"
		// The timeout the runner sends with the script, ignored.
		const header = "TIMEOUT = int(head[1]) / 1000"
		if !strings.Contains(c[len(c)-5], header) {
			t.Fatal("the supervisor no longer takes its timeout from the header")
		}
		c[len(c)-5] = strings.Replace(c[len(c)-5], header, "TIMEOUT = 60", 1)
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

// TestSandboxContract runs the contract every sandbox keeps
// (runner/sandboxtest) against real pods on the test cluster.
// In Warm, the runs take pods of a warm pool (those whose limits differ
// from the pool's create their own).
func TestSandboxContract(t *testing.T) {
	for _, warm := range []int{0, 2} {
		t.Run(map[int]string{0: "Cold", 2: "Warm"}[warm], func(t *testing.T) {
			f := newFixture(t, func(c *Config) { c.OutputCapBytes, c.Warm = 64<<10, warm })
			sandboxtest.Run(t, f.pods, sandboxtest.Features{OutputCap: 64 << 10})
			if s := f.pods.PoolStats(); warm > 0 && s.Hits == 0 {
				t.Fatalf("no run took a warm pod: %+v", s)
			}
		})
	}
}

func TestOutputLimit(t *testing.T) {
	warmOrCold(t, func(c *Config) { c.OutputCapBytes = 64 << 10 }, testOutputLimit)
}

func testOutputLimit(t *testing.T, f fixture) {
	for name, script := range map[string]string{
		// Behind the supervisor's back, straight into the container's
		// stdout: no frames, so the runner's own cap must hold. (Floods
		// through stdout and stderr are in the contract.)
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
