package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// debianNeeds maps a file that must exist to the Debian package providing it.
var debianNeeds = []struct{ path, pkg string }{
	{"/usr/bin/etcd", "etcd-server"},
	{"/usr/lib/cni/bridge", "containernetworking-plugins"},
	{"/usr/lib/cni/host-local", "containernetworking-plugins"},
	{"/usr/lib/cni/loopback", "containernetworking-plugins"},
	{"/usr/bin/pkg-config", "pkg-config"},
	{"/usr/include/seccomp.h", "libseccomp-dev"},
	{"/usr/bin/gcc", "gcc"},
	{"/usr/include/stdio.h", "libc6-dev"},
	{"/usr/bin/python3", "python3"},
	{"/usr/sbin/ip", "iproute2"},
	{"/usr/bin/dpkg-query", "dpkg"},
}

// EnsureHost checks that this is a root shell and installs the Debian packages
// that are missing, running apt-get update once if an install fails.
func (c *Cluster) EnsureHost(ctx context.Context) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("the test cluster needs root (cgroups, mounts, network namespaces); run as root")
	}
	var missing []string
	seen := map[string]bool{}
	for _, n := range debianNeeds {
		if _, err := os.Stat(n.path); err != nil && !seen[n.pkg] {
			seen[n.pkg] = true
			missing = append(missing, n.pkg)
		}
	}
	if len(missing) > 0 {
		if err := c.aptInstall(ctx, missing); err != nil {
			return err
		}
	}
	for _, ctrl := range []string{"memory", "cpu", "cpuacct", "pids", "cpuset", "freezer", "devices"} {
		if _, err := os.Stat("/sys/fs/cgroup/" + ctrl); err != nil {
			return fmt.Errorf("cgroup v1 controller %s is not mounted at /sys/fs/cgroup/%s: this recipe needs the hybrid cgroup layout of this machine", ctrl, ctrl)
		}
	}
	return nil
}

func (c *Cluster) aptInstall(ctx context.Context, pkgs []string) error {
	c.printf("installing Debian packages: %s", strings.Join(pkgs, " "))
	install := func() ([]byte, error) {
		cmd := exec.CommandContext(ctx, "apt-get", append([]string{"install", "-y", "-q", "--no-install-recommends"}, pkgs...)...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		return cmd.CombinedOutput()
	}
	if _, err := install(); err == nil {
		return nil
	}
	if out, err := exec.CommandContext(ctx, "apt-get", "update", "-q").CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get update failed: %v\n%s", err, lastLines(out, 10))
	}
	if out, err := install(); err != nil {
		return fmt.Errorf("apt-get install %s failed: %v\n%s", strings.Join(pkgs, " "), err, lastLines(out, 15))
	}
	return nil
}

func lastLines(out []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
