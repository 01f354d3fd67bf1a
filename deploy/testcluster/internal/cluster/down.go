package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Down stops every process of the cluster and removes what it left on the
// host: mounts, the bridge and its veths, cgroups, CNI results, log links,
// sysctls, and the state directory. The builds and images (Builds) stay. It is safe to run at any time, any number of times.
func (c *Cluster) Down(ctx context.Context) error {
	var errs []error
	t := time.Now()
	note := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	phase := func(name string) {
		c.Log.Debug("down", "phase", name, "took", time.Since(t))
		t = time.Now()
	}
	// The kubelet first, so that it restarts nothing; then the containers.
	note(c.stop("kubelet", 10*time.Second))
	for _, pid := range cgroupPids() {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	for _, name := range slices.Backward(daemonOrder) {
		note(c.stop(name, 10*time.Second))
	}
	// containerd's shims daemonize; anything else left over goes too.
	for attempt := 0; attempt < 3; attempt++ {
		strays := c.strays()
		if len(strays) == 0 {
			break
		}
		for _, pid := range strays {
			note(killAndWait(pid, 0))
		}
	}
	if left := c.strays(); len(left) > 0 {
		errs = append(errs, fmt.Errorf("processes still running: %v", left))
	}
	phase("processes")
	note(unmountUnder(c.Dir))
	phase("mounts")
	note(removeLinks())
	phase("links")
	note(removeCgroups())
	phase("cgroups")
	note(c.removeHostFiles())
	note(restoreSysctls(c.state("sysctl-before")))
	if len(errs) == 0 {
		note(os.RemoveAll(c.State()))
		note(os.Remove(c.Kubeconfig()))
	}
	if err := errors.Join(errs...); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("cluster down: %w", err)
	}
	return nil
}

// removeLinks deletes the bridge and any veth still attached to it (a veth
// goes by itself when its pod's network namespace is freed).
func removeLinks() error {
	var errs []error
	entries, _ := os.ReadDir("/sys/class/net")
	for _, e := range entries {
		master, err := os.Readlink(filepath.Join("/sys/class/net", e.Name(), "master"))
		if err == nil && filepath.Base(master) == BridgeName {
			if out, err := exec.Command("ip", "link", "del", e.Name()).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("ip link del %s: %v: %s", e.Name(), err, strings.TrimSpace(string(out))))
			}
		}
	}
	if _, err := os.Stat(filepath.Join("/sys/class/net", BridgeName)); err == nil {
		if out, err := exec.Command("ip", "link", "del", BridgeName).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("ip link del %s: %v: %s", BridgeName, err, strings.TrimSpace(string(out))))
		}
	}
	return errors.Join(errs...)
}

// removeHostFiles removes what the cluster wrote outside .cluster: libcni's
// results and the kubelet's log links, and those of hostDirs it created.
func (c *Cluster) removeHostFiles() error {
	var errs []error
	results, _ := filepath.Glob("/var/lib/cni/results/" + CNINetworkName + "-*")
	for _, r := range results {
		if err := os.Remove(r); err != nil {
			errs = append(errs, err)
		}
	}
	links, _ := filepath.Glob("/var/log/containers/*.log")
	for _, l := range links {
		if target, err := os.Readlink(l); err == nil && strings.HasPrefix(target, c.State()+"/") {
			if err := os.Remove(l); err != nil {
				errs = append(errs, err)
			}
		}
	}
	made, _ := os.ReadFile(c.state("made-host-dirs"))
	for _, d := range strings.Fields(string(made)) {
		if slices.Contains(hostDirs, d) {
			if err := os.RemoveAll(d); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// hostDirs are directories that containerd and the kubelet create at fixed
// places whatever their configuration: shim sockets (/run/containerd/s), the
// device-plugin socket (/var/lib/kubelet/device-plugins), libcni's result
// cache and the kubelet's container log links.
var hostDirs = []string{"/run/containerd", "/var/lib/kubelet", "/var/lib/cni", "/var/log/containers"}

// recordHostDirs notes which of hostDirs do not exist yet, so that Down
// removes those (and only those) again.
func (c *Cluster) recordHostDirs() error {
	var made []string
	for _, d := range hostDirs {
		if _, err := os.Stat(d); errors.Is(err, os.ErrNotExist) {
			made = append(made, d)
		}
	}
	return writeFile(c.state("made-host-dirs"), []byte(strings.Join(made, "\n")+"\n"), 0o644)
}

// Status prints which daemons run and whether the node is Ready.
func (c *Cluster) Status(ctx context.Context) error {
	for _, name := range daemonOrder {
		if pid, err := c.pidOf(name); err == nil {
			c.printf("%-24s running (pid %d)", name, pid)
		} else {
			c.printf("%-24s not running", name)
		}
	}
	if err := c.healthy(ctx); err != nil {
		return fmt.Errorf("the test cluster is not up: %w", err)
	}
	c.printf("node %s is Ready; kubeconfig: %s", NodeName, c.Kubeconfig())
	return nil
}
