package accounts

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/integr8scode/integr8scode/domain"
)

// Quota bounds what one caller submits: PerMinute submissions a minute
// (with room for a burst of Burst), and Concurrent executions queued or
// running at once.
type Quota struct {
	PerMinute  int
	Burst      int
	Concurrent int
}

// maxQuotaValue bounds what an admin may set, so a typo cannot turn a
// limit into "unlimited" by overflow.
const maxQuotaValue = 1_000_000

// Validate checks a quota an admin or an operator set.
func (q Quota) Validate() error {
	for _, f := range []struct {
		name string
		v    int
	}{{"submissions_per_minute", q.PerMinute}, {"burst", q.Burst}, {"concurrent", q.Concurrent}} {
		if f.v < 1 || f.v > maxQuotaValue {
			return domain.Errorf(domain.EUNPROCESSABLE, "%s must be from 1 to %d", f.name, maxQuotaValue)
		}
	}
	return nil
}

// Quotas are the limits per kind of caller. A user's own Quota, when an
// admin set one, replaces the role's.
type Quotas struct {
	Anonymous Quota // per client address
	User      Quota
	Admin     Quota
}

// DefaultQuotas: anonymous callers get the smallest.
var DefaultQuotas = Quotas{
	Anonymous: Quota{PerMinute: 20, Burst: 5, Concurrent: 2},
	User:      Quota{PerMinute: 60, Burst: 20, Concurrent: 8},
	Admin:     Quota{PerMinute: 600, Burst: 100, Concurrent: 32},
}

// For returns the quota of a principal.
func (q Quotas) For(p Principal) Quota {
	switch {
	case p.User == nil:
		return q.Anonymous
	case p.User.Quota != nil:
		return *p.User.Quota
	case p.User.Role == RoleAdmin:
		return q.Admin
	default:
		return q.User
	}
}

// ParseQuota reads "per-minute=60,burst=20,concurrent=8" (as the
// --quota-* flags take it) over base: omitted keys keep base's values.
func ParseQuota(s string, base Quota) (Quota, error) {
	q := base
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if !ok || err != nil {
			return q, fmt.Errorf("quota %q: want key=number pairs (per-minute, burst, concurrent)", s)
		}
		switch strings.TrimSpace(k) {
		case "per-minute":
			q.PerMinute = n
		case "burst":
			q.Burst = n
		case "concurrent":
			q.Concurrent = n
		default:
			return q, fmt.Errorf("quota %q: unknown key %q (per-minute, burst, concurrent)", s, k)
		}
	}
	if err := q.Validate(); err != nil {
		return q, fmt.Errorf("quota %q: %w", s, err)
	}
	return q, nil
}
