//go:build linux

package oci

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSelfTestFailsClosed: the service takes no work when the self-test
// cannot show the isolation: when the sandbox cannot run its script at all,
// and when the script's report does not come back whole (an output cap
// below its size cuts it).
func TestSelfTestFailsClosed(t *testing.T) {
	t.Run("ErrCannotRun", func(t *testing.T) {
		r := newSandbox(t, Config{Slots: 1})
		r.python = "/usr/bin/no-such-python"
		if err := r.SelfTest(context.Background()); err == nil || !strings.HasPrefix(err.Error(), "oci sandbox self-test: ") {
			t.Fatalf("self-test without a Python: %v", err)
		}
		assertClean(t, r)
	})
	t.Run("ErrReportCut", func(t *testing.T) {
		r := newSandbox(t, Config{Slots: 1, OutputCapBytes: 64})
		err := r.SelfTest(context.Background())
		if err == nil || !strings.Contains(err.Error(), "verdict output_limit") {
			t.Fatalf("self-test with a 64-byte output cap: %v", err)
		}
		assertClean(t, r)
	})
}

// TestCgroupFilesAreReadStrictly: accounting that cannot be read as the
// kernel writes it is an error, never a silent 0 that would under-report a
// run's CPU time, memory or OOM kills.
func TestCgroupFilesAreReadStrictly(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if n, err := readInt(write("usage", "123456\n")); err != nil || n != 123456 {
		t.Fatalf("readInt: %d %v", n, err)
	}
	for _, bad := range []string{"", "12 34", "lots"} {
		if n, err := readInt(write("bad", bad)); err == nil {
			t.Fatalf("readInt(%q) = %d", bad, n)
		}
	}
	if _, err := readInt(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("readInt of a missing file")
	}
	oom := write("oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
	if n, err := readKeyed(oom, "oom_kill"); err != nil || n != 2 {
		t.Fatalf("readKeyed: %d %v", n, err)
	}
	if _, err := readKeyed(oom, "oom_kills"); err == nil || !strings.Contains(err.Error(), `has no "oom_kills"`) {
		t.Fatalf("readKeyed of an absent key: %v", err)
	}
	if _, err := readKeyed(write("oom_bad", "oom_kill many\n"), "oom_kill"); err == nil {
		t.Fatal("readKeyed of a non-number")
	}
	if _, err := readKeyed(filepath.Join(dir, "missing"), "oom_kill"); err == nil {
		t.Fatal("readKeyed of a missing file")
	}
}
