package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// A build makes a set of binaries into one directory of Bin() whose name
// carries the version. The directory appears (by rename) only once every binary
// in it was built, so its presence is the cache.
type build struct {
	dir  string   // final directory
	bins []string // file names expected in dir
	// one runs the build of one binary into tmp.
	one func(ctx context.Context, tmp, bin string) error
}

// Build makes every binary the cluster needs, skipping those already built.
// It reports how long each new binary took.
func (c *Cluster) Build(ctx context.Context) error {
	unlock, err := c.lockBuilds()
	if err != nil {
		return err
	}
	defer unlock()
	v := "k8s.io/component-base/version"
	kubeLD := strings.Join([]string{"-s", "-w",
		"-X", v + ".gitVersion=" + KubernetesVersion,
		"-X", v + ".gitMajor=" + strings.Split(strings.TrimPrefix(KubernetesVersion, "v"), ".")[0],
		"-X", v + ".gitMinor=" + strings.Split(KubernetesVersion, ".")[1],
		"-X", v + ".gitTreeState=clean",
	}, " ")
	kubeModule := filepath.Join(c.Repo, "deploy", "testcluster", "kube")
	builds := []build{
		{
			dir:  filepath.Dir(c.kubeBin("x")),
			bins: []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet"},
			one: func(ctx context.Context, tmp, bin string) error {
				return c.goCmd(ctx, kubeModule, []string{"CGO_ENABLED=0", "GOWORK=off"},
					"build", "-trimpath", "-ldflags", kubeLD, "-o", filepath.Join(tmp, bin), "./cmd/"+bin)
			},
		},
		{
			dir:  filepath.Dir(c.containerdBin("x")),
			bins: []string{"containerd", "ctr", "containerd-shim-runc-v2"},
			one: func(ctx context.Context, tmp, bin string) error {
				return c.goCmd(ctx, c.Dir, []string{"CGO_ENABLED=0", "GOWORK=off", "GOBIN=" + tmp},
					"install", "-trimpath", "-ldflags", "-s -w -X github.com/containerd/containerd/v2/version.Version="+ContainerdVersion,
					"github.com/containerd/containerd/v2/cmd/"+bin+"@"+ContainerdVersion)
			},
		},
		{
			dir:  filepath.Dir(c.runcBin()),
			bins: []string{"runc"},
			one: func(ctx context.Context, tmp, bin string) error {
				return c.goCmd(ctx, c.Dir, []string{"CGO_ENABLED=1", "GOWORK=off", "GOBIN=" + tmp},
					"install", "-trimpath", "-tags", "seccomp", "-ldflags", "-X main.version="+strings.TrimPrefix(RuncVersion, "v"),
					"github.com/opencontainers/runc@"+RuncVersion)
			},
		},
	}
	for _, b := range builds {
		if err := c.runBuild(ctx, b); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cluster) runBuild(ctx context.Context, b build) error {
	if haveAll(b.dir, b.bins) {
		return nil
	}
	tmp := b.dir + ".partial"
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	var times []string
	for _, bin := range b.bins {
		if _, err := os.Stat(filepath.Join(tmp, bin)); err == nil {
			continue // built by an earlier, interrupted run
		}
		c.printf("building %s (%s) ...", bin, filepath.Base(b.dir))
		start := time.Now()
		if err := b.one(ctx, tmp, bin); err != nil {
			return fmt.Errorf("build %s: %w", bin, err)
		}
		d := time.Since(start).Round(100 * time.Millisecond)
		c.printf("built %s in %s", bin, d)
		times = append(times, fmt.Sprintf("%s %s\n", bin, d))
	}
	f, err := os.OpenFile(filepath.Join(tmp, "BUILD-TIMES"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err == nil {
		fmt.Fprint(f, strings.Join(times, ""))
		f.Close()
	}
	os.RemoveAll(b.dir)
	return os.Rename(tmp, b.dir)
}

func haveAll(dir string, bins []string) bool {
	for _, b := range bins {
		if fi, err := os.Stat(filepath.Join(dir, b)); err != nil || fi.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// goCmd runs the go command of this toolchain in dir with extra environment.
func (c *Cluster) goCmd(ctx context.Context, dir string, env []string, args ...string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go %s failed: %v\n%s", strings.Join(args, " "), err, lastLines(out, 25))
	}
	return nil
}
