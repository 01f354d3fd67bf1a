// Package oci runs scripts in OCI containers started with runc on this host.
//
// Every run gets a fresh bundle (config.json, the script, its stdin) under
// Config.StateDir and a container with its own user, pid, network (loopback
// only), ipc, uts, mount and cgroup namespaces; a read-only root made of a
// bind mount of the host's /usr and a few files written by this package
// (under Config.RunDir, which the container's root user must be able to
// reach); uid and gid 1000 inside a user namespace that maps the run's slot
// to a host id range of its own, no capabilities, no_new_privs and a
// default-deny seccomp filter (an allow list, native ABI only); and cgroup
// limits for memory (no swap), CPU and processes.
//
// # Host ids
//
// Each slot of concurrent runs (Config.Slots) maps its user namespace to a
// host uid/gid range of its own, so two runs in flight never share a host
// uid: neither can signal, ptrace or read /proc of the other, and per-uid
// kernel accounting is per run. Ranges must be disjoint across processes
// too: two services on one host, or the test packages that `go test ./...`
// runs in parallel, each calling New, would otherwise map the same ids, and
// a run of one could reach a run of the other (and the host check of the
// hostile suite would see the other package's scripts as leftovers). So,
// unless an operator sets Config.UIDBase and manages the ranges, New leases
// blocks of 64*65536 ids from 1000000 up to 2^31 by taking a non-blocking
// flock on one root-owned lock file per block under
// /run/integr8scode/uid-blocks, and holds it until Close. The kernel drops
// the locks of a process that died, so a crash never leaks a block; the
// next holder kills the containers the crashed one left running with its
// ids (the processes of sandbox cgroups) and looks at no other ids. A block
// whose ids a process outside every sandbox cgroup uses (a kubelet hands
// out pod user namespace ranges from the same space) is passed over.
//
// The script is a root-owned file in the bundle, bind-mounted read-only at
// /sandbox/main.py, and Python runs that path: tracebacks name the file,
// and the script's stdin is the job's stdin and nothing else (runc copies it
// from another bundle file). The sandbox can write neither file.
//
// # How a run is supervised
//
// The container is started with `runc run --keep` in the foreground:
//
//   - runc is our direct child, so its exit status is the script's (runc
//     reports 128+n for a death by signal n). We never become a child
//     subreaper, as `runc create` + `runc start` would need: in a large
//     server process that makes us the parent of every orphan of every
//     library's subprocess, and reaping them races with os/exec. runc itself
//     is the subreaper of its container.
//   - --keep leaves the stopped container and its cgroup in place after the
//     script exits, so the accounting (cpuacct.usage,
//     memory.max_usage_in_bytes) and the OOM-kill counter of the very memory
//     cgroup that held the limit (memory.oom_control: oom_kill) are read
//     exactly before `runc delete` removes them. A parent cgroup of our own
//     would survive runc's cleanup too, but on cgroup v1 the oom_kill
//     counter is only kept in the victim's own cgroup, which runc deletes,
//     and the parent's memory.failcnt also counts limit hits that reclaim
//     absorbed without killing anything.
//   - Python is the container's init (pid 1 of its pid namespace). When it
//     exits, the kernel kills everything else in the namespace, so a daemon
//     that double-forked and called setsid cannot outlive the run. A timeout,
//     a cancel or the output cap kill every process of the container's cgroup
//     through pidfds (no pid-reuse race); killing the init alone already
//     takes down the whole namespace. Being init also means the script
//     cannot kill itself with a signal it has no handler for
//     (os.kill(os.getpid(), 9) is ignored), as in `docker run` without
//     --init.
//
// This package needs root, runc 1.1 or newer built with seccomp, and
// cgroup v1 with the memory, cpu, cpuacct and pids controllers; New fails
// otherwise (cgroup v2 is a follow-up).
package oci
