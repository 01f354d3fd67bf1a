//go:build linux

package oci

import (
	"context"
	"strings"
	"testing"
)

// hardenedCheck exits 0 when the script runs under the sandbox's hardening
// (a seccomp filter, and a user namespace: the uid map does not start
// "0 0"), 3 otherwise.
const hardenedCheck = `import sys
st = dict(l.split(":", 1) for l in open("/proc/self/status") if ":" in l)
hardened = st["Seccomp"].strip() == "2" and open("/proc/self/uid_map").read().split()[:2] != ["0", "0"]
sys.exit(%s)
`

// TestFloorRunsTheBundleHardenedOrMinimal: the floor the load tool and
// the benchmarks compare with runs the script n times from the sandbox's
// own config.json (seccomp filter and user namespace in place), or with
// minimal, from one stripped of them; a run that fails is an error, and
// nothing is left behind either way.
func TestFloorRunsTheBundleHardenedOrMinimal(t *testing.T) {
	r := newSandbox(t, Config{})
	ctx := context.Background()
	wantHardened := job(strings.Replace(hardenedCheck, "%s", "0 if hardened else 3", 1), fast)
	wantMinimal := job(strings.Replace(hardenedCheck, "%s", "3 if hardened else 0", 1), fast)

	times, err := r.Floor(ctx, wantHardened, 2, false)
	if err != nil || len(times) != 2 || times[0] <= 0 || times[1] <= 0 {
		t.Fatalf("hardened floor: %v %v", times, err)
	}
	times, err = r.Floor(ctx, wantMinimal, 2, true)
	if err != nil || len(times) != 2 {
		t.Fatalf("minimal floor: %v %v", times, err)
	}
	// The same script the other way round fails: the two bundles differ
	// in exactly what the script checks, and a failing run is reported.
	if times, err := r.Floor(ctx, wantHardened, 2, true); err == nil || !strings.Contains(err.Error(), "exit status 3") || len(times) != 0 {
		t.Fatalf("minimal floor of a script that needs the hardening: %v %v", times, err)
	}
	assertClean(t, r)
}
