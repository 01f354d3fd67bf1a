#!/usr/bin/env python3
"""Write the sandbox image's root file system into DEST (Dockerfile.sandbox).

Debian's python3 and the closure of its installed package dependencies,
copied file by file from what dpkg says each package installed: the same
recipe, step for step, as the test cluster's Python image
(deploy/testcluster/internal/cluster/python.go, pythonImage and
writeRootfs). Keep the two in step: the lists below are copied from there.

    python3 sandbox-rootfs.py DEST
"""

import os
import re
import shutil
import stat
import subprocess
import sys

ROOT = "python3"
# Packages that python3 depends on only to be installed and upgraded.
SKIP = {"dpkg", "tar", "debconf", "perl-base", "readline-common", "media-types"}
# Paths nobody needs inside a sandbox.
DROP = ("/usr/share/doc/", "/usr/share/man/", "/usr/share/info/",
        "/usr/share/lintian/", "/usr/share/locale/", "/usr/share/bug/")
DEP_NAME = re.compile(r"^([a-z0-9][a-z0-9+.-]*)")

PASSWD = ("root:x:0:0:root:/root:/usr/sbin/nologin\n"
          "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")
GROUP = "root:x:0:\nnogroup:x:65534:\n"


def dpkg_query(*args):
    return subprocess.run(["dpkg-query", *args], capture_output=True, text=True)


def installed(pkg):
    r = dpkg_query("-W", "-f", "${db:Status-Abbrev}", pkg)
    return r.returncode == 0 and r.stdout.startswith("ii")


def closure(pkg):
    """'name version' of pkg and every installed package it depends on
    (first installed alternative), sorted."""
    seen = {}
    todo = [pkg]
    while todo:
        p = todo.pop()
        if p in seen or p in SKIP:
            continue
        r = dpkg_query("-W", "-f", "${db:Status-Abbrev}|${Version}|${Pre-Depends}, ${Depends}", p)
        if r.returncode != 0 or not r.stdout.startswith("ii"):
            if p == pkg:
                sys.exit(f"Debian package {p} is not installed")
            continue  # an alternative that is not installed
        _, version, deps = r.stdout.split("|", 2)
        seen[p] = version
        for dep in deps.split(","):
            for alt in dep.split("|"):
                m = DEP_NAME.match(alt.strip())
                if not m:
                    continue
                if installed(m.group(1)):
                    todo.append(m.group(1))
                    break
    return sorted(f"{p} {v}" for p, v in seen.items())


def package_files(pkgs):
    files = []
    for p in pkgs:
        name = p.split()[0]
        r = dpkg_query("-L", name)
        if r.returncode != 0:
            sys.exit(f"dpkg-query -L {name}: {r.stderr.strip()}")
        for f in r.stdout.split("\n"):
            if f.startswith("/") and not f.startswith(DROP):
                files.append(f)
    return files


def write_rootfs(dest, files):
    """Debian 12 merged /bin, /lib and /sbin into /usr while dpkg still lists
    some files under the old names: each path is written where it really is,
    and the top-level links are kept."""
    dirs = set()

    def mkdirs(d):
        if d in (".", "/", "") or d in dirs:
            return
        mkdirs(os.path.dirname(d))
        dirs.add(d)
        path = os.path.join(dest, d)
        os.makedirs(path, exist_ok=True)
        os.chmod(path, 0o755)

    for link in ("bin", "sbin", "lib", "lib64"):
        try:
            target = os.readlink("/" + link)
        except OSError:
            continue
        dirs.add(link)
        os.symlink(target, os.path.join(dest, link))
    # /tmp is world-writable with the sticky bit, as everywhere.
    dirs.add("tmp")
    os.makedirs(os.path.join(dest, "tmp"), exist_ok=True)
    os.chmod(os.path.join(dest, "tmp"), 0o1777)
    for d in ("etc", "proc", "sys", "dev", "usr/local/bin"):
        mkdirs(d)
    for name, body in (("etc/passwd", PASSWD), ("etc/group", GROUP)):
        with open(os.path.join(dest, name), "w") as f:
            f.write(body)
        os.chmod(os.path.join(dest, name), 0o644)
    written = {"etc/passwd", "etc/group"}
    for f in sorted(files):
        try:
            parent = os.path.realpath(os.path.dirname(f), strict=True)
        except OSError:
            continue  # listed by dpkg, gone from the system
        host = os.path.join(parent, os.path.basename(f))
        name = host[1:] if host.startswith("/") else host
        if name in written or name in dirs:
            continue
        try:
            st = os.lstat(host)
        except OSError:
            continue
        mkdirs(os.path.dirname(name))
        out = os.path.join(dest, name)
        if stat.S_ISDIR(st.st_mode):
            mkdirs(name)
        elif stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(host), out)
        elif stat.S_ISREG(st.st_mode):
            shutil.copyfile(host, out)
            # Permission bits only: no setuid, setgid or sticky bit survives.
            os.chmod(out, stat.S_IMODE(st.st_mode) & 0o777)
        written.add(name)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    dest = sys.argv[1]
    os.makedirs(dest, exist_ok=True)
    if os.listdir(dest):
        sys.exit(f"{dest} is not empty")
    pkgs = closure(ROOT)
    print(f"{len(pkgs)} Debian packages:", *pkgs, sep="\n  ")
    write_rootfs(dest, package_files(pkgs))


if __name__ == "__main__":
    main()
