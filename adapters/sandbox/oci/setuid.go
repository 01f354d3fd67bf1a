package oci

import (
	"io/fs"
	"path/filepath"
	"sync"
)

// setuidFiles lists the setuid and setgid files under the host's /usr, the
// only host directory a container sees. The mount is nosuid and the process
// has no_new_privs, so none of them can raise privileges anyway; masking
// them (runc binds /dev/null over each) also keeps them out of reach, so a
// kernel bug in either of those two controls would still find nothing to
// run. Scanned once per process: /usr does not change under a running
// service, and a package upgrade that adds one is picked up at restart.
var setuidFiles = sync.OnceValue(func() []string {
	var out []string
	_ = filepath.WalkDir("/usr", func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil // unreadable entries cannot be listed either way
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		if info.Mode()&(fs.ModeSetuid|fs.ModeSetgid) != 0 {
			out = append(out, p)
		}
		return nil
	})
	return out
})

// masked is runc's default masked paths plus every setuid or setgid file.
func masked() []string {
	return append(append([]string(nil), maskedPaths...), setuidFiles()...)
}
