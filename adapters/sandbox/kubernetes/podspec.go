package kubernetes

import (
	_ "embed"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/runner"
)

//go:embed supervisor.py
var supervisorFile string

// supervisor is supervisor.py without its comments: it travels in every
// pod's command line.
var supervisor = func() string {
	var b strings.Builder
	for line := range strings.SplitSeq(supervisorFile, "\n") {
		if t := strings.TrimSpace(line); t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}()

const (
	// The script's path, as in the runc sandbox: tracebacks name it.
	scriptDir  = "/sandbox"
	scriptPath = scriptDir + "/main.py"
	tmpDir     = "/tmp"
	// sandboxUID is the image's `nobody`. With hostUsers: false it maps to
	// an unprivileged host id of the pod's own range.
	sandboxUID = 65534
	// scriptDirBytes holds the largest script the platform accepts.
	scriptDirBytes = 2 * domain.MaxScriptBytes
)

// scriptEnv is the script's whole environment, the runc sandbox's. The
// supervisor also removes the KUBERNETES_* variables that the kubelet
// injects even with service links off.
var scriptEnv = []corev1.EnvVar{
	{Name: "PATH", Value: "/usr/local/bin:/usr/bin:/bin"},
	{Name: "LANG", Value: "C.UTF-8"},
	{Name: "HOME", Value: tmpDir},
	{Name: "PYTHONDONTWRITEBYTECODE", Value: "1"},
	{Name: "PYTHONUNBUFFERED", Value: "1"},
}

// podSpec is the pod of one run: the Pod Security `restricted` profile and
// more (see doc.go for what each field is for).
func (p *Pods) podSpec(name string, job runner.Job) *corev1.Pod {
	backstop := job.Limits.Timeout() + p.deliveryWait + deadlineSlack
	pod := p.basePod(name, job.Limits, p.deliveryWait)
	pod.Labels = podLabels(job.ExecutionID, job.Attempt)
	pod.Annotations = map[string]string{annotExecutionID: job.ExecutionID}
	pod.Spec.ActiveDeadlineSeconds = ptr.To(int64(backstop / time.Second))
	if p.mutatePod != nil {
		p.mutatePod(pod)
	}
	return pod
}

// warmSpec is a pod of the warm pool: the same pod with the pool's memory
// and CPU, labelled with the pool's owner and life and no execution. Its
// supervisor waits up to WarmMaxAge + waitSlack for a script (the pool
// replaces it at WarmMaxAge), and it has no activeDeadlineSeconds until a
// run claims it (the deadline would count its wait; claim sets it). Its
// name is random: the pod's host name, which the script can read, says
// nothing about the runner.
func (p *Pods) warmSpec(name string, wp *warmPool) *corev1.Pod {
	pod := p.basePod(name, wp.limits, wp.maxAge+waitSlack)
	pod.Labels = map[string]string{labelManagedBy: managedBy, labelPool: p.cfg.PoolOwner, labelPoolLife: wp.life}
	pod.Annotations = map[string]string{annotWarmSince: time.Now().UTC().Format(time.RFC3339)}
	if p.mutatePod != nil {
		p.mutatePod(pod)
	}
	return pod
}

// basePod is every sandbox pod: limits' memory and CPU, a supervisor with
// limits' timeout (a script's header may replace it) that waits at most
// wait for its script.
func (p *Pods) basePod(name string, l domain.Limits, wait time.Duration) *corev1.Pod {
	res := corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewMilliQuantity(l.CPUMillicores, resource.DecimalSI),
		corev1.ResourceMemory: *resource.NewQuantity(l.MemoryBytes, resource.BinarySI),
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:      name,
			Namespace: p.cfg.Namespace,
		},
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			TerminationGracePeriodSeconds: ptr.To(int64(0)),
			AutomountServiceAccountToken:  ptr.To(false),
			EnableServiceLinks:            ptr.To(false),
			HostUsers:                     ptr.To(p.cfg.HostUsers),
			NodeName:                      p.cfg.NodeName,
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot:   ptr.To(true),
				RunAsUser:      ptr.To(int64(sandboxUID)),
				RunAsGroup:     ptr.To(int64(sandboxUID)),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name:            containerName,
				Image:           p.cfg.Image,
				ImagePullPolicy: p.cfg.ImagePullPolicy,
				Command: []string{"/usr/bin/python3", "-I", "-B", "-u", "-c", supervisor,
					strconv.FormatInt(l.TimeoutMs, 10), strconv.Itoa(p.cfg.OutputCapBytes),
					strconv.Itoa(int(wait / time.Second)), scriptPath},
				Env:        scriptEnv,
				WorkingDir: tmpDir,
				// The script and its stdin arrive through one attach; stdin
				// closes when that attach ends, so the script sees EOF.
				Stdin:     true,
				StdinOnce: true,
				Resources: corev1.ResourceRequirements{Requests: res, Limits: res},
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: ptr.To(false),
					Privileged:               ptr.To(false),
					ReadOnlyRootFilesystem:   ptr.To(true),
					RunAsNonRoot:             ptr.To(true),
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
					SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
				},
				VolumeMounts: []corev1.VolumeMount{
					{Name: "tmp", MountPath: tmpDir},
					{Name: "sandbox", MountPath: scriptDir},
				},
				TerminationMessagePolicy: corev1.TerminationMessageReadFile,
			}},
			Volumes: []corev1.Volume{
				memoryVolume("tmp", p.cfg.TmpBytes),
				memoryVolume("sandbox", scriptDirBytes),
			},
		},
	}
	if p.cfg.RuntimeClass != "" {
		pod.Spec.RuntimeClassName = ptr.To(p.cfg.RuntimeClass)
	}
	return pod
}

// memoryVolume is a tmpfs of a fixed size: a write past it fails at once
// with ENOSPC, where a disk-backed emptyDir is only evicted, late.
func memoryVolume(name string, size int64) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
		Medium:    corev1.StorageMediumMemory,
		SizeLimit: resource.NewQuantity(size, resource.BinarySI),
	}}}
}
