//go:build linux

package oci

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/integr8scode/integr8scode/domain"
)

// assertHostClean checks, after a run, that nothing of it is left on the
// host: assertClean's bundles, containers, cgroups and slots, no host
// process in any of r's slots' uid ranges, no new mount a run could have
// left, nothing new in RunDir, no more disk used by StateDir and RunDir
// than before (a script's files live in its memory-backed tmpfs, see
// fillScript); and that a benign run still succeeds.
func assertHostClean(t *testing.T, r *Runc, mounts map[string]bool, used int64) {
	t.Helper()
	assertClean(t, r)
	waiting := r.pool.pause(t)
	procs := processesInSlotRanges(t, r, waiting)
	r.pool.resume()
	if len(procs) > 0 {
		t.Fatalf("host processes still run with a slot's uid: %v", procs)
	}
	for m := range mountPoints(t) {
		if !mounts[m] && runMount(r, m) {
			t.Fatalf("new mount on the host: %s", m)
		}
	}
	if entries, err := os.ReadDir(r.runDir); err != nil || len(entries) != 1 || entries[0].Name() != "rootfs" {
		t.Fatalf("run dir %s holds %v (%v), want only rootfs", r.runDir, entries, err)
	}
	if now := hostBytesUsed(t, r); now > used+1<<20 {
		t.Fatalf("the sandbox's directories grew from %d to %d bytes", used, now)
	}
	res := run(t, r, job(`print("still fine")`, domain.DefaultLimits))
	wantVerdict(t, res, domain.VerdictCompleted)
	assertClean(t, r)
}

// processesInSlotRanges lists host processes whose real, effective or saved
// uid falls in any of r's slots' ranges: the ids r actually maps (the
// blocks it leased), not a configured base, so that the sandboxes of other
// test packages running at the same time, in blocks of their own, are not
// taken for r's leftovers.
func processesInSlotRanges(t *testing.T, r *Runc, waiting map[string]bool) []string {
	t.Helper()
	first, end := r.hostIDRange()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		ids, ok := hostIDs(e.Name())
		if !ok {
			continue
		}
		if cg, ok := pidsCgroup(e.Name()); ok && waiting[cg[strings.LastIndex(cg, "/")+1:]] && strings.HasPrefix(cg, r.cgroups.parent+"/") {
			continue // a waiting container's Python
		}
		for _, u := range ids.uid {
			if u >= first && u < end {
				out = append(out, fmt.Sprintf("%s (uid %d)", e.Name(), u))
				break
			}
		}
	}
	return out
}

// runMount reports whether a new host mount point at m could be one a run
// of r left: under StateDir or r's directory in RunDir (the script's bind
// mount, the root file system and whatever runc mounts inside it), or at a
// container mount's destination itself (/proc, /tmp, /usr ...), should runc
// have mounted on the host's own path. Mounts elsewhere are other
// software's: on a shared host, a local Kubernetes' containerd mounts and
// unmounts pods' root file systems and namespaces all the time.
func runMount(r *Runc, m string) bool {
	for _, dir := range []string{r.cfg.StateDir, r.runDir} {
		if m == dir || strings.HasPrefix(m, dir+"/") {
			return true
		}
	}
	for _, c := range r.mounts(scriptPath) {
		if m == c.Destination {
			return true
		}
	}
	return false
}

// mountPoints is the set of mount points of the host's mount namespace.
func mountPoints(t *testing.T) map[string]bool {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) > 4 {
			out[unescapeMount(fields[4])] = true
		}
	}
	return out
}

// hostBytesUsed adds up the sizes of the files under StateDir and RunDir.
func hostBytesUsed(t *testing.T, r *Runc) int64 {
	t.Helper()
	var n int64
	for _, dir := range []string{r.cfg.StateDir, r.runDir} {
		err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return nil // a bundle removed meanwhile
			}
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return n
}
