//go:build linux

package oci

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/integr8scode/integr8scode/domain"
)

// TestUserNamespace checks from the host that two runs in flight run as
// distinct unprivileged host uids of their own slots' ranges, and from
// inside that no further user namespace can be made.
func TestUserNamespace(t *testing.T) {
	r := newSandbox(t, Config{Slots: 2})

	t.Run("DistinctHostUIDs", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var wg sync.WaitGroup
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := r.Run(ctx, job("import time\ntime.sleep(60)\n", fast))
				if err != nil || res.Verdict != domain.VerdictCancelled {
					t.Errorf("run: %v %+v", err, res)
				}
			}()
		}
		ids := scriptHostIDs(t, r, 2)
		cancel()
		wg.Wait()
		seen := map[uint64]bool{}
		for _, id := range ids {
			t.Logf("a script's host ids (real, effective, saved, fs): uid %v gid %v", id.uid, id.gid)
			for _, v := range append(id.uid, id.gid...) {
				if v != id.uid[0] {
					t.Fatalf("mixed host ids: uid %v gid %v", id.uid, id.gid)
				}
			}
			u := id.uid[0]
			if u == 0 || u == 65534 || u == sandboxUID {
				t.Fatalf("a script runs as host uid %d", u)
			}
			first, end := r.hostIDRange()
			if u < first || u >= end || (u-first)%uint64(r.slots.size) != sandboxUID {
				t.Fatalf("host uid %d is not the sandbox user of a slot's range", u)
			}
			if seen[u] {
				t.Fatalf("two runs in flight share host uid %d", u)
			}
			seen[u] = true
		}
		assertClean(t, r)
	})

	t.Run("MappingInside", func(t *testing.T) {
		script := `import os
print(os.getuid(), os.getgid())
print(open("/proc/self/uid_map").read().split())
print(open("/proc/self/gid_map").read().split())
print(os.stat("/usr/bin").st_uid)
`
		res := run(t, r, job(script, fast))
		wantVerdict(t, res, domain.VerdictCompleted)
		lines := strings.Split(res.Stdout, "\n")
		if lines[0] != fmt.Sprintf("%d %d", sandboxUID, sandboxGID) {
			t.Fatalf("ids inside %q, want %d %d", lines[0], sandboxUID, sandboxGID)
		}
		slot0 := fmt.Sprintf("['0', '%d', '%d']", r.slots.hostID(0), r.slots.size)
		slot1 := fmt.Sprintf("['0', '%d', '%d']", r.slots.hostID(1), r.slots.size)
		for _, m := range lines[1:3] {
			if m != slot0 && m != slot1 {
				t.Fatalf("id map %s, want a slot's range (%s or %s)", m, slot0, slot1)
			}
		}
		if lines[3] != "65534" {
			t.Fatalf("host root's files show as owned by %s inside, want the overflow id 65534", lines[3])
		}
		assertClean(t, r)
	})

	t.Run("NoNestedUserNamespace", func(t *testing.T) {
		script := `import ctypes, os, subprocess
libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWUSER = 0x10000000
print("unshare", libc.unshare(CLONE_NEWUSER), os.strerror(ctypes.get_errno()))
# A raw clone(2) with CLONE_NEWUSER | SIGCHLD, fork-like (no new stack).
pid = libc.syscall(56, CLONE_NEWUSER | 17, 0, 0, 0, 0)
if pid == 0:
    os._exit(0)
print("clone", pid, os.strerror(ctypes.get_errno()))
p = subprocess.run(["/usr/bin/unshare", "-U", "/usr/bin/true"], capture_output=True, text=True)
print("unshare-cmd", p.returncode, p.stderr.strip())
`
		res := run(t, r, job(script, fast))
		wantVerdict(t, res, domain.VerdictCompleted)
		want := []string{"unshare -1 Operation not permitted", "clone -1 Operation not permitted", "unshare-cmd 1 "}
		for _, w := range want {
			if !strings.Contains(res.Stdout, w) {
				t.Fatalf("stdout lacks %q:\n%s", w, res.Stdout)
			}
		}
		assertClean(t, r)
	})

	t.Run("SlotReleased", func(t *testing.T) {
		if n := r.slots.busy(); n != 0 {
			t.Fatalf("%d slots still taken after every run ended", n)
		}
	})
}

// scriptHostIDs waits until n scripts of r run, and returns their ids as the
// host sees them (/proc/<pid>/status).
func scriptHostIDs(t *testing.T, r *Runc, n int) []procIDs {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var out []procIDs
		for _, p := range scriptProcesses(t, r) {
			pid, _, _ := strings.Cut(p, " ")
			if ids, ok := hostIDs(pid); ok {
				out = append(out, ids)
			}
		}
		if len(out) == n {
			return out
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%d scripts did not start", n)
	return nil
}

func TestUIDConfig(t *testing.T) {
	base := Config{RuncPath: "runc", StateDir: "/var/lib/x", Slots: 4}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"LowBase", func(c *Config) { c.UIDBase = 1000 }, "UIDBase must be at least"},
		{"RangeWithoutSandboxUser", func(c *Config) { c.UIDRangeSize = sandboxUID }, "UIDRangeSize must exceed"},
		{"PastLastUID", func(c *Config) { c.UIDBase = 1 << 31; c.UIDRangeSize = 1 << 30 }, "passes the last host uid"},
		{"LeaseTooBig", func(c *Config) { c.Slots = leaseBlocks*64 + 1 }, "more than the"},
		{"RelativeRunDir", func(c *Config) { c.RunDir = "run" }, "RunDir"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			c.setDefaults()
			tc.edit(&c)
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
	c := base
	c.setDefaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if c.UIDBase != 0 {
		t.Fatalf("default UIDBase %d, want 0 (leased)", c.UIDBase)
	}
	// More slots than one block holds lease consecutive blocks.
	c.Slots = 200
	if err := c.Validate(); err != nil {
		t.Fatalf("200 leased slots: %v", err)
	}
}

// TestRunDirUnreachable: a RunDir the containers' root users could not pass
// through is refused at New, not discovered at the first run.
func TestRunDirUnreachable(t *testing.T) {
	runcPath(t)
	private := t.TempDir() // 0700
	_, err := New(Config{RuncPath: runcPath(t), StateDir: filepath.Join(t.TempDir(), "sandbox"), RunDir: filepath.Join(private, "run")})
	if err == nil || !strings.Contains(err.Error(), "not searchable by others") {
		t.Fatalf("err %v, want a refusal of the run dir", err)
	}
}
