//go:build linux

package oci

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/integr8scode/integr8scode/domain"
)

// The hostile cases that need the host's side: listeners, helper processes,
// an environment secret, an earlier run.

// networkSetup opens a TCP and a UDP listener on the host's 127.0.0.1; the
// script tries both, then a name lookup. No other address is contacted: the
// container's only interface is its own loopback, and without resolv.conf
// the resolver asks 127.0.0.1, which is that loopback too.
func networkSetup(t *testing.T, r *Runc) (string, func()) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var reached atomic.Int64
	go func() {
		for {
			c, err := tcp.Accept()
			if err != nil {
				return
			}
			reached.Add(1)
			c.Close()
		}
	}()
	go func() {
		buf := make([]byte, 64)
		for {
			if _, _, err := udp.ReadFrom(buf); err != nil {
				return
			}
			reached.Add(1)
		}
	}()
	after := func() {
		tcp.Close()
		udp.Close()
		if n := reached.Load(); n != 0 {
			t.Errorf("the sandbox reached the host's listeners %d times", n)
		}
	}
	return fmt.Sprintf(`import json, socket
out = {}
try:
    socket.create_connection(("127.0.0.1", %d), timeout=2).close()
    out["tcp"] = "connected"
except OSError as e:
    out["tcp"] = type(e).__name__
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(3):
    s.sendto(b"hello", ("127.0.0.1", %d))
try:
    socket.getaddrinfo("example.com", 80)
    out["dns"] = "resolved"
except socket.gaierror as e:
    out["dns"] = "failed"
out["routes"] = len(open("/proc/net/route").read().splitlines()) - 1
print(json.dumps(out, sort_keys=True))
`, tcp.Addr().(*net.TCPAddr).Port, udp.LocalAddr().(*net.UDPAddr).Port), after
}

func networkCheck(t *testing.T, r *Runc, res domain.Result) {
	want := `{"dns": "failed", "routes": 0, "tcp": "ConnectionRefusedError"}` + "\n"
	if res.Stdout != want {
		t.Fatalf("stdout %q, want %q", res.Stdout, want)
	}
}

const secretName = "INTEGR8SCODE_HOSTILE_SECRET"

func secretSetup(t *testing.T, r *Runc) (string, func()) {
	t.Setenv(secretName, "hunter2-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	return `import glob, os
seen = [repr(dict(os.environ))]
for p in glob.glob("/proc/*/environ") + glob.glob("/proc/*/cmdline") + ["/proc/1/environ"]:
    try:
        seen.append(open(p, "rb").read().decode(errors="replace"))
    except OSError as e:
        seen.append(p + ": " + e.strerror)
for p in ["/etc/environment", "/root/.bash_history", "/etc/shadow", "/var/run/secrets"]:
    seen.append(p + ": " + str(os.path.exists(p)))
print("\n".join(seen))
`, func() {}
}

func secretCheck(t *testing.T, r *Runc, res domain.Result) {
	secret := os.Getenv(secretName)
	if strings.Contains(res.Stdout, secret) || strings.Contains(res.Stdout, secretName) {
		t.Fatalf("the service's secret reached the sandbox:\n%s", res.Stdout)
	}
	for _, p := range []string{"/etc/environment", "/root/.bash_history", "/etc/shadow", "/var/run/secrets"} {
		if !strings.Contains(res.Stdout, p+": False") {
			t.Errorf("%s is visible in the sandbox", p)
		}
	}
}

// killAllSetup starts what kill(-1, SIGKILL) must not reach: a concurrent
// run, and host processes running as root and as each slot's sandbox user
// (the uid a kill(-1) outside a pid namespace could signal). After the
// hostile run they must all be alive.
func killAllSetup(t *testing.T, r *Runc) (string, func()) {
	var helpers []*exec.Cmd
	uids := []uint32{0}
	for slot := range cap(r.slots.free) {
		uids = append(uids, r.slots.hostID(slot)+sandboxUID)
	}
	for _, uid := range uids {
		cmd := exec.Command("/usr/bin/sleep", "60")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		helpers = append(helpers, cmd)
	}
	neighbour := make(chan domain.Result, 1)
	go func() {
		res, _ := r.Run(context.Background(), job("import time\ntime.sleep(4)\nprint('alive')\n", roomy))
		neighbour <- res
	}()
	waitScripts(t, r, 1)
	after := func() {
		if res := <-neighbour; res.Verdict != domain.VerdictCompleted || res.Stdout != "alive\n" {
			t.Errorf("a concurrent run was hit: %s %q", res.Verdict, res.Stdout)
		}
		for _, h := range helpers {
			if err := h.Process.Signal(syscall.Signal(0)); err != nil || processState(h.Process.Pid) == "Z" {
				t.Errorf("host process %d (uid %d) was killed", h.Process.Pid, h.SysProcAttr.Credential.Uid)
			}
			h.Process.Kill()
			h.Wait()
		}
	}
	return `import os, signal, time
children = []
for _ in range(3):
    pid = os.fork()
    if pid == 0:
        time.sleep(600)
        os._exit(0)
    children.append(pid)
os.kill(-1, signal.SIGKILL)
print("children killed", [os.WTERMSIG(os.waitpid(p, 0)[1]) for p in children], end="; ")
print("init alive")
`, after
}

// processState is the state letter of a host process ("Z" for a zombie).
func processState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	_, after, _ := strings.Cut(string(b), ") ")
	state, _, _ := strings.Cut(after, " ")
	return state
}

// waitScripts waits until n scripts of r run.
func waitScripts(t *testing.T, r *Runc, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if len(scriptProcesses(t, r)) >= n {
			return
		}
	}
	t.Fatalf("%d scripts did not start", n)
}

// persistenceSetup leaves a file in /tmp and /dev/shm and a System V shared
// memory segment in one run; the next must see none of them.
func persistenceSetup(t *testing.T, r *Runc) (string, func()) {
	first := `import ctypes
open("/tmp/marker", "w").write("run 1")
open("/dev/shm/marker", "w").write("run 1")
libc = ctypes.CDLL(None, use_errno=True)
shmid = libc.shmget(0x1234, 4096, 0o1000 | 0o666)  # IPC_CREAT
assert shmid >= 0, ctypes.get_errno()
print(shmid)
`
	res := run(t, r, job(first, roomy))
	wantVerdict(t, res, domain.VerdictCompleted)
	return `import ctypes, errno, json, os
libc = ctypes.CDLL(None, use_errno=True)
rc = libc.shmget(0x1234, 0, 0)
print(json.dumps({
    "tmp": os.path.exists("/tmp/marker"),
    "dev_shm": os.path.exists("/dev/shm/marker"),
    "shm_segment": "found" if rc >= 0 else errno.errorcode[ctypes.get_errno()],
    "sysvipc": len(open("/proc/sysvipc/shm").read().splitlines()) - 1,
}, sort_keys=True))
`, func() {}
}
