package keyring

import (
	"context"
	"crypto/sha256"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/integr8scode/integr8scode/eventstore"
)

// Watch follows the key directory of a running writer: when its files
// change (a rotation by `integr8scode ledger keys --rotate`, or a
// Kubernetes Secret whose mounted files the kubelet replaced), it loads
// the ring again, adds the new public keys to keys and makes the active
// key the one signer signs with. A directory that does not load (a
// rotation half written) is reported and left for the next look; what was
// loaded before stays in force. It returns when ctx ends.
func Watch(ctx context.Context, dir string, every time.Duration, keys *eventstore.KeySet, signer *eventstore.RotatingSigner, log *slog.Logger) {
	WatchDir(ctx, dir, every, log, func() error {
		ring, err := Load(dir)
		if err != nil {
			return err
		}
		if err := keys.Add(ring.Keys.Keys()...); err != nil {
			return err
		}
		if ring.Signer != nil && ring.Signer.KeyID() != signer.KeyID() {
			signer.Set(ring.Signer)
			log.Info("ledger signing key rotated", "dir", dir, "signing_key", ring.Signer.KeyID(), "keys", len(keys.Keys()))
		}
		return nil
	})
}

// WatchDir calls reload whenever the files of dir change, every interval
// at most, until ctx ends. A reload that fails is reported and tried again
// at the next change; what was loaded before stays in force.
func WatchDir(ctx context.Context, dir string, every time.Duration, log *slog.Logger, reload func() error) {
	last := fingerprint(dir)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := fingerprint(dir)
		if now == last {
			continue
		}
		if err := reload(); err != nil {
			log.Warn("keys changed but do not load; the keys before stay in force", "dir", dir, "err", err)
			continue
		}
		last = now
	}
}

// fingerprint summarises a directory's files: names, sizes and contents'
// times, following the symbolic links a Secret volume is made of.
func fingerprint(dir string) [32]byte {
	h := sha256.New()
	entries, _ := os.ReadDir(dir)
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for _, n := range names {
		fi, err := os.Stat(filepath.Join(dir, n)) // Stat: through the links
		if err != nil || fi.Mode()&fs.ModeType != 0 {
			continue
		}
		b, _ := os.ReadFile(filepath.Join(dir, n))
		h.Write([]byte(n))
		h.Write([]byte{0})
		h.Write(b)
		h.Write([]byte{0})
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}
