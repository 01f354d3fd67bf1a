//go:build linux

package oci

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/integr8scode/integr8scode/domain"
)

// syscallProbes calls, from Python inside the sandbox, each system call the
// profile closes, with harmless arguments, and prints the errno name each
// one failed with ("ok" if it succeeded).
const syscallProbes = `import ctypes, errno, json, os, socket
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def sc(nr, *args):
    ctypes.set_errno(0)
    rc = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    if rc == 0 and nr in (56, 435):  # a clone that worked: this is the child
        os._exit(0)
    return "ok" if rc >= 0 else errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))
buf = ctypes.create_string_buffer(64)
p = ctypes.addressof(buf)
out = {
    "ptrace": sc(101, 0, 0, 0, 0),                    # PTRACE_TRACEME
    "process_vm_readv": sc(310, os.getpid(), 0, 0, 0, 0, 0),
    "process_vm_writev": sc(311, os.getpid(), 0, 0, 0, 0, 0),
    "mount": sc(165, p, p, p, 0, 0),
    "umount2": sc(166, p, 0),
    "pivot_root": sc(155, p, p),
    "chroot": sc(161, p),
    "fsopen": sc(430, p, 0),
    "open_tree": sc(428, -100, p, 0),
    "move_mount": sc(429, -100, p, -100, p, 0),
    "unshare": sc(272, 0x00020000),                   # CLONE_NEWNS
    "setns": sc(308, 0, 0),
    "clone_newuser": sc(56, 0x10000000 | 17, 0, 0, 0, 0),
    "clone3": sc(435, 0, 0),
    "keyctl": sc(250, 0, -3, 0, 0, 0),                # KEYCTL_GET_KEYRING_ID, session
    "add_key": sc(248, p, p, 0, 0, -3),
    "request_key": sc(249, p, p, 0, -3),
    "bpf": sc(321, 5, 0, 0),                          # BPF_PROG_LOAD
    "io_uring_setup": sc(425, 1, p),
    "io_uring_enter": sc(426, 0, 0, 0, 0, 0, 0),
    "io_uring_register": sc(427, 0, 0, 0, 0),
    "userfaultfd": sc(323, 0),
    "perf_event_open": sc(298, p, 0, -1, -1, 0),
    "kexec_load": sc(246, 0, 0, 0, 0),
    "kexec_file_load": sc(320, -1, -1, 0, 0, 0),
    "init_module": sc(175, 0, 0, p),
    "finit_module": sc(313, -1, p, 0),
    "delete_module": sc(176, p, 0),
    "pidfd_getfd": sc(438, 0, 0, 0),
    "kcmp": sc(312, os.getpid(), os.getpid(), 0, 0, 0),
    "open_by_handle_at": sc(304, -100, p, 0),
    "modify_ldt": sc(154, 0, p, 8),
    "swapon": sc(167, p, 0),
    "reboot": sc(169, 0, 0, 0, 0),
    # not on the allow list, not named: ENOSYS
    "mlock": sc(149, p, 64),
    "io_setup": sc(206, 1, p),
    "seccomp": sc(317, 0, 0, 0),
    "personality_no_aslr": sc(135, 0x0040000),
    # allowed
    "getpid": sc(39),
    "personality_query": sc(135, 0xffffffff),
}
def sock(name, family, typ):
    try:
        socket.socket(family, typ).close()
        out[name] = "ok"
    except OSError as e:
        out[name] = errno.errorcode.get(e.errno, str(e.errno))
sock("socket_packet", socket.AF_PACKET, socket.SOCK_RAW)
sock("socket_packet_dgram", socket.AF_PACKET, socket.SOCK_DGRAM)
sock("socket_vsock", 40, socket.SOCK_STREAM)
sock("socket_alg", 38, socket.SOCK_SEQPACKET)
sock("socket_netlink_raw", socket.AF_NETLINK, socket.SOCK_RAW)
sock("socket_netlink_dgram", socket.AF_NETLINK, socket.SOCK_DGRAM)
sock("socket_key", 15, socket.SOCK_RAW)
sock("socket_inet_raw", socket.AF_INET, socket.SOCK_RAW)
sock("socket_inet6_raw", socket.AF_INET6, socket.SOCK_RAW)
sock("socket_inet_stream", socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
sock("socket_inet6_dgram", socket.AF_INET6, socket.SOCK_DGRAM)
sock("socket_unix_seqpacket", socket.AF_UNIX, socket.SOCK_SEQPACKET)
print(json.dumps(out))
`

// TestSeccompClosed checks that every system call the issue names as closed
// fails inside the sandbox, with EPERM where the profile names it and
// ENOSYS where the allow list just leaves it out.
func TestSeccompClosed(t *testing.T) {
	r := newSandbox(t, Config{})
	res := run(t, r, job(syscallProbes, fast))
	wantVerdict(t, res, domain.VerdictCompleted)
	var got map[string]string
	if err := json.Unmarshal([]byte(res.Stdout), &got); err != nil {
		t.Fatalf("%v: %q\nstderr: %s", err, res.Stdout, res.Stderr)
	}
	t.Logf("%v", got)
	want := map[string]string{
		"getpid": "ok", "personality_query": "ok",
		"socket_inet_stream": "ok", "socket_inet6_dgram": "ok", "socket_unix_seqpacket": "ok",
		"clone3": "ENOSYS", "mlock": "ENOSYS", "io_setup": "ENOSYS", "seccomp": "ENOSYS",
		"personality_no_aslr": "ENOSYS", "socket_inet_raw": "ENOSYS", "socket_inet6_raw": "ENOSYS",
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			want[name] = "EPERM"
		}
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s: %q, want %s", name, got[name], w)
		}
	}
	assertClean(t, r)
}

// TestX32Blocked makes a system call through the x32 ABI (the x86_64
// instruction with bit 30 set in the number), which shares x86_64's audit
// architecture: the filter kills the caller.
func TestX32Blocked(t *testing.T) {
	r := newSandbox(t, Config{})
	wantSIGSYS(t, r, "0xb8, 0x27, 0, 0, 0x40, 0x0f, 0x05, 0xc3") // mov eax, 0x40000027 (x32 getpid); syscall; ret
}

// wantSIGSYS runs x86_64 machine code (Python bytes literal items) that
// makes a system call the filter must not let through, and expects the
// kernel to kill the script with SIGSYS. The probe means nothing on another
// architecture, where it is skipped.
func wantSIGSYS(t *testing.T, r *Runc, code string) {
	t.Helper()
	script := `import ctypes, mmap, platform, sys
if platform.machine() != "x86_64":
    print("skip")
    sys.exit(0)
code = bytes([` + code + `])
m = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
m.write(code)
f = ctypes.CFUNCTYPE(ctypes.c_long)(ctypes.addressof(ctypes.c_char.from_buffer(m)))
print("getpid", f())
`
	res := run(t, r, job(script, fast))
	if res.Stdout == "skip\n" {
		t.Skip("not x86_64: the probe is x86_64 machine code")
	}
	wantVerdict(t, res, domain.VerdictRuntimeErr)
	if res.Signal != "SIGSYS" {
		t.Fatalf("signal %q stdout %q, want SIGSYS", res.Signal, res.Stdout)
	}
	assertClean(t, r)
}

// broadWorkload uses much of the standard library the way scripts do.
const broadWorkload = `import datetime, hashlib, json, multiprocessing, os, re, socket, sqlite3
import subprocess, tempfile, threading, time, zlib, random, decimal, asyncio, shutil, select
out = {}
out["json"] = json.loads(json.dumps({"a": [1, 2.5, None]}))["a"][1]
out["re"] = re.sub(r"(\d+)", r"<\1>", "a1b22")
n = []
ts = [threading.Thread(target=n.append, args=(i,)) for i in range(8)]
for t in ts: t.start()
for t in ts: t.join()
out["threads"] = sorted(n) == list(range(8))
def square(x):
    return x * x
if __name__ == "__main__":
    with multiprocessing.Pool(2) as pool:
        out["multiprocessing"] = pool.map(square, range(10))
if os.path.exists("/usr/bin/true"):
    out["subprocess"] = subprocess.run(["/usr/bin/true"]).returncode
out["subprocess_output"] = subprocess.run(["/usr/bin/python3", "-c", "print(6*7)"], capture_output=True, text=True).stdout.strip()
db = sqlite3.connect("/tmp/test.db")
db.execute("create table t (x integer)")
db.executemany("insert into t values (?)", [(i,) for i in range(100)])
db.commit()
out["sqlite3"] = db.execute("select sum(x) from t").fetchone()[0]
db.close()
out["hashlib"] = hashlib.sha256(b"abc").hexdigest()[:8] + hashlib.md5(b"abc").hexdigest()[:8]
a, b = socket.socketpair()
a.sendall(b"ping")
out["socketpair"] = b.recv(4).decode()
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.bind(("127.0.0.1", 0)); srv.listen()
c = socket.create_connection(srv.getsockname()); s, _ = srv.accept()
c.sendall(b"tcp"); out["loopback_tcp"] = s.recv(3).decode()
out["datetime"] = datetime.datetime(2024, 2, 29, tzinfo=datetime.timezone.utc).isoformat()
out["zlib"] = len(zlib.compress(b"x" * 10000)) < 100
out["decimal"] = str(decimal.Decimal("0.1") + decimal.Decimal("0.2"))
async def main():
    await asyncio.sleep(0.01)
    return "asyncio"
out["asyncio"] = asyncio.run(main())
with tempfile.TemporaryDirectory() as d:
    p = os.path.join(d, "f")
    with open(p, "w") as f: f.write("hello")
    shutil.copy(p, p + "2"); os.rename(p + "2", p + "3"); os.symlink(p, p + "4"); os.mkfifo(p + "5")
    out["files"] = sorted(os.listdir(d))
out["cpu_count"] = os.cpu_count() > 0
out["random"] = len(os.urandom(16))
out["select"] = select.select([], [], [], 0) == ([], [], [])
out["time"] = time.monotonic() > 0 and time.time() > 1.7e9
print(json.dumps(out, sort_keys=True))
`

// TestBroadWorkload checks that the allow list leaves the standard library
// working: threads, a process pool, subprocesses, sqlite in /tmp, sockets
// on the loopback, asyncio, files.
func TestBroadWorkload(t *testing.T) {
	r := newSandbox(t, Config{})
	res := run(t, r, job(broadWorkload, domain.Limits{TimeoutMs: 20000, MemoryBytes: 256 << 20, CPUMillicores: 1000}))
	wantVerdict(t, res, domain.VerdictCompleted)
	want := `{"asyncio": "asyncio", "cpu_count": true, "datetime": "2024-02-29T00:00:00+00:00", "decimal": "0.3", ` +
		`"files": ["f", "f3", "f4", "f5"], "hashlib": "ba7816bf90015098", "json": 2.5, "loopback_tcp": "tcp", ` +
		`"multiprocessing": [0, 1, 4, 9, 16, 25, 36, 49, 64, 81], "random": 16, "re": "a<1>b<22>", "select": true, ` +
		`"socketpair": "ping", "sqlite3": 4950, "subprocess": 0, "subprocess_output": "42", "threads": true, "time": true, "zlib": true}`
	if got := strings.TrimSpace(res.Stdout); got != want {
		t.Fatalf("got  %s\nwant %s\nstderr: %s", got, want, res.Stderr)
	}
	assertClean(t, r)
}
