// Command kubelet is the upstream kubelet of k8s.io/kubernetes, built by the test
// cluster from the module proxy: this file only hands the process to the
// upstream command. The blank imports register what the upstream binary
// registers too (JSON logs, client and version metrics).
package main

import (
	"context"
	"os"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/kubernetes/cmd/kubelet/app"
)

func main() { os.Exit(cli.Run(app.NewKubeletCommand(context.Background()))) }
