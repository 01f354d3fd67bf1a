//go:build linux

package oci

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/integr8scode/integr8scode/domain"
)

// waiting is a container started up to the point where only the script is
// missing: runc set it up with every isolation property of the run, and
// its Python finished starting and waits, in the bootstrap, for the word
// to go (see bootstrap). Every run starts one; the warm pool keeps a few
// ready. A waiting container runs one script at most and is destroyed
// after it: nothing of one run ever meets another.
type waiting struct {
	c              *container
	cmd            *exec.Cmd
	exited         chan error // runc's exit (cmd.Wait), once
	stdin          *os.File   // the write end of the script's stdin
	stdout, stderr *capture
	ctl            *os.File      // the host's end of the control socket
	limits         domain.Limits // the memory limit it was created with
	born           time.Time
}

// readyTimeout bounds a container's set-up and Python's start-up: at one
// core they take tens of milliseconds, seconds on a host under load.
const readyTimeout = 30 * time.Second

// poolBackstopSeconds is the CPU-time backstop of a pool's container until
// the bootstrap lowers it to its script's: no script runs before that.
const poolBackstopSeconds = 24 * 60 * 60

// start creates a container named id with limits' memory limit and waits
// until its Python is ready for a script. backstop is its CPU-time
// backstop in seconds until the script's is set; wait how long it may wait
// for a uid slot.
func (r *Runc) start(id string, limits domain.Limits, backstop uint64, wait time.Duration) (*waiting, error) {
	c, err := r.newContainer(id, wait)
	if err != nil {
		return nil, err
	}
	w := &waiting{c: c, limits: limits, born: time.Now()}
	if err := r.startWaiting(w, backstop); err != nil {
		r.discard(w)
		return nil, fmt.Errorf("oci sandbox: start %s: %w", c.id, err)
	}
	return w, nil
}

func (r *Runc) startWaiting(w *waiting, backstop uint64) error {
	c := w.c
	if err := os.Mkdir(c.bundle, 0o700); err != nil {
		return err
	}
	cfg, err := json.Marshal(r.containerSpec(c, w.limits, backstop))
	if err != nil {
		return err
	}
	if err := writeFileExcl(c.file(configFile), cfg, 0o400); err != nil {
		return err
	}
	// Empty until handoff writes the script into the same inode, which the
	// container sees through its bind mount. The sandbox user reads it; the
	// bundle directory (0700) keeps it from everyone else on the host.
	if err := writeFileExcl(c.file(scriptFile), nil, 0o444); err != nil {
		return err
	}
	// The control socket: the host's end is non-blocking (read with a
	// deadline), the container's blocks.
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return fmt.Errorf("control socket: %w", err)
	}
	w.ctl = os.NewFile(uintptr(fds[0]), "ctl")
	peer := os.NewFile(uintptr(fds[1]), "ctl-container")
	defer peer.Close() // on the early returns; closed after the start below

	inR, inW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer inR.Close()
	w.stdin = inW
	outR, outW, err := os.Pipe()
	if err != nil {
		return err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return err
	}
	cmd := exec.Command(r.cfg.RuncPath, "--root", r.runcRoot, "--log", c.file(logFile), "--log-format", "json",
		"run", "--keep", "--preserve-fds", "1", "--bundle", c.bundle, c.id)
	cmd.Env = runcEnv
	cmd.Dir = c.bundle
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	cmd.ExtraFiles = []*os.File{peer} // fd 3 in the container
	// Its own process group: a terminal's ^C for the service must not reach
	// runc, which would forward it to the script.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// The pipes are *os.File, so os/exec starts no copying goroutines and
	// WaitDelay has nothing to wait for; the captures bound their own
	// draining (capture.finish). Set anyway, should that ever change.
	cmd.WaitDelay = drainGrace
	err = cmd.Start()
	outW.Close()
	errW.Close()
	// runc has its own copy now. Ours must go before the wait for 'R':
	// while this process holds the container's end, a container that dies
	// before it is ready leaves the socket open, and the read waits out
	// readyTimeout instead of seeing EOF.
	peer.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return fmt.Errorf("start runc: %w", err)
	}
	w.cmd = cmd
	w.stdout, w.stderr = startCapture(outR, r.cfg.OutputCapBytes), startCapture(errR, r.cfg.OutputCapBytes)
	w.exited = make(chan error, 1)
	go func() { w.exited <- cmd.Wait() }()

	_ = w.ctl.SetReadDeadline(time.Now().Add(readyTimeout))
	var b [1]byte
	if _, err := io.ReadFull(w.ctl, b[:]); err != nil || b[0] != 'R' {
		// The container died (runc's log says why) or never got ready.
		if msg := runcError(c.file(logFile)); msg != "" {
			return fmt.Errorf("runc failed: %s", msg)
		}
		return fmt.Errorf("the container's Python did not get ready: %v", err)
	}
	return nil
}

// handoff gives a waiting container job's script and stdin and lets it go:
// the script file, then the script's limits and fresh accounting on the
// cgroup, then the word to the bootstrap. It returns when the script
// starts, the moment its timeout and wall time count from. On an error
// nothing of the script ran; the caller discards w.
func (r *Runc) handoff(w *waiting, script, stdin string, limits domain.Limits) (time.Time, error) {
	f, err := os.OpenFile(w.c.file(scriptFile), os.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return time.Time{}, err
	}
	_, err = f.WriteString(script)
	if err = errors.Join(err, f.Close()); err != nil {
		return time.Time{}, fmt.Errorf("write the script: %w", err)
	}
	if err := r.cgroups.arm(w.c.id, w.limits, limits); err != nil {
		return time.Time{}, fmt.Errorf("arm the script's limits: %w", err)
	}
	w.limits = limits
	// The stdin is written while the script runs (it may be larger than the
	// pipe) and closed after, so that the script reads it to its end. A
	// script that does not read it ends the copy with EPIPE when it exits.
	in := w.stdin
	w.stdin = nil
	go func() {
		_, _ = io.WriteString(in, stdin)
		in.Close()
	}()
	start := time.Now()
	_ = w.ctl.SetWriteDeadline(time.Now().Add(readyTimeout))
	_, err = w.ctl.Write([]byte("G" + strconv.FormatUint(cpuBackstopSeconds(limits), 10) + "\n"))
	w.ctl.Close()
	w.ctl = nil
	if err != nil {
		return time.Time{}, fmt.Errorf("start the script: %w", err)
	}
	return start, nil
}

// discard ends a container that will run no script (or whose handoff
// failed) and removes it.
func (r *Runc) discard(w *waiting) {
	if w.ctl != nil {
		w.ctl.Close()
	}
	if w.stdin != nil {
		w.stdin.Close()
	}
	if w.cmd != nil {
		r.stop(w)
		w.stdout.finish(drainGrace)
		w.stderr.finish(drainGrace)
	}
	r.cleanup(w.c)
}

// stop kills every process of w's container until runc exits, and returns
// runc's exit. Killing the container's init already makes the kernel kill
// everything else in its pid namespace; repeating covers processes still
// joining the cgroup while the container is set up.
func (r *Runc) stop(w *waiting) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	hard := time.NewTimer(killGrace)
	defer hard.Stop()
	for {
		if _, err := r.cgroups.kill(w.c.id); err != nil {
			r.log.Warn("kill container", "container", w.c.id, "err", err)
		}
		select {
		case err := <-w.exited:
			return err
		case <-tick.C:
		case <-hard.C:
			r.log.Error("runc did not exit after its container was killed; killing runc", "container", w.c.id)
			_ = w.cmd.Process.Kill()
			return <-w.exited
		}
	}
}
