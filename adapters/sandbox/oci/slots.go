package oci

import "time"

// idSlots hands out the host uid/gid ranges of concurrent runs. Slot s maps
// the ids 0..size-1 of its container's user namespace to the host ids
// base+s*size..base+(s+1)*size-1, so the processes of two runs in flight
// never share a host uid: one run cannot signal, ptrace or read /proc of
// another even if a namespace were crossed, and per-uid kernel accounting
// (RLIMIT_NPROC, inotify, user namespace counts) is per run.
//
// A slot goes back to the pool only once its run's cgroup is gone, i.e. no
// process with its ids is left; a slot whose cleanup failed is retired
// until the next New.
//
// base is Config.UIDBase or, by default, the first id of the blocks New
// leased, so that the slots of two processes on one host are disjoint too.
type idSlots struct {
	base, size uint32
	free       chan int
}

func newIDSlots(n int, base, size uint32) *idSlots {
	s := &idSlots{base: base, size: size, free: make(chan int, n)}
	for i := range n {
		s.free <- i
	}
	return s
}

// acquire takes a free slot, waiting at most wait for one. The runner
// bounds its own concurrency, so slots run out only for the moment a
// finished run's cleanup still holds its slot (its result went back
// before, see Runc.Run); a longer wait is the platform's fault, not a
// queue.
func (s *idSlots) acquire(wait time.Duration) (int, bool) {
	select {
	case slot := <-s.free:
		return slot, true
	default:
	}
	if wait <= 0 {
		return 0, false
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case slot := <-s.free:
		return slot, true
	case <-t.C:
		return 0, false
	}
}

func (s *idSlots) release(slot int) { s.free <- slot }

// busy is the number of slots taken (in flight or retired).
func (s *idSlots) busy() int { return cap(s.free) - len(s.free) }

// span is the host ids of all slots: [first, end).
func (s *idSlots) span() (first, end uint64) {
	return uint64(s.base), uint64(s.base) + uint64(cap(s.free))*uint64(s.size)
}

// hostID is the host uid (and gid) that container id 0 of slot maps to.
func (s *idSlots) hostID(slot int) uint32 { return s.base + uint32(slot)*s.size }
