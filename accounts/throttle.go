package accounts

import (
	"context"
	"math"
	"time"

	"github.com/integr8scode/integr8scode/domain"
)

// Throttle slows password guessing down (NIST SP 800-63B rev. 4 §3.2.2,
// OWASP's Authentication Cheat Sheet). Per username, whether or not it
// exists (so the answers never tell): the first FreeFailures failed
// sign-ins cost nothing, each further one doubles a wait before the next
// attempt (from BaseDelay up to MaxDelay), and LockAfter failures lock the
// name for Lockout. A successful sign-in clears the count; so do Forget
// without failures. Per client address: at most IPFailuresPerMinute failed
// sign-ins a minute (burst IPBurst), in memory per API process.
//
// A throttled attempt is refused before its password is hashed, with 429
// and Retry-After.
type Throttle struct {
	FreeFailures        int
	BaseDelay           time.Duration
	MaxDelay            time.Duration
	LockAfter           int
	Lockout             time.Duration
	Forget              time.Duration
	IPFailuresPerMinute int
	IPBurst             int

	perIP *KeyedLimiter
}

// DefaultThrottle is the policy of the platform.
var DefaultThrottle = Throttle{
	FreeFailures: 5, BaseDelay: time.Second, MaxDelay: 5 * time.Minute,
	LockAfter: 20, Lockout: 15 * time.Minute, Forget: 24 * time.Hour,
	IPFailuresPerMinute: 10, IPBurst: 30,
}

// wait is how long after its last failure a username must wait.
func (t *Throttle) wait(f Failures) time.Duration {
	switch {
	case f.Count >= t.LockAfter:
		return t.Lockout
	case f.Count < t.FreeFailures:
		return 0
	}
	d := float64(t.BaseDelay) * math.Pow(2, float64(f.Count-t.FreeFailures))
	return time.Duration(math.Min(d, float64(t.MaxDelay)))
}

func (t *Throttle) before(ctx context.Context, s Store, key, ip string, now time.Time) error {
	if d := t.perIP.Peek(ip, t.IPFailuresPerMinute, t.IPBurst); d > 0 {
		return domain.RetryLater(d, domain.ETOOMANY, "too many failed sign-ins from this address; wait before trying again")
	}
	f, err := s.LoginFailures(ctx, key)
	if err != nil {
		return err
	}
	if now.Sub(f.Last) > t.Forget {
		return nil
	}
	if until := f.Last.Add(t.wait(f)); now.Before(until) {
		msg := "too many failed sign-ins for this username; wait before trying again"
		if f.Count >= t.LockAfter {
			msg = "this username is locked for a while after too many failed sign-ins"
		}
		return domain.RetryLater(until.Sub(now), domain.ETOOMANY, "%s", msg)
	}
	return nil
}

// failed records a failure. Errors are logged by nobody: a store that
// cannot record a failure must not turn a wrong password into a 500, and
// the per-address limit still holds.
func (t *Throttle) failed(ctx context.Context, s Store, key, ip string, now time.Time) {
	t.perIP.Take(ip, t.IPFailuresPerMinute, t.IPBurst)
	f, err := s.LoginFailures(ctx, key)
	if err != nil {
		return
	}
	if now.Sub(f.Last) > t.Forget {
		f = Failures{}
	}
	f.Count++
	f.Last = now.UTC()
	_ = s.SaveLoginFailures(ctx, key, f)
}

func (t *Throttle) succeeded(ctx context.Context, s Store, key string) {
	if f, err := s.LoginFailures(ctx, key); err == nil && f.Count > 0 {
		_ = s.SaveLoginFailures(ctx, key, Failures{})
	}
}
