package cluster

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Smoke runs n hardened pods one after another, each `python3 -c 'print("hi")'`
// in a namespace that enforces the restricted Pod Security profile, checks
// each reached Succeeded and logged "hi", and returns each one's latency from
// create to Succeeded (seen through a watch).
func (c *Cluster) Smoke(ctx context.Context, n int) ([]time.Duration, error) {
	api, err := newKubeAPI(c.state("pki", "ca.crt"), identity{cert: c.state("pki", "admin.crt"), key: c.state("pki", "admin.key")})
	if err != nil {
		return nil, fmt.Errorf("smoke: %w (is the cluster up?)", err)
	}
	ns := map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{
		"name": SmokeNamespace,
		"labels": map[string]string{
			"pod-security.kubernetes.io/enforce": "restricted",
			"pod-security.kubernetes.io/warn":    "restricted",
		},
	}}
	if err := api.create(ctx, "/api/v1/namespaces", ns); err != nil {
		return nil, err
	}
	// The controller-manager makes it soon, but a pod created before it exists
	// would be refused: make it now.
	sa := map[string]any{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": map[string]any{"name": "default"}}
	if err := api.create(ctx, "/api/v1/namespaces/"+SmokeNamespace+"/serviceaccounts", sa); err != nil {
		return nil, err
	}
	var lat []time.Duration
	for i := 0; i < n; i++ {
		d, err := c.smokeOnce(ctx, api, fmt.Sprintf("smoke-%d-%d", time.Now().Unix(), i))
		if err != nil {
			return lat, err
		}
		lat = append(lat, d)
	}
	return lat, nil
}

func smokePod(name string) map[string]any {
	return map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": name},
		"spec": map[string]any{
			"restartPolicy":                 "Never",
			"automountServiceAccountToken":  false,
			"enableServiceLinks":            false,
			"terminationGracePeriodSeconds": 0,
			"securityContext": map[string]any{
				"runAsNonRoot":   true,
				"runAsUser":      65534,
				"runAsGroup":     65534,
				"seccompProfile": map[string]string{"type": "RuntimeDefault"},
			},
			"containers": []any{map[string]any{
				"name":            "python",
				"image":           PythonImage,
				"imagePullPolicy": "Never",
				"command":         []string{"python3", "-c", `print("hi")`},
				"resources": map[string]any{
					"requests": map[string]string{"memory": "128Mi", "cpu": "100m"},
					"limits":   map[string]string{"memory": "128Mi", "cpu": "100m"},
				},
				"securityContext": map[string]any{
					"allowPrivilegeEscalation": false,
					"readOnlyRootFilesystem":   true,
					"capabilities":             map[string]any{"drop": []string{"ALL"}},
				},
			}},
		},
	}
}

func (c *Cluster) smokeOnce(ctx context.Context, api *kubeAPI, name string) (time.Duration, error) {
	base := "/api/v1/namespaces/" + SmokeNamespace + "/pods"
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	start := time.Now()
	var created pod
	if err := api.do(ctx, http.MethodPost, base, smokePod(name), &created); err != nil {
		return 0, fmt.Errorf("smoke pod: create: %w", err)
	}
	defer api.do(context.Background(), http.MethodDelete, base+"/"+name+"?gracePeriodSeconds=0", nil, nil)
	p, err := api.watchPod(ctx, SmokeNamespace, name, created.Metadata.ResourceVersion, func(p *pod) bool {
		return p.Status.Phase == "Succeeded" || p.Status.Phase == "Failed"
	})
	lat := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("smoke pod %s: %w (see %s)", name, err, c.logPath("kubelet"))
	}
	if p.Status.Phase != "Succeeded" {
		return 0, fmt.Errorf("smoke pod %s ended %s: %s %s %+v (see %s)", name, p.Status.Phase, p.Status.Reason, p.Status.Message, p.Status.ContainerStatuses, c.logPath("kubelet"))
	}
	var logs string
	if err := api.do(ctx, http.MethodGet, base+"/"+name+"/log", nil, &logs); err != nil {
		return 0, fmt.Errorf("smoke pod %s: read log: %w", name, err)
	}
	if strings.TrimSpace(logs) != "hi" {
		return 0, fmt.Errorf("smoke pod %s: log reads %q, want \"hi\"", name, logs)
	}
	return lat, nil
}
