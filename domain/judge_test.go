package domain_test

import (
	"testing"

	"github.com/integr8scode/integr8scode/domain"
)

// TestJudgeOrdersTheVerdicts is the one statement of the verdict rules;
// every sandbox reports an Ending and gets these.
func TestJudgeOrdersTheVerdicts(t *testing.T) {
	lim := domain.Limits{TimeoutMs: 2500, MemoryBytes: 64 << 20, CPUMillicores: 100}
	for _, c := range []struct {
		name    string
		in      domain.Ending
		verdict domain.Verdict
		message string
		exit    *int
		signal  string
	}{
		{"clean exit", domain.Ending{}, domain.VerdictCompleted, "", domain.IntPtr(0), ""},
		{"exit code", domain.Ending{ExitCode: 3}, domain.VerdictRuntimeErr, "exited with code 3", domain.IntPtr(3), ""},
		{"signal", domain.Ending{ExitCode: 139, Signal: "SIGSEGV"}, domain.VerdictRuntimeErr, "killed by SIGSEGV", domain.IntPtr(139), "SIGSEGV"},
		{"exit 130 of the script's own", domain.Ending{ExitCode: 130}, domain.VerdictRuntimeErr, "exited with code 130", domain.IntPtr(130), ""},
		{"OOM before the signal", domain.Ending{ExitCode: 137, Signal: "SIGKILL", OOMKilled: true}, domain.VerdictMemoryLimit, "memory limit of 64 MiB exceeded", domain.IntPtr(137), "SIGKILL"},
		{"an OOM kill of a child, the script exits 0", domain.Ending{OOMKilled: true}, domain.VerdictCompleted, "", domain.IntPtr(0), ""},
		{"output over the cap, ended by itself", domain.Ending{OutputTruncated: true, ExitCode: 0, OutputCap: 1024}, domain.VerdictOutputLimit, "output exceeded the limit of 1024 bytes per stream", nil, ""},
		{"output stopped by the platform", domain.Ending{StoppedFor: domain.VerdictOutputLimit, OutputCap: 1024}, domain.VerdictOutputLimit, "output exceeded the limit of 1024 bytes per stream", nil, ""},
		{"timeout before output", domain.Ending{StoppedFor: domain.VerdictTimeout, OutputTruncated: true}, domain.VerdictTimeout, "timed out after 2.5s", nil, ""},
		{"cancel before all", domain.Ending{StoppedFor: domain.VerdictCancelled, OutputTruncated: true, OOMKilled: true}, domain.VerdictCancelled, "cancelled", nil, ""},
	} {
		c.in.Limits = lim
		var res domain.Result
		domain.Judge(&res, c.in)
		if res.Verdict != c.verdict || res.Message != c.message || res.Signal != c.signal ||
			(res.ExitCode == nil) != (c.exit == nil) || (c.exit != nil && *res.ExitCode != *c.exit) {
			t.Fatalf("%s: %+v", c.name, res)
		}
		if c.verdict == domain.VerdictOutputLimit && !res.OutputTruncated {
			t.Fatalf("%s: an output-limit verdict without OutputTruncated", c.name)
		}
	}
}
