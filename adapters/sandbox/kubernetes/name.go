package kubernetes

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
)

// Labels and annotations of sandbox pods. The execution id itself is an
// annotation: a label value is limited to 63 characters of a narrow
// alphabet, and an id need not fit.
const (
	labelManagedBy   = "app.kubernetes.io/managed-by"
	managedBy        = "integr8scode"
	labelExecution   = "integr8scode.io/execution"
	labelAttempt     = "integr8scode.io/attempt"
	annotExecutionID = "integr8scode.io/execution-id"
	// A pod of the warm pool: its runner (Config.PoolOwner) and that
	// runner's life. A claim removes both.
	labelPool     = "integr8scode.io/pool"
	labelPoolLife = "integr8scode.io/pool-life"
	// When a pod of the warm pool was created, and claimed for its run.
	annotWarmSince    = "integr8scode.io/warm-since"
	annotClaimedAt    = "integr8scode.io/claimed-at"
	containerName     = "script"
	maxExecutionKey   = 50 // "exec-" + key + "-a" + attempt stays within 63
	hashedKeyIDPrefix = 39 // room left for "-" and 10 hex digits of the hash
)

// podName is the pod of one attempt of one execution. It is a function of
// the two alone, so a redelivered job finds the pod of its first delivery
// (Create answers AlreadyExists) instead of starting a second one.
func podName(executionID string, attempt int) string {
	return "exec-" + executionKey(executionID) + "-a" + strconv.Itoa(max(attempt, 0))
}

// executionKey is executionID as a DNS label fragment and label value:
// lowercase letters, digits and dashes, at most 50 characters, neither
// starting nor ending with a dash. An id that this changes (a capital, an
// underscore, too long) gets a hash of the original appended, so that two
// ids never share a key.
func executionKey(executionID string) string {
	var b strings.Builder
	for _, r := range executionID {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
			b.WriteRune(r)
		case r >= 'A' && r <= 'Z':
			b.WriteRune(r + ('a' - 'A'))
		default:
			b.WriteByte('-')
		}
	}
	key := strings.Trim(b.String(), "-")
	if key == executionID && len(key) <= maxExecutionKey {
		return key
	}
	sum := sha256.Sum256([]byte(executionID))
	key = strings.TrimRight(key[:min(len(key), hashedKeyIDPrefix)], "-")
	if key == "" {
		return hex.EncodeToString(sum[:])[:10]
	}
	return key + "-" + hex.EncodeToString(sum[:])[:10]
}

func podLabels(executionID string, attempt int) map[string]string {
	return map[string]string{
		labelManagedBy: managedBy,
		labelExecution: executionKey(executionID),
		labelAttempt:   strconv.Itoa(attempt),
	}
}

// poolOwnerLabel makes a host name a label value (see executionKey).
func poolOwnerLabel(host string) string { return executionKey(host) }
