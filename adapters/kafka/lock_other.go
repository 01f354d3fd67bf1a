//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package kafka

// dirLock is a no-op where flock is unavailable: the platform targets Linux,
// and elsewhere the embedded broker only runs for local development.
type dirLock struct{}

func lockDir(string) (*dirLock, error) { return &dirLock{}, nil }

func (*dirLock) unlock() error { return nil }
