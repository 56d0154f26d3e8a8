// Package inject decides what the injector does to one pod and does it: whether the pod
// asked for the agent, which AgentProfile applies, what its annotations override, and
// the pod with the agent added, or the reason it cannot have one. It is pure: the
// admission webhook (package webhook) feeds it pods and profiles and turns its result
// into a patch, warnings and an Event.
//
// What the agent looks like in a pod is not written here: the chart renders it from the
// same named template users include by hand (faultline.agentSidecar, with the sidecar
// resources, image and settings of the chart's values) into the injector's ConfigMap,
// and the injector reads that at start (LoadTemplate). A test renders both and fails if
// they differ.
package inject

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/faultline-dev/faultline/config"
)

// AppContainer stands in the template for the name of the application container whose
// limits the agent reports against. It cannot be a container name (those are DNS
// labels), so replacing it is unambiguous.
const AppContainer = "<app-container>"

// PortName is the name of the agent's container port; discovery looks for it.
const PortName = "faultline"

// Template is what the chart adds to a pod: the labels the aggregator selects agents by,
// shareProcessNamespace, and the agent as a native sidecar.
type Template struct {
	Labels  map[string]string
	Sidecar corev1.Container

	port   int32 // the sidecar's port named PortName
	ingest int32 // the port of its pod-local ingest listener
}

// LoadTemplate reads the template file the chart renders (ConfigMap key sidecar.yaml).
func LoadTemplate(path string) (*Template, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sidecar template: %w", err)
	}
	t, err := ParseTemplate(raw)
	if err != nil {
		return nil, fmt.Errorf("sidecar template %s: %w", path, err)
	}
	return t, nil
}

// ParseTemplate reads a pod template (metadata.labels, spec.shareProcessNamespace and
// one native sidecar in spec.initContainers) and checks it is what the injector can use.
func ParseTemplate(raw []byte) (*Template, error) {
	var pt corev1.PodTemplateSpec
	if err := yaml.UnmarshalStrict(raw, &pt); err != nil {
		return nil, err
	}
	var errs []error
	if len(pt.Labels) == 0 {
		errs = append(errs, errors.New("metadata.labels: the labels the aggregator selects agents by must be set"))
	}
	if pt.Spec.ShareProcessNamespace == nil || !*pt.Spec.ShareProcessNamespace {
		errs = append(errs, errors.New("spec.shareProcessNamespace must be true"))
	}
	if len(pt.Spec.InitContainers) != 1 || len(pt.Spec.Containers) != 0 {
		return nil, errors.Join(append(errs, fmt.Errorf("spec: want the agent as the one init container and no containers, got %d and %d",
			len(pt.Spec.InitContainers), len(pt.Spec.Containers)))...)
	}
	t := &Template{Labels: pt.Labels, Sidecar: pt.Spec.InitContainers[0]}
	c := &t.Sidecar
	if c.RestartPolicy == nil || *c.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		errs = append(errs, errors.New("the agent container must have restartPolicy: Always (a native sidecar)"))
	}
	for _, p := range c.Ports {
		if p.Name == PortName {
			t.port = p.ContainerPort
		}
	}
	if t.port == 0 {
		errs = append(errs, fmt.Errorf("the agent container has no port named %s", PortName))
	}
	placeholder := false
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.ResourceFieldRef != nil && e.ValueFrom.ResourceFieldRef.ContainerName == AppContainer {
			placeholder = true
		}
	}
	if !placeholder {
		errs = append(errs, fmt.Errorf("no resourceFieldRef names the container %q: the limits could not follow the application container", AppContainer))
	}
	t.ingest = addrPort(config.DefaultAgent().IngestListen)
	if v, ok := env(c, config.EnvName("ingest-listen")); ok {
		t.ingest = addrPort(v)
	}
	return t, errors.Join(errs...)
}

// addrPort is the port of a host:port listen address; 0 when there is none.
func addrPort(addr string) int32 {
	i := strings.LastIndexByte(addr, ':')
	p, err := strconv.ParseUint(addr[i+1:], 10, 16)
	if i < 0 || err != nil {
		return 0
	}
	return int32(p)
}

// env finds a literal env var of c.
func env(c *corev1.Container, name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name && e.ValueFrom == nil {
			return e.Value, true
		}
	}
	return "", false
}

// setEnv sets a literal env var of c, in place when it exists, else at the end; an
// empty value removes it.
func setEnv(c *corev1.Container, name, value string) {
	i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == name })
	switch {
	case value == "" && i >= 0:
		c.Env = slices.Delete(c.Env, i, i+1)
	case value == "":
	case i >= 0:
		c.Env[i] = corev1.EnvVar{Name: name, Value: value}
	default:
		c.Env = append(c.Env, corev1.EnvVar{Name: name, Value: value})
	}
}

// SidecarName is the name of the agent's container.
func (t *Template) SidecarName() string { return t.Sidecar.Name }
