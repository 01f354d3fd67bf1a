//go:build linux

package oci

import (
	"math"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/integr8scode/integr8scode/domain"
)

// ociVersion is the newest spec version runc 1.1 declares.
const ociVersion = "1.0.2"

const (
	cpuPeriodMicros = 100000
	nofileLimit     = 256
	tmpSize         = "size=16m"
	tmpInodes       = "nr_inodes=4096"
)

// containerEnv is the script's whole environment: nothing of the service's.
// -I makes Python ignore the PYTHON* variables; they are kept for the
// interpreters a script may start without -I.
var containerEnv = []string{
	"PATH=/usr/local/bin:/usr/bin:/bin",
	"LANG=C.UTF-8",
	"HOME=" + sandboxHome,
	"PYTHONDONTWRITEBYTECODE=1",
	"PYTHONUNBUFFERED=1",
}

// pythonArgs: -I isolates (no environment, no user site, no script directory
// on sys.path), -B writes no .pyc, -u leaves stdout and stderr unbuffered so
// that what a script printed before a timeout or a kill reaches the result
// (-I ignores PYTHONUNBUFFERED). -S would save ~3 ms per start but drops
// site, and with it exit() and quit(), which scripts use.
func pythonArgs(python string) []string {
	return []string{python, "-I", "-B", "-u", scriptPath}
}

// maskedPaths and readonlyPaths are runc's `spec` defaults plus powercap
// (energy counters are a side channel).
var maskedPaths = []string{
	"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
	"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
	"/sys/firmware", "/sys/devices/virtual/powercap",
}

var readonlyPaths = []string{
	"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
}

// bootstrapArgs start the interpreter with the same flags as pythonArgs,
// running bootstrap instead of the script.
func bootstrapArgs(python string) []string {
	return []string{python, "-I", "-B", "-u", "-c", bootstrap}
}

// setupCPUMillicores is the CPU quota of a container until its script
// starts: one core, so that the container's set-up (runc's init, the
// user namespace, seccomp, mounts) and Python's start-up never run under
// the script's quota (at 100m they took 3.5 times longer), yet a set-up
// gone wrong cannot take more than one core. handoff writes the script's
// quota before the script starts.
const setupCPUMillicores = 1000

// containerSpec is the config.json of one run, started with the bootstrap
// (see waiting): one core until the script's limits are armed, a memory
// limit of limits (handoff changes it when the script's differs) and a
// CPU-time backstop of backstop seconds, which the bootstrap lowers to the
// script's before the script starts.
func (r *Runc) containerSpec(c *container, limits domain.Limits, backstop uint64) *specs.Spec {
	s := r.bareSpec(c, domain.Limits{TimeoutMs: limits.TimeoutMs, MemoryBytes: limits.MemoryBytes, CPUMillicores: setupCPUMillicores})
	s.Process.Args = bootstrapArgs(r.python)
	for i := range s.Process.Rlimits {
		if s.Process.Rlimits[i].Type == "RLIMIT_CPU" {
			s.Process.Rlimits[i].Hard, s.Process.Rlimits[i].Soft = backstop, backstop
		}
	}
	return s
}

// bareSpec is the config.json of a container that runs the script itself
// under limits from its first instruction, as a plain `runc run` would:
// Floor's baseline.
func (r *Runc) bareSpec(c *container, limits domain.Limits) *specs.Spec {
	memory := limits.MemoryBytes
	mem := &specs.LinuxMemory{Limit: &memory}
	if r.cgroups.hasSwapAccounting() {
		swap := memory // memory+swap = memory: no swap
		mem.Swap = &swap
	}
	quota := cpuQuotaMicros(limits)
	period := uint64(cpuPeriodMicros)
	pids := r.cfg.PidsLimit
	oomScore := 1000 // under host memory pressure, the sandbox goes first

	return &specs.Spec{
		Version:  ociVersion,
		Hostname: sandboxHost,
		Root:     &specs.Root{Path: r.rootfs, Readonly: true},
		Process: &specs.Process{
			User:            specs.User{UID: sandboxUID, GID: sandboxGID},
			Args:            pythonArgs(r.python),
			Env:             containerEnv,
			Cwd:             sandboxHome,
			Capabilities:    &specs.LinuxCapabilities{}, // every set empty
			NoNewPrivileges: true,
			OOMScoreAdj:     &oomScore,
			Rlimits: []specs.POSIXRlimit{
				{Type: "RLIMIT_NOFILE", Hard: nofileLimit, Soft: nofileLimit},
				{Type: "RLIMIT_CORE", Hard: 0, Soft: 0},
				// A backstop should this process die and leave the container
				// running: the kernel kills a process past this much CPU time,
				// which the timeout never lets it reach.
				{Type: "RLIMIT_CPU", Hard: cpuBackstopSeconds(limits), Soft: cpuBackstopSeconds(limits)},
			},
		},
		Mounts: r.mounts(c.file(scriptFile)),
		Linux: &specs.Linux{
			CgroupsPath: r.cgroups.path(c.id),
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.UserNamespace}, {Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace},
				{Type: specs.IPCNamespace}, {Type: specs.UTSNamespace}, {Type: specs.MountNamespace},
				{Type: specs.CgroupNamespace},
			},
			UIDMappings: r.idMappings(c.slot),
			GIDMappings: r.idMappings(c.slot),
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
				Memory:  mem,
				CPU:     &specs.LinuxCPU{Quota: &quota, Period: &period},
				Pids:    &specs.LinuxPids{Limit: &pids},
			},
			MaskedPaths:   masked(),
			ReadonlyPaths: readonlyPaths,
			Seccomp:       seccompProfile(r.arch),
		},
	}
}

// idMappings maps the container's ids 0..UIDRangeSize-1 to its slot's host
// range. The script runs as sandboxUID inside, base+slot*size+sandboxUID on
// the host; the container's root (the host range's first id) exists only
// while runc sets the container up, and no host file is owned by any id of
// the range, so neither owns anything outside the container.
func (r *Runc) idMappings(slot int) []specs.LinuxIDMapping {
	return []specs.LinuxIDMapping{{ContainerID: 0, HostID: r.slots.hostID(slot), Size: r.slots.size}}
}

// cpuQuotaMicros is the CFS quota of limits per cpuPeriodMicros.
func cpuQuotaMicros(l domain.Limits) int64 { return l.CPUMillicores * cpuPeriodMicros / 1000 }

func cpuBackstopSeconds(l domain.Limits) uint64 {
	cpus := math.Max(1, float64(l.CPUMillicores)/1000)
	return uint64(math.Ceil(l.Timeout().Seconds()*cpus)) + 5
}

// mounts are set up by runc inside the container's user namespace, as its
// root user, who cannot read root's 0700 bundle directory. runc (1.1+)
// opens bind-mount sources on the host before it enters the namespace and
// hands the descriptors over, so the script's bind mount works from the
// bundle; the root file system itself is mounted by path, hence RunDir.
func (r *Runc) mounts(scriptFile string) []specs.Mount {
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=64k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", tmpSize, tmpInodes}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
		{Destination: "/usr", Type: "bind", Source: "/usr", Options: []string{"bind", "ro", "nosuid", "nodev"}},
		{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777", tmpSize, tmpInodes}},
		{Destination: scriptPath, Type: "bind", Source: scriptFile, Options: []string{"bind", "ro", "nosuid", "nodev", "noexec"}},
	}
}
