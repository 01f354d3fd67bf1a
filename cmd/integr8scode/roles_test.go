package main

import (
	"context"
	"fmt"
	"github.com/integr8scode/integr8scode/internal/testenv"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/eventstore"
)

// role is one integr8scode process playing one role.
type role struct {
	name   string
	addr   string
	cmd    *exec.Cmd
	logs   *testenv.SyncBuffer
	done   chan error    // its exit status, once
	exited chan struct{} // closed when it has exited
}

func startRole(t *testing.T, bin, name string, env []string, args ...string) *role {
	t.Helper()
	r := &role{name: name, addr: freeAddr(t), logs: &testenv.SyncBuffer{}, done: make(chan error, 1), exited: make(chan struct{})}
	r.cmd = exec.Command(bin, append([]string{strings.Fields(name)[0], "--listen", r.addr}, args...)...)
	r.cmd.Env = append(os.Environ(), env...)
	r.cmd.Stdout, r.cmd.Stderr = r.logs, r.logs
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.done <- r.cmd.Wait(); close(r.exited) }()
	t.Cleanup(func() {
		stopProcess(t, r.cmd, r.exited)
		if t.Failed() {
			t.Logf("%s log:\n%s", name, tail(r.logs.String(), 40))
		}
	})
	waitReady(t, "http://"+r.addr, r.done, r.logs)
	return r
}

// kill kills the role's processes (SIGKILL), as a crashed host would.
func (r *role) kill() {
	_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-r.exited:
	case <-time.After(10 * time.Second):
	}
}

// metric reads one counter (summed over its labels) from a role's /metrics.
func (r *role) metric(t *testing.T, name string) float64 {
	t.Helper()
	resp := do(t, http.MethodGet, "http://"+r.addr+"/metrics", nil)
	sum := 0.0
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `(\{[^}]*\})? ([0-9.e+]+)$`)
	for _, m := range re.FindAllStringSubmatch(string(resp.Body), -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		sum += v
	}
	return sum
}

// series counts the series of metric name that r exposes.
func (r *role) series(t *testing.T, name string) int {
	t.Helper()
	resp := do(t, http.MethodGet, "http://"+r.addr+"/metrics", nil)
	return len(regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(name)+`\{`).FindAllIndex(resp.Body, -1))
}

// TestRoles runs the platform as separate processes — the embedded stores
// (`integr8scode stores`), one api, two runners, two projectors — that only
// share the network, and shows that the runners and the projectors share
// the work, and that a runner killed mid-run loses nothing.
func TestRoles(t *testing.T) {
	bin := buildBinary(t)
	kafkaAddr, mongoAddr := freeAddr(t), freeAddr(t)
	stores := startRole(t, bin, "stores", nil, "--data-dir", t.TempDir(),
		"--embedded-kafka-port", port(t, kafkaAddr), "--embedded-mongodb-port", port(t, mongoAddr))
	// The other roles connect with what the stores print, as an operator
	// would: the addresses and the files holding the credentials.
	env := connectionEnv(t, stores)
	if !slices.Contains(env, "INTEGR8SCODE_KAFKA_BROKERS="+kafkaAddr) {
		t.Fatalf("the stores printed %q, want the broker on %s", env, kafkaAddr)
	}

	t.Run("ErrRoleWithoutCredentials", func(t *testing.T) {
		withTLS := ""
		for _, e := range env {
			if v, ok := strings.CutPrefix(e, "INTEGR8SCODE_MONGODB_URI="); ok {
				withTLS = v
			}
		}
		for _, c := range []struct {
			name string
			env  []string
			want string
		}{
			{"store without its client certificate",
				[]string{"INTEGR8SCODE_KAFKA_BROKERS=" + kafkaAddr, "INTEGR8SCODE_MONGODB_URI=mongodb://" + mongoAddr + "/?serverSelectionTimeoutMS=1000"},
				"mongodb: connect mongo: ping"},
			{"broker without the password",
				[]string{"INTEGR8SCODE_KAFKA_BROKERS=" + kafkaAddr, "INTEGR8SCODE_MONGODB_URI=" + withTLS},
				"kafka: ensure topic"},
		} {
			out, err := runToExit(t, bin, c.env, "projector", "--listen", freeAddr(t))
			if err == nil || !strings.Contains(out, c.want) {
				t.Fatalf("%s: exit %v, want a failure mentioning %q:\n%s", c.name, err, c.want, tail(out, 10))
			}
		}
	})

	// The api writes the ledger and keeps its signing key; the projectors
	// take the public keys from it, as an auditor would.
	// The api makes the content key-encryption key; the runners read it.
	kek := filepath.Join(t.TempDir(), "content.kek")
	api := startRole(t, bin, "api", env, "--data-dir", t.TempDir(), "--content-kek", kek)
	var runners, projectors []*role
	for i := 0; i < 2; i++ {
		projectors = append(projectors, startRole(t, bin, "projector", env,
			"--ledger-keys", "http://"+api.addr+"/api/v1/ledger/keys"))
		runners = append(runners, startRole(t, bin, "runner", env, "--data-dir", t.TempDir(), "--slots", "2", "--lease-ttl", "3s",
			"--content-kek", kek))
	}
	base := "http://" + api.addr

	t.Run("OK work is shared through consumer groups", func(t *testing.T) {
		// The group hands the ledger's partitions out while the projectors
		// join; a run takes ~10 ms now, so 24 of them can all end before a
		// late member got a partition. Wait until each holds some, and
		// all are held (a projector shows a lag series per partition it
		// reads).
		waitFor(t, func() bool {
			total := 0
			for _, p := range projectors {
				n := p.series(t, "integr8scode_projector_lag_records")
				if n == 0 {
					return false
				}
				total += n
			}
			return total == 6
		})
		var ids []string
		for i := 0; i < 24; i++ {
			ids = append(ids, submit(t, base, map[string]any{"script": fmt.Sprintf("print(%d)", i)}).ID)
		}
		for i, id := range ids {
			if e := waitDone(t, base, id, 60*time.Second); e.Status != domain.StatusCompleted || e.Output != fmt.Sprintf("%d\n", i) {
				t.Fatalf("%s: %+v", id, e)
			}
		}
		for _, r := range runners {
			if n := r.metric(t, "integr8scode_runner_runs_finished_total"); n == 0 {
				t.Fatalf("runner %s ran nothing", r.addr)
			}
		}
		for _, p := range projectors {
			if n := p.metric(t, "integr8scode_projector_events_applied_total"); n == 0 {
				t.Fatalf("projector %s applied nothing", p.addr)
			}
		}
		for _, id := range ids {
			evs := waitEvents(t, base, id, 30*time.Second)
			valid := eventstore.VerifyChain(ledgerKeys(t, base), evs) == nil
			if len(evs) != 3 || !valid {
				t.Fatalf("%s: %d events, chain valid %v", id, len(evs), valid)
			}
		}
	})

	t.Run("OK a runner killed mid-run: the other one finishes its work", func(t *testing.T) {
		var ids []string
		for i := 0; i < 8; i++ {
			ids = append(ids, submit(t, base, map[string]any{"script": "import time\ntime.sleep(2)\nprint('survived')"}).ID)
		}
		deadline := time.Now().Add(20 * time.Second)
		for runners[0].metric(t, "integr8scode_runner_busy_slots") == 0 && runners[0].metric(t, "integr8scode_runner_runs_started_total") == 0 {
			if time.Now().After(deadline) {
				t.Fatal("the first runner never started anything")
			}
			time.Sleep(50 * time.Millisecond)
		}
		runners[0].kill()
		for _, id := range ids {
			e := waitDone(t, base, id, 90*time.Second)
			if e.Status != domain.StatusCompleted || e.Output != "survived\n" {
				t.Fatalf("%s: %+v", id, e)
			}
			evs := waitEvents(t, base, id, 30*time.Second)
			valid := eventstore.VerifyChain(ledgerKeys(t, base), evs) == nil
			terminal := 0
			for _, ev := range evs {
				if ev.Type == domain.TypeExecutionCompleted || ev.Type == domain.TypeExecutionFailed {
					terminal++
				}
			}
			if terminal != 1 || !valid {
				t.Fatalf("%s: %d terminal events, chain valid %v", id, terminal, valid)
			}
		}
	})
}

func port(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// connectionEnv is what `integr8scode stores` printed for the other roles:
// NAME='value' lines, returned as NAME=value.
func connectionEnv(t *testing.T, stores *role) []string {
	t.Helper()
	re := regexp.MustCompile(`(?m)^(INTEGR8SCODE_[A-Z_]+)='([^']*)'$`)
	var env []string
	for _, m := range re.FindAllStringSubmatch(stores.logs.String(), -1) {
		env = append(env, m[1]+"="+m[2])
	}
	if len(env) != 5 {
		t.Fatalf("the stores printed %d connection settings, want 5:\n%s", len(env), tail(stores.logs.String(), 20))
	}
	return env
}

// runToExit runs the binary until it exits (within a minute) and returns
// its output.
func runToExit(t *testing.T, bin string, env []string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
