//go:build linux

package oci

import (
	"fmt"
	"runtime"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// seccompArch is the only system call ABI the filter lets through.
func seccompArch() (specs.Arch, error) {
	switch runtime.GOARCH {
	case "amd64":
		return specs.ArchX86_64, nil
	case "arm64":
		return specs.ArchAARCH64, nil
	}
	return "", fmt.Errorf("no seccomp profile for %s", runtime.GOARCH)
}

// deniedSyscalls fail with EPERM. The profile allows everything else: an
// allow-list (Docker's ~350 names) is the follow-up; this list closes what a
// process without capabilities can still reach and that has a record of
// kernel bugs or of crossing the sandbox: new namespaces (user namespaces
// are enabled for unprivileged users on this host), the new mount API,
// keyrings, tracing and cross-process memory access, io_uring, eBPF, perf,
// userfaultfd, handle-based opens, and kernel administration.
var deniedSyscalls = []string{
	// namespaces and mounts
	"unshare", "setns", "mount", "umount", "umount2", "pivot_root", "chroot",
	"fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr",
	// keyrings
	"keyctl", "add_key", "request_key",
	// tracing and other processes' memory
	"ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "kcmp",
	// large kernel attack surface
	"bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter",
	"io_uring_register", "fanotify_init", "lookup_dcookie", "name_to_handle_at",
	"open_by_handle_at", "modify_ldt", "uselib", "vm86", "vm86old",
	// kernel administration (already refused without capabilities)
	"kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
	"create_module", "reboot", "swapon", "swapoff", "acct", "syslog", "quotactl",
	"quotactl_fd", "nfsservctl", "iopl", "ioperm", "settimeofday", "clock_settime",
	"clock_adjtime", "adjtimex", "stime", "sethostname", "setdomainname", "vhangup",
	"get_kernel_syms", "query_module", "_sysctl",
}

// newNamespaceFlags are clone(2) flags that create namespaces.
var newNamespaceFlags = []uint64{
	unix.CLONE_NEWNS, unix.CLONE_NEWCGROUP, unix.CLONE_NEWUTS, unix.CLONE_NEWIPC,
	unix.CLONE_NEWUSER, unix.CLONE_NEWPID, unix.CLONE_NEWNET,
}

// seccompProfile allows the native ABI only (on x86_64 the 32-bit int 0x80
// and x32 ABIs, which a filter for x86_64 does not see, are killed by
// libseccomp's bad-architecture action), refuses the denied system calls,
// clone with namespace flags, and clone3, whose flags live in memory a
// filter cannot read (ENOSYS makes glibc fall back to clone).
func seccompProfile(arch specs.Arch) *specs.LinuxSeccomp {
	eperm := uint(unix.EPERM)
	enosys := uint(unix.ENOSYS)
	p := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{arch},
		Syscalls: []specs.LinuxSyscall{
			{Names: deniedSyscalls, Action: specs.ActErrno, ErrnoRet: &eperm},
			{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: &enosys},
		},
	}
	for _, flag := range newNamespaceFlags {
		p.Syscalls = append(p.Syscalls, specs.LinuxSyscall{
			Names:    []string{"clone"},
			Action:   specs.ActErrno,
			ErrnoRet: &eperm,
			Args:     []specs.LinuxSeccompArg{{Index: 0, Value: flag, ValueTwo: flag, Op: specs.OpMaskedEqual}},
		})
	}
	return p
}
