package accounts

import (
	"testing"
	"time"
)

func TestALimiterKeepsItsTokensWhenTheRateChangesAndForgetsIdleKeys(t *testing.T) {
	now := time.Unix(1000, 0)
	k := NewKeyedLimiter(func() time.Time { return now })
	// 60 a minute, no burst asked for: a burst of one.
	if d := k.Take("a", 60, 0); d != 0 {
		t.Fatalf("first take: %v", d)
	}
	if d := k.Take("a", 60, 0); d != time.Second {
		t.Fatalf("over a burst of one: %v", d)
	}
	if d := k.Peek("a", 60, 0); d != time.Second {
		t.Fatalf("peek: %v", d)
	}
	// An admin lowers the rate: the empty bucket stays empty and refills
	// at the new rate.
	if d := k.Take("a", 6, 1); d != 10*time.Second {
		t.Fatalf("after the rate fell: %v", d)
	}
	now = now.Add(10 * time.Second)
	if d := k.Peek("a", 6, 1); d != 0 {
		t.Fatalf("peek of a refilled bucket: %v", d)
	}
	if k.Peek("never", 6, 1) != 0 || k.Peek("a", 0, 0) != 0 {
		t.Fatal("peek of a key never seen, or of no limit, waits")
	}

	// Ten idle minutes later the next take forgets "a"; the sweep runs at
	// most once a minute.
	k.Take("b", 6, 1)
	now = now.Add(10*time.Minute + time.Second)
	k.Take("b", 6, 1)
	if _, ok := k.buckets["a"]; ok || len(k.buckets) != 1 {
		t.Fatalf("buckets after ten idle minutes: %v", k.buckets)
	}
	k.Take("c", 6, 1)
	now = now.Add(30 * time.Second)
	k.Take("d", 6, 1)
	if len(k.buckets) != 3 {
		t.Fatalf("a sweep within the minute: %d buckets", len(k.buckets))
	}
	if NewKeyedLimiter(nil).now == nil {
		t.Fatal("a limiter without a clock has none")
	}
}
