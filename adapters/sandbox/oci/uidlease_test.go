//go:build linux

package oci

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/integr8scode/integr8scode/domain"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the sandbox tests need root (the README test command runs as root)")
	}
}

// leaseIn leases in a private lock directory: its blocks name the same ids
// as the real ones, but no process is killed and no other process's lease
// is met, so the numbering is deterministic.
func leaseIn(t *testing.T, dir string, slots int) *uidLease {
	t.Helper()
	l, err := leaseUIDBlocks(dir, uint64(slots)*defaultUIDRange, nil)
	if err != nil {
		t.Fatalf("lease %d slots: %v", slots, err)
	}
	t.Cleanup(func() { l.release() })
	return l
}

func wantBlocks(t *testing.T, l *uidLease, block, n int) {
	t.Helper()
	if l.block != block || l.ids != uint64(n)*leaseBlockIDs || uint64(l.first) != leaseFirstID+uint64(block)*leaseBlockIDs {
		t.Fatalf("lease of block %d (first id %d, %d ids), want blocks %d..%d", l.block, l.first, l.ids, block, block+n-1)
	}
	if len(l.locks) != n {
		t.Fatalf("%d locks held, want %d", len(l.locks), n)
	}
}

// TestUIDLeaseBlocks: leases take the lowest free blocks, never a busy one,
// consecutive blocks when one is not enough, and a released block again.
func TestUIDLeaseBlocks(t *testing.T) {
	needRoot(t)
	dir := filepath.Join(t.TempDir(), "uid-blocks")
	a := leaseIn(t, dir, 2)
	wantBlocks(t, a, 0, 1)
	b := leaseIn(t, dir, 64)
	wantBlocks(t, b, 1, 1)
	big := leaseIn(t, dir, 100) // 100 slots of 65536 ids: two blocks
	wantBlocks(t, big, 2, 2)

	if err := a.release(); err != nil {
		t.Fatal(err)
	}
	wantBlocks(t, leaseIn(t, dir, 1), 0, 1)

	// Block 1 is free again, but 2 is not: two blocks go after 3.
	if err := b.release(); err != nil {
		t.Fatal(err)
	}
	wantBlocks(t, leaseIn(t, dir, 128), 4, 2)
	wantBlocks(t, leaseIn(t, dir, 1), 1, 1)

	fi, err := os.Lstat(dir)
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Fatalf("lock dir %v %v, want a 0700 directory", fi.Mode(), err)
	}

	if _, err := leaseUIDBlocks(dir, (leaseBlocks+1)*leaseBlockIDs, nil); err == nil {
		t.Fatal("a lease of more blocks than exist succeeded")
	}
}

// TestUIDLeaseRefusesBadLockFiles: only root's regular files are locked; a
// symlink is neither followed nor locked, nor is a symlinked directory.
func TestUIDLeaseRefusesBadLockFiles(t *testing.T) {
	needRoot(t)
	for _, tc := range []struct {
		name  string
		plant func(t *testing.T, lock string)
		want  string
	}{
		{"Symlink", func(t *testing.T, lock string) {
			target := filepath.Join(t.TempDir(), "target")
			if err := os.WriteFile(target, []byte("keep"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, lock); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if b, err := os.ReadFile(target); err != nil || string(b) != "keep" {
					t.Errorf("the symlink's target was touched: %q %v", b, err)
				}
			})
		}, "is a symlink"},
		{"DanglingSymlink", func(t *testing.T, lock string) {
			target := filepath.Join(t.TempDir(), "created")
			if err := os.Symlink(target, lock); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if _, err := os.Lstat(target); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("the symlink's target was created: %v", err)
				}
			})
		}, "is a symlink"},
		{"Directory", func(t *testing.T, lock string) {
			if err := os.Mkdir(lock, 0o700); err != nil {
				t.Fatal(err)
			}
		}, "regular file owned by root"},
		{"NotRoots", func(t *testing.T, lock string) {
			if err := os.WriteFile(lock, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(lock, 4321, 4321); err != nil {
				t.Fatal(err)
			}
		}, "regular file owned by root"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "uid-blocks")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			tc.plant(t, filepath.Join(dir, "0.lock"))
			l, err := leaseUIDBlocks(dir, defaultUIDRange, nil)
			if err == nil {
				l.release()
				t.Fatalf("leased block %d past a planted 0.lock", l.block)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}

	t.Run("SymlinkedDir", func(t *testing.T) {
		real := t.TempDir()
		dir := filepath.Join(t.TempDir(), "uid-blocks")
		if err := os.Symlink(real, dir); err != nil {
			t.Fatal(err)
		}
		if l, err := leaseUIDBlocks(dir, defaultUIDRange, nil); err == nil {
			l.release()
			t.Fatal("leased in a symlinked lock directory")
		}
		if entries, _ := os.ReadDir(real); len(entries) != 0 {
			t.Fatalf("lock files created through the symlink: %v", entries)
		}
	})
}

// TestUIDLeaseAcrossSandboxes: two sandboxes of one process (as two
// processes would) lease disjoint id ranges from the host's lock directory;
// one created after another closed reuses the freed block and kills the
// sandbox processes still running with its ids (a crashed holder's
// containers, simulated by a host process started with such an id in a
// sandbox cgroup), while a block whose ids other software uses is passed
// over and its processes left alone.
func TestUIDLeaseAcrossSandboxes(t *testing.T) {
	runcPath(t)
	a := newSandbox(t, Config{Slots: 2})
	b := newSandbox(t, Config{Slots: 2})
	for _, r := range []*Runc{a, b} {
		if r.lease == nil {
			t.Fatal("a sandbox without UIDBase leased nothing")
		}
		first, end := r.hostIDRange()
		if first != uint64(r.lease.first) || end > r.lease.end() || end >= leaseEndID || first < leaseFirstID {
			t.Fatalf("slots use ids [%d, %d), outside the lease [%d, %d)", first, end, r.lease.first, r.lease.end())
		}
	}
	if uint64(a.lease.first) < b.lease.end() && uint64(b.lease.first) < a.lease.end() {
		t.Fatalf("leases overlap: [%d, %d) and [%d, %d)", a.lease.first, a.lease.end(), b.lease.first, b.lease.end())
	}
	t.Logf("leased blocks %d and %d", a.lease.block, b.lease.block)

	t.Run("FreedBlockReused", func(t *testing.T) {
		// Other test packages lease blocks at the same time (go test runs
		// them in parallel): one may take the freed block first. Then again.
		for attempt := 1; ; attempt++ {
			freed, first := a.lease.block, a.lease.first
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			stray, died := startAs(t, first+sandboxUID)
			inSandboxCgroup(t, stray.Process.Pid)

			c := newSandbox(t, Config{Slots: 2})
			if c.lease.block != freed {
				stray.Process.Kill()
				<-died
				if attempt == 3 {
					t.Fatalf("a new sandbox leased block %d, not the freed block %d, three times", c.lease.block, freed)
				}
				t.Logf("block %d was taken by another process meanwhile; again", freed)
				a = c
				continue
			}
			select {
			case <-died:
				if ws, ok := stray.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
					t.Fatalf("the stray process ended with %v, want SIGKILL", stray.ProcessState)
				}
			case <-time.After(5 * time.Second):
				stray.Process.Kill()
				<-died
				t.Fatal("New left a sandbox process running with the leased block's ids")
			}
			res := run(t, c, job(`print("reused")`, fast))
			wantVerdict(t, res, domain.VerdictCompleted)
			assertClean(t, c)
			return
		}
	})

	t.Run("ForeignIDsPassedOver", func(t *testing.T) {
		x := newSandbox(t, Config{Slots: 2})
		block, first := x.lease.block, x.lease.first
		if err := x.Close(); err != nil {
			t.Fatal(err)
		}
		// A host process outside every sandbox cgroup: another program's
		// use of these ids (a kubelet's pod, say), which no one may share.
		foreign, died := startAs(t, first+sandboxUID)
		defer func() {
			foreign.Process.Kill()
			<-died
		}()
		y := newSandbox(t, Config{Slots: 2})
		if uid := uint64(first + sandboxUID); y.lease.block == block || (uid >= uint64(y.lease.first) && uid < y.lease.end()) {
			t.Fatalf("leased block %d [%d, %d), which a foreign process uses (uid %d)", y.lease.block, y.lease.first, y.lease.end(), uid)
		}
		select {
		case <-died:
			t.Fatalf("New killed a foreign process: %v", foreign.ProcessState)
		default:
		}
	})
}

// startAs starts a host process that sleeps as uid and gid id; the channel
// reports its end.
func startAs(t *testing.T, id uint32) (*exec.Cmd, <-chan error) {
	t.Helper()
	cmd := exec.Command("/usr/bin/sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: id, Gid: id}}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	died := make(chan error, 1)
	go func() { died <- cmd.Wait() }()
	return cmd, died
}

// inSandboxCgroup moves pid into a pids cgroup of a sandbox that is gone,
// as a crashed process's container would be, and removes the cgroup at the
// end of the test.
func inSandboxCgroup(t *testing.T, pid int) {
	t.Helper()
	tree, err := newCgroupTree(filepath.Join(t.TempDir(), "crashed"))
	if err != nil {
		t.Fatal(err)
	}
	dir := tree.dir("pids", "stray")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tree.remove("stray"); err != nil {
			t.Error(err)
		}
		if err := tree.removeParents(); err != nil {
			t.Error(err)
		}
	})
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
		t.Fatal(err)
	}
}
