//go:build linux

package oci

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// The container's root file system is one directory shared by every run and
// mounted read-only: symlinks into /usr (a read-only bind mount of the host's
// /usr), empty mount points, and a minimal /etc written here. No host file
// outside /usr is visible.
const (
	scriptPath   = "/sandbox/main.py" // where the script is bind-mounted
	sandboxHost  = "sandbox"
	sandboxHome  = "/tmp"
	rootfsDirMod = 0o755
)

var rootfsSymlinks = map[string]string{
	"bin":   "usr/bin",
	"lib":   "usr/lib",
	"lib64": "usr/lib64",
	"sbin":  "usr/sbin",
}

var rootfsDirs = []string{"usr", "proc", "dev", "sys", "tmp", "sandbox", "etc"}

var etcFiles = map[string]string{
	// nobody is the overflow id: host files (root's, under /usr) show as
	// owned by it inside the user namespace.
	"passwd": "root:x:0:0:root:/root:/usr/sbin/nologin\n" +
		"sandbox:x:1000:1000:sandbox:/tmp:/usr/sbin/nologin\n" +
		"nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
	"group":         "root:x:0:\nsandbox:x:1000:\nnogroup:x:65534:\n",
	"hostname":      sandboxHost + "\n",
	"hosts":         "127.0.0.1\tlocalhost " + sandboxHost + "\n::1\tlocalhost " + sandboxHost + "\n",
	"nsswitch.conf": "passwd: files\ngroup: files\nshadow: files\nhosts: files\n",
}

func buildRootfs(dir, python string) error {
	if err := os.Mkdir(dir, rootfsDirMod); err != nil {
		return err
	}
	if err := os.Chmod(dir, rootfsDirMod); err != nil { // umask
		return err
	}
	for name, target := range rootfsSymlinks {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	for _, d := range rootfsDirs {
		p := filepath.Join(dir, d)
		if err := os.Mkdir(p, rootfsDirMod); err != nil {
			return err
		}
		// runc gives a tmpfs the mode of the directory it is mounted on.
		mode := os.FileMode(rootfsDirMod)
		if d == "tmp" {
			mode = os.ModeSticky | 0o777
		}
		if err := os.Chmod(p, mode); err != nil {
			return err
		}
	}
	files := map[string]string{strings.TrimPrefix(scriptPath, "/"): ""}
	for name, content := range etcFiles {
		files["etc/"+name] = content
	}
	// Debian links the interpreter's sitecustomize.py to /etc/pythonX.Y/; an
	// empty file there keeps Python from reporting a dangling import at every
	// start without showing the host's configuration.
	shims, err := sitecustomizeShims(python)
	if err != nil {
		return err
	}
	for _, rel := range shims {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(rel)), rootfsDirMod); err != nil {
			return err
		}
		files[rel] = ""
	}
	for rel, content := range files {
		if err := os.WriteFile(filepath.Join(dir, rel), []byte(content), 0o444); err != nil {
			return err
		}
	}
	return nil
}

// sitecustomizeShims lists, relative to the root, the /etc files that the
// interpreter's standard library links sitecustomize.py to.
func sitecustomizeShims(python string) ([]string, error) {
	base := filepath.Base(python) // python3.11
	links, err := filepath.Glob(filepath.Join("/usr/lib", base+"*", "sitecustomize.py"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range links {
		target, err := os.Readlink(l)
		if err != nil {
			continue // a regular file under /usr: visible as it is
		}
		if !filepath.IsAbs(target) || !strings.HasPrefix(filepath.Clean(target), "/etc/") {
			continue
		}
		rel := strings.TrimPrefix(filepath.Clean(target), "/")
		if strings.Contains(rel, "..") {
			return nil, fmt.Errorf("unexpected sitecustomize link %s -> %s", l, target)
		}
		out = append(out, rel)
	}
	return out, nil
}
