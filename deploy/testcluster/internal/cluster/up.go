package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

const etcdPath = "/usr/bin/etcd"

// Up builds what is missing and starts the cluster, then waits until the node
// is Ready, writes the admin kubeconfig (its presence means the cluster is up)
// and, unless smoke is false, runs one hardened pod to Succeeded.
func (c *Cluster) Up(ctx context.Context, smoke bool) error {
	start := time.Now()
	if err := c.EnsureHost(ctx); err != nil {
		return err
	}
	if c.healthy(ctx) == nil {
		c.printf("the test cluster is already up; kubeconfig: %s", c.Kubeconfig())
		return nil
	}
	if _, err := os.Stat(c.State()); err == nil {
		c.printf("cleaning up what an earlier run left ...")
		if err := c.Down(ctx); err != nil {
			return fmt.Errorf("clean up before start: %w", err)
		}
	}
	if err := c.Build(ctx); err != nil {
		return err
	}
	images, err := c.Images(ctx)
	if err != nil {
		return err
	}
	if err := c.checkPorts(); err != nil {
		return err
	}
	c.printf("starting the cluster (state in %s) ...", c.State())
	if err := os.MkdirAll(c.State(), 0o755); err != nil {
		return err
	}
	p, err := newPKI(c.state("pki"))
	if err != nil {
		return fmt.Errorf("make certificates: %w", err)
	}
	ids, err := c.issueAll(p)
	if err != nil {
		return err
	}
	api, err := newKubeAPI(p.path("ca.crt"), ids["admin"])
	if err != nil {
		return err
	}
	steps := []struct {
		name string
		run  func() error
	}{
		{"etcd", func() error { return c.startEtcd(ctx) }},
		{"kube-apiserver", func() error { return c.startAPIServer(ctx, p, ids, api) }},
		{"containerd", func() error { return c.startContainerd(ctx, images) }},
		{"kube-controller-manager", func() error { return c.startControllerManager(p, ids) }},
		{"kube-scheduler", func() error { return c.startScheduler(p, ids) }},
		{"kubelet", func() error { return c.startKubelet(ctx, p, ids, api) }},
	}
	for _, s := range steps {
		t := time.Now()
		if err := s.run(); err != nil {
			return fmt.Errorf("%s: %w\n(run `go tool task cluster:down` to clean up)", s.name, err)
		}
		c.printf("  %-24s ready in %s", s.name, time.Since(t).Round(10*time.Millisecond))
	}
	if err := c.kubeconfig(c.Kubeconfig(), "admin", p, ids["admin"]); err != nil {
		return err
	}
	if err := c.sandboxNamespace(ctx, api); err != nil {
		return fmt.Errorf("namespace %s: %w", SandboxNamespace, err)
	}
	c.printf("cluster up in %s; kubeconfig: %s", time.Since(start).Round(100*time.Millisecond), c.Kubeconfig())
	if !smoke {
		return nil
	}
	lat, err := c.Smoke(ctx, 1)
	if err != nil {
		return err
	}
	c.printf("smoke pod Succeeded and printed \"hi\" (create to Succeeded: %s)", lat[0].Round(time.Millisecond))
	return nil
}

// issueAll makes the certificate of every component.
func (c *Cluster) issueAll(p *pki) (map[string]identity, error) {
	loop := []net.IP{net.IPv4(127, 0, 0, 1)}
	svcIP, _, _ := net.ParseCIDR(ServiceCIDR)
	svcIP = svcIP.To4()
	svcIP[3] = 1 // the kubernetes Service takes the first address
	apiHosts := []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}
	specs := []struct {
		name, cn string
		orgs     []string
		hosts    []string
		ips      []net.IP
	}{
		{"apiserver", "kube-apiserver", nil, apiHosts, append(loop, svcIP)},
		{"apiserver-kubelet-client", "kube-apiserver-kubelet-client", []string{"system:masters"}, nil, nil},
		{"admin", "integr8scode-admin", []string{"system:masters"}, nil, nil},
		{"controller-manager", "system:kube-controller-manager", nil, nil, nil},
		{"scheduler", "system:kube-scheduler", nil, nil, nil},
		{"kubelet", "system:node:" + NodeName, []string{"system:nodes"}, nil, nil},
		{"kubelet-serving", "system:node:" + NodeName, nil, []string{NodeName}, loop},
	}
	ids := map[string]identity{}
	for _, s := range specs {
		id, err := p.issue(s.name, s.cn, s.orgs, s.hosts, s.ips)
		if err != nil {
			return nil, err
		}
		ids[s.name] = id
	}
	return ids, nil
}

// checkPorts fails early, naming the port, if another process holds one.
func (c *Cluster) checkPorts() error {
	for _, port := range []int{EtcdClientPort, EtcdPeerPort, APIServerPort, KubeletPort, KubeletHealthz} {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			if other := c.otherCluster(); other != "" {
				return fmt.Errorf("port 127.0.0.1:%d is taken by the test cluster of another checkout (%s): one runs per machine; "+
					"stop it there with `go tool task cluster:down`", port, filepath.Dir(other))
			}
			return fmt.Errorf("port 127.0.0.1:%d is taken (another cluster or program?): %w", port, err)
		}
		l.Close()
	}
	return nil
}

// waitFor polls check until it succeeds, the daemon dies, or timeout passes;
// the error then carries the end of the daemon's log.
func (c *Cluster) waitFor(ctx context.Context, name string, timeout time.Duration, check func() error) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		if last = check(); last == nil {
			return nil
		}
		if _, err := c.pidOf(name); err != nil {
			return errTail(fmt.Errorf("%s exited during start-up (last check: %v)", name, last), c.logPath(name))
		}
		if time.Now().After(deadline) {
			return errTail(fmt.Errorf("%s not ready after %s: %v", name, timeout, last), c.logPath(name))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *Cluster) startEtcd(ctx context.Context) error {
	client := fmt.Sprintf("http://127.0.0.1:%d", EtcdClientPort)
	peer := fmt.Sprintf("http://127.0.0.1:%d", EtcdPeerPort)
	err := c.start(daemon{name: "etcd", path: etcdPath, args: []string{
		"--name=testcluster", "--data-dir=" + c.state("etcd"),
		"--listen-client-urls=" + client, "--advertise-client-urls=" + client,
		"--listen-peer-urls=" + peer, "--initial-advertise-peer-urls=" + peer,
		"--initial-cluster=testcluster=" + peer, "--initial-cluster-state=new",
		"--logger=zap", "--log-outputs=stderr",
	}})
	if err != nil {
		return err
	}
	return c.waitFor(ctx, "etcd", 30*time.Second, func() error {
		resp, err := http.Get(client + "/health")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/health: %s", resp.Status)
		}
		return nil
	})
}

func (c *Cluster) startAPIServer(ctx context.Context, p *pki, ids map[string]identity, api *kubeAPI) error {
	saKey, err := p.serviceAccountKey()
	if err != nil {
		return err
	}
	err = c.start(daemon{name: "kube-apiserver", path: c.kubeBin("kube-apiserver"), args: []string{
		fmt.Sprintf("--etcd-servers=http://127.0.0.1:%d", EtcdClientPort),
		"--bind-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", APIServerPort),
		"--cert-dir=" + c.state("apiserver"),
		"--tls-cert-file=" + ids["apiserver"].cert, "--tls-private-key-file=" + ids["apiserver"].key,
		"--client-ca-file=" + p.path("ca.crt"),
		"--service-cluster-ip-range=" + ServiceCIDR,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + saKey, "--service-account-signing-key-file=" + saKey,
		"--authorization-mode=Node,RBAC",
		"--enable-admission-plugins=NodeRestriction,PodSecurity",
		"--kubelet-client-certificate=" + ids["apiserver-kubelet-client"].cert,
		"--kubelet-client-key=" + ids["apiserver-kubelet-client"].key,
		"--kubelet-certificate-authority=" + p.path("ca.crt"),
		// The kubelet serves on 127.0.0.1 only; the node is named localhost.
		"--kubelet-preferred-address-types=Hostname",
		"--profiling=false",
	}})
	if err != nil {
		return err
	}
	return c.waitFor(ctx, "kube-apiserver", 90*time.Second, func() error {
		var s string
		return api.do(ctx, http.MethodGet, "/readyz", nil, &s)
	})
}

func (c *Cluster) startContainerd(ctx context.Context, images []string) error {
	cfg := c.state("containerd.toml")
	if err := writeFile(cfg, []byte(c.containerdConfig()), 0o644); err != nil {
		return err
	}
	cni, err := c.cniConfig()
	if err != nil {
		return err
	}
	if err := writeFile(c.state("cni", "net.d", "10-"+CNINetworkName+".conflist"), cni, 0o644); err != nil {
		return err
	}
	// The isolation plugin is ours: built from this module (the go build cache
	// makes this a fraction of a second after the first time).
	if err := c.goCmd(ctx, filepath.Join(c.Repo, "deploy", "testcluster"), []string{"CGO_ENABLED=0", "GOWORK=off"},
		"build", "-o", c.state("cni", "bin", "cni-isolate"), "./cmd/cni-isolate"); err != nil {
		return fmt.Errorf("build the cni-isolate plugin: %w", err)
	}
	if err := c.recordHostDirs(); err != nil {
		return err
	}
	binDir := c.containerdBin("")
	err = c.start(daemon{name: "containerd", path: c.containerdBin("containerd"),
		args: []string{"--config=" + cfg},
		// The shim is found on PATH.
		env: []string{"PATH=" + binDir + ":" + os.Getenv("PATH")},
	})
	if err != nil {
		return err
	}
	ctr := func(args ...string) ([]byte, error) { return c.ctr(ctx, args...) }
	err = c.waitFor(ctx, "containerd", 30*time.Second, func() error {
		out, err := ctr("version")
		if err != nil {
			return fmt.Errorf("ctr version: %v: %s", err, strings.TrimSpace(string(out)))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, img := range images {
		if out, err := ctr("images", "import", "--local", img); err != nil {
			return fmt.Errorf("ctr -n k8s.io images import %s failed: %v\n%s", img, err, out)
		}
	}
	return nil
}

func (c *Cluster) startControllerManager(p *pki, ids map[string]identity) error {
	kc := c.state("controller-manager.kubeconfig")
	if err := c.kubeconfig(kc, "system:kube-controller-manager", p, ids["controller-manager"]); err != nil {
		return err
	}
	return c.start(daemon{name: "kube-controller-manager", path: c.kubeBin("kube-controller-manager"), args: []string{
		"--kubeconfig=" + kc,
		"--secure-port=0", "--leader-elect=false",
		"--use-service-account-credentials=true",
		"--service-account-private-key-file=" + p.path("sa.key"),
		"--root-ca-file=" + p.path("ca.crt"),
		"--cluster-signing-cert-file=" + p.path("ca.crt"), "--cluster-signing-key-file=" + p.path("ca.key"),
		"--controllers=*",
		// Lifts the node's not-ready taint within a second of it turning Ready.
		"--node-monitor-period=1s",
	}})
}

func (c *Cluster) startScheduler(p *pki, ids map[string]identity) error {
	kc := c.state("scheduler.kubeconfig")
	if err := c.kubeconfig(kc, "system:kube-scheduler", p, ids["scheduler"]); err != nil {
		return err
	}
	return c.start(daemon{name: "kube-scheduler", path: c.kubeBin("kube-scheduler"), args: []string{
		"--kubeconfig=" + kc, "--secure-port=0", "--leader-elect=false",
	}})
}

func (c *Cluster) startKubelet(ctx context.Context, p *pki, ids map[string]identity, api *kubeAPI) error {
	cfg, err := c.kubeletConfig(p, ids["kubelet-serving"])
	if err != nil {
		return err
	}
	if err := writeFile(c.state("kubelet", "config.json"), cfg, 0o644); err != nil {
		return err
	}
	kc := c.state("kubelet", "kubeconfig")
	if err := c.kubeconfig(kc, "system:node:"+NodeName, p, ids["kubelet"]); err != nil {
		return err
	}
	if err := saveSysctls(c.state("sysctl-before")); err != nil {
		return err
	}
	if err := makeCgroupRoot(); err != nil {
		return err
	}
	err = c.start(daemon{name: "kubelet", path: c.kubeBin("kubelet"), args: []string{
		"--config=" + c.state("kubelet", "config.json"),
		"--kubeconfig=" + kc,
		"--root-dir=" + c.state("kubelet", "root"),
		"--cert-dir=" + c.state("kubelet", "pki"),
		"--hostname-override=" + NodeName,
	},
		// Without iptables on its PATH the kubelet skips the KUBE-FIREWALL and
		// canary chains it would otherwise add to the host's firewall (nothing
		// here needs them: no kube-proxy, no route_localnet). It still finds
		// mount and umount in /usr/bin.
		env: []string{"PATH=/usr/bin:/bin"},
	})
	if err != nil {
		return err
	}
	return c.waitFor(ctx, "kubelet", 120*time.Second, func() error {
		return api.nodeReady(ctx)
	})
}

func (k *kubeAPI) nodeReady(ctx context.Context) error {
	var node struct {
		Spec struct {
			Taints []struct{ Key, Effect string }
		}
		Status struct {
			Conditions []struct{ Type, Status, Reason, Message string }
		}
	}
	if err := k.do(ctx, http.MethodGet, "/api/v1/nodes/"+NodeName, nil, &node); err != nil {
		return err
	}
	ready := false
	for _, cond := range node.Status.Conditions {
		if cond.Type == "Ready" {
			if cond.Status != "True" {
				return fmt.Errorf("node %s not Ready: %s: %s", NodeName, cond.Reason, cond.Message)
			}
			ready = true
		}
	}
	if !ready {
		return fmt.Errorf("node %s has no Ready condition yet", NodeName)
	}
	// The controller-manager lifts the not-ready taint a moment after the
	// node turns Ready; until then the scheduler places nothing on it.
	for _, t := range node.Spec.Taints {
		if t.Effect == "NoSchedule" || t.Effect == "NoExecute" {
			return fmt.Errorf("node %s is Ready but still tainted %s:%s", NodeName, t.Key, t.Effect)
		}
	}
	return nil
}

// healthy reports whether a complete cluster of this checkout is running.
func (c *Cluster) healthy(ctx context.Context) error {
	for _, name := range daemonOrder {
		if _, err := c.pidOf(name); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	if _, err := os.Stat(c.Kubeconfig()); err != nil {
		return errors.New("no kubeconfig")
	}
	api, err := newKubeAPI(c.state("pki", "ca.crt"), identity{cert: c.state("pki", "admin.crt"), key: c.state("pki", "admin.key")})
	if err != nil {
		return err
	}
	return api.nodeReady(ctx)
}

// ctr runs containerd's client against the cluster's containerd, in the
// namespace the kubelet uses.
func (c *Cluster) ctr(ctx context.Context, args ...string) ([]byte, error) {
	return exec.CommandContext(ctx, c.containerdBin("ctr"), append([]string{"--address=" + c.containerdSock(), "--namespace=" + k8sImageNS}, args...)...).CombinedOutput()
}

// sandboxNamespace makes SandboxNamespace, labelled and with the deny-all
// policy of deploy/kubernetes/base (which this cluster's bridge CNI does not
// enforce; see README.md, "Limits"), and its default ServiceAccount, which
// pods need and the controller-manager would only make a moment later.
func (c *Cluster) sandboxNamespace(ctx context.Context, api *kubeAPI) error {
	labels := map[string]string{
		"pod-security.kubernetes.io/enforce": "restricted",
		"pod-security.kubernetes.io/audit":   "restricted",
		"pod-security.kubernetes.io/warn":    "restricted",
	}
	ns := map[string]any{"apiVersion": "v1", "kind": "Namespace",
		"metadata": map[string]any{"name": SandboxNamespace, "labels": labels}}
	if err := api.create(ctx, "/api/v1/namespaces", ns); err != nil {
		return err
	}
	sa := map[string]any{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": map[string]any{"name": "default"}}
	if err := api.create(ctx, "/api/v1/namespaces/"+SandboxNamespace+"/serviceaccounts", sa); err != nil {
		return err
	}
	deny := map[string]any{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
		"metadata": map[string]any{"name": "deny-all"},
		"spec":     map[string]any{"podSelector": map[string]any{}, "policyTypes": []string{"Ingress", "Egress"}}}
	return api.create(ctx, "/apis/networking.k8s.io/v1/namespaces/"+SandboxNamespace+"/networkpolicies", deny)
}
