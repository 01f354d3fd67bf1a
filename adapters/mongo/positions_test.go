package mongo

import (
	"context"
	"testing"
)

// TestPositionIsZeroUntilSavedThenTheLastSaved: a partition never saved
// reads 0 (an empty store rebuilds from the start of the log), a saved
// position reads back, per partition and from another process, and a later
// save overwrites it, lower or higher.
func TestPositionIsZeroUntilSavedThenTheLastSaved(t *testing.T) {
	forEachBackend(t, func(t *testing.T, d *DB) {
		ctx := context.Background()
		p := NewProjections(d)
		position := func(partition int32) int64 {
			t.Helper()
			n, err := p.Position(ctx, partition)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		if got := position(0); got != 0 {
			t.Errorf("never saved: %d, want 0", got)
		}
		for _, next := range []int64{42, 1 << 40, 7} {
			if err := p.SavePositions(ctx, map[int32]int64{0: next}); err != nil {
				t.Fatal(err)
			}
			if got := position(0); got != next {
				t.Errorf("after saving %d: %d", next, got)
			}
		}
		if err := p.SavePositions(ctx, map[int32]int64{11: 3}); err != nil {
			t.Fatal(err)
		}
		if got0, got11, got1 := position(0), position(11), position(1); got0 != 7 || got11 != 3 || got1 != 0 {
			t.Errorf("partitions 0, 11, 1: %d, %d, %d; want 7, 3, 0", got0, got11, got1)
		}
		// A second process sees what the first saved.
		if got, err := NewProjections(openAgain(t, d, backendFerret)).Position(ctx, 11); err != nil || got != 3 {
			t.Errorf("partition 11 from another process: %d %v", got, err)
		}
	})
}
