package runner

import (
	"testing"

	"github.com/integr8scode/integr8scode/domain"
)

func TestCapacity(t *testing.T) {
	small := domain.Limits{CPUMillicores: 100, MemoryBytes: 128 << 20}
	big := domain.Limits{CPUMillicores: 1000, MemoryBytes: 512 << 20}
	t.Run("OK ten 100m runs fill a one-core budget, an eleventh waits", func(t *testing.T) {
		c := &capacity{slots: 20, cpu: 1000}
		for i := range 10 {
			if !c.take(small) {
				t.Fatalf("run %d refused", i+1)
			}
		}
		if c.take(small) {
			t.Fatal("an eleventh 100m run fit in 1000m")
		}
		c.give(small)
		if !c.take(small) {
			t.Fatal("the room a run gave back was not taken")
		}
		if cpu, _ := c.used(); cpu != 1000 || c.busy() != 10 {
			t.Fatalf("used %dm by %d runs", cpu, c.busy())
		}
	})
	t.Run("OK the memory budget and the slots bind as well", func(t *testing.T) {
		c := &capacity{slots: 3, mem: 256 << 20}
		if !c.take(small) || !c.take(small) || c.take(small) {
			t.Fatal("a third 128 MiB run fit in 256 MiB")
		}
		c = &capacity{slots: 2}
		if !c.take(small) || !c.take(small) || c.take(small) || !c.full() {
			t.Fatal("a third run took one of two slots")
		}
	})
	t.Run("OK limits beyond a budget still run, alone", func(t *testing.T) {
		c := &capacity{slots: 4, cpu: 500, mem: 256 << 20}
		if !c.take(big) {
			t.Fatal("a run larger than the budgets was refused on an idle runner")
		}
		if c.take(small) {
			t.Fatal("a run started beside one that exceeds the budget")
		}
		c.give(big)
		if c.busy() != 0 || !c.take(small) {
			t.Fatal("the room was not given back")
		}
	})
}
