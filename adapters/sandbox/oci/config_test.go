//go:build linux

package oci

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/runner"
)

// TestValidateReportsEveryProblemAtOnce: an operator fixes a bad
// configuration in one go, not one error per restart.
func TestValidateReportsEveryProblemAtOnce(t *testing.T) {
	err := Config{StateDir: "state", Python: "/opt/python3", Slots: 0, Warm: 1, WarmMin: 2, OutputCapBytes: 0,
		PidsLimit: 7, UIDRangeSize: 1000, UIDBase: 1000, RunDir: "run"}.Validate()
	if err == nil {
		t.Fatal("a configuration with every field wrong passed")
	}
	for _, want := range []string{"RuncPath is required", `StateDir "state" must be absolute`, `Python "/opt/python3" must be an absolute path under /usr`,
		"Slots must be at least 1", "Warm 1 and WarmMin 2", "OutputCapBytes must be positive", "PidsLimit must be at least 8",
		"UIDRangeSize must exceed the sandbox user's id 1000", "UIDBase must be at least 65536", `RunDir "run" must be absolute`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("no %q in:\n%v", want, err)
		}
	}

	good := Config{RuncPath: "runc", StateDir: "/var/lib/x"}
	good.setDefaults()
	if err := good.Validate(); err != nil {
		t.Fatalf("the defaults: %v", err)
	}
	for name, c := range map[string]Config{
		"ErrNoStateDir": {StateDir: ""},
		// (uid_t)-1 means "no change" to chown and setresuid: never mapped.
		"ErrPastTheLastUID":              {UIDBase: math.MaxUint32 - 65536},
		"ErrMoreThanTheLeasedBlocksHold": {Slots: leaseBlocks*64 + 1},
	} {
		t.Run(name, func(t *testing.T) {
			c.RuncPath = good.RuncPath
			if name != "ErrNoStateDir" {
				c.StateDir = good.StateDir
			}
			c.setDefaults()
			if err := c.Validate(); err == nil {
				t.Fatalf("%+v passed", c)
			}
		})
	}
}

// TestContainerIDsAreSafeNames: whatever an execution id holds, the
// container id (a runc name, a cgroup directory, a bundle directory) is
// ASCII letters, digits, - and _, bounded, never empty, and unique per run.
func TestContainerIDsAreSafeNames(t *testing.T) {
	for id, want := range map[string]string{
		"0193a1c2-0000-7000-8000-000000000000": "0193a1c2-0000-7000-8000-000000000000-a2-7",
		"../../etc/passwd":                     "______etc_passwd-a2-7",
		"évènement":                            "_v_nement-a2-7",
		"":                                     "run-a2-7",
		strings.Repeat("x", 100):               strings.Repeat("x", 64) + "-a2-7",
	} {
		if got := containerID(runner.Job{ExecutionID: id, Attempt: 2}, 7); got != want {
			t.Errorf("containerID(%q) = %q, want %q", id, got, want)
		}
	}
}

// TestRunRefusesJobsItCannotRun: another language, or limits not resolved
// by the platform, are refused before anything is created.
func TestRunRefusesJobsItCannotRun(t *testing.T) {
	r := newSandbox(t, Config{})
	for _, c := range []struct {
		job  runner.Job
		code string
	}{
		{runner.Job{ExecutionID: "js", Language: "javascript", Script: "1", Limits: fast}, domain.EUNPROCESSABLE},
		{job(`print("hi")`, domain.Limits{TimeoutMs: 1000}), domain.EINVALID},
	} {
		res, err := r.Run(context.Background(), c.job)
		if err == nil || domain.ErrorCode(err) != c.code {
			t.Fatalf("%+v: %+v %v, want %s", c.job, res, err, c.code)
		}
	}
	assertClean(t, r)
}

// TestNewRefusesAStateDirItCannotOwn: StateDir holds the scripts and runc's
// state, so it must be a real directory owned by root: a symlink (which
// could point anywhere), another user's directory or a file is refused.
func TestNewRefusesAStateDirItCannotOwn(t *testing.T) {
	runc := runcPath(t)
	base := t.TempDir()
	target := filepath.Join(base, "target")
	if err := os.Mkdir(target, 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(base, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	users := filepath.Join(base, "users")
	if err := os.Mkdir(users, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(users, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for dir, want := range map[string]string{
		link:  "must be a directory owned by root (not a symlink)",
		users: "must be a directory owned by root",
		file:  "create state dir",
	} {
		if r, err := New(Config{RuncPath: runc, StateDir: dir}); err == nil || !strings.Contains(err.Error(), want) {
			if r != nil {
				r.Close()
			}
			t.Fatalf("StateDir %s: %v, want %q", dir, err, want)
		}
	}
	if entries, _ := os.ReadDir(target); len(entries) != 0 {
		t.Fatalf("New wrote through the symlink: %v", entries)
	}
}

// TestNewRefusesARuncThatCannotFilter: New runs nothing with a runc that
// cannot apply the seccomp filter. No such runc is at hand, so a wrapper
// answers `runc features` with the real runc's own answer, altered, and
// passes everything else to the real runc; the real one's answer passes
// (every other test's New).
func TestNewRefusesARuncThatCannotFilter(t *testing.T) {
	runc := runcPath(t)
	real, err := exec.Command(runc, "features").Output()
	if err != nil {
		t.Fatal(err)
	}
	var features map[string]any
	if err := json.Unmarshal(real, &features); err != nil {
		t.Fatal(err)
	}
	seccomp := features["linux"].(map[string]any)["seccomp"].(map[string]any)
	alter := func(key string, v any) []byte {
		old := seccomp[key]
		seccomp[key] = v
		defer func() { seccomp[key] = old }()
		b, err := json.Marshal(features)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for name, c := range map[string]struct {
		answer []byte
		exit   int
		want   string
	}{
		"ErrBuiltWithoutSeccomp": {alter("enabled", false), 0, "was built without seccomp"},
		"ErrArchUnknown":         {alter("archs", []string{"SCMP_ARCH_MIPS"}), 0, "seccomp does not know"},
		"ErrNotJSON":             {[]byte("features: unknown command"), 0, "features:"},
		"ErrNoFeatures":          {nil, 1, "runc 1.1 or newer is needed"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			answer := filepath.Join(dir, "features.json")
			if err := os.WriteFile(answer, c.answer, 0o600); err != nil {
				t.Fatal(err)
			}
			wrapper := filepath.Join(dir, "runc")
			script := fmt.Sprintf("#!/bin/sh\nif [ \"$1\" = features ]; then /bin/cat %s; exit %d; fi\nexec %s \"$@\"\n", answer, c.exit, runc)
			if err := os.WriteFile(wrapper, []byte(script), 0o700); err != nil {
				t.Fatal(err)
			}
			r, err := New(Config{RuncPath: wrapper, StateDir: filepath.Join(dir, "sandbox")})
			if err == nil {
				r.Close()
				t.Fatal("New accepted the runc")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want %q", err, c.want)
			}
			if _, err := os.Stat(filepath.Join(dir, "sandbox")); !os.IsNotExist(err) {
				t.Fatalf("New created StateDir before refusing runc: %v", err)
			}
		})
	}
}
