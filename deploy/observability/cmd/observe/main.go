// Command observe builds (once per machine, cached) and runs the
// platform's Prometheus and Alertmanager, checks the alert rules with
// promtool, and writes the Grafana dashboards.
//
//	observe build                     build what is missing, print the binaries
//	observe rules [-dir D]            promtool check rules and test rules
//	observe dashboards [-out D]       write the dashboards' JSON
//	observe up [-target host:port]…   Prometheus, Alertmanager and VictoriaLogs for a local platform
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/integr8scode/integr8scode/deploy/observability"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "observe:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: observe build|rules|dashboards|up [flags]")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	switch args[0] {
	case "build":
		b, err := observability.Ensure(ctx, stderr)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "prometheus    %s\npromtool      %s\nalertmanager  %s\namtool        %s\nvictoria-logs %s\notelcol       %s\n",
			b.Prometheus, b.Promtool, b.Alertmanager, b.Amtool, b.VictoriaLogs, b.Collector)
		return nil
	case "rules":
		dir := fs.String("dir", "rules", "directory of the rule files (*.rules.yml) and their tests (*_test.yml)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		b, err := observability.Ensure(ctx, stderr)
		if err != nil {
			return err
		}
		return observability.CheckRules(ctx, b, *dir, stdout)
	case "dashboards":
		out := fs.String("out", "dashboards", "directory to write the dashboards into")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return observability.WriteDashboards(*out)
	case "up":
		return up(ctx, fs, args[1:], stdout, stderr)
	}
	return fmt.Errorf("unknown command %q (build, rules, dashboards, up)", args[0])
}

// targets is a repeatable -target flag: [job=]host:port.
type targets map[string][]string

func (t targets) String() string { return fmt.Sprint(map[string][]string(t)) }
func (t targets) Set(v string) error {
	job, addr, ok := strings.Cut(v, "=")
	if !ok {
		job, addr = "integr8scode-up", v
	}
	if !strings.HasPrefix(job, "integr8scode") {
		return fmt.Errorf("job %q: the alerts and dashboards select jobs named integr8scode*", job)
	}
	t[job] = append(t[job], addr)
	return nil
}

func up(ctx context.Context, fs *flag.FlagSet, args []string, stdout, stderr io.Writer) error {
	tg := targets{}
	fs.Var(tg, "target", "a platform process to scrape, [job=]host:port (repeatable; default integr8scode-up=127.0.0.1:8080, what `task up` runs)")
	dir := fs.String("dir", ".observe", "state: generated configs, Prometheus's data, Alertmanager's data")
	promAddr := fs.String("prometheus", "127.0.0.1:9090", "Prometheus's listen address")
	amAddr := fs.String("alertmanager", "127.0.0.1:9093", "Alertmanager's listen address")
	logsAddr := fs.String("logs", "127.0.0.1:9428", "VictoriaLogs's listen address (empty: no log store)")
	rules := fs.String("rules", "deploy/observability/rules/integr8scode.rules.yml", "alert rule file")
	interval := fs.Duration("interval", 15*time.Second, "scrape and rule evaluation interval")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if len(tg) == 0 {
		tg["integr8scode-up"] = []string{"127.0.0.1:8080"}
	}
	rulesAbs, err := filepath.Abs(*rules)
	if err != nil {
		return err
	}
	b, err := observability.Ensure(ctx, stderr)
	if err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(mkdir(*dir), "observe.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	s, err := observability.StartStack(ctx, b, observability.StackConfig{Dir: *dir, Targets: tg, RuleFiles: []string{rulesAbs},
		Interval: *interval, PrometheusAddr: *promAddr, AlertmanagerAddr: *amAddr, Log: logf})
	if err != nil {
		return fmt.Errorf("%w (their output: %s)", err, logf.Name())
	}
	defer s.Stop()
	logsHelp := ""
	if *logsAddr != "" {
		ls, err := observability.StartLogStore(ctx, b, *dir, *logsAddr, logf)
		if err != nil {
			return fmt.Errorf("%w (its output: %s)", err, logf.Name())
		}
		defer ls.Stop()
		logsHelp = fmt.Sprintf(`
Logs: VictoriaLogs on %s (query UI %s/select/vmui/). Ship the platform's
JSON logs to it, for instance:
  bin/integr8scode up --log-format json 2>&1 | tee /dev/stderr | curl -sS -T - -X POST '%s%s'
then find an execution's lines with the LogsQL query  execution_id:="ID"
`, ls.URL, ls.URL, ls.URL, observability.InsertPath)
	}
	dash, _ := filepath.Abs("deploy/observability/dashboards")
	fmt.Fprintf(stdout, `Prometheus   %s   (HTTP API; alerts: %s/api/v1/alerts)
Alertmanager %s   (API: /api/v2/alerts; or amtool --alertmanager.url=%s alert)
scraping     %s every %s; rules %s
logs         %s

Dashboards: in your Grafana, add a Prometheus data source with URL %s,
then Dashboards → New → Import each file of
  %s
(or provision them: deploy/observability/grafana/ has the provisioning files).
%sCtrl-C stops them all.
`, s.PrometheusURL, s.PrometheusURL, s.AlertmanagerURL, s.AlertmanagerURL, tg, *interval, rulesAbs, logf.Name(), s.PrometheusURL, dash, logsHelp)
	return s.Wait(ctx)
}

func mkdir(d string) string {
	_ = os.MkdirAll(d, 0o755)
	return d
}
