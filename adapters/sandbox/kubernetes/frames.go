package kubernetes

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"strings"
	"sync"
)

// The supervisor's stdout is a sequence of frames: a kind byte, a 4-byte
// big-endian length, then that many bytes. It never writes a frame longer
// than 64 KiB; anything longer means the stream is not the supervisor's.
const (
	frameStdout = 'o'
	frameStderr = 'e'
	frameEnd    = 'x'
	// frameStarted (empty) says the supervisor has the whole script: it
	// runs it next. A runner reading the log of a pod it did not hand the
	// script to learns from it that the script was delivered.
	frameStarted = 's'
	frameHeader  = 5
	maxFrame     = 64 << 10
)

// report is the supervisor's last frame. Fields it did not report are -1.
type report struct {
	Status    string // exited, timeout, output_limit, undelivered
	Code      int
	Signal    int
	WallNs    int64
	CPUNs     int64
	PeakBytes int64
	OOMKills  int64
}

func parseReport(b []byte) report {
	r := report{Code: -1, Signal: -1, WallNs: -1, CPUNs: -1, PeakBytes: -1, OOMKills: -1}
	for _, f := range strings.Fields(string(b)) {
		k, v, _ := strings.Cut(f, "=")
		if k == "status" {
			r.Status = v
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "code":
			r.Code = int(n)
		case "signal":
			r.Signal = int(n)
		case "wall_ns":
			r.WallNs = n
		case "cpu_ns":
			r.CPUNs = n
		case "peak_bytes":
			r.PeakBytes = n
		case "oom_kills":
			r.OOMKills = n
		}
	}
	return r
}

// demux is an io.Writer that takes the supervisor's stdout, from an attach
// stream or from the pod's log, and keeps stdout and stderr apart, each up
// to a cap. It is safe for one writer and any number of readers.
//
// The frames come from inside the sandbox, so they are parsed as untrusted
// input: a stream that stops making sense (a script that wrote to the
// supervisor's stdout behind its back) is kept as raw stdout from there on,
// still under the cap. The script can garble only its own result.
type demux struct {
	limit int

	mu        sync.Mutex
	pending   []byte // an incomplete frame
	raw       bool
	stdout    bytes.Buffer
	stderr    bytes.Buffer
	truncated bool
	end       *report
	delivered bool // the supervisor said it has the script (frameStarted)
	overOnce  sync.Once
	over      chan struct{} // closed when a stream passed the cap
	endOnce   sync.Once
	ended     chan struct{} // closed at the end frame
}

func newDemux(limit int) *demux {
	return &demux{limit: limit, over: make(chan struct{}), ended: make(chan struct{})}
}

// Write never fails: the attach stream must keep flowing (a stuck writer
// would stall the container) and every byte past the cap is dropped.
func (d *demux) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := len(p)
	if d.end != nil {
		return n, nil
	}
	if d.raw {
		d.keep(&d.stdout, p)
		return n, nil
	}
	buf := p
	if len(d.pending) > 0 {
		d.pending = append(d.pending, p...)
		buf = d.pending
	}
	for len(buf) >= frameHeader {
		kind, size := buf[0], binary.BigEndian.Uint32(buf[1:frameHeader])
		if (kind != frameStdout && kind != frameStderr && kind != frameEnd && kind != frameStarted) || size > maxFrame {
			d.raw = true
			d.keep(&d.stdout, buf)
			d.pending = nil
			return n, nil
		}
		if len(buf) < frameHeader+int(size) {
			break
		}
		data := buf[frameHeader : frameHeader+int(size)]
		switch kind {
		case frameStdout:
			d.keep(&d.stdout, data)
		case frameStderr:
			d.keep(&d.stderr, data)
		case frameStarted:
			d.delivered = true
		case frameEnd:
			r := parseReport(data)
			d.end = &r
			d.pending = nil
			d.endOnce.Do(func() { close(d.ended) })
			return n, nil
		}
		buf = buf[frameHeader+int(size):]
	}
	d.pending = append(d.pending[:0:0], buf...)
	return n, nil
}

func (d *demux) keep(b *bytes.Buffer, data []byte) {
	room := d.limit - b.Len()
	if len(data) > room {
		b.Write(data[:max(room, 0)])
		d.truncated = true
		d.overOnce.Do(func() { close(d.over) })
		return
	}
	b.Write(data)
}

// result returns what was captured so far.
func (d *demux) result() (stdout, stderr string, truncated bool, end *report) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stdout.String(), d.stderr.String(), d.truncated, d.end
}

// scriptDelivered tells whether the supervisor said it has the script.
func (d *demux) scriptDelivered() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.delivered
}

// reset forgets everything, for a stream read again from its start.
func (d *demux) reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pending, d.raw, d.truncated, d.delivered = nil, false, false, false
	d.stdout.Reset()
	d.stderr.Reset()
}
