//go:build linux

package oci

import (
	"strings"
	"testing"
)

// A cgroup v1 host as this sandbox needs it (Debian with systemd's named
// hierarchy), with a mount point holding a space, which mountinfo escapes.
const mountinfoV1 = `25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
34 25 0:29 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
35 34 0:30 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw
36 34 0:31 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
39 34 0:34 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,memory
40 34 0:35 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,cpu,cpuacct
41 34 0:36 / /sys/fs/cgroup/my\040pids rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,pids
42 34 0:37 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
a line that is not a mount
`

func TestCgroupMounts(t *testing.T) {
	t.Run("OK every controller found where mountinfo says", func(t *testing.T) {
		tree, err := parseCgroupTree(strings.NewReader(mountinfoV1), "/var/lib/integr8scode/sandbox")
		if err != nil {
			t.Fatal(err)
		}
		for c, want := range map[string]string{
			"memory": "/sys/fs/cgroup/memory", "cpu": "/sys/fs/cgroup/cpu,cpuacct", "cpuacct": "/sys/fs/cgroup/cpu,cpuacct",
			"pids": "/sys/fs/cgroup/my pids", "name=systemd": "/sys/fs/cgroup/systemd",
		} {
			if got := tree.mounts[c]; got != want {
				t.Errorf("%s mounted at %q, want %q", c, got, want)
			}
		}
		// Cleanup visits every hierarchy, v2 included.
		if len(tree.all) != 6 || tree.all[0] != "/sys/fs/cgroup/unified" {
			t.Errorf("every cgroup mount: %q", tree.all)
		}
		if !strings.HasPrefix(tree.parent, cgroupRoot+"/") {
			t.Errorf("parent %q is not under %s", tree.parent, cgroupRoot)
		}
	})

	// Fail closed: a host where the sandbox could not limit a script is
	// refused, and the error names every missing part.
	t.Run("ErrCgroupV2Only", func(t *testing.T) {
		_, err := parseCgroupTree(strings.NewReader("35 34 0:30 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n"), "/d")
		for _, c := range requiredControllers {
			if err == nil || !strings.Contains(err.Error(), `the cgroup v1 "`+c+`" controller is not mounted`) {
				t.Fatalf("a cgroup v2 host: %v, want %s named as missing", err, c)
			}
		}
	})
	t.Run("ErrNestedHierarchy", func(t *testing.T) {
		nested := strings.Replace(mountinfoV1, "39 34 0:34 / /sys/fs/cgroup/memory", "39 34 0:34 /docker/abc /sys/fs/cgroup/memory", 1)
		_, err := parseCgroupTree(strings.NewReader(nested), "/d")
		if err == nil || !strings.Contains(err.Error(), `the cgroup v1 "memory" hierarchy is mounted from "/docker/abc"`) {
			t.Fatalf("a nested memory hierarchy: %v", err)
		}
	})
}

func TestUnescapeMount(t *testing.T) {
	for in, want := range map[string]string{
		`/plain`:          "/plain",
		`/a\040b`:         "/a b",
		`/tab\011and\134`: "/tab\tand\\",
		`/not\08octal`:    `/not\08octal`,
		`/cut\04`:         `/cut\04`,
		`/two\040\040sp`:  "/two  sp",
	} {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescapeMount(%q) = %q, want %q", in, got, want)
		}
	}
}
