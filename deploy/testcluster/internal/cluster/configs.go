package cluster

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// containerdConfig pins every path of containerd under the state directory,
// points the CRI at the locally built runc and pause image, and turns off the
// plugins that would write outside it (NRI's socket, /opt/containerd).
func (c *Cluster) containerdConfig() string {
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) } // TOML basic strings accept JSON escapes
	return fmt.Sprintf(`# Written by deploy/testcluster; removed by cluster:down.
version = 3
root = %[1]s
state = %[2]s
disabled_plugins = [
  "io.containerd.nri.v1.nri",
  "io.containerd.internal.v1.opt",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.blockfile",
  "io.containerd.snapshotter.v1.erofs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = %[3]s
  tcp_address = ""

[ttrpc]
  address = %[4]s

[debug]
  address = ""

[metrics]
  address = ""

[plugins.'io.containerd.cri.v1.runtime']
  # Root here cannot lower oom_score_adj (no CAP_SYS_RESOURCE); without this
  # runc fails with "failed to update /proc/self/oom_score_adj: Permission denied".
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_cdi = false

  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"

    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = %[5]s
        Root = %[6]s
        SystemdCgroup = false

  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["/usr/lib/cni", %[9]s]
    conf_dir = %[7]s
    max_conf_num = 1

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"

  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = %[8]s

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
`, q(c.state("containerd")), q(c.state("run", "containerd")), q(c.containerdSock()), q(c.containerdSock()+".ttrpc"),
		q(c.runcBin()), q(c.state("run", "runc")), q(c.state("cni", "net.d")), q(PauseImage), q(c.state("cni", "bin")))
}

// cniConfig is a bridge without a gateway or masquerading on a link-local
// range: each pod gets an address (the CRI needs one) but no route off the
// bridge, and the host has no address on it. cni-isolate then makes each
// pod's bridge port isolated, so pods cannot reach one another either.
func (c *Cluster) cniConfig() ([]byte, error) {
	return json.MarshalIndent(map[string]any{
		"cniVersion": "1.0.0",
		"name":       CNINetworkName,
		"plugins": []any{map[string]any{
			"type":             "bridge",
			"bridge":           BridgeName,
			"isGateway":        false,
			"isDefaultGateway": false,
			"ipMasq":           false,
			"hairpinMode":      false,
			"ipam": map[string]any{
				"type":    "host-local",
				"ranges":  [][]map[string]string{{{"subnet": PodCIDR}}},
				"dataDir": c.state("cni", "ipam"),
			},
		}, map[string]any{
			"type": "cni-isolate",
		}},
	}, "", "  ")
}

// kubeletConfig serves only on 127.0.0.1, trusts only certificates of the
// cluster CA, and keeps its logs under the state directory. Image garbage
// collection is off: the images were imported, nothing could pull them again.
func (c *Cluster) kubeletConfig(p *pki, serving identity) ([]byte, error) {
	return json.MarshalIndent(map[string]any{
		"kind":               "KubeletConfiguration",
		"apiVersion":         "kubelet.config.k8s.io/v1beta1",
		"address":            "127.0.0.1",
		"port":               KubeletPort,
		"readOnlyPort":       0,
		"healthzBindAddress": "127.0.0.1",
		"healthzPort":        KubeletHealthz,
		"tlsCertFile":        serving.cert,
		"tlsPrivateKeyFile":  serving.key,
		"authentication": map[string]any{
			"anonymous": map[string]any{"enabled": false},
			"webhook":   map[string]any{"enabled": false},
			"x509":      map[string]any{"clientCAFile": p.path("ca.crt")},
		},
		"authorization":               map[string]any{"mode": "AlwaysAllow"},
		"cgroupDriver":                "cgroupfs",
		"cgroupRoot":                  CgroupRoot,
		"failCgroupV1":                false,
		"failSwapOn":                  false,
		"containerRuntimeEndpoint":    "unix://" + c.containerdSock(),
		"podLogsDir":                  c.state("log", "pods"),
		"volumePluginDir":             c.state("kubelet", "volume-plugins"),
		"resolvConf":                  "",
		"rotateCertificates":          false,
		"serializeImagePulls":         false,
		"imageGCHighThresholdPercent": 100,
		"imageGCLowThresholdPercent":  99,
		"evictionHard": map[string]string{
			"memory.available":  "100Mi",
			"nodefs.available":  "1%",
			"imagefs.available": "1%",
			"nodefs.inodesFree": "1%",
		},
		"clusterDomain":       "cluster.local",
		"containerLogMaxSize": "10Mi",
		// A pod's processes (and threads) are bounded like the runc
		// sandbox's, so a fork bomb stops at fork's EAGAIN instead of at
		// the memory limit, or the node's pid limit. Kubernetes has no
		// per-pod field for it: it is the node's setting.
		"podPidsLimit": PodPidsLimit,
	}, "", "  ")
}

// kubeconfig writes a kubeconfig for one identity with its files inlined, so
// the file stands alone (the admin one is copied into tests' environments).
func (c *Cluster) kubeconfig(path, user string, p *pki, id identity) error {
	ca, err := os.ReadFile(p.path("ca.crt"))
	if err != nil {
		return err
	}
	cert, err := os.ReadFile(id.cert)
	if err != nil {
		return err
	}
	key, err := os.ReadFile(id.key)
	if err != nil {
		return err
	}
	b64 := base64.StdEncoding.EncodeToString
	var s strings.Builder
	fmt.Fprintf(&s, `# Written by deploy/testcluster (cluster:up); removed by cluster:down.
apiVersion: v1
kind: Config
clusters:
- name: integr8scode-test
  cluster:
    server: https://127.0.0.1:%d
    certificate-authority-data: %s
users:
- name: %s
  user:
    client-certificate-data: %s
    client-key-data: %s
contexts:
- name: integr8scode-test
  context:
    cluster: integr8scode-test
    user: %s
    namespace: default
current-context: integr8scode-test
`, APIServerPort, b64(ca), user, b64(cert), b64(key), user)
	return writeFile(path, []byte(s.String()), 0o600)
}
