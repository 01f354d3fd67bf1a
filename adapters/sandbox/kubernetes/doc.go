// Package kubernetes runs each script in a pod of its own, through
// client-go (`--runner kubernetes`). It gives the same verdicts as the runc
// sandbox (package oci) and reports the same figures.
//
// # The pod
//
// One pod per execution and attempt, named exec-<execution>-a<attempt>
// (see podName): a Run of a job whose pod exists adopts that pod (Create
// answers AlreadyExists) and reports its outcome, so a redelivered job never
// runs the script twice. The pod satisfies the Pod Security `restricted`
// profile and goes further:
//
//   - runAsNonRoot, uid/gid 65534 (the image's nobody), and hostUsers: false
//     (Config.HostUsers), so that even that uid is an unprivileged id of a
//     host range of the pod's own;
//   - allowPrivilegeEscalation: false, every capability dropped, seccomp
//     RuntimeDefault, a read-only root file system;
//   - no service account token, no service links (the supervisor also
//     removes the KUBERNETES_* variables the kubelet injects anyway);
//   - requests = limits for memory and CPU (Guaranteed QoS: the limits are
//     what the script gets, and the pod is the last one the kubelet evicts);
//   - /tmp and /sandbox are memory-backed emptyDirs with a sizeLimit, which
//     the kubelet mounts as a tmpfs of that size: a write past it fails at
//     once with ENOSPC (a disk-backed emptyDir is only evicted, late), and
//     what is written counts against the memory limit;
//   - restartPolicy Never, terminationGracePeriodSeconds 0, and an
//     activeDeadlineSeconds backstop (timeout + the wait for the script +
//     30 s) for a pod whose runner is gone;
//   - an optional RuntimeClass (gVisor, Kata).
//
// The namespace should enforce `restricted` and deny all traffic with a
// NetworkPolicy (on a CNI that enforces it). The runner needs, in that
// namespace only: pods create, get, list, watch, delete, patch (a claim);
// pods/attach create and get (WebSocket attaches are GETs that also need create); pods/log get.
//
// # Handing the script over: stdin, through an attach
//
// The script travels neither in the pod spec (a command-line argument may
// hold at most 128 KiB, the platform accepts 256 KiB scripts plus 256 KiB of
// stdin, and the spec is readable by anyone who may list pods and is sent
// in every watch event), nor in a ConfigMap (another object to create, clean
// up and authorize). The container is started with stdin: true and
// stdinOnce: true, and the runner attaches to it as soon as the kubelet
// reports it running and writes "<length>\n", the script, then the job's
// stdin. The supervisor reads exactly the script's bytes from fd 0, so
// what follows is the script's stdin, byte for byte, and the script sees
// EOF when the attach closes it (stdinOnce).
//
// Only the Run that created the pod writes to its stdin; an adopter never
// does, so two writers never interleave. If the creator died before it
// handed the script over, the supervisor gives up after 20 s and reports
// "undelivered"; the adopter then deletes the pod and creates it afresh
// (the script never ran, so it runs once).
//
// # The supervisor, and keeping stdout and stderr apart
//
// The container's command is `python3 -I -B -u -c <supervisor.py>`. The
// supervisor is pid 1 of the pod; it takes the script from stdin, writes
// it to /sandbox/main.py (tracebacks name that file, as in the runc
// sandbox) and forks the script from its own interpreter (no second
// start-up; the pages are shared, so memory use is that of one Python, as
// in the runc sandbox). The script is not pid 1, unlike in runc: a signal
// it sends itself kills it.
//
// The kubelet keeps a container's stdout and stderr apart in its log file,
// but the log API merges them unless the alpha PodLogsQuerySplitStreams
// gate is on; an attach keeps them apart but only from the moment it
// connects, so an adopter could not read what came before. The supervisor
// therefore puts the script's stdout and stderr on pipes and relays both
// into its own stdout as frames (kind, length, data). The runner reads the
// frames from the attach stream, or from the pod's log (an adopter, or a
// runner whose attach broke): both hold the same bytes, so stdout and stderr
// stay apart whichever way they are read, and the log lets a runner that
// restarts read everything from the start. The cost is a copy through the
// supervisor, within the pod's CPU quota.
//
// The supervisor also enforces the timeout and the output cap from the
// script's real start, and ends with a report frame: status, exit code,
// signal, wall time (its monotonic clock around the script), CPU time and
// peak memory of the container's cgroup (cpuacct.usage and
// memory.max_usage_in_bytes on cgroup v1; cpu.stat and memory.peak on v2;
// the script's rusage where neither is readable) and the cgroup's OOM-kill
// counter.
//
// What the supervisor reports is self-reported: the script runs as the same
// user in the same container and could forge frames (it can write to the
// supervisor's stdout through /proc/1/fd/1). Everything the runner must
// guarantee it does not take from the pod: it enforces the timeout and the
// output cap itself, the kernel enforces the memory limit, and the runner
// deletes the pod. The frames are parsed as untrusted input (a stream that
// stops making sense is kept as raw stdout, under the cap). A forged report
// can only misstate the script's own result.
//
// # The end of a run
//
// The kubelet notices that a container exited in its once-a-second relist,
// so its account comes up to a second after the script ended. The runner
// concludes as soon as the supervisor's report arrived when that report is
// complete (it includes the cgroup's OOM-kill counter), and waits for the
// kubelet's account otherwise; when both are there, the kubelet's exit code
// and OOMKilled reason win. Then it deletes the pod (grace 0: the name is
// free at once, and the supervisor, which has no SIGTERM handler, dies at
// the kubelet's first signal and takes the pod's whole pid namespace with
// it).
//
// # Timeout clock
//
// The runner that hands the script over starts the clock when it wrote the
// script's last byte, which is when the script starts (the container itself
// started earlier and waited for it), and deletes the pod 2 s after the
// timeout if the supervisor has not reported the timeout by then. The
// supervisor's own, exact, timeout normally ends the run first, with the
// run's accounting. An adopter does not know when the script started: it
// allows for the longest wait (container start, which the API reports in
// whole seconds, + 1 s + the wait for the script + timeout + 2 s), and
// relies on the supervisor for the exact limit.
//
// # The warm pool
//
// With Config.Warm, the sandbox keeps pods created, started and waiting for
// a script (pool.go), so that a run skips the pod's creation, the kubelet's
// set-up and its once-a-second relist, and Python's start-up: about a
// second of every cold run. A waiting pod is the same pod as above with the
// pool's memory and CPU (Config.WarmLimits, the platform's defaults), a
// random name (its host name, which a script can read, says nothing about
// the runner or another run), no execution, and the labels of its pool
// (Config.PoolOwner and a random id of the runner's life). Its supervisor
// waits up to WarmMaxAge + 1 minute for a script; the pool replaces it
// after WarmMaxAge. It has no activeDeadlineSeconds while it waits.
//
// A run whose memory and CPU are the pool's takes the pod that waited least
// and claims it with one conditional JSON patch (the pool-life label must
// still be there): the pool's labels make way for the run's execution and
// attempt labels and execution annotation, a claimed-at annotation is
// added, and activeDeadlineSeconds is set to the pod's age + the wait for
// the script + the timeout + 30 s. From then on the pod is the run's pod
// in every respect but its name: Run and Resume look a job's pod up by
// those labels before its name, the runner's GC keeps or deletes it by
// them, and it is deleted after that one run. Then the run attaches and
// hands the script over, with the job's timeout in the header
// ("<len> <timeout ms>\n"; the supervisor's own, given at creation, is the
// pool's). A run with other memory or CPU creates a pod of its own
// (requests = limits change on a live pod only through in-place resize,
// which this package does not rely on: not every cluster offers it, and it
// was not tried on the test cluster, whose node runs cgroup v1). The pool follows demand as
// the runc sandbox's does: as many pods as runs were in flight at once over
// the last minute or so, within [WarmMin, Warm]; an idle runner keeps
// WarmMin. A waiting pod holds its CPU and memory requests on its node.
//
// Two runs of one job in one process look up and claim under a lock, so
// they never claim two pods; across runners the ledger gives an attempt to
// one runner at a time, and a runner that takes an attempt over only
// resumes (never claims).
//
// Restarts: a runner's next life (the same PoolOwner, the host name by
// default) deletes the waiting pods of its earlier lives when its pool
// starts (deletes conditional on the listed version, so a pod claimed in
// between is never taken); a claimed pod is resumed like any other. A
// runner that claimed a pod and died before handing the script over leaves
// a supervisor that would wait until the pool's age limit: the supervisor
// writes an empty "s" frame once it has the script, and a runner that
// resumes a claimed pod whose log has no such frame 21 s after the claim
// deletes it and runs the script in a pod of its own (the script never
// ran). Waiting pods of a runner that is gone for good end by themselves
// after their wait; GC deletes pool pods of other lives that ended.
//
// What a waiting pod can observe: nothing runs in it but the supervisor,
// so nothing observes anything until a script arrives. The script then
// sees what a script in a pod created for it sees, plus how long its pod
// waited (the container's and the supervisor's start times in /proc, its
// uptime) and the pool's random pod name as its host name. It sees no
// other run: the pod is created for the pool, with every isolation
// property above, and deleted after its one script. Its CPU time and wall
// time count from the fork of the script (the supervisor subtracts the
// cgroup's CPU usage before it), and its timeout from the hand-over.
// Peak memory is the cgroup's peak since the container started (a pod
// cannot reset it from inside), which includes the supervisor's own
// start-up, as for a pod created for the run.
//
// # Self-test
//
// SelfTest runs a probe pod (and, with a warm pool, a probe in a pod of
// the pool) and checks, from inside, what every run relies
// on (uid, user namespace, capabilities, no_new_privs, seccomp, read-only
// root, no token, no KUBERNETES_* variables, the memory limit, stdin,
// accounting); the service refuses to start when it fails. A default route
// inside the pod is only logged: egress is then up to the NetworkPolicy.
//
// # Cancellation
//
// A cancelled context deletes the pod and returns VerdictCancelled. A
// context cancelled with the cause runner.ErrDetached (a runner shutting
// down, or one whose attempt another runner took over) leaves the pod
// running. Pods implements runner.Resumer: the runner that takes the
// execution over (the same runner's next life at once, another runner once
// the lease expired) calls Resume, which adopts the pod of the same attempt
// without ever creating one, and reports its whole output from the pod's
// log; the ledger gets no second ExecutionStarted and the script runs once.
// A pod deleted by someone else while it ran ends the run with an error
// wrapping runner.ErrSandboxGone (the runner waits a moment for whoever did
// it to record the outcome). Pods implements runner.Collector: GC, which
// the runner's sweep calls, deletes the pods of executions that ended and
// of attempts that were superseded.
package kubernetes
