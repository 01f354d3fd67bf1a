package cluster

import (
	"archive/tar"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// PlatformImage is the platform image that deploy/kubernetes/overlays/testcluster
// runs (imagePullPolicy Never).
const PlatformImage = "localhost/integr8scode/platform:dev"

// PlatformUID is the user the image and the manifests run as (distroless's
// nonroot).
const PlatformUID = 65532

// CoverFlags build the platform for coverage as the root module's
// Taskfile builds its tests (COVER): every package of the platform's module,
// in the same mode, so that `go tool covdata` merges them.
var CoverFlags = []string{"-cover", "-covermode=set", "-coverpkg=github.com/integr8scode/integr8scode/..."}

// BuildPlatform builds this checkout's platform binary the way
// deploy/docker/Dockerfile.platform does (CGO_ENABLED=0, -trimpath,
// -ldflags "-s -w", ./cmd/integr8scode) and writes it as the image
// PlatformImage into the state directory. It returns the binary (static: it
// also runs on the host) and the archive.
//
// What the Dockerfile's distroless base adds, this one-layer image holds
// too, from this host: /etc/passwd and /etc/group with root, nonroot (65532)
// and nobody, the CA bundle (if the host has one, for a TLS Kafka or MongoDB)
// and /tmp (1777). It has no tzdata: the platform logs and stores UTC.
//
// With cover, the binary is built for coverage (CoverFlags): only ever for
// the end-to-end test of the test overlay, whose pods write the counters to
// GOCOVERDIR on a host directory when they stop.
func (c *Cluster) BuildPlatform(ctx context.Context, cover bool) (binary, archive string, err error) {
	dir := c.state("platform")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	binary = filepath.Join(dir, "integr8scode")
	args := []string{"build", "-trimpath", "-ldflags", "-s -w", "-o", binary}
	if cover {
		args = append(args, CoverFlags...)
	}
	if err := c.goCmd(ctx, c.Repo, []string{"CGO_ENABLED=0", "GOWORK=off"}, append(args, "./cmd/integr8scode")...); err != nil {
		return "", "", fmt.Errorf("build the platform binary: %w", err)
	}
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n", PlatformUID, PlatformUID)
	group := fmt.Sprintf("root:x:0:\nnonroot:x:%d:\nnobody:x:65534:\n", PlatformUID)
	img := image{
		ref: PlatformImage,
		config: map[string]any{
			"User":         fmt.Sprintf("%d:%d", PlatformUID, PlatformUID),
			"Entrypoint":   []string{"/usr/local/bin/integr8scode"},
			"Cmd":          []string{"api", "--listen", ":8080"},
			"Env":          []string{"PATH=/usr/local/bin:/usr/bin:/bin"},
			"ExposedPorts": map[string]any{"8080/tcp": map[string]any{}},
		},
		layer: func(tw *tar.Writer) error {
			for _, d := range []string{"etc/", "etc/ssl/", "etc/ssl/certs/", "usr/", "usr/local/", "usr/local/bin/"} {
				if err := tw.WriteHeader(&tar.Header{Name: d, Mode: 0o755, Typeflag: tar.TypeDir}); err != nil {
					return err
				}
			}
			if err := tw.WriteHeader(&tar.Header{Name: "tmp/", Mode: 0o1777, Typeflag: tar.TypeDir}); err != nil {
				return err
			}
			home := "home/nonroot/"
			if err := tw.WriteHeader(&tar.Header{Name: "home/", Mode: 0o755, Typeflag: tar.TypeDir}); err != nil {
				return err
			}
			if err := tw.WriteHeader(&tar.Header{Name: home, Mode: 0o700, Uid: PlatformUID, Gid: PlatformUID, Typeflag: tar.TypeDir}); err != nil {
				return err
			}
			for name, data := range map[string]string{"etc/passwd": passwd, "etc/group": group} {
				if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
					return err
				}
				if _, err := tw.Write([]byte(data)); err != nil {
					return err
				}
			}
			if _, err := os.Stat("/etc/ssl/certs/ca-certificates.crt"); err == nil {
				if err := addHostFile(tw, "/etc/ssl/certs/ca-certificates.crt", "etc/ssl/certs/ca-certificates.crt", 0o644); err != nil {
					return err
				}
			}
			return addHostFile(tw, binary, "usr/local/bin/integr8scode", 0o755)
		},
	}
	archive = filepath.Join(dir, "platform.tar")
	if err := writeArchive(archive, img); err != nil {
		return "", "", fmt.Errorf("write the platform image: %w", err)
	}
	return binary, archive, nil
}

// ImportImage imports an image archive into the cluster's containerd, where
// the kubelet finds it.
func (c *Cluster) ImportImage(ctx context.Context, archive string) error {
	if out, err := c.ctr(ctx, "images", "import", "--local", archive); err != nil {
		return fmt.Errorf("ctr -n %s images import %s failed: %v\n%s", k8sImageNS, archive, err, strings.TrimSpace(string(out)))
	}
	return nil
}
