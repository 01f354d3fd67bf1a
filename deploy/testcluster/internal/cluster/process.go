package cluster

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A daemon is one long-running process of the cluster. It runs in its own
// session (it outlives the command that started it) with its output in
// state/log/<name>.log, and its pid and executable in state/run/<name>.pid so
// that Down stops exactly it and never a process that reused the pid.
type daemon struct {
	name string
	path string
	args []string
	env  []string
}

// daemonOrder is the start order; Down stops them in reverse.
var daemonOrder = []string{"etcd", "kube-apiserver", "containerd", "kube-controller-manager", "kube-scheduler", "kubelet"}

func (c *Cluster) logPath(name string) string { return c.state("log", name+".log") }
func (c *Cluster) pidPath(name string) string { return c.state("run", name+".pid") }

func (c *Cluster) start(d daemon) error {
	if err := os.MkdirAll(c.state("log"), 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(c.state("run"), 0o755); err != nil {
		return err
	}
	logf, err := os.OpenFile(c.logPath(d.name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(d.path, d.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = c.State()
	cmd.Env = append(os.Environ(), d.env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	fmt.Fprintf(logf, "### %s %s\n", d.path, strings.Join(d.args, " "))
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", d.name, err)
	}
	pid := cmd.Process.Pid
	// Reap it if it dies while we still run, so that alive() sees it gone.
	go cmd.Wait()
	return os.WriteFile(c.pidPath(d.name), []byte(fmt.Sprintf("%d\n%s\n", pid, d.path)), 0o644)
}

// pidOf returns the pid of a running daemon, or errNotRunning.
func (c *Cluster) pidOf(name string) (int, error) {
	data, err := os.ReadFile(c.pidPath(name))
	if err != nil {
		return 0, errNotRunning
	}
	fields := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(fields) != 2 {
		return 0, errNotRunning
	}
	pid, err := strconv.Atoi(fields[0])
	if err != nil {
		return 0, errNotRunning
	}
	if exeOf(pid) != fields[1] {
		return 0, errNotRunning
	}
	return pid, nil
}

// exeOf returns the executable of a live, non-zombie process, or "".
func exeOf(pid int) string {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(exe, " (deleted)")
}

// stop sends SIGTERM, waits up to grace, then SIGKILL.
func (c *Cluster) stop(name string, grace time.Duration) error {
	pid, err := c.pidOf(name)
	if errors.Is(err, errNotRunning) {
		os.Remove(c.pidPath(name))
		return nil
	}
	t := time.Now()
	if err := killAndWait(pid, grace); err != nil {
		return fmt.Errorf("stop %s (pid %d): %w", name, pid, err)
	}
	c.Log.Debug("stopped", "daemon", name, "pid", pid, "took", time.Since(t))
	os.Remove(c.pidPath(name))
	return nil
}

func killAndWait(pid int, grace time.Duration) error {
	exe := exeOf(pid)
	gone := func() bool { return exeOf(pid) != exe || exe == "" }
	syscall.Kill(pid, syscall.SIGTERM)
	for deadline := time.Now().Add(grace); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if gone() {
			return nil
		}
	}
	syscall.Kill(pid, syscall.SIGKILL)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if gone() {
			return nil
		}
	}
	return errors.New("still alive after SIGKILL")
}

// strays finds processes of this cluster that no pid file names: containerd
// shims (they daemonize) and anything left by a run whose state was lost. A
// process is ours if its executable is one we built, or if it is etcd with
// its data directory in our state directory.
func (c *Cluster) strays() []int {
	self := os.Getpid()
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self || pid == os.Getppid() {
			continue
		}
		exe := exeOf(pid)
		if exe == "" {
			continue
		}
		if strings.HasPrefix(exe, c.Bin()+"/") {
			// The builds are shared by every checkout: only this one's
			// (their command lines name its state; a runc of ours has none).
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			if strings.Contains(string(cmdline), c.Dir+"/") || filepath.Base(exe) == "runc" {
				pids = append(pids, pid)
			}
			continue
		}
		if exe == etcdPath {
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			if strings.Contains(string(cmdline), c.state("etcd")) {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// otherCluster returns the .cluster directory of another checkout whose
// cluster runs from the shared builds, or "" if none does.
func (c *Cluster) otherCluster() string {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !strings.HasPrefix(exeOf(pid), c.Bin()+"/") {
			continue
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		for _, arg := range strings.Split(string(cmdline), "\x00") {
			_, path, _ := strings.Cut(arg, "=") // --config=<dir>/.cluster/state/...
			if i := strings.Index(path, "/.cluster/"); i > 0 && !strings.HasPrefix(path, c.Dir+"/") {
				return path[:i+len("/.cluster")]
			}
		}
	}
	return ""
}

// cgroupPids lists every process in the pod cgroups (the containers).
func cgroupPids() []int {
	var pids []int
	root := filepath.Join("/sys/fs/cgroup/pids", CgroupRoot)
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
			return nil
		}
		data, _ := os.ReadFile(p)
		for _, f := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
		return nil
	})
	return pids
}
