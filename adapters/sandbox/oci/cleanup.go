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
	"strings"
)

// cleanup removes every trace of a run: runc's state and cgroups (runc
// delete), whatever cgroup is left, and the bundle. Failures are logged; the
// next New removes what is still there.
func (r *Runc) cleanup(c *container) {
	var errs []error
	if err := r.runcDelete(c.id); err != nil {
		errs = append(errs, err)
	}
	if err := r.cgroups.remove(c.id); err != nil {
		errs = append(errs, err)
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
// still in its cgroups, the cgroups, its bundles and root file system.
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
	// runc never mounts in the host's mount namespace, so nothing should be
	// mounted here; if something is, removing the tree could reach into it.
	if m, err := mountUnder(r.cfg.StateDir); err != nil {
		return err
	} else if m != "" {
		return fmt.Errorf("%s is a mount point inside the state directory; unmount it first", m)
	}
	for _, d := range []string{r.runcRoot, r.bundles, r.rootfs} {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
	}
	return nil
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
