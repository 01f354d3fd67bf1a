package runner

import (
	"sync"

	"github.com/integr8scode/integr8scode/domain"
)

// capacity admits runs while three budgets hold: how many run at once,
// the sum of their CPU limits and the sum of their memory limits. A
// sandbox's limits are what it may use, so a runner whose CPU budget is
// its host's cores never promises more CPU than it has, however many
// sandboxes that means: ten 100m sandboxes fit in one core, one 1000m
// sandbox takes it all. One run is always admitted when none runs, so that
// limits larger than a budget still run, alone.
type capacity struct {
	mu       sync.Mutex
	slots    int
	cpu, mem int64 // 0: unbounded
	n        int
	usedCPU  int64
	usedMem  int64
}

// take reserves room for a run with limits l, if there is.
func (c *capacity) take(l domain.Limits) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	fits := c.n < c.slots &&
		(c.cpu == 0 || c.usedCPU+l.CPUMillicores <= c.cpu) &&
		(c.mem == 0 || c.usedMem+l.MemoryBytes <= c.mem)
	if !fits && c.n > 0 {
		return false
	}
	c.n++
	c.usedCPU += l.CPUMillicores
	c.usedMem += l.MemoryBytes
	return true
}

// give returns what take reserved for l.
func (c *capacity) give(l domain.Limits) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n--
	c.usedCPU -= l.CPUMillicores
	c.usedMem -= l.MemoryBytes
}

// busy is how many runs hold room now; full says no more may start.
func (c *capacity) busy() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func (c *capacity) full() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n >= c.slots
}

// used is the CPU millicores and memory bytes the runs in flight may use.
func (c *capacity) used() (cpu, mem int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.usedCPU, c.usedMem
}
