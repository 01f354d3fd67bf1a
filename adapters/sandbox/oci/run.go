//go:build linux

package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/runner"
)

// Files of a bundle. Only root can read them; the script reaches the
// container through a read-only bind mount, its stdin through runc.
const (
	configFile = "config.json"
	scriptFile = "main.py"
	stdinFile  = "stdin"
	logFile    = "runc.log"
)

// runcEnv is runc's own environment: nothing of the service's.
var runcEnv = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}

// container is one run's bundle, names and uid slot.
type container struct {
	id     string
	bundle string
	slot   int // owned from acquire until cleanup releases it
}

func (c *container) file(name string) string { return filepath.Join(c.bundle, name) }

// Run runs job in a fresh container and reports how it ended. It returns an
// error only when the sandbox failed (it could not be set up, runc failed, or
// accounting could not be read); every outcome of the script is a Result.
//
// The container is one the warm pool made ready, or one started now; in
// both the script starts only once the container's set-up and Python's
// start-up are over (see waiting), and its limits, time and accounting
// count from there.
func (r *Runc) Run(ctx context.Context, job runner.Job) (domain.Result, error) {
	if err := checkJob(job); err != nil {
		return domain.Result{}, err
	}
	if r.closed.Load() {
		return domain.Result{}, errors.New("oci sandbox: closed")
	}
	if ctx.Err() != nil {
		return domain.Result{Verdict: domain.VerdictCancelled, Message: "cancelled before it started"}, nil
	}
	done := r.pool.begin()
	defer done()
	w, start, err := r.ready(job)
	if err != nil {
		return domain.Result{}, err
	}
	// The container is removed after the result goes back: nothing of the
	// result depends on its removal (the accounting is read before), and
	// runc delete with the cgroups' removal takes 10–20 ms. Its uid slot
	// stays taken until then.
	defer r.cleanupLater(w.c)
	res, err := r.execute(ctx, w, start, job.Limits)
	if err != nil {
		return domain.Result{}, fmt.Errorf("oci sandbox: run %s: %w", w.c.id, err)
	}
	return res, nil
}

// ready hands job to a container of the warm pool, or, when the pool has
// none (or that one cannot take job's limits), to one started for it; it
// returns the running container and the moment its script started.
func (r *Runc) ready(job runner.Job) (*waiting, time.Time, error) {
	if w := r.pool.take(); w != nil {
		start, err := r.handoff(w, job.Script, job.Stdin, job.Limits)
		if err == nil {
			r.log.Debug("warm container taken", "container", w.c.id, "execution_id", job.ExecutionID, "attempt", job.Attempt)
			return w, start, nil
		}
		r.log.Warn("a warm container could not take the script; starting one for it", "container", w.c.id, "err", err)
		r.discard(w)
	}
	w, err := r.start(containerID(job, r.seq.Add(1)), job.Limits, cpuBackstopSeconds(job.Limits), r.slotWait)
	if err != nil {
		return nil, time.Time{}, err
	}
	start, err := r.handoff(w, job.Script, job.Stdin, job.Limits)
	if err != nil {
		r.discard(w)
		return nil, time.Time{}, fmt.Errorf("oci sandbox: hand the script to %s: %w", w.c.id, err)
	}
	return w, start, nil
}

// newContainer takes a uid slot for a container, waiting at most wait for
// one; cleanup gives it back.
func (r *Runc) newContainer(id string, wait time.Duration) (*container, error) {
	slot, ok := r.slots.acquire(wait)
	if !ok {
		return nil, fmt.Errorf("oci sandbox: all %d slots are busy", r.cfg.Slots)
	}
	return &container{id: id, bundle: filepath.Join(r.bundles, id), slot: slot}, nil
}

func checkJob(job runner.Job) error {
	if job.Language != "" && job.Language != "python" {
		return domain.Errorf(domain.EUNPROCESSABLE, "the runc sandbox runs python, not %q", job.Language)
	}
	l := job.Limits
	if l.TimeoutMs <= 0 || l.MemoryBytes <= 0 || l.CPUMillicores <= 0 {
		return domain.Errorf(domain.EINVALID, "sandbox limits must be resolved before a run (got %+v)", l)
	}
	return nil
}

// containerID is unique per run: the execution id (restricted to what runc
// and cgroup names accept), the attempt and a per-process sequence number.
func containerID(job runner.Job, seq uint64) string {
	var b strings.Builder
	for _, r := range job.ExecutionID {
		if b.Len() >= 64 {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		b.WriteString("run")
	}
	return fmt.Sprintf("%s-a%d-%d", b.String(), job.Attempt, seq)
}

// writeBundle writes the bundle of a bare container (Floor's baseline),
// which runs the script from its first instruction under job's limits.
func (r *Runc) writeBundle(c *container, job runner.Job) error {
	if err := os.Mkdir(c.bundle, 0o700); err != nil {
		return err
	}
	spec := r.bareSpec(c, job.Limits)
	cfg, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	for name, content := range map[string][]byte{
		configFile: cfg,
		scriptFile: []byte(job.Script),
		stdinFile:  []byte(job.Stdin),
	} {
		mode := os.FileMode(0o400)
		if name == scriptFile {
			mode = 0o444
		}
		if err := writeFileExcl(c.file(name), content, mode); err != nil {
			return err
		}
	}
	return nil
}

func writeFileExcl(path string, content []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(content); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil { // umask
		f.Close()
		return err
	}
	return f.Close()
}
