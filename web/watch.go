package web

import (
	"context"
	"time"
)

// watcher wakes a request that waits for an execution's view to change:
// at once on the in-process hub's signal (the projector runs in this
// process), and every PollEvery otherwise (it runs elsewhere). A missed
// signal costs latency only: waiters always read the view again.
type watcher struct {
	changed <-chan struct{}
	tick    *time.Ticker
	stop    func()
}

func (s *server) watch(id string) *watcher {
	w := &watcher{tick: time.NewTicker(s.PollEvery), stop: func() {}}
	if s.Hub != nil {
		w.changed, w.stop = s.Hub.Subscribe(id)
	}
	return w
}

// wait blocks until the view may have changed; false once ctx ended.
func (w *watcher) wait(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return false
	case <-w.changed:
	case <-w.tick.C:
	}
	return true
}

func (w *watcher) close() {
	w.tick.Stop()
	w.stop()
}
