//go:build linux

package oci

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// slotWait is how long a run waits for a uid slot that a finished run's
// cleanup still holds (Runc.slotWait; tests shorten it).
const slotWait = 2 * cleanupTimeout

// cleanupLater runs cleanup in the background; Close waits for it.
func (r *Runc) cleanupLater(c *container) {
	r.cleaning.Add(1)
	go func() {
		defer r.cleaning.Add(-1)
		r.cleanup(c)
	}()
}

// settle waits, at most 2*cleanupTimeout, until no cleanup runs.
func (r *Runc) settle() {
	deadline := time.Now().Add(2 * cleanupTimeout)
	for r.cleaning.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
}

// cleanup removes every trace of a run: runc's state and cgroups (runc
// delete), whatever cgroup is left, and the bundle, and then gives the uid
// slot back. Failures are logged; the next New removes what is still there.
func (r *Runc) cleanup(c *container) {
	var errs []error
	if err := r.runcDelete(c.id); err != nil {
		errs = append(errs, err)
	}
	cgErr := r.cgroups.remove(c.id)
	if cgErr != nil {
		errs = append(errs, cgErr)
	} else if len(errs) > 0 {
		// runc delete failed but nothing runs any more: its state can go.
		if err := os.RemoveAll(filepath.Join(r.runcRoot, c.id)); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(c.bundle); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		r.log.Error("sandbox cleanup failed", "container", c.id, "err", errors.Join(errs...))
	}
	// With its cgroup gone, no process of the run is left to hold the slot's
	// host uids. Otherwise one may be, and the next run must not share its
	// uid: the slot stays taken until the next New.
	if cgErr != nil {
		r.log.Error("retiring the run's uid slot: its cgroup may still hold processes", "container", c.id, "slot", c.slot)
		return
	}
	r.slots.release(c.slot)
}

func (r *Runc) runcDelete(id string) error {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.cfg.RuncPath, "--root", r.runcRoot, "delete", "--force", id)
	cmd.Env = runcEnv
	out, err := cmd.CombinedOutput()
	if err != nil && !strings.Contains(string(out), "does not exist") {
		return fmt.Errorf("runc delete %s: %w: %s", id, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// removeLeftovers deletes what an earlier process using the same StateDir
// left behind when it crashed: its containers (runc delete), any process
// still in its cgroups, the cgroups, its bundles and root file system. With
// leased ids it also kills any sandbox process left with them, whichever
// StateDir its crashed owner used; it looks at the leased blocks only,
// never at ids other processes may hold.
func (r *Runc) removeLeftovers() error {
	if _, err := os.Stat(r.runcRoot); err == nil {
		// Best effort: what runc cannot delete dies with its cgroup below,
		// and its state directory goes with runc's root.
		ids, err := r.runcList()
		if err != nil {
			r.log.Warn("cannot list leftover containers; removing their cgroups", "err", err)
		}
		for _, id := range ids {
			r.log.Warn("removing a container left by an earlier process", "container", id)
			if err := r.runcDelete(id); err != nil {
				r.log.Warn("runc delete of a leftover failed; removing its cgroups", "container", id, "err", err)
			}
		}
	}
	if err := r.cgroups.removeLeaves(); err != nil {
		return err
	}
	// A crashed process that leased the same ids may have used another
	// StateDir, whose cgroups are not ours to clean: its containers are
	// found by their host ids instead. No live sandbox process has ids in
	// a block we lease, so a sandbox process with them is a leftover.
	if r.lease != nil {
		n, err := killIDRange(uint64(r.lease.first), r.lease.end())
		if n > 0 {
			r.log.Warn("killed sandbox processes left with the leased uid blocks' ids", "processes", n, "first_id", r.lease.first, "ids", r.lease.ids)
		}
		if err != nil {
			return err
		}
	}
	// runc never mounts in the host's mount namespace, so nothing should be
	// mounted here; if something is, removing the tree could reach into it.
	for _, dir := range []string{r.cfg.StateDir, r.runDir} {
		if m, err := mountUnder(dir); err != nil {
			return err
		} else if m != "" {
			return fmt.Errorf("%s is a mount point inside %s; unmount it first", m, dir)
		}
	}
	for _, d := range []string{r.runcRoot, r.bundles, r.rootfs} {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
	}
	return nil
}

// killIDRange kills every sandbox process (one in a pids cgroup under
// cgroupRoot, where every sandbox's containers live and which they cannot
// leave) with a uid or gid in [first, end), until none is left, and
// reports how many it signalled. Each pid is pinned with a pidfd and
// checked again before the signal, so a recycled pid is never hit. Other
// software's processes are never signalled: leaseUIDBlocks passed over
// blocks they used.
func killIDRange(first, end uint64) (int, error) {
	deadline := time.Now().Add(cleanupTimeout)
	killed := 0
	for {
		ours, _, err := processesWithIDs(first, end)
		if err != nil || len(ours) == 0 {
			return killed, err
		}
		if time.Now().After(deadline) {
			return killed, fmt.Errorf("sandbox processes %v with host ids in [%d, %d) outlived SIGKILL", ours, first, end)
		}
		for _, pid := range ours {
			fd, err := unix.PidfdOpen(pid, 0)
			if err != nil {
				continue // gone already
			}
			if sandboxProcessWithIDs(strconv.Itoa(pid), first, end) {
				if unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0) == nil {
					killed++
				}
			}
			unix.Close(fd)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// processesWithIDs lists the live host processes with a uid or gid in
// [first, end): sandbox processes (ours), and the others (foreign).
// Zombies are dead already: their parents reap them.
func processesWithIDs(first, end uint64) (ours, foreign []int, err error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, nil, err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ids, ok := hostIDs(e.Name())
		if !ok || !ids.in(first, end) || ids.state == "Z" {
			continue
		}
		if cg, ok := pidsCgroup(e.Name()); ok && strings.HasPrefix(cg, cgroupRoot+"/") {
			ours = append(ours, pid)
		} else {
			foreign = append(foreign, pid)
		}
	}
	return ours, foreign, nil
}

// sandboxProcessWithIDs reports whether pid is a live sandbox process with
// a uid or gid in [first, end).
func sandboxProcessWithIDs(pid string, first, end uint64) bool {
	ids, ok := hostIDs(pid)
	if !ok || !ids.in(first, end) || ids.state == "Z" {
		return false
	}
	cg, ok := pidsCgroup(pid)
	return ok && strings.HasPrefix(cg, cgroupRoot+"/")
}

// procIDs are a process's ids as the host sees them (real, effective,
// saved, file system) and its state letter.
type procIDs struct {
	uid, gid []uint64
	state    string
}

// in reports whether any of the ids is in [first, end).
func (p procIDs) in(first, end uint64) bool {
	for _, ids := range [][]uint64{p.uid, p.gid} {
		for _, v := range ids {
			if v >= first && v < end {
				return true
			}
		}
	}
	return false
}

// hostIDs reads /proc/<pid>/status.
func hostIDs(pid string) (procIDs, bool) {
	var ids procIDs
	b, err := os.ReadFile(filepath.Join("/proc", pid, "status"))
	if err != nil {
		return ids, false
	}
	parse := func(v string) []uint64 {
		var out []uint64
		for _, f := range strings.Fields(v) {
			n, err := strconv.ParseUint(f, 10, 32)
			if err == nil {
				out = append(out, n)
			}
		}
		return out
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "State:"); ok {
			ids.state, _, _ = strings.Cut(strings.TrimSpace(v), " ")
		}
		if v, ok := strings.CutPrefix(line, "Uid:"); ok {
			ids.uid = parse(v)
		}
		if v, ok := strings.CutPrefix(line, "Gid:"); ok {
			ids.gid = parse(v)
		}
	}
	return ids, len(ids.uid) == 4 && len(ids.gid) == 4
}

func (r *Runc) runcList() ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.cfg.RuncPath, "--root", r.runcRoot, "list", "--quiet")
	cmd.Env = runcEnv
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("runc list: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return strings.Fields(string(out)), nil
}

// mountUnder returns a mount point below dir, or "".
func mountUnder(dir string) (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mnt := unescapeMount(fields[4])
		if strings.HasPrefix(mnt, dir+"/") {
			return mnt, nil
		}
	}
	return "", sc.Err()
}

// leftovers lists what a finished run may have left: bundles, containers
// and cgroups. Empty after every Run.
func (r *Runc) leftovers() ([]string, error) {
	var out []string
	entries, err := os.ReadDir(r.bundles)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	for _, e := range entries {
		out = append(out, "bundle "+e.Name())
	}
	ids, err := r.runcList()
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		out = append(out, "container "+id)
	}
	for _, mnt := range r.cgroups.all {
		entries, err := os.ReadDir(filepath.Join(mnt, r.cgroups.parent))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		for _, e := range entries {
			if e.IsDir() {
				out = append(out, "cgroup "+filepath.Join(mnt, r.cgroups.parent, e.Name()))
			}
		}
	}
	return out, nil
}
