// Command kube-controller-manager is the upstream kube-controller-manager of k8s.io/kubernetes, built by the test
// cluster from the module proxy: this file only hands the process to the
// upstream command. The blank imports register what the upstream binary
// registers too (JSON logs, client and version metrics, time zones for CronJob).
package main

import (
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
	"os"
	_ "time/tzdata"
)

func main() { os.Exit(cli.Run(app.NewControllerManagerCommand())) }
