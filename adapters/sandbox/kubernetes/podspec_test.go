package kubernetes

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/runner"
)

func TestPodSpec(t *testing.T) {
	cfg := Config{Image: "python:test", RuntimeClass: "gvisor"}
	cfg.setDefaults()
	p := &Pods{cfg: cfg, deliveryWait: defaultDeliveryWait}
	job := runner.Job{ExecutionID: "e1", Attempt: 2, Script: "print(1)", Stdin: "secret",
		Limits: domain.Limits{TimeoutMs: 5000, MemoryBytes: 128 << 20, CPUMillicores: 100}}
	pod := p.podSpec(podName(job.ExecutionID, job.Attempt), job)
	s, c := pod.Spec, pod.Spec.Containers[0]

	if s.HostUsers == nil || *s.HostUsers || !*s.SecurityContext.RunAsNonRoot || *s.SecurityContext.RunAsUser != 65534 ||
		*s.AutomountServiceAccountToken || *s.EnableServiceLinks || *s.TerminationGracePeriodSeconds != 0 ||
		s.RestartPolicy != corev1.RestartPolicyNever || *s.RuntimeClassName != "gvisor" || *s.ActiveDeadlineSeconds != 55 {
		t.Errorf("pod spec: %+v", s)
	}
	sc := c.SecurityContext
	if *sc.AllowPrivilegeEscalation || !*sc.ReadOnlyRootFilesystem || len(sc.Capabilities.Drop) != 1 ||
		sc.Capabilities.Drop[0] != "ALL" || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("container security context: %+v", sc)
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if req, lim := c.Resources.Requests[r], c.Resources.Limits[r]; req.Cmp(lim) != 0 {
			t.Errorf("%s: request %s != limit %s", r, req.String(), lim.String())
		}
	}
	if mem := c.Resources.Limits[corev1.ResourceMemory]; mem.Value() != 128<<20 {
		t.Errorf("memory limit %s", mem.String())
	}
	if cpu := c.Resources.Limits[corev1.ResourceCPU]; cpu.MilliValue() != 100 {
		t.Errorf("cpu limit %s", cpu.String())
	}
	for _, v := range s.Volumes {
		if v.EmptyDir == nil || v.EmptyDir.Medium != corev1.StorageMediumMemory || v.EmptyDir.SizeLimit == nil {
			t.Errorf("volume %s is not a sized tmpfs", v.Name)
		}
	}
	if !c.Stdin || !c.StdinOnce || c.TTY {
		t.Error("the script needs stdin, once, without a tty")
	}
	// Neither the script nor its stdin travel in the pod object.
	for _, arg := range c.Command {
		if strings.Contains(arg, "secret") || arg == job.Script {
			t.Errorf("the pod spec carries the job's data: %q", arg)
		}
	}
	if pod.Annotations[annotExecutionID] != "e1" || pod.Labels[labelAttempt] != "2" || pod.Labels[labelManagedBy] != managedBy {
		t.Errorf("metadata %+v", pod.ObjectMeta)
	}
}

func TestConfigValidate(t *testing.T) {
	var c Config
	c.setDefaults()
	c.Namespace, c.OutputCapBytes, c.ImagePullPolicy = "Bad_NS", -1, "Sometimes"
	err := c.Validate()
	for _, want := range []string{"Namespace", "Image is required", "OutputCapBytes", "ImagePullPolicy"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to mention %s", err, want)
		}
	}
}
