package kubernetes

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// superviseHere runs the pod's supervisor with this machine's python3 (as
// the pod would, minus the pod), feeding it what the runner's attach would.
func superviseHere(t *testing.T, stdin string, timeoutMs, outputCap int) (*demux, string) {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 not found (deploy/host/setup.sh installs it): %v", err)
	}
	dir := t.TempDir()
	cmd := exec.Command(py, "-I", "-B", "-u", "-c", supervisor,
		strconv.Itoa(timeoutMs), strconv.Itoa(outputCap), "1", filepath.Join(dir, "main.py"))
	cmd.Stdin = strings.NewReader(stdin)
	d := newDemux(outputCap + 1)
	var diag bytes.Buffer
	cmd.Stdout, cmd.Stderr = d, &diag
	cmd.WaitDelay = 5 * time.Second
	_ = cmd.Run() // its exit code mirrors the script's
	return d, diag.String()
}

func payloadOf(script, stdin string) string {
	return strconv.Itoa(len(script)) + "\n" + script + stdin
}

func TestSupervisor(t *testing.T) {
	t.Run("stdin and streams", func(t *testing.T) {
		d, diag := superviseHere(t, payloadOf("import sys, os\nprint(os.read(0, 3), sys.stdin.read(), __name__, __file__.endswith('main.py'), sys.argv[0].endswith('main.py'))\nsys.stderr.write('e')\nsys.exit(4)", "abcdef"), 5000, 1000)
		out, errOut, _, end := d.result()
		if out != "b'abc' def __main__ True True\n" || errOut != "e" || end == nil || end.Status != "exited" || end.Code != 4 || diag != "" || !d.scriptDelivered() {
			t.Fatalf("%q %q %+v %q", out, errOut, end, diag)
		}
	})
	t.Run("traceback", func(t *testing.T) {
		d, _ := superviseHere(t, payloadOf("def f():\n    1/0\nf()\n", ""), 5000, 1000)
		_, errOut, _, end := d.result()
		want := "Traceback (most recent call last):\n  File \"" // the script's frame comes first
		if !strings.HasPrefix(errOut, want) || strings.Contains(errOut, "<string>") || end.Code != 1 {
			t.Fatalf("%q %+v", errOut, end)
		}
	})
	t.Run("signal", func(t *testing.T) {
		d, _ := superviseHere(t, payloadOf("import os\nos.kill(os.getpid(), 11)", ""), 5000, 1000)
		if _, _, _, end := d.result(); end.Code != 139 || end.Signal != 11 {
			t.Fatalf("%+v", end)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		d, _ := superviseHere(t, payloadOf("print('spin', flush=True)\nwhile True: pass", ""), 700, 1000)
		out, _, _, end := d.result()
		if out != "spin\n" || end.Status != "timeout" || end.WallNs < 700e6 || end.WallNs > 1500e6 {
			t.Fatalf("%q %+v", out, end)
		}
	})
	t.Run("timeout from the header", func(t *testing.T) {
		// A pod of the warm pool learns its job's timeout with the script;
		// the one it was created with (here 60 s) no longer counts.
		script := "while True: pass"
		d, _ := superviseHere(t, strconv.Itoa(len(script))+" 600\n"+script, 60000, 1000)
		if _, _, _, end := d.result(); end == nil || end.Status != "timeout" || end.WallNs < 600e6 || end.WallNs > 1500e6 {
			t.Fatalf("%+v", end)
		}
	})
	t.Run("output cap", func(t *testing.T) {
		d, _ := superviseHere(t, payloadOf("while True: print('x' * 99)", ""), 5000, 1000)
		out, _, _, end := d.result()
		if len(out) != 1000 || end.Status != "output_limit" {
			t.Fatalf("%d bytes, %+v", len(out), end)
		}
	})
	t.Run("undelivered", func(t *testing.T) {
		for _, in := range []string{"", "10\nshort", "not a header", "x\nprint()", "1 2 3\nx", "1 x\nx", "7 100\nshort"} {
			d, _ := superviseHere(t, in, 5000, 1000)
			if _, _, _, end := d.result(); end == nil || end.Status != "undelivered" || d.scriptDelivered() {
				t.Fatalf("%q: %+v", in, end)
			}
		}
	})
}
