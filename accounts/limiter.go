package accounts

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// KeyedLimiter is a token bucket per key (a user id, a client address),
// for submission rates and failed sign-ins per address. It is in memory,
// per process: with several API replicas each enforces the rate on its
// own share of the traffic (docs/security.md says so).
type KeyedLimiter struct {
	mu      sync.Mutex
	buckets map[string]*bucket
	now     func() time.Time
	swept   time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// NewKeyedLimiter returns an empty limiter.
func NewKeyedLimiter(now func() time.Time) *KeyedLimiter {
	if now == nil {
		now = time.Now
	}
	return &KeyedLimiter{buckets: map[string]*bucket{}, now: now}
}

// Take takes one token from key's bucket of perMinute tokens a minute with
// room for burst. It returns 0 when allowed, else how long until a token
// is there (nothing is taken then). perMinute <= 0 means no limit.
func (k *KeyedLimiter) Take(key string, perMinute, burst int) time.Duration {
	if perMinute <= 0 {
		return 0
	}
	if burst < 1 {
		burst = 1
	}
	now := k.now()
	every := rate.Limit(float64(perMinute) / 60)
	k.mu.Lock()
	defer k.mu.Unlock()
	k.sweep(now)
	b, ok := k.buckets[key]
	if !ok {
		b = &bucket{lim: rate.NewLimiter(every, burst)}
		k.buckets[key] = b
	} else if b.lim.Limit() != every || b.lim.Burst() != burst {
		// An admin changed the user's limits: keep the tokens, new rate.
		b.lim.SetLimitAt(now, every)
		b.lim.SetBurstAt(now, burst)
	}
	b.seen = now
	// Always OK: one token never exceeds a burst of at least one.
	r := b.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d
	}
	return 0
}

// sweep forgets buckets idle for ten minutes (full again by then for any
// rate of one a minute or more), at most once a minute.
func (k *KeyedLimiter) sweep(now time.Time) {
	if now.Sub(k.swept) < time.Minute {
		return
	}
	k.swept = now
	for key, b := range k.buckets {
		if now.Sub(b.seen) > 10*time.Minute {
			delete(k.buckets, key)
		}
	}
}

// RetryAfter is d in whole seconds, rounded up, at least 1: the value of a
// Retry-After header.
func RetryAfter(d time.Duration) int {
	s := int(math.Ceil(d.Seconds()))
	if s < 1 {
		s = 1
	}
	return s
}

// Peek returns how long until key's bucket holds a token, taking nothing.
func (k *KeyedLimiter) Peek(key string, perMinute, burst int) time.Duration {
	if perMinute <= 0 {
		return 0
	}
	now := k.now()
	k.mu.Lock()
	defer k.mu.Unlock()
	b, ok := k.buckets[key]
	if !ok {
		return 0
	}
	tokens := b.lim.TokensAt(now)
	if tokens >= 1 {
		return 0
	}
	return time.Duration((1 - tokens) / float64(b.lim.Limit()) * float64(time.Second))
}
