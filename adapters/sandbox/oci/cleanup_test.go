//go:build linux

package oci

import (
	"github.com/integr8scode/integr8scode/internal/testenv"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCleanupOutlivesABrokenRuncState: when runc cannot delete a container
// (its state is unreadable), cleanup still kills and removes everything:
// with the cgroup gone nothing runs any more, so runc's state directory
// goes too, the failure is logged, and the uid slot comes back.
func TestCleanupOutlivesABrokenRuncState(t *testing.T) {
	logged := &testenv.SyncBuffer{}
	r := newSandbox(t, Config{Slots: 1, Logger: slog.New(slog.NewTextHandler(logged, nil))})
	w, err := r.start("broken-state", fast, cpuBackstopSeconds(fast), 0)
	if err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(r.runcRoot, w.c.id, "state.json")
	if err := os.WriteFile(state, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	r.discard(w)
	if !strings.Contains(logged.String(), "sandbox cleanup failed") || !strings.Contains(logged.String(), "runc delete broken-state") {
		t.Fatalf("the failed runc delete was not logged:\n%s", logged)
	}
	if _, err := os.Stat(filepath.Dir(state)); !os.IsNotExist(err) {
		t.Fatalf("runc's state of the container is still there: %v", err)
	}
	assertClean(t, r)
}
