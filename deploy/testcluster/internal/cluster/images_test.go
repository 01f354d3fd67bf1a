package cluster

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestWriteArchive checks what `ctr images import` relies on: manifest.json
// names the tag, the config and the layer, and the config's diff_id is the
// digest of the layer as stored.
func TestWriteArchive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "img.tar")
	img := image{
		ref:    "localhost/test/img:1",
		config: map[string]any{"User": "65534:65534"},
		layer: func(tw *tar.Writer) error {
			body := "hello"
			if err := tw.WriteHeader(&tar.Header{Name: "greeting", Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
				return err
			}
			_, err := tw.Write([]byte(body))
			return err
		},
	}
	if err := writeArchive(path, img); err != nil {
		t.Fatal(err)
	}
	files := readTar(t, path)
	var manifest []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	if len(manifest) != 1 || len(manifest[0].RepoTags) != 1 || manifest[0].RepoTags[0] != img.ref {
		t.Fatalf("manifest = %+v, want one image tagged %s", manifest, img.ref)
	}
	var cfg struct {
		Config struct{ User string }
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(files[manifest[0].Config], &cfg); err != nil {
		t.Fatalf("config: %v", err)
	}
	layer := files[manifest[0].Layers[0]]
	sum := sha256.Sum256(layer)
	if want := "sha256:" + hex.EncodeToString(sum[:]); len(cfg.RootFS.DiffIDs) != 1 || cfg.RootFS.DiffIDs[0] != want {
		t.Fatalf("diff_ids = %v, want [%s]", cfg.RootFS.DiffIDs, want)
	}
	if cfg.Config.User != "65534:65534" {
		t.Fatalf("user = %q", cfg.Config.User)
	}
}

func readTar(t *testing.T, path string) map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = data
	}
}

func TestUnescapeMount(t *testing.T) {
	for in, want := range map[string]string{
		`/work/main/.cluster/state`: `/work/main/.cluster/state`,
		`/work/my\040repo/.cluster`: `/work/my repo/.cluster`,
		`/a\134b`:                   `/a\b`,
		`/trailing\04`:              `/trailing\04`,
	} {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescapeMount(%q) = %q, want %q", in, got, want)
		}
	}
}
