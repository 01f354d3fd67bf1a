package observability

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// LogStore is a running VictoriaLogs (Apache-2.0, built from its Go module
// like Prometheus): a log store that takes the platform's JSON log lines
// as they are and finds them by any field (execution_id, request_id,
// trace_id).
type LogStore struct {
	URL  string
	cmd  *exec.Cmd
	done chan error
}

// InsertPath is where a shipper posts the platform's --log-format json
// lines: one object a line, time in "time", message in "msg", a stream per
// role and component.
const InsertPath = "/insert/jsonline?_stream_fields=role,component&_time_field=time&_msg_field=msg"

// StartLogStore runs VictoriaLogs on addr (127.0.0.1:port) with its data
// under dir, and waits until it is ready.
func StartLogStore(ctx context.Context, b Binaries, dir, addr string, log io.Writer) (*LogStore, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s is taken: %w", addr, err)
	}
	ln.Close()
	if log == nil {
		log = io.Discard
	}
	cmd := exec.Command(b.VictoriaLogs, "-storageDataPath="+filepath.Join(dir, "victoria-logs-data"), "-httpListenAddr="+addr,
		"-retentionPeriod=7d")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start victoria-logs: %w", err)
	}
	s := &LogStore{URL: "http://" + addr, cmd: cmd, done: make(chan error, 1)}
	go func() { s.done <- cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-s.done:
			return nil, fmt.Errorf("victoria-logs exited before it was ready: %v", err)
		case <-ctx.Done():
			s.Stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if resp, err := http.Get(s.URL + "/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
	}
	s.Stop()
	return nil, fmt.Errorf("victoria-logs on %s not ready within 60s", addr)
}

// Ship posts JSON log lines to the store, as a log shipper would.
func (s *LogStore) Ship(lines []byte) error {
	resp, err := http.Post(s.URL+InsertPath, "application/stream+json", bytes.NewReader(lines))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("insert: %s: %s", resp.Status, b)
	}
	return nil
}

// Query runs a LogsQL query and returns the matching lines as objects.
func (s *LogStore) Query(q string) ([]map[string]string, error) {
	resp, err := http.PostForm(s.URL+"/select/logsql/query", url.Values{"query": {q}})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("query %q: %s: %s", q, resp.Status, b)
	}
	var out []map[string]string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line == "" {
			continue
		}
		var m map[string]string
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			return nil, fmt.Errorf("query %q: %w", q, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// Stop ends the store.
func (s *LogStore) Stop() {
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case err := <-s.done:
		s.done <- err
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		err := <-s.done
		s.done <- err
	}
}
