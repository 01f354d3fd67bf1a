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

// The profile is an allow list: a system call that is on none of the lists
// below fails with ENOSYS, as if this kernel did not have it, which is what
// glibc and CPython probe for before they fall back to an older call (clone3
// to clone, for instance). It starts from containerd's and Docker's default
// profile and is tighter: only the native ABI, none of the calls Docker
// grants with a capability, and none of what CPython and the programs under
// /usr/bin never need (io_uring, Linux AIO, ptrace, process_vm_*, mlock,
// memory policies, protection keys, seccomp and landlock of its own).
// Names that runc's libseccomp does not know are skipped by runc; a call
// newer than any named here gets ENOSYS from runc's own stub.
var allowedSyscalls = []string{
	// processes, threads and signals (clone, socket and personality are
	// allowed below, with argument checks)
	"fork", "vfork", "execve", "execveat", "exit", "exit_group", "wait4", "waitid",
	"kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "pidfd_open", "pidfd_send_signal",
	"rt_sigaction", "rt_sigprocmask", "rt_sigpending", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait",
	"sigaltstack", "restart_syscall", "pause", "alarm", "getitimer", "setitimer",
	"timer_create", "timer_settime", "timer_gettime", "timer_getoverrun", "timer_delete",
	"set_tid_address", "set_robust_list", "rseq", "arch_prctl", "prctl", "futex",
	"getpid", "getppid", "gettid", "getpgid", "getpgrp", "setpgid", "getsid", "setsid",
	"getpriority", "setpriority", "ioprio_get", "ioprio_set",
	"sched_yield", "sched_getaffinity", "sched_setaffinity", "sched_getparam", "sched_setparam",
	"sched_getscheduler", "sched_setscheduler", "sched_getattr", "sched_setattr",
	"sched_get_priority_max", "sched_get_priority_min", "sched_rr_get_interval", "getcpu",
	"getrlimit", "setrlimit", "prlimit64", "getrusage", "times", "uname", "sysinfo", "umask",
	// identity (changes need capabilities the sandbox has not)
	"getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid", "getgroups",
	"setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setfsuid", "setfsgid",
	"setgroups", "capget",
	// memory
	"brk", "mmap", "munmap", "mprotect", "mremap", "madvise", "msync", "mincore", "membarrier",
	"memfd_create",
	// time
	"time", "gettimeofday", "clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep",
	// files and directories
	"read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "preadv2", "pwritev2",
	"open", "openat", "openat2", "creat", "close", "close_range", "dup", "dup2", "dup3", "lseek",
	"fcntl", "flock", "ioctl", "fsync", "fdatasync", "sync", "syncfs", "sync_file_range",
	"truncate", "ftruncate", "fallocate", "fadvise64", "readahead",
	"stat", "fstat", "lstat", "newfstatat", "statx", "statfs", "fstatfs",
	"access", "faccessat", "faccessat2", "getdents", "getdents64", "getcwd", "chdir", "fchdir",
	"mkdir", "mkdirat", "rmdir", "rename", "renameat", "renameat2", "link", "linkat",
	"symlink", "symlinkat", "unlink", "unlinkat", "readlink", "readlinkat", "mknod", "mknodat",
	"chmod", "fchmod", "fchmodat", "chown", "fchown", "fchownat", "lchown",
	"utime", "utimes", "futimesat", "utimensat",
	"getxattr", "lgetxattr", "fgetxattr", "setxattr", "lsetxattr", "fsetxattr",
	"listxattr", "llistxattr", "flistxattr", "removexattr", "lremovexattr", "fremovexattr",
	"sendfile", "splice", "tee", "copy_file_range",
	"inotify_init", "inotify_init1", "inotify_add_watch", "inotify_rm_watch",
	// waiting on descriptors
	"pipe", "pipe2", "select", "pselect6", "poll", "ppoll",
	"epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2",
	"eventfd", "eventfd2", "signalfd", "signalfd4", "timerfd_create", "timerfd_settime", "timerfd_gettime",
	// sockets of the allowed families (socket and socketpair are below)
	"bind", "listen", "accept", "accept4", "connect", "getsockname", "getpeername",
	"sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg", "shutdown",
	"setsockopt", "getsockopt",
	// System V and POSIX IPC, private to the container's ipc namespace
	"shmget", "shmat", "shmdt", "shmctl", "semget", "semop", "semtimedop", "semctl",
	"msgget", "msgsnd", "msgrcv", "msgctl",
	"mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive", "mq_notify", "mq_getsetattr",
	"getrandom",
}

// deniedSyscalls fail with EPERM rather than ENOSYS, so that a script that
// tries them is told plainly that it may not. None is on the allow list;
// naming them documents what is closed on purpose: new namespaces and
// mounts, keyrings, tracing and other processes' memory, the kernel
// interfaces with a record of privilege escalations (eBPF, io_uring,
// userfaultfd, perf), handle-based opens, and kernel administration.
var deniedSyscalls = []string{
	// namespaces and mounts
	"unshare", "setns", "mount", "umount", "umount2", "pivot_root", "chroot",
	"fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr",
	// keyrings
	"keyctl", "add_key", "request_key",
	// tracing and other processes' memory
	"ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "kcmp",
	"process_madvise", "process_mrelease",
	// large kernel attack surface
	"bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter",
	"io_uring_register", "fanotify_init", "fanotify_mark", "lookup_dcookie", "name_to_handle_at",
	"open_by_handle_at", "modify_ldt", "uselib", "vm86", "vm86old", "remap_file_pages",
	// kernel administration
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

// socketTypes may be created in each allowed family; SOCK_RAW and
// SOCK_PACKET never. The type argument carries SOCK_NONBLOCK and
// SOCK_CLOEXEC in its high bits, hence the mask.
var socketTypes = []struct{ family, typ uint64 }{
	{unix.AF_UNIX, unix.SOCK_STREAM}, {unix.AF_UNIX, unix.SOCK_DGRAM}, {unix.AF_UNIX, unix.SOCK_SEQPACKET},
	{unix.AF_INET, unix.SOCK_STREAM}, {unix.AF_INET, unix.SOCK_DGRAM},
	{unix.AF_INET6, unix.SOCK_STREAM}, {unix.AF_INET6, unix.SOCK_DGRAM},
}

const sockTypeMask = 0xf

// refusedSocketFamilies get EPERM instead of ENOSYS: the families with a
// record of kernel bugs reachable without privileges, or that reach out of
// the container (vsock to the hypervisor, netlink to the kernel).
var refusedSocketFamilies = []uint64{
	unix.AF_PACKET, unix.AF_NETLINK, unix.AF_VSOCK, unix.AF_ALG, unix.AF_KEY,
	unix.AF_BLUETOOTH, unix.AF_CAN, unix.AF_RDS, unix.AF_TIPC, unix.AF_LLC,
	unix.AF_X25, unix.AF_AX25, unix.AF_APPLETALK, unix.AF_PPPOX, unix.AF_XDP, unix.AF_MCTP,
}

// personalities are the personality(2) values Docker allows: query, and
// the ones programs set for compatibility. Anything else (READ_IMPLIES_EXEC,
// ADDR_NO_RANDOMIZE) would weaken the process's own hardening.
var personalities = []uint64{0x0, 0x8, 0x20000, 0x20008, 0xffffffff}

// seccompProfile allows the native ABI only (on x86_64 the 32-bit int 0x80
// and x32 ABIs, which a filter for x86_64 does not see, are killed by
// libseccomp's bad-architecture action).
func seccompProfile(arch specs.Arch) *specs.LinuxSeccomp {
	enosys := uint(unix.ENOSYS)
	eperm := uint(unix.EPERM)
	p := &specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: &enosys,
		Architectures:   []specs.Arch{arch},
		Syscalls: []specs.LinuxSyscall{
			{Names: allowedSyscalls, Action: specs.ActAllow},
			{Names: deniedSyscalls, Action: specs.ActErrno, ErrnoRet: &eperm},
			// clone3's flags live in memory a filter cannot read: ENOSYS makes
			// glibc fall back to clone, whose flags it can.
			{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: &enosys},
		},
	}
	p.Syscalls = append(p.Syscalls, cloneRules(eperm)...)
	p.Syscalls = append(p.Syscalls, socketRules(eperm)...)
	for _, v := range personalities {
		p.Syscalls = append(p.Syscalls, argRule("personality", specs.ActAllow, nil,
			specs.LinuxSeccompArg{Index: 0, Value: v, Op: specs.OpEqualTo}))
	}
	return p
}

// cloneRules allow clone without namespace flags (fork, threads,
// posix_spawn) and refuse each namespace flag with EPERM.
func cloneRules(eperm uint) []specs.LinuxSyscall {
	var all uint64
	for _, f := range newNamespaceFlags {
		all |= f
	}
	rules := []specs.LinuxSyscall{argRule("clone", specs.ActAllow, nil,
		specs.LinuxSeccompArg{Index: 0, Value: all, ValueTwo: 0, Op: specs.OpMaskedEqual})}
	for _, f := range newNamespaceFlags {
		rules = append(rules, argRule("clone", specs.ActErrno, &eperm,
			specs.LinuxSeccompArg{Index: 0, Value: f, ValueTwo: f, Op: specs.OpMaskedEqual}))
	}
	return rules
}

// socketRules allow socket(2) for the allowed families and types and
// socketpair(2) for AF_UNIX, and refuse the dangerous families with EPERM.
func socketRules(eperm uint) []specs.LinuxSyscall {
	var rules []specs.LinuxSyscall
	for _, st := range socketTypes {
		rules = append(rules, argRule("socket", specs.ActAllow, nil,
			specs.LinuxSeccompArg{Index: 0, Value: st.family, Op: specs.OpEqualTo},
			specs.LinuxSeccompArg{Index: 1, Value: sockTypeMask, ValueTwo: st.typ, Op: specs.OpMaskedEqual}))
	}
	rules = append(rules, argRule("socketpair", specs.ActAllow, nil,
		specs.LinuxSeccompArg{Index: 0, Value: unix.AF_UNIX, Op: specs.OpEqualTo}))
	for _, family := range refusedSocketFamilies {
		rules = append(rules, argRule("socket", specs.ActErrno, &eperm,
			specs.LinuxSeccompArg{Index: 0, Value: family, Op: specs.OpEqualTo}))
	}
	return rules
}

func argRule(name string, action specs.LinuxSeccompAction, errno *uint, args ...specs.LinuxSeccompArg) specs.LinuxSyscall {
	return specs.LinuxSyscall{Names: []string{name}, Action: action, ErrnoRet: errno, Args: args}
}
