// Package hack holds the tests of the development cluster setup: kind cannot run on the
// project's build machines (no container engine), so the kind configuration is checked
// by decoding it with kind's own v1alpha4 types and against the chart values it is used with.
package hack

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/yaml"

	"github.com/faultline-dev/faultline/internal/testbin"
)

// kindConfig decodes hack/kind.yaml strictly (unknown fields are errors, as in kind's
// own loader) and applies kind's defaults.
func kindConfig(t *testing.T) v1alpha4.Cluster {
	t.Helper()
	raw, err := os.ReadFile("kind.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c v1alpha4.Cluster
	if err := yaml.UnmarshalStrict(raw, &c); err != nil {
		t.Fatalf("kind.yaml does not decode as a kind v1alpha4 Cluster: %v", err)
	}
	if c.Kind != "Cluster" || c.APIVersion != "kind.x-k8s.io/v1alpha4" {
		t.Fatalf("kind.yaml is %s %s, want kind.x-k8s.io/v1alpha4 Cluster", c.APIVersion, c.Kind)
	}
	v1alpha4.SetDefaultsCluster(&c)
	return c
}

// kindValues are the chart values `make kind-up` installs with.
func kindValues(t *testing.T) (nodePort int32, serviceType string) {
	t.Helper()
	raw, err := os.ReadFile("kind-values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Aggregator struct {
			Service struct {
				Type     string `json:"type"`
				NodePort int32  `json:"nodePort"`
			} `json:"service"`
		} `json:"aggregator"`
	}
	if err := yaml.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	return v.Aggregator.Service.NodePort, v.Aggregator.Service.Type
}

func TestKindConfig(t *testing.T) {
	c := kindConfig(t)
	if c.Name != "faultline" {
		t.Errorf("cluster name %q; the Makefile's KIND_CLUSTER default is faultline", c.Name)
	}
	var controlPlanes int
	for i, n := range c.Nodes {
		switch n.Role {
		case v1alpha4.ControlPlaneRole:
			controlPlanes++
		case v1alpha4.WorkerRole:
		default:
			t.Errorf("node %d has role %q", i, n.Role)
		}
	}
	if controlPlanes != 1 {
		t.Errorf("%d control-plane nodes, want 1", controlPlanes)
	}

	// The dashboard: the chart's NodePort (from kind-values.yaml) must be mapped to
	// 127.0.0.1:3001 on the host, and only on loopback.
	nodePort, serviceType := kindValues(t)
	if serviceType != "NodePort" || nodePort < 30000 || nodePort > 32767 {
		t.Fatalf("kind-values.yaml: service type %q node port %d; want a NodePort in 30000-32767", serviceType, nodePort)
	}
	var mapped []v1alpha4.PortMapping
	for _, n := range c.Nodes {
		for _, pm := range n.ExtraPortMappings {
			if pm.ContainerPort == nodePort {
				mapped = append(mapped, pm)
			}
		}
	}
	if len(mapped) != 1 {
		t.Fatalf("node port %d is mapped %d times, want once", nodePort, len(mapped))
	}
	pm := mapped[0]
	if pm.HostPort != 3001 || pm.ListenAddress != "127.0.0.1" || pm.Protocol != v1alpha4.PortMappingProtocolTCP {
		t.Errorf("dashboard mapping %+v; want 127.0.0.1:3001/TCP (the URL kind-up prints)", pm)
	}
}

// TestKindValues checks that the values `make kind-up` installs with pass the chart's
// schema and validations.
func TestKindValues(t *testing.T) {
	helm := testbin.Tool(t, "helm", "make tools installs it into bin/")
	cmd := exec.Command(helm, "lint", "--strict", filepath.Join(testbin.RepoRoot(), "charts", "faultline"),
		"--values", "kind-values.yaml", "--set", "aggregator.image.tag=dev")
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("helm lint with kind-values.yaml: %v\n%s", err, out)
	}
}
