# The supervisor: the pod's only container runs `python3 -I -B -u -c <this>
# TIMEOUT_MS CAP_BYTES WAIT_S SCRIPT_PATH`. It is pid 1 of the pod's pid
# namespace. See doc.go for why it exists; in short:
#   1. it takes "<len> <timeout ms>\n<script><user stdin>" from its stdin
#      (the runner's attach), so that the script needs no ConfigMap and stays
#      out of the pod spec; what follows the script is the script's stdin,
#      untouched. The timeout in the header wins over TIMEOUT_MS: a pod of
#      the warm pool waits (up to WAIT_S) for a job it did not know when it
#      was created. It says "s" (an empty frame) once it has the script, so
#      that a runner reading the log later knows the script was delivered;
#   2. it forks the script from this interpreter (no second start-up), with
#      stdout and stderr on pipes, and relays both into its own stdout as
#      frames (kind byte, 4-byte big-endian length, data), so that the runner
#      can tell them apart in an attach stream and in the pod's log alike;
#   3. it stops the script at its timeout and at the output cap, measured
#      from the script's real start, and ends with an "x" frame that reports
#      status, exit code, signal, wall and CPU time, peak memory and OOM kills.
# Everything it reports is self-reported by the sandbox: the runner trusts it
# only for what concerns the script's own result, never for its own limits.
import os, sys, select, time

TIMEOUT = int(sys.argv[1]) / 1000
CAP = int(sys.argv[2])
WAIT = int(sys.argv[3])
PATH = sys.argv[4]


def put(kind, data):
    buf = memoryview(kind + len(data).to_bytes(4, "big") + data)
    while buf:
        buf = buf[os.write(1, buf):]


def finish(status, code=125, **report):
    fields = "".join(" %s=%s" % item for item in report.items())
    put(b"x", ("status=%s code=%d%s" % (status, code, fields)).encode())
    os._exit(code)


def take(n, until):
    got = bytearray()
    while len(got) < n:
        left = until - time.monotonic()
        if left <= 0 or not select.select([0], [], [], left)[0]:
            return None
        chunk = os.read(0, n - len(got))
        if not chunk:
            return None
        got += chunk
    return bytes(got)


# 1. The script. Exact-size reads of fd 0 leave the user's stdin where the
# script will find it, whether it reads sys.stdin or os.read(0).
until = time.monotonic() + WAIT
head = b""
while not head.endswith(b"\n"):
    c = take(1, until)
    if c is None or len(head) > 32:
        finish("undelivered")
    head += c
head = head.split()
if not 1 <= len(head) <= 2 or not all(h.isdigit() for h in head):
    finish("undelivered")
if len(head) == 2:
    TIMEOUT = int(head[1]) / 1000
src = take(int(head[0]), until)
if src is None:
    finish("undelivered")
with open(PATH, "wb") as f:
    f.write(src)
put(b"s", b"")



def cgroup(*names):
    # The container's own cgroup, as the kernel accounts it (v1, then v2).
    for name in names:
        try:
            with open("/sys/fs/cgroup/" + name) as f:
                return f.read()
        except OSError:
            pass
    return None


def field(text, key):
    for line in (text or "").splitlines():
        k, _, v = line.partition(" ")
        if k == key:
            return int(v)
    return None


def cpu_ns():
    if os.getpid() != 1:
        return None
    v = cgroup("cpuacct/cpuacct.usage")
    if v:
        return int(v)
    v = field(cgroup("cpu.stat"), "usage_usec")
    return v * 1000 if v is not None else None


# 2. The script, forked. The CPU the container used so far (this
# interpreter's start-up, and its wait in a pod of the warm pool) is not the
# script's.
cpu0 = cpu_ns()
ro, wo = os.pipe()
re_, we = os.pipe()
t0 = time.monotonic()
pid = os.fork()
if pid == 0:
    os.close(ro)
    os.close(re_)
    os.dup2(wo, 1)
    os.dup2(we, 2)
    os.close(wo)
    os.close(we)
    for k in [k for k in os.environ if k.startswith("KUBERNETES_")]:
        del os.environ[k]  # injected even with service links off
    import types
    main = types.ModuleType("__main__")
    main.__file__, main.__cached__ = PATH, None
    main.__builtins__ = __builtins__
    sys.modules["__main__"] = main
    sys.argv[:] = [PATH]
    try:
        exec(compile(src, PATH, "exec", dont_inherit=True), main.__dict__)
    except SystemExit:
        raise
    except BaseException as e:
        # Python's own report, without this supervisor's frame (the
        # default hook prints the exception's __traceback__, not its tb).
        e.__traceback__ = e.__traceback__.tb_next
        sys.excepthook(type(e), e, e.__traceback__)
        sys.exit(1)
    sys.exit(0)

# 3. Relay until the script exits, times out or overflows.
os.close(wo)
os.close(we)
pidfd = os.pidfd_open(pid)
streams = {ro: b"o", re_: b"e"}
sent = {ro: 0, re_: 0}
for fd in streams:
    os.set_blocking(fd, False)
status, exited, end = "exited", False, None


def relay(fd):
    global status
    try:
        data = os.read(fd, 65536)
    except BlockingIOError:
        return False
    if not data:
        del streams[fd]
        return False
    room = CAP - sent[fd]
    if len(data) > room:
        data, status = data[:room], "output_limit"
    sent[fd] += len(data)
    put(streams[fd], data)
    return True


while status == "exited":
    left = t0 + TIMEOUT - time.monotonic()
    if left <= 0:
        status = "timeout"
        break
    wait = list(streams) + ([] if exited else [pidfd])
    if not wait:
        break
    for fd in select.select(wait, [], [], left)[0]:
        if fd == pidfd:
            exited, end = True, time.monotonic()
        elif status == "exited":
            relay(fd)
    if exited:
        # Drain what is already written; a descendant that keeps the pipes
        # open does not keep the run alive (it dies with this process).
        for fd in list(streams):
            while status == "exited" and fd in streams and relay(fd):
                pass
        break

if end is None:
    end = time.monotonic()
if not exited:
    # As pid 1, kill(-1) reaches every other process of the pod's pid
    # namespace; outside a container (tests) only the script.
    os.kill(-1 if os.getpid() == 1 else pid, 9)
_, ws, ru = os.wait4(pid, 0)
sig = os.WTERMSIG(ws) if os.WIFSIGNALED(ws) else 0
code = 128 + sig if sig else os.WEXITSTATUS(ws)

cpu = peak = oom = None
if os.getpid() == 1:
    cpu = cpu_ns()
    if cpu is not None and cpu0 is not None:
        cpu -= cpu0
    v = cgroup("memory/memory.max_usage_in_bytes", "memory.peak")
    peak = int(v) if v else None
    oom = field(cgroup("memory/memory.oom_control", "memory.events"), "oom_kill")
if cpu is None:
    cpu = int((ru.ru_utime + ru.ru_stime) * 1e9)
if peak is None:
    peak = ru.ru_maxrss * 1024
finish(status, code, signal=sig, wall_ns=int((end - t0) * 1e9), cpu_ns=cpu,
       peak_bytes=peak, oom_kills=oom if oom is not None else -1)
