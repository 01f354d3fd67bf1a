package domain

import (
	"strings"
	"time"
)

// Limits bound one run of a script. Zero fields in a request mean "the default".
type Limits struct {
	TimeoutMs     int64 `json:"timeout_ms" bson:"timeout_ms"`
	MemoryBytes   int64 `json:"memory_bytes" bson:"memory_bytes"`
	CPUMillicores int64 `json:"cpu_millicores" bson:"cpu_millicores"`
}

// DefaultLimits are the original product's limits: 128 MiB, 100m CPU, 5 s.
var DefaultLimits = Limits{TimeoutMs: 5000, MemoryBytes: 128 << 20, CPUMillicores: 100}

// DefaultMaxLimits is what a request may raise limits to unless an
// administrator configures otherwise.
var DefaultMaxLimits = Limits{TimeoutMs: 30000, MemoryBytes: 512 << 20, CPUMillicores: 1000}

// Floors below which a sandbox cannot start Python at all. The timeout has
// none to speak of: it counts the script's own run, from the moment its
// sandbox (set up, Python started) hands it over, never the set-up.
const (
	MinTimeoutMs     = 1
	MinMemoryBytes   = 16 << 20
	MinCPUMillicores = 10
)

// Timeout returns the timeout as a duration.
func (l Limits) Timeout() time.Duration { return time.Duration(l.TimeoutMs) * time.Millisecond }

// ResolveLimits fills zero fields of requested from defaults and checks the
// result against floors and the maximum. It reports every problem at once.
func ResolveLimits(requested, defaults, maximum Limits) (Limits, error) {
	out := requested
	if out.TimeoutMs == 0 {
		out.TimeoutMs = defaults.TimeoutMs
	}
	if out.MemoryBytes == 0 {
		out.MemoryBytes = defaults.MemoryBytes
	}
	if out.CPUMillicores == 0 {
		out.CPUMillicores = defaults.CPUMillicores
	}
	var problems []string
	check := func(name string, v, lo, hi int64) {
		switch {
		case v < lo:
			problems = append(problems, name+" is below the minimum")
		case v > hi:
			problems = append(problems, name+" is above the maximum")
		}
	}
	check("limits.timeout_ms", out.TimeoutMs, MinTimeoutMs, maximum.TimeoutMs)
	check("limits.memory_bytes", out.MemoryBytes, MinMemoryBytes, maximum.MemoryBytes)
	check("limits.cpu_millicores", out.CPUMillicores, MinCPUMillicores, maximum.CPUMillicores)
	if len(problems) > 0 {
		return Limits{}, Errorf(EUNPROCESSABLE, "%s", strings.Join(problems, "; "))
	}
	return out, nil
}
