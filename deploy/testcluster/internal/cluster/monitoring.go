package cluster

import (
	"archive/tar"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// MonitoringUID is the user of the Prometheus and Alertmanager images, as
// upstream's (nobody).
const MonitoringUID = 65534

// MonitoringBinaries returns the Prometheus and Alertmanager binaries that
// the platform's module builds from their Go modules and caches per machine
// (`go run ./deploy/observability/cmd/observe build`, a second or two once
// built; the first build on a machine takes many minutes), by name.
func (c *Cluster) MonitoringBinaries(ctx context.Context) (map[string]string, error) {
	cmd := exec.CommandContext(ctx, "go", "run", "./deploy/observability/cmd/observe", "build")
	cmd.Dir = c.Repo
	cmd.Env = append(os.Environ(), "GOWORK=off")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("observe build: %v\n%s", err, lastLines([]byte(stderr.String()), 25))
	}
	bins := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			bins[f[0]] = f[1]
		}
	}
	for _, want := range []string{"prometheus", "alertmanager"} {
		if bins[want] == "" {
			return nil, fmt.Errorf("observe build named no %s binary:\n%s", want, out)
		}
	}
	return bins, nil
}

// BuildMonitoringImage writes an image ref that runs binary as
// /bin/<name>, laid out as upstream's images are (entrypoint /bin/<name>,
// user nobody), into the state directory, and returns the archive. The
// binaries are static (CGO off), so the image needs no libraries: only
// /etc/passwd and /etc/group, and /tmp.
func (c *Cluster) BuildMonitoringImage(ref, name, binary string) (string, error) {
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnobody:x:%d:%d:nobody:/nonexistent:/sbin/nologin\n", MonitoringUID, MonitoringUID)
	group := fmt.Sprintf("root:x:0:\nnobody:x:%d:\n", MonitoringUID)
	img := image{
		ref: ref,
		config: map[string]any{
			"User":       fmt.Sprintf("%d:%d", MonitoringUID, MonitoringUID),
			"Entrypoint": []string{"/bin/" + name},
			"Env":        []string{"PATH=/bin"},
		},
		layer: func(tw *tar.Writer) error {
			for _, d := range []string{"bin/", "etc/"} {
				if err := tw.WriteHeader(&tar.Header{Name: d, Mode: 0o755, Typeflag: tar.TypeDir}); err != nil {
					return err
				}
			}
			if err := tw.WriteHeader(&tar.Header{Name: "tmp/", Mode: 0o1777, Typeflag: tar.TypeDir}); err != nil {
				return err
			}
			for file, data := range map[string]string{"etc/passwd": passwd, "etc/group": group} {
				if err := tw.WriteHeader(&tar.Header{Name: file, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
					return err
				}
				if _, err := tw.Write([]byte(data)); err != nil {
					return err
				}
			}
			return addHostFile(tw, binary, "bin/"+name, 0o755)
		},
	}
	dir := c.state("monitoring")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	archive := filepath.Join(dir, name+".tar")
	if err := writeArchive(archive, img); err != nil {
		return "", fmt.Errorf("write the %s image: %w", name, err)
	}
	return archive, nil
}
