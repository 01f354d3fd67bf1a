package observability

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// StackConfig says what a local Prometheus and Alertmanager watch. Both
// listen on loopback only.
type StackConfig struct {
	// Dir holds the generated configs, Prometheus's TSDB and
	// Alertmanager's state.
	Dir string
	// Targets maps a scrape job (name it integr8scode-<role>: the alerts
	// and dashboards select job=~"integr8scode.*") to host:port addresses.
	Targets map[string][]string
	// RuleFiles are loaded by Prometheus.
	RuleFiles []string
	// Interval is both the scrape and the rule evaluation interval.
	Interval time.Duration
	// PrometheusAddr and AlertmanagerAddr are 127.0.0.1:port.
	PrometheusAddr, AlertmanagerAddr string
	// WebhookURL, if set, receives every notification (firing and
	// resolved) from Alertmanager.
	WebhookURL string
	// GroupWait and GroupInterval of Alertmanager's route (defaults 10s,
	// 1m); tests make them short.
	GroupWait, GroupInterval time.Duration
	// Log receives both processes' output.
	Log io.Writer
}

// Stack is a running Prometheus and Alertmanager.
type Stack struct {
	PrometheusURL, AlertmanagerURL string
	cmds                           []*exec.Cmd
	done                           []chan error
}

// PrometheusYAML is the Prometheus configuration for cfg.
func PrometheusYAML(cfg StackConfig) string {
	iv := cfg.Interval.String()
	var b strings.Builder
	fmt.Fprintf(&b, "global:\n  scrape_interval: %s\n  scrape_timeout: %s\n  evaluation_interval: %s\n", iv, iv, iv)
	b.WriteString("rule_files:\n")
	for _, f := range cfg.RuleFiles {
		fmt.Fprintf(&b, "  - %q\n", f)
	}
	fmt.Fprintf(&b, "alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: [%q]\n", cfg.AlertmanagerAddr)
	b.WriteString("scrape_configs:\n")
	jobs := make([]string, 0, len(cfg.Targets))
	for j := range cfg.Targets {
		jobs = append(jobs, j)
	}
	sort.Strings(jobs)
	for _, j := range jobs {
		var ts []string
		for _, t := range cfg.Targets[j] {
			ts = append(ts, fmt.Sprintf("%q", t))
		}
		fmt.Fprintf(&b, "  - job_name: %q\n    static_configs:\n      - targets: [%s]\n", j, strings.Join(ts, ", "))
	}
	return b.String()
}

// AlertmanagerYAML is the Alertmanager configuration for cfg: one route,
// grouped by alert name, to the webhook if there is one (else nowhere:
// the alerts show in Alertmanager's API and UI only).
func AlertmanagerYAML(cfg StackConfig) string {
	wait, interval := cfg.GroupWait, cfg.GroupInterval
	if wait == 0 {
		wait = 10 * time.Second
	}
	if interval == 0 {
		interval = time.Minute
	}
	s := fmt.Sprintf("route:\n  receiver: default\n  group_by: [alertname]\n  group_wait: %s\n  group_interval: %s\n  repeat_interval: 4h\n"+
		"receivers:\n  - name: default\n", wait, interval)
	if cfg.WebhookURL != "" {
		s += fmt.Sprintf("    webhook_configs:\n      - url: %q\n        send_resolved: true\n", cfg.WebhookURL)
	}
	return s
}

// StartStack writes the configs and starts Alertmanager, then Prometheus,
// and waits until both are ready. Stop ends them.
func StartStack(ctx context.Context, bins Binaries, cfg StackConfig) (*Stack, error) {
	if cfg.Interval == 0 {
		cfg.Interval = 15 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	for _, d := range []string{"prometheus-data", "alertmanager-data"} {
		if err := os.MkdirAll(filepath.Join(cfg.Dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	promCfg, amCfg := filepath.Join(cfg.Dir, "prometheus.yml"), filepath.Join(cfg.Dir, "alertmanager.yml")
	if err := os.WriteFile(promCfg, []byte(PrometheusYAML(cfg)), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(amCfg, []byte(AlertmanagerYAML(cfg)), 0o644); err != nil {
		return nil, err
	}
	// A taken port would let the readiness checks below talk to whatever
	// holds it (an earlier Prometheus) and call this one ready.
	for _, a := range []string{cfg.PrometheusAddr, cfg.AlertmanagerAddr} {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			return nil, fmt.Errorf("%s is taken: %w", a, err)
		}
		ln.Close()
	}
	s := &Stack{PrometheusURL: "http://" + cfg.PrometheusAddr, AlertmanagerURL: "http://" + cfg.AlertmanagerAddr}
	// --cluster.listen-address= turns gossip off: it would listen on
	// every interface (port 9094) otherwise.
	if err := s.start(cfg.Log, bins.Alertmanager, "--config.file="+amCfg, "--storage.path="+filepath.Join(cfg.Dir, "alertmanager-data"),
		"--web.listen-address="+cfg.AlertmanagerAddr, "--cluster.listen-address="); err != nil {
		return nil, err
	}
	if err := s.start(cfg.Log, bins.Prometheus, "--config.file="+promCfg, "--storage.tsdb.path="+filepath.Join(cfg.Dir, "prometheus-data"),
		"--web.listen-address="+cfg.PrometheusAddr, "--rules.alert.resend-delay="+cfg.Interval.String()); err != nil {
		s.Stop()
		return nil, err
	}
	for _, u := range []string{s.AlertmanagerURL, s.PrometheusURL} {
		if err := s.waitReady(ctx, u+"/-/ready"); err != nil {
			s.Stop()
			return nil, err
		}
	}
	return s, nil
}

func (s *Stack) start(log io.Writer, bin string, args ...string) error {
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", filepath.Base(bin), err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	s.cmds, s.done = append(s.cmds, cmd), append(s.done, done)
	return nil
}

func (s *Stack) waitReady(ctx context.Context, url string) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		for i, d := range s.done {
			select {
			case err := <-d:
				d <- err
				return fmt.Errorf("%s exited before it was ready: %v", filepath.Base(s.cmds[i].Path), err)
			default:
			}
		}
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return errors.New(url + " not ready within 60s")
}

// Wait returns when either process exits (or ctx ends).
func (s *Stack) Wait(ctx context.Context) error {
	cases := make(chan error, len(s.done))
	for i, d := range s.done {
		go func() {
			err := <-d
			d <- err
			cases <- fmt.Errorf("%s exited: %v", filepath.Base(s.cmds[i].Path), err)
		}()
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-cases:
		return err
	}
}

// Stop ends both processes (SIGTERM, then SIGKILL after 10 s).
func (s *Stack) Stop() {
	for i := len(s.cmds) - 1; i >= 0; i-- {
		_ = syscall.Kill(-s.cmds[i].Process.Pid, syscall.SIGTERM)
		select {
		case err := <-s.done[i]:
			s.done[i] <- err
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-s.cmds[i].Process.Pid, syscall.SIGKILL)
			err := <-s.done[i]
			s.done[i] <- err
		}
	}
}
