package accounts

import (
	"context"
	"hash/fnv"
	"math"
	"sync"
	"time"

	"github.com/integr8scode/integr8scode/domain"
)

// Throttle slows password guessing down (NIST SP 800-63B rev. 4 §3.2.2,
// OWASP's Authentication Cheat Sheet) without handing anyone a way to lock
// other people out:
//
//   - per username and client address: the first FreeFailures failed
//     sign-ins cost nothing, each further one doubles a wait before the
//     next attempt from that address, from BaseDelay up to MaxDelay;
//   - per username across all addresses: LockAfter consecutive failures
//     (NIST's cap is 100) lock the name for Lockout; `integr8scode admin
//     unlock` and a new password end it;
//   - per client address: IPAttemptsPerMinute sign-in attempts a minute
//     (burst IPBurst), in memory per API process.
//
// The rules hold whether or not the username exists, so the answers never
// tell. An attempt is counted as failed before its password is hashed and
// cleared if it succeeds, and the attempts on one name are taken one at a
// time in a process: a burst of parallel guesses is throttled like the
// same guesses in a row. A throttled attempt is refused with 429 and
// Retry-After before any hashing.
type Throttle struct {
	FreeFailures        int
	BaseDelay           time.Duration
	MaxDelay            time.Duration
	LockAfter           int
	Lockout             time.Duration
	Forget              time.Duration
	IPAttemptsPerMinute int
	IPBurst             int

	perIP *KeyedLimiter
	names *[64]sync.Mutex // set by New
}

// DefaultThrottle is the policy of the platform.
var DefaultThrottle = Throttle{
	FreeFailures: 5, BaseDelay: time.Second, MaxDelay: 5 * time.Minute,
	LockAfter: 100, Lockout: 15 * time.Minute, Forget: 24 * time.Hour,
	IPAttemptsPerMinute: 20, IPBurst: 30,
}

// wait is how long after its last failure a (name, address) pair waits.
func (t *Throttle) wait(f Failures) time.Duration {
	if f.Count < t.FreeFailures {
		return 0
	}
	d := float64(t.BaseDelay) * math.Pow(2, float64(f.Count-t.FreeFailures))
	return time.Duration(math.Min(d, float64(t.MaxDelay)))
}

func pairKey(name, ip string) string { return name + "\x00" + ip }

// lock takes a name's turn in this process.
func (t *Throttle) lock(name string) func() {
	h := fnv.New32a()
	h.Write([]byte(name))
	m := &t.names[h.Sum32()%uint32(len(t.names))]
	m.Lock()
	return m.Unlock
}

// begin admits an attempt on name from ip, or refuses it, and counts it as
// failed until succeeded clears it. The caller holds lock(name).
func (t *Throttle) begin(ctx context.Context, s Store, name, ip string, now time.Time) error {
	if d := t.perIP.Take(ip, t.IPAttemptsPerMinute, t.IPBurst); d > 0 {
		return domain.RetryLater(d, domain.ETOOMANY, "too many sign-in attempts from this address; wait before trying again")
	}
	byName, err := t.load(ctx, s, name, now)
	if err != nil {
		return err
	}
	if byName.Count >= t.LockAfter {
		if until := byName.Last.Add(t.Lockout); now.Before(until) {
			return domain.RetryLater(until.Sub(now), domain.ETOOMANY,
				"this username is locked for a while after too many failed sign-ins")
		}
	}
	byPair, err := t.load(ctx, s, pairKey(name, ip), now)
	if err != nil {
		return err
	}
	if until := byPair.Last.Add(t.wait(byPair)); now.Before(until) {
		return domain.RetryLater(until.Sub(now), domain.ETOOMANY,
			"too many failed sign-ins for this username from this address; wait before trying again")
	}
	for _, c := range []struct {
		key string
		f   Failures
	}{{name, byName}, {pairKey(name, ip), byPair}} {
		if err := s.SaveLoginFailures(ctx, c.key, Failures{Count: c.f.Count + 1, Last: now.UTC()}); err != nil {
			return err
		}
	}
	return nil
}

// load reads a count, forgotten after Forget without failures.
func (t *Throttle) load(ctx context.Context, s Store, key string, now time.Time) (Failures, error) {
	f, err := s.LoginFailures(ctx, key)
	if err != nil {
		return Failures{}, err
	}
	if now.Sub(f.Last) > t.Forget {
		return Failures{}, nil
	}
	return f, nil
}

// succeeded clears what begin counted: the attempt did not fail.
func (t *Throttle) succeeded(ctx context.Context, s Store, name, ip string) {
	_ = s.SaveLoginFailures(ctx, name, Failures{})
	_ = s.SaveLoginFailures(ctx, pairKey(name, ip), Failures{})
}
