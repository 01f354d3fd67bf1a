//go:build linux

package oci

import (
	"bytes"
	"errors"
	"io"
	"os"
	"time"
)

// capture reads one output stream of a run into memory, up to a cap. Past
// the cap it signals over and keeps reading into the void: runc copies the
// container's output into this pipe and waits for the copy to finish before
// it exits, so a reader that simply stopped would hang runc on a full pipe.
type capture struct {
	f         *os.File
	limit     int
	buf       bytes.Buffer
	truncated bool
	over      chan struct{} // closed once the stream exceeded the cap
	done      chan struct{} // closed when reading stopped
	err       error
}

func startCapture(f *os.File, limit int) *capture {
	c := &capture{f: f, limit: limit, over: make(chan struct{}), done: make(chan struct{})}
	go c.read()
	return c
}

func (c *capture) read() {
	defer close(c.done)
	p := make([]byte, 32<<10)
	for {
		n, err := c.f.Read(p)
		if n > 0 && !c.truncated {
			room := c.limit - c.buf.Len()
			if n > room {
				c.buf.Write(p[:room])
				c.truncated = true
				close(c.over)
			} else {
				c.buf.Write(p[:n])
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				c.err = err
			}
			return
		}
	}
}

// finish waits for the end of the stream, at most grace (the write end may
// be held by a process that outlived runc), and closes the pipe.
func (c *capture) finish(grace time.Duration) {
	_ = c.f.SetReadDeadline(time.Now().Add(grace))
	<-c.done
	c.f.Close()
}

func (c *capture) String() string { return c.buf.String() }
