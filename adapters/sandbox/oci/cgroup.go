//go:build linux

package oci

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/integr8scode/integr8scode/domain"
)

// cgroupTree knows where this sandbox's cgroups live on a cgroup v1 host.
//
// runc creates each container's cgroup at <hierarchy>/<parent>/<container id>
// in every hierarchy; parent is /integr8scode/<hash of StateDir>, so that two
// processes with different state directories never touch each other's
// cgroups, and a restarted process finds what its predecessor left.
type cgroupTree struct {
	parent string            // absolute cgroup path, e.g. /integr8scode/0123abcd4567
	mounts map[string]string // controller ("memory", "name=systemd") -> mount point
	all    []string          // every cgroup mount point (v1 and v2), for cleanup
}

// cgroupRoot holds the cgroup parents of every sandbox process on the host.
const cgroupRoot = "/integr8scode"

// requiredControllers are those whose files this package reads or writes.
var requiredControllers = []string{"memory", "cpu", "cpuacct", "pids"}

func newCgroupTree(stateDir string) (*cgroupTree, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	defer f.Close()
	return parseCgroupTree(f, stateDir)
}

// parseCgroupTree reads the cgroup mounts of a mountinfo file. It fails
// closed: without every required controller mounted at its hierarchy's
// root, no sandbox could be limited, so none may start.
func parseCgroupTree(mountinfo io.Reader, stateDir string) (*cgroupTree, error) {
	t := &cgroupTree{
		parent: cgroupRoot + "/" + stateKey(stateDir),
		mounts: map[string]string{},
	}
	roots := map[string]string{}
	sc := bufio.NewScanner(mountinfo)
	for sc.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source superopts
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(qf) < 3 {
			continue
		}
		root, mnt := unescapeMount(pf[3]), unescapeMount(pf[4])
		switch qf[0] {
		case "cgroup2":
			t.all = append(t.all, mnt)
		case "cgroup":
			t.all = append(t.all, mnt)
			for _, opt := range strings.Split(qf[2], ",") {
				if opt == "rw" || opt == "ro" || strings.Contains(opt, "=") && !strings.HasPrefix(opt, "name=") {
					continue
				}
				if _, seen := t.mounts[opt]; !seen {
					t.mounts[opt] = mnt
					roots[opt] = root
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cgroups: read mountinfo: %w", err)
	}
	var errs []error
	for _, c := range requiredControllers {
		switch {
		case t.mounts[c] == "":
			errs = append(errs, fmt.Errorf("the cgroup v1 %q controller is not mounted (this sandbox needs cgroup v1 with memory, cpu, cpuacct and pids)", c))
		case roots[c] != "/":
			errs = append(errs, fmt.Errorf("the cgroup v1 %q hierarchy is mounted from %q, not its root (nested cgroup namespaces are not supported)", c, roots[c]))
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("cgroups: %w", errors.Join(errs...))
	}
	return t, nil
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// path is the cgroupsPath given to runc for container id.
func (t *cgroupTree) path(id string) string { return t.parent + "/" + id }

func (t *cgroupTree) dir(controller, id string) string {
	return filepath.Join(t.mounts[controller], t.path(id))
}

// hasSwapAccounting reports whether memory+swap limits can be set.
func (t *cgroupTree) hasSwapAccounting() bool {
	_, err := os.Stat(filepath.Join(t.mounts["memory"], "memory.memsw.limit_in_bytes"))
	return err == nil
}

// usage is what cgroup accounting says about one container.
type usage struct {
	cpuNanos  int64
	peakBytes int64
	oomKills  int64
}

// readUsage reads the container's accounting. It must run after the script
// exited and before runc deletes the cgroup.
func (t *cgroupTree) readUsage(id string) (usage, error) {
	var u usage
	var err error
	if u.cpuNanos, err = readInt(filepath.Join(t.dir("cpuacct", id), "cpuacct.usage")); err != nil {
		return u, err
	}
	mem := t.dir("memory", id)
	if u.peakBytes, err = readInt(filepath.Join(mem, "memory.max_usage_in_bytes")); err != nil {
		return u, err
	}
	if u.oomKills, err = readKeyed(filepath.Join(mem, "memory.oom_control"), "oom_kill"); err != nil {
		return u, err
	}
	return u, nil
}

// arm gives a waiting container the script's limits (from is what it was
// created with) and resets its accounting, so that the CPU time and the
// peak memory reported count the script alone. It runs before the script
// does: nothing in the container can race it.
func (t *cgroupTree) arm(id string, from, to domain.Limits) error {
	mem := t.dir("memory", id)
	limits := []string{"memory.limit_in_bytes"}
	if t.hasSwapAccounting() {
		// memory+swap may never be below memory: raise it first, lower it last.
		if to.MemoryBytes > from.MemoryBytes {
			limits = []string{"memory.memsw.limit_in_bytes", "memory.limit_in_bytes"}
		} else {
			limits = append(limits, "memory.memsw.limit_in_bytes")
		}
	}
	if to.MemoryBytes != from.MemoryBytes {
		for _, f := range limits {
			if err := writeCgroup(filepath.Join(mem, f), to.MemoryBytes); err != nil {
				return err
			}
		}
	}
	if err := writeCgroup(filepath.Join(t.dir("cpu", id), "cpu.cfs_quota_us"), cpuQuotaMicros(to)); err != nil {
		return err
	}
	// Writing 0 resets the peak to the current usage and the CPU time to 0.
	if err := writeCgroup(filepath.Join(mem, "memory.max_usage_in_bytes"), 0); err != nil {
		return err
	}
	return writeCgroup(filepath.Join(t.dir("cpuacct", id), "cpuacct.usage"), 0)
}

func writeCgroup(path string, v int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(strconv.FormatInt(v, 10))
	return errors.Join(err, f.Close())
}

func readInt(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", path, err)
	}
	return n, nil
}

func readKeyed(path, key string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, " ")
		if ok && k == key {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse %s %s: %w", path, key, err)
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("%s has no %q", path, key)
}

// kill sends SIGKILL to every process in the container's cgroup and reports
// how many it signalled. Each pid is pinned with a pidfd and checked to still
// be in the cgroup before the signal, so a recycled pid is never hit.
func (t *cgroupTree) kill(id string) (int, error) {
	return killCgroup(t.dir("pids", id), t.path(id))
}

func killCgroup(dir, cgPath string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n := 0
	for _, field := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(field)
		if err != nil {
			continue
		}
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			continue // gone already
		}
		if inPidsCgroup(pid, cgPath) && unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0) == nil {
			n++
		}
		unix.Close(fd)
	}
	return n, nil
}

// inPidsCgroup reports whether pid's pids cgroup is cgPath.
func inPidsCgroup(pid int, cgPath string) bool {
	p, ok := pidsCgroup(strconv.Itoa(pid))
	return ok && p == cgPath
}

// pidsCgroup is pid's pids cgroup path.
func pidsCgroup(pid string) (string, bool) {
	b, err := os.ReadFile("/proc/" + pid + "/cgroup")
	if err != nil {
		return "", false
	}
	for _, line := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == "pids" {
				return parts[2], true
			}
		}
	}
	return "", false
}

// remove kills what is left in the container's cgroups and removes them from
// every hierarchy. runc delete normally did this already.
func (t *cgroupTree) remove(id string) error {
	deadline := time.Now().Add(2 * time.Second)
	for {
		if _, err := t.kill(id); err != nil {
			return err
		}
		var errs []error
		busy := false
		for _, mnt := range t.all {
			dir := filepath.Join(mnt, t.path(id))
			err := unix.Rmdir(dir)
			switch {
			case err == nil || errors.Is(err, unix.ENOENT):
			case errors.Is(err, unix.EBUSY):
				busy = true
				errs = append(errs, fmt.Errorf("remove cgroup %s: %w", dir, err))
			default:
				errs = append(errs, fmt.Errorf("remove cgroup %s: %w", dir, err))
			}
		}
		// EBUSY lasts while the kernel still counts exiting processes.
		if !busy || time.Now().After(deadline) {
			return errors.Join(errs...)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// removeLeaves kills and removes every container cgroup under the parent,
// in every hierarchy: what a crashed predecessor left behind.
func (t *cgroupTree) removeLeaves() error {
	ids := map[string]bool{}
	for _, mnt := range t.all {
		entries, err := os.ReadDir(filepath.Join(mnt, t.parent))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		for _, e := range entries {
			if e.IsDir() {
				ids[e.Name()] = true
			}
		}
	}
	var errs []error
	for id := range ids {
		if err := t.remove(id); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeParents removes the (empty) parent cgroups; a parent still holding a
// container is left alone.
func (t *cgroupTree) removeParents() error {
	var errs []error
	for _, mnt := range t.all {
		dir := filepath.Join(mnt, t.parent)
		if err := unix.Rmdir(dir); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EBUSY) && !errors.Is(err, unix.ENOTEMPTY) {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", dir, err))
		}
		// The shared /integr8scode level stays: removing it could race with
		// another process creating its own parent there.
	}
	return errors.Join(errs...)
}
