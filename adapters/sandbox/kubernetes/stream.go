package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
)

// payload is what the runner writes to the pod's stdin: "<len> <timeout
// ms>\n", the script, then the job's stdin. It notes when the last byte of the script
// was taken: the script starts running then, and the runner's timeout clock
// with it.
type payload struct {
	r         io.Reader
	script    int64 // bytes up to the end of the script
	read      atomic.Int64
	once      sync.Once
	delivered chan struct{}
}

func newPayload(script, stdin string, timeoutMs int64) *payload {
	head := strconv.Itoa(len(script)) + " " + strconv.FormatInt(timeoutMs, 10) + "\n"
	return &payload{
		r:         io.MultiReader(strings.NewReader(head), strings.NewReader(script), strings.NewReader(stdin)),
		script:    int64(len(head) + len(script)),
		delivered: make(chan struct{}),
	}
}

func (pl *payload) Read(b []byte) (int, error) {
	n, err := pl.r.Read(b)
	if pl.read.Add(int64(n)) >= pl.script {
		pl.once.Do(func() { close(pl.delivered) })
	}
	return n, err
}

// attach hands the payload to the container's stdin and copies its stdout
// (the supervisor's frames) into dm and its stderr (the supervisor's own
// complaints, normally nothing) into diag. It returns when the container's
// streams close, that is when it exits. An attach refused before it took
// any byte of the payload is retried a few times: the container's stdin is
// still unopened. Once the attach took a byte, stdin is closed for good
// when it ends (stdinOnce), and a broken attach leaves the rest to the
// pod's log.
func (f *follower) attach(ctx context.Context, dm *demux) error {
	var err error
	for try := 0; try < 5; try++ {
		if try > 0 && !sleep(ctx, time.Duration(try)*200*time.Millisecond) {
			return ctx.Err()
		}
		err = f.attachOnce(ctx, dm)
		if err == nil || f.pl.read.Load() > 0 || ctx.Err() != nil {
			return err
		}
		f.log.Debug("attach refused; retrying", "err", err)
	}
	return err
}

func (f *follower) attachOnce(ctx context.Context, dm *demux) error {
	req := f.p.client.CoreV1().RESTClient().Post().
		Namespace(f.p.cfg.Namespace).Resource("pods").Name(f.name).SubResource("attach").
		VersionedParams(&corev1.PodAttachOptions{Container: containerName, Stdin: true, Stdout: true, Stderr: true},
			scheme.ParameterCodec)
	ex, err := f.p.executor(req.URL())
	if err != nil {
		return err
	}
	if err := ex.StreamWithContext(f.p.streamContext(ctx), remotecommand.StreamOptions{Stdin: f.pl, Stdout: dm, Stderr: f.diag}); err != nil {
		return fmt.Errorf("attach: %w", err)
	}
	return nil
}

// executor speaks WebSocket (v5: it can close stdin alone, which the
// script's EOF needs) and falls back to SPDY on servers without it, as
// kubectl does.
func (p *Pods) executor(u *url.URL) (remotecommand.Executor, error) {
	spdy, err := remotecommand.NewSPDYExecutor(p.rest, "POST", u)
	if err != nil {
		return nil, err
	}
	ws, err := remotecommand.NewWebSocketExecutor(p.rest, "GET", u.String())
	if err != nil {
		return nil, err
	}
	return remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		// An answer from the API (the container does not run yet) is no
		// reason to try SPDY; a server that does not speak the protocol is.
		var status apierrors.APIStatus
		return !errors.As(err, &status) && (httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err))
	})
}

// readLogs reads the container's log from its start into dm, following it
// while the container runs. The log holds the same frames as the attach
// stream, so an adopter (or a runner whose attach broke) sees everything
// the script wrote, stdout and stderr apart. A failed read starts over.
func (f *follower) readLogs(ctx context.Context, dm *demux) error {
	var err error
	for try := 0; try < 5; try++ {
		if try > 0 {
			if !sleep(ctx, time.Duration(try)*300*time.Millisecond) {
				return ctx.Err()
			}
			dm.reset()
		}
		var rc io.ReadCloser
		rc, err = f.p.pods().GetLogs(f.name, &corev1.PodLogOptions{Container: containerName, Follow: true}).Stream(ctx)
		if err == nil {
			_, err = io.Copy(dm, rc)
			rc.Close()
			if err == nil {
				return nil
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		f.log.Debug("reading the pod's log failed; retrying", "err", err)
	}
	return fmt.Errorf("read log: %w", err)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// prefix keeps the first n bytes written to it.
type prefix struct {
	mu  sync.Mutex
	n   int
	buf []byte
}

func (t *prefix) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if room := t.n - len(t.buf); room > 0 {
		t.buf = append(t.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (t *prefix) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
