// Command cni-isolate is a chained CNI plugin that marks the host side of a
// pod's veth as an isolated bridge port: the kernel then forwards nothing
// between two isolated ports, so pods on the test node cannot reach one
// another (the bridge has no address and no gateway, so they reach nothing
// else either). It stands in for a NetworkPolicy-enforcing CNI on the test
// cluster; the bridge plugin shipped by Debian 12 (1.1.1) predates its own
// portIsolation option.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

type conf struct {
	CNIVersion string          `json:"cniVersion"`
	PrevResult json.RawMessage `json:"prevResult"`
}

type result struct {
	Interfaces []struct {
		Name    string `json:"name"`
		Sandbox string `json:"sandbox"`
	} `json:"interfaces"`
}

func main() {
	if err := run(os.Getenv("CNI_COMMAND"), os.Stdin, os.Stdout); err != nil {
		json.NewEncoder(os.Stdout).Encode(map[string]any{"cniVersion": "1.0.0", "code": 999, "msg": err.Error()})
		os.Exit(1)
	}
}

func run(command string, stdin io.Reader, stdout io.Writer) error {
	if command == "VERSION" {
		return json.NewEncoder(stdout).Encode(map[string]any{
			"cniVersion": "1.0.0", "supportedVersions": []string{"0.4.0", "1.0.0"},
		})
	}
	var c conf
	if err := json.NewDecoder(stdin).Decode(&c); err != nil {
		return fmt.Errorf("cni-isolate: read config: %w", err)
	}
	if command != "ADD" {
		return nil // DEL, CHECK, GC, STATUS: nothing of ours to undo or check
	}
	if len(c.PrevResult) == 0 {
		return fmt.Errorf("cni-isolate: no prevResult; it must follow the bridge plugin in a conflist")
	}
	var prev result
	if err := json.Unmarshal(c.PrevResult, &prev); err != nil {
		return fmt.Errorf("cni-isolate: parse prevResult: %w", err)
	}
	isolated := 0
	for _, iface := range prev.Interfaces {
		flag := filepath.Join("/sys/class/net", iface.Name, "brport", "isolated")
		if iface.Sandbox != "" {
			continue
		}
		if _, err := os.Stat(flag); err != nil {
			continue // the bridge itself
		}
		if err := os.WriteFile(flag, []byte("1"), 0o644); err != nil {
			return fmt.Errorf("cni-isolate: isolate bridge port %s: %w", iface.Name, err)
		}
		isolated++
	}
	if isolated == 0 {
		return fmt.Errorf("cni-isolate: prevResult names no bridge port to isolate")
	}
	var out map[string]any
	if err := json.Unmarshal(c.PrevResult, &out); err != nil {
		return err
	}
	out["cniVersion"] = c.CNIVersion
	return json.NewEncoder(stdout).Encode(out)
}
