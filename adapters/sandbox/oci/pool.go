//go:build linux

package oci

import (
	"fmt"
	"sync"
	"time"

	"github.com/integr8scode/integr8scode/domain"
)

// warmPool keeps containers waiting for a script (see waiting), so that a
// run skips the container's set-up and Python's start-up. Each is used
// once: a run takes it and it is destroyed after that run. How many wait
// follows demand: as many as runs were in flight at once over the last
// minute or so, within [min, max]; an idle platform keeps min. Containers
// that waited longer than maxWait are replaced, so that none outlives a
// change of the host (a package upgrade under /usr) by long.
type warmPool struct {
	r        *Runc
	min, max int
	limits   domain.Limits // what the waiting containers are created with
	window   time.Duration // demandWindow; shorter in tests

	mu       sync.Mutex
	idle     []*waiting // oldest first
	starting int
	ending   int // containers being discarded by the loop
	inFlight int
	peak     [2]int // the most runs in flight in this window and the last
	windowAt time.Time
	closed   bool
	paused   bool // by a test that looks at what is on the host
	hits     int64
	misses   int64

	kick chan struct{}
	done chan struct{}
}

const (
	// demandWindow is half of how long a burst of runs keeps the pool
	// sized for it.
	demandWindow = 30 * time.Second
	// maxWait is how long a container may wait for a script.
	maxWait = 10 * time.Minute
	// poolTick is how often the pool looks at its size without a kick.
	poolTick = 2 * time.Second
)

func newWarmPool(r *Runc, min, max int, limits domain.Limits) *warmPool {
	p := &warmPool{r: r, min: min, max: max, limits: limits, window: demandWindow, windowAt: time.Now(),
		kick: make(chan struct{}, 1), done: make(chan struct{})}
	if max == 0 {
		close(p.done)
		return p
	}
	go p.loop()
	p.wake()
	return p
}

// begin counts a run in flight for the demand; the returned func ends it.
func (p *warmPool) begin() func() {
	p.mu.Lock()
	p.inFlight++
	p.roll(time.Now())
	p.peak[0] = max(p.peak[0], p.inFlight)
	p.mu.Unlock()
	return func() {
		p.mu.Lock()
		p.inFlight--
		p.mu.Unlock()
	}
}

// take hands out the container that waited least (the oldest are the
// first to be replaced), or nil when none waits.
func (p *warmPool) take() *waiting {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.idle) == 0 {
		if p.max > 0 {
			p.misses++
			p.wake()
		}
		return nil
	}
	p.hits++
	w := p.idle[len(p.idle)-1]
	p.idle = p.idle[:len(p.idle)-1]
	p.wake()
	return w
}

// roll moves the demand windows on. Called with mu held.
func (p *warmPool) roll(now time.Time) {
	for now.Sub(p.windowAt) >= p.window {
		p.peak[1], p.peak[0] = p.peak[0], p.inFlight
		p.windowAt = p.windowAt.Add(p.window)
		if now.Sub(p.windowAt) >= 2*p.window {
			p.peak[1], p.windowAt = p.inFlight, now
		}
	}
}

// target is how many containers should wait now. Called with mu held.
func (p *warmPool) target(now time.Time) int {
	p.roll(now)
	return min(max(p.peak[0], p.peak[1], p.min), p.max)
}

func (p *warmPool) wake() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// loop starts containers one at a time while fewer wait than the target,
// and ends those past it or past maxWait. One at a time: a start takes a
// core for tens of milliseconds, which the runs in flight need more.
func (p *warmPool) loop() {
	defer close(p.done)
	tick := time.NewTicker(poolTick)
	defer tick.Stop()
	for {
		now := time.Now()
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return
		}
		var drop []*waiting
		for !p.paused && len(p.idle) > 0 && (len(p.idle) > p.target(now) || now.Sub(p.idle[0].born) > maxWait) {
			drop = append(drop, p.idle[0])
			p.idle = p.idle[1:]
		}
		grow := !p.paused && len(p.idle) < p.target(now)
		if grow {
			p.starting++
		}
		p.ending += len(drop)
		p.mu.Unlock()
		for _, w := range drop {
			p.r.discard(w)
		}
		p.mu.Lock()
		p.ending -= len(drop)
		p.mu.Unlock()
		if grow {
			w, err := p.r.start(fmt.Sprintf("warm-%d", p.r.seq.Add(1)), p.limits, poolBackstopSeconds, 0)
			p.mu.Lock()
			p.starting--
			closed := p.closed
			if err == nil && !closed {
				p.idle = append(p.idle, w)
			}
			p.mu.Unlock()
			switch {
			case err != nil:
				// All uid slots busy (runs in flight use them), or the host
				// cannot start containers now: the runs start their own.
				p.r.log.Debug("no warm container started", "err", err)
			case closed:
				p.r.discard(w)
			default:
				continue // look again at once
			}
			if err != nil {
				select {
				case <-tick.C:
				case <-p.kick:
					// A run that took one is over soon; give it a moment.
					time.Sleep(50 * time.Millisecond)
				}
				continue
			}
		}
		select {
		case <-tick.C:
		case <-p.kick:
		}
	}
}

// close ends every waiting container and stops the loop.
func (p *warmPool) close() {
	p.mu.Lock()
	p.closed = true
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	p.wake()
	<-p.done
	for _, w := range idle {
		p.r.discard(w)
	}
}

// PoolStats reports the warm pool's state and counters.
func (r *Runc) PoolStats() PoolStats {
	p := r.pool
	p.mu.Lock()
	defer p.mu.Unlock()
	return PoolStats{Waiting: len(p.idle), Hits: p.hits, Misses: p.misses}
}
