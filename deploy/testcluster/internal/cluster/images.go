package cluster

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// An image is a one-layer image written as a docker-archive tar (manifest.json
// with RepoTags), the format `ctr images import` reads. No registry is
// reachable here, so pods name these images with imagePullPolicy: Never.
type image struct {
	ref    string         // repository:tag, e.g. localhost/integr8scode/pause:1
	config map[string]any // the image config's "config" (User, Entrypoint, ...)
	layer  func(tw *tar.Writer) error
}

// Images builds the pause and Python image archives into Cache()/images,
// keyed by what they are made of, and returns their paths.
func (c *Cluster) Images(ctx context.Context) ([]string, error) {
	unlock, err := c.lockBuilds()
	if err != nil {
		return nil, err
	}
	defer unlock()
	dir := filepath.Join(c.Cache(), "images")
	pause, err := c.pauseImage(ctx, dir)
	if err != nil {
		return nil, fmt.Errorf("pause image: %w", err)
	}
	python, err := c.pythonImage(ctx, dir)
	if err != nil {
		return nil, fmt.Errorf("python image: %w", err)
	}
	return []string{pause, python}, nil
}

// writeArchive writes img as a docker-archive to path (atomically).
func writeArchive(path string, img image) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	// The layer goes to a temporary file first: its digest names it in the archive.
	lf, err := os.CreateTemp(filepath.Dir(path), "layer-*.tar")
	if err != nil {
		return err
	}
	defer os.Remove(lf.Name())
	defer lf.Close()
	h := sha256.New()
	tw := tar.NewWriter(io.MultiWriter(lf, h))
	if err := img.layer(tw); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	layerSum := hex.EncodeToString(h.Sum(nil))
	size, err := lf.Seek(0, io.SeekCurrent)
	if err != nil {
		return err
	}
	if _, err := lf.Seek(0, io.SeekStart); err != nil {
		return err
	}
	cfg, err := json.Marshal(map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"created":      time.Unix(0, 0).UTC().Format(time.RFC3339),
		"config":       img.config,
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + layerSum}},
		"history":      []map[string]string{{"created_by": "deploy/testcluster"}},
	})
	if err != nil {
		return err
	}
	cfgSum := sha256.Sum256(cfg)
	cfgName := hex.EncodeToString(cfgSum[:]) + ".json"
	layerName := layerSum + "/layer.tar"
	manifest, _ := json.Marshal([]map[string]any{{
		"Config": cfgName, "RepoTags": []string{img.ref}, "Layers": []string{layerName},
	}})

	tmp := path + ".partial"
	out, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer out.Close()
	aw := tar.NewWriter(out)
	add := func(name string, size int64, r io.Reader) error {
		if err := aw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: size, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := io.Copy(aw, r)
		return err
	}
	if err := aw.WriteHeader(&tar.Header{Name: layerSum + "/", Mode: 0o755, Typeflag: tar.TypeDir}); err != nil {
		return err
	}
	if err := add(layerName, size, lf); err != nil {
		return err
	}
	if err := add(cfgName, int64(len(cfg)), bytes.NewReader(cfg)); err != nil {
		return err
	}
	if err := add("manifest.json", int64(len(manifest)), bytes.NewReader(manifest)); err != nil {
		return err
	}
	if err := aw.Close(); err != nil {
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// pauseSource is the sandbox's pause process: it holds the pod's namespaces,
// reaps orphans (it is PID 1 when the pod shares its PID namespace) and exits
// at SIGINT or SIGTERM.
const pauseSource = `#include <signal.h>
#include <stddef.h>
#include <sys/wait.h>
#include <unistd.h>

static void down(int sig) { (void)sig; _exit(0); }
static void reap(int sig) { (void)sig; while (waitpid(-1, NULL, WNOHANG) > 0) {} }

int main(void) {
	struct sigaction sa = {0};
	sa.sa_handler = down;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = reap;
	sa.sa_flags = SA_NOCLDSTOP;
	sigaction(SIGCHLD, &sa, NULL);
	for (;;) pause();
}
`

func (c *Cluster) pauseImage(ctx context.Context, dir string) (string, error) {
	key := sha256.Sum256([]byte(pauseSource + PauseImage))
	path := filepath.Join(dir, "pause-"+hex.EncodeToString(key[:6])+".tar")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	c.printf("building the pause image (gcc -static) ...")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	work, err := os.MkdirTemp(dir, "pause-build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	src, bin := filepath.Join(work, "pause.c"), filepath.Join(work, "pause")
	if err := os.WriteFile(src, []byte(pauseSource), 0o644); err != nil {
		return "", err
	}
	if out, err := exec.CommandContext(ctx, "gcc", "-static", "-Os", "-s", "-o", bin, src).CombinedOutput(); err != nil {
		return "", fmt.Errorf("gcc -static pause.c failed (is libc6-dev installed?): %v\n%s", err, out)
	}
	img := image{
		ref:    PauseImage,
		config: map[string]any{"Entrypoint": []string{"/pause"}, "User": "65535:65535"},
		layer: func(tw *tar.Writer) error {
			return addHostFile(tw, bin, "pause", 0o755)
		},
	}
	return path, writeArchive(path, img)
}

func addHostFile(tw *tar.Writer, hostPath, name string, mode int64) error {
	f, err := os.Open(hostPath)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: fi.Size(), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}
