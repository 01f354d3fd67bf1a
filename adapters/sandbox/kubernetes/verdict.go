package kubernetes

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/integr8scode/integr8scode/domain"
)

// verdictInput is everything known about a pod that ended by itself.
type verdictInput struct {
	limits    domain.Limits
	outputCap int
	// term is the kubelet's account of the container's end (trusted), nil
	// if it never came.
	term *corev1.ContainerStateTerminated
	// end is the supervisor's report (self-reported), nil if it never came.
	end              *report
	deadlineExceeded bool // activeDeadlineSeconds stopped the pod
	streamErr        error
	diag             string // what the supervisor itself wrote to stderr
}

// judge reports how the pod ended to domain.Judge, which sets the verdict
// (the same rules as for every sandbox). The pod failing to report at all
// is an error, not a verdict. The exit code and the OOM kill come from the
// kubelet when it reported them; the supervisor's report fills in the
// signal and the accounting.
func judge(res *domain.Result, in verdictInput) error {
	status := ""
	if e := in.end; e != nil {
		status = e.Status
		// CPU time rounds up: a script that ran used some, however
		// little (the container's own start-up is not counted).
		res.Usage = domain.ResourceUsage{WallTimeMs: max(e.WallNs, 0) / 1e6, CPUTimeMs: (max(e.CPUNs, 0) + 999_999) / 1e6,
			PeakMemoryBytes: max(e.PeakBytes, 0)}
	}
	end := domain.Ending{Limits: in.limits, OutputCap: int64(in.outputCap), OutputTruncated: res.OutputTruncated}
	switch {
	case status == "timeout" || in.deadlineExceeded:
		end.StoppedFor = domain.VerdictTimeout
	case status == "output_limit":
		end.StoppedFor = domain.VerdictOutputLimit
	}
	if end.StoppedFor != "" || end.OutputTruncated {
		domain.Judge(res, end)
		return nil
	}
	end.OOMKilled = in.term != nil && in.term.Reason == "OOMKilled" || in.end != nil && in.end.OOMKills > 0
	switch {
	case in.end == nil && in.term != nil && in.term.Reason == "OOMKilled":
		// The OOM killer took the supervisor itself, and the whole pod
		// with it: no report, but no doubt either.
		end.ExitCode = int(in.term.ExitCode)
	case in.end == nil || status != "exited":
		return noReport(in)
	case in.term != nil:
		end.ExitCode = int(in.term.ExitCode)
	default:
		end.ExitCode = in.end.Code
	}
	if in.end != nil && in.end.Signal > 0 {
		end.Signal = signalName(in.end.Signal)
	}
	domain.Judge(res, end)
	return nil
}

// noReport is the error for a pod whose supervisor said nothing about how
// the script ended: the platform failed, not the script.
func noReport(in verdictInput) error {
	var parts []string
	if in.term != nil {
		parts = append(parts, fmt.Sprintf("container exited with code %d (%s)", in.term.ExitCode, in.term.Reason))
	} else {
		parts = append(parts, "the kubelet did not report the container's end")
	}
	if in.end != nil {
		parts = append(parts, fmt.Sprintf("supervisor status %q", in.end.Status))
	}
	if in.streamErr != nil {
		parts = append(parts, fmt.Sprintf("output stream: %v", in.streamErr))
	}
	if d := strings.TrimSpace(in.diag); d != "" {
		parts = append(parts, "supervisor: "+d)
	}
	return fmt.Errorf("the pod ended without a report from its supervisor: %s", strings.Join(parts, "; "))
}

// linuxSignals names the signals by their Linux numbers (the pod runs
// Linux whatever the runner runs on).
var linuxSignals = map[int]string{
	1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT", 7: "SIGBUS",
	8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2", 13: "SIGPIPE",
	14: "SIGALRM", 15: "SIGTERM", 24: "SIGXCPU", 25: "SIGXFSZ", 31: "SIGSYS",
}

func signalName(n int) string {
	if s, ok := linuxSignals[n]; ok {
		return s
	}
	return fmt.Sprintf("signal %d", n)
}
