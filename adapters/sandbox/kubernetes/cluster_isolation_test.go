//go:build kubernetes

package kubernetes

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/integr8scode/integr8scode/domain"
)

// TestHardening looks at the pod from inside: who it runs as, what it can
// reach and write.
func TestHardening(t *testing.T) {
	warmOrCold(t, nil, testHardening)
}

func testHardening(t *testing.T, f fixture) {
	res := f.run(t, job(t, `import os, errno
print("uid", os.getuid(), os.getgid())
st = dict(l.split(":\t", 1) for l in open("/proc/self/status").read().splitlines() if ":\t" in l)
print("caps", st["CapEff"], st["CapBnd"], "nnp", st["NoNewPrivs"], "seccomp", st["Seccomp"])
print("uid_map", open("/proc/self/uid_map").read().split())
for path in ["/usr/evil", "/etc/evil", "/evil"]:
    try:
        open(path, "w")
        print("wrote", path)
    except OSError as e:
        print("ro", path, errno.errorcode[e.errno])
try:
    with open("/tmp/fill", "wb") as f:
        for _ in range(64):
            f.write(b"\0" * (1 << 20))
    print("tmp unbounded")
except OSError as e:
    print("tmp full", errno.errorcode[e.errno])
print("token", os.path.exists("/var/run/secrets/kubernetes.io"))
print("env", sorted(k for k in os.environ if k.startswith("KUBERNETES")))
routes = open("/proc/net/route").read().splitlines()[1:]
print("default route", any(r.split()[1] == "00000000" for r in routes))
`))
	if res.Verdict != domain.VerdictCompleted {
		t.Fatalf("got %+v", res)
	}
	for _, want := range []string{
		"uid 65534 65534\n",
		"caps 0000000000000000 0000000000000000 nnp 1 seccomp 2\n",
		"ro /usr/evil EROFS\n", "ro /etc/evil EROFS\n", "ro /evil EROFS\n",
		"tmp full ENOSPC\n",
		"token False\n",
		"env []\n",
		"default route False\n",
	} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("missing %q in:\n%s", want, res.Stdout)
		}
	}
	// hostUsers: false: uid 0 inside maps to a high host uid, not to 0.
	if strings.Contains(res.Stdout, "uid_map ['0', '0',") {
		t.Errorf("the pod runs in the host's user namespace:\n%s", res.Stdout)
	}
}

// TestForkBomb forks until fork fails. The test cluster's kubelet bounds
// each pod's processes (podPidsLimit 128, deploy/testcluster): fork answers
// EAGAIN long before memory runs out, and the script can still clean up.
func TestForkBomb(t *testing.T) {
	warmOrCold(t, nil, testForkBomb)
}

func testForkBomb(t *testing.T, f fixture) {
	res := f.run(t, job(t, `import os, errno, signal, time
kids, err = [], None
for _ in range(4096):
    try:
        pid = os.fork()
    except OSError as e:
        err = errno.errorcode[e.errno]
        break
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    kids.append(pid)
for k in kids:
    os.kill(k, signal.SIGKILL)
for k in kids:
    os.waitpid(k, 0)
print("forks", len(kids), err)
`))
	var n int
	var errno string
	if _, err := fmt.Sscanf(res.Stdout, "forks %d %s", &n, &errno); err != nil || res.Verdict != domain.VerdictCompleted {
		t.Fatalf("got %+v (%v)", res, err)
	}
	t.Logf("%d forks, then %s", n, errno)
	if errno != "EAGAIN" || n >= 128 || n < 32 {
		t.Fatalf("%d forks, then %s; want EAGAIN below the pod's limit of 128 processes", n, errno)
	}
}

// TestHostUsers runs a pod in the host's user namespace (HostUsers: true),
// for clusters without user namespace support.
func TestHostUsers(t *testing.T) {
	warmOrCold(t, func(c *Config) { c.HostUsers = true }, testHostUsers)
}

func testHostUsers(t *testing.T, f fixture) {
	res := f.run(t, job(t, `print(open("/proc/self/uid_map").read().split())`))
	if res.Verdict != domain.VerdictCompleted || res.Stdout != "['0', '0', '4294967295']\n" {
		t.Fatalf("got %+v", res)
	}
}

// TestNetwork tries to reach a listener on the node's loopback from the
// pod, at the only address it may try: 127.0.0.1, which inside the pod is
// the pod's own loopback.
func TestNetwork(t *testing.T) {
	warmOrCold(t, nil, testNetwork)
}

func testNetwork(t *testing.T, f fixture) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
			accepted <- struct{}{}
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	res := f.run(t, job(t, fmt.Sprintf(`import socket, errno
s = socket.socket()
s.settimeout(2)
try:
    s.connect(("127.0.0.1", %d))
    print("connected")
except OSError as e:
    print("refused", errno.errorcode.get(e.errno, e))
`, port)))
	if res.Verdict != domain.VerdictCompleted || res.Stdout != "refused ECONNREFUSED\n" {
		t.Fatalf("got %+v", res)
	}
	select {
	case <-accepted:
		t.Fatal("the node's listener accepted a connection from the pod")
	default:
	}
}

func TestSelfTest(t *testing.T) {
	for _, hostUsers := range []bool{false, true} {
		t.Run(fmt.Sprintf("hostUsers=%v", hostUsers), func(t *testing.T) {
			// With a warm pool, the self-test probes a pod of the pool too.
			f := newFixture(t, func(c *Config) { c.HostUsers, c.Warm = hostUsers, 1 })
			if err := f.pods.SelfTest(context.Background()); err != nil {
				t.Fatal(err)
			}
			if s := f.pods.PoolStats(); s.Hits != 1 {
				t.Fatalf("the self-test did not probe a warm pod: %+v", s)
			}
		})
	}
	t.Run("weakened", func(t *testing.T) {
		f := newFixture(t, nil)
		f.pods.mutatePod = func(p *corev1.Pod) { p.Spec.Containers[0].SecurityContext.ReadOnlyRootFilesystem = ptr.To(false) }
		err := f.pods.SelfTest(context.Background())
		if err == nil || !strings.Contains(err.Error(), "the root file system is writable") {
			t.Fatalf("got %v", err)
		}
	})
}
