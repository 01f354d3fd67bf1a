package kubernetes

import (
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/integr8scode/integr8scode/domain"
)

func TestJudge(t *testing.T) {
	exited := func(code, sig int, oom int64) *report {
		return &report{Status: "exited", Code: code, Signal: sig, WallNs: 2e6, CPUNs: 3e6, PeakBytes: 4096, OOMKills: oom}
	}
	term := func(code int32, reason string) *corev1.ContainerStateTerminated {
		return &corev1.ContainerStateTerminated{ExitCode: code, Reason: reason}
	}
	cases := []struct {
		name      string
		in        verdictInput
		truncated bool
		verdict   domain.Verdict
		code      int
		signal    string
		message   string
	}{
		{"completed, kubelet and report", verdictInput{term: term(0, "Completed"), end: exited(0, 0, 0)}, false, domain.VerdictCompleted, 0, "", ""},
		{"completed, report alone", verdictInput{end: exited(0, 0, 0)}, false, domain.VerdictCompleted, 0, "", ""},
		{"exit code", verdictInput{term: term(2, "Error"), end: exited(2, 0, 0)}, false, domain.VerdictRuntimeErr, 2, "", "exited with code 2"},
		{"the kubelet's code wins", verdictInput{term: term(4, "Error"), end: exited(0, 0, 0)}, false, domain.VerdictRuntimeErr, 4, "", "exited with code 4"},
		{"signal", verdictInput{end: exited(139, 11, 0)}, false, domain.VerdictRuntimeErr, 139, "SIGSEGV", "killed by SIGSEGV"},
		{"oom counter", verdictInput{end: exited(137, 9, 1)}, false, domain.VerdictMemoryLimit, 137, "SIGKILL", "memory limit of 128 MiB exceeded"},
		{"oom reason", verdictInput{term: term(137, "OOMKilled"), end: exited(137, 9, -1)}, false, domain.VerdictMemoryLimit, 137, "SIGKILL", "memory limit of 128 MiB exceeded"},
		{"oom took the supervisor", verdictInput{term: term(137, "OOMKilled")}, false, domain.VerdictMemoryLimit, 137, "", "memory limit of 128 MiB exceeded"},
		{"oom of a child, script fine", verdictInput{end: exited(0, 0, 1)}, false, domain.VerdictCompleted, 0, "", ""},
		{"timeout", verdictInput{end: &report{Status: "timeout", OOMKills: 0}}, false, domain.VerdictTimeout, -1, "", "timed out after 5s"},
		{"active deadline", verdictInput{term: term(137, "Error"), deadlineExceeded: true}, false, domain.VerdictTimeout, -1, "", "timed out after 5s"},
		{"output", verdictInput{end: &report{Status: "output_limit", OOMKills: 0}}, false, domain.VerdictOutputLimit, -1, "", "output exceeded the limit of 1024 bytes per stream"},
		{"output cut by the runner", verdictInput{end: exited(0, 0, 0)}, true, domain.VerdictOutputLimit, -1, "", "output exceeded the limit of 1024 bytes per stream"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.in.limits, c.in.outputCap = domain.DefaultLimits, 1024
			res := domain.Result{OutputTruncated: c.truncated}
			if err := judge(&res, c.in); err != nil {
				t.Fatal(err)
			}
			code := -1
			if res.ExitCode != nil {
				code = *res.ExitCode
			}
			if res.Verdict != c.verdict || code != c.code || res.Signal != c.signal || res.Message != c.message {
				t.Fatalf("got %s code %d signal %q message %q", res.Verdict, code, res.Signal, res.Message)
			}
			if c.in.end != nil && c.in.end.WallNs > 0 && (res.Usage.WallTimeMs != 2 || res.Usage.CPUTimeMs != 3 || res.Usage.PeakMemoryBytes != 4096) {
				t.Errorf("usage %+v", res.Usage)
			}
		})
	}
}

// Without the supervisor's report there is no verdict: the platform failed.
func TestJudgeNoReport(t *testing.T) {
	for _, in := range []verdictInput{
		{term: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error"}, diag: "Traceback: supervisor bug"},
		{streamErr: errors.New("connection reset")},
		{end: &report{Status: "undelivered"}},
	} {
		in.limits = domain.DefaultLimits
		var res domain.Result
		err := judge(&res, in)
		if err == nil || !strings.Contains(err.Error(), "without a report") {
			t.Errorf("%+v: got %v, verdict %s", in, err, res.Verdict)
		}
	}
}
