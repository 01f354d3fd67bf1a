package cluster

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// The Python image is the host's own Debian python3 with the closure of its
// package dependencies, copied file by file from what dpkg says each package
// installed. It needs no network beyond Debian's repositories (to install
// python3 if it is missing), unlike debootstrap, which needs a mirror per run.
var (
	pythonRoot = "python3"
	// Packages that python3 depends on only to be installed and upgraded.
	pythonSkip = map[string]bool{"dpkg": true, "tar": true, "debconf": true, "perl-base": true, "readline-common": true, "media-types": true}
	// Paths nobody needs inside a sandbox.
	pythonDrop = []string{"/usr/share/doc/", "/usr/share/man/", "/usr/share/info/", "/usr/share/lintian/", "/usr/share/locale/", "/usr/share/bug/"}
)

func (c *Cluster) pythonImage(ctx context.Context, dir string) (string, error) {
	pkgs, err := debClosure(ctx, pythonRoot)
	if err != nil {
		return "", err
	}
	// The archive is named after the exact package versions it holds.
	h := sha256.New()
	fmt.Fprintln(h, PythonImage, "v1")
	for _, p := range pkgs {
		fmt.Fprintln(h, p)
	}
	path := filepath.Join(dir, "python-"+hex.EncodeToString(h.Sum(nil)[:6])+".tar")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	c.printf("building the Python image from %d Debian packages of this host ...", len(pkgs))
	var files []string
	for _, p := range pkgs {
		name := strings.Fields(p)[0]
		out, err := exec.CommandContext(ctx, "dpkg-query", "-L", name).Output()
		if err != nil {
			return "", fmt.Errorf("dpkg-query -L %s: %w", name, err)
		}
		for _, f := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(f, "/") && !slices.ContainsFunc(pythonDrop, func(d string) bool { return strings.HasPrefix(f, d) }) {
				files = append(files, f)
			}
		}
	}
	img := image{
		ref: PythonImage,
		config: map[string]any{
			"User":       "65534:65534",
			"Env":        []string{"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", "PYTHONDONTWRITEBYTECODE=1"},
			"Cmd":        []string{"/usr/bin/python3"},
			"WorkingDir": "/tmp",
		},
		layer: func(tw *tar.Writer) error { return writeRootfs(tw, files) },
	}
	return path, writeArchive(path, img)
}

var depName = regexp.MustCompile(`^([a-z0-9][a-z0-9+.-]*)`)

// debClosure returns "name version" of pkg and every installed package it
// depends on (first installed alternative), sorted.
func debClosure(ctx context.Context, pkg string) ([]string, error) {
	seen := map[string]string{}
	todo := []string{pkg}
	for len(todo) > 0 {
		p := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		if _, ok := seen[p]; ok || pythonSkip[p] {
			continue
		}
		out, err := exec.CommandContext(ctx, "dpkg-query", "-W", "-f", "${db:Status-Abbrev}|${Version}|${Pre-Depends}, ${Depends}", p).Output()
		if err != nil || !strings.HasPrefix(string(out), "ii") {
			if p == pkg {
				return nil, fmt.Errorf("Debian package %s is not installed", p)
			}
			continue // an alternative that is not installed
		}
		parts := strings.SplitN(string(out), "|", 3)
		seen[p] = parts[1]
		for _, dep := range strings.Split(parts[2], ",") {
			for _, alt := range strings.Split(dep, "|") {
				m := depName.FindString(strings.TrimSpace(alt))
				if m == "" {
					continue
				}
				if st, err := exec.CommandContext(ctx, "dpkg-query", "-W", "-f", "${db:Status-Abbrev}", m).Output(); err == nil && strings.HasPrefix(string(st), "ii") {
					todo = append(todo, m)
					break
				}
			}
		}
	}
	var list []string
	for p, v := range seen {
		list = append(list, p+" "+v)
	}
	slices.Sort(list)
	return list, nil
}

// writeRootfs writes the host files as a layer. Debian 12 merged /bin, /lib and
// /sbin into /usr, while dpkg still lists some files under the old names: each
// path is written where it really is, and the top-level links are kept.
func writeRootfs(tw *tar.Writer, files []string) error {
	dirs := map[string]bool{}
	var mkdirs func(d string) error
	mkdirs = func(d string) error {
		if d == "." || d == "/" || d == "" || dirs[d] {
			return nil
		}
		if err := mkdirs(filepath.Dir(d)); err != nil {
			return err
		}
		dirs[d] = true
		return tw.WriteHeader(&tar.Header{Name: d + "/", Mode: 0o755, Typeflag: tar.TypeDir})
	}
	for _, link := range []string{"bin", "sbin", "lib", "lib64"} {
		if target, err := os.Readlink("/" + link); err == nil {
			dirs[link] = true
			if err := tw.WriteHeader(&tar.Header{Name: link, Linkname: target, Mode: 0o777, Typeflag: tar.TypeSymlink}); err != nil {
				return err
			}
		}
	}
	// /tmp is world-writable with the sticky bit, as everywhere.
	dirs["tmp"] = true
	if err := tw.WriteHeader(&tar.Header{Name: "tmp/", Mode: 0o1777, Typeflag: tar.TypeDir}); err != nil {
		return err
	}
	for _, d := range []string{"etc", "proc", "sys", "dev", "usr/local/bin"} {
		if err := mkdirs(d); err != nil {
			return err
		}
	}
	for _, f := range []struct{ name, body string }{
		{"etc/passwd", "root:x:0:0:root:/root:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"},
		{"etc/group", "root:x:0:\nnogroup:x:65534:\n"},
	} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := tw.Write([]byte(f.body)); err != nil {
			return err
		}
	}
	written := map[string]bool{"etc/passwd": true, "etc/group": true}
	slices.Sort(files)
	for _, f := range files {
		parent, err := filepath.EvalSymlinks(filepath.Dir(f))
		if err != nil {
			continue // listed by dpkg, gone from the host
		}
		host := filepath.Join(parent, filepath.Base(f))
		name := strings.TrimPrefix(host, "/")
		if written[name] || dirs[name] {
			continue
		}
		fi, err := os.Lstat(host)
		if err != nil {
			continue
		}
		if err := mkdirs(filepath.Dir(name)); err != nil {
			return err
		}
		switch {
		case fi.IsDir():
			err = mkdirs(name)
		case fi.Mode()&os.ModeSymlink != 0:
			target, _ := os.Readlink(host)
			err = tw.WriteHeader(&tar.Header{Name: name, Linkname: target, Mode: 0o777, Typeflag: tar.TypeSymlink})
		case fi.Mode().IsRegular():
			err = addHostFile(tw, host, name, int64(fi.Mode().Perm()))
		}
		if err != nil {
			return fmt.Errorf("add %s: %w", host, err)
		}
		written[name] = true
	}
	return nil
}
