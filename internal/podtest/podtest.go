// Package podtest holds what the tests of pod manifests share (the chart's, the
// injector's): changes to a pod, and the environment the kubelet gives a container.
package podtest

import (
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Annotate sets annotations (key, value, key, value, ...) on a pod.
func Annotate(kv ...string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		if p.Annotations == nil {
			p.Annotations = map[string]string{}
		}
		for i := 0; i < len(kv); i += 2 {
			p.Annotations[kv[i]] = kv[i+1]
		}
	}
}

// Label sets labels (key, value, key, value, ...) on a pod.
func Label(kv ...string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		if p.Labels == nil {
			p.Labels = map[string]string{}
		}
		for i := 0; i < len(kv); i += 2 {
			p.Labels[kv[i]] = kv[i+1]
		}
	}
}

// Env is c's environment as the kubelet sets it in a pod whose containers are
// containers: values as written, field references as "from-<field path>" placeholders,
// resource references from the named container's limits (divided by the divisor,
// rounded up; no name: c's own), and the API server's address the kubelet adds.
func Env(c corev1.Container, containers []corev1.Container) (map[string]string, error) {
	env := map[string]string{"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.FieldRef != nil:
			env[e.Name] = "from-" + e.ValueFrom.FieldRef.FieldPath
		case e.ValueFrom.ResourceFieldRef != nil:
			r := e.ValueFrom.ResourceFieldRef
			from := &c
			if r.ContainerName != "" {
				from = nil
				for i := range containers {
					if containers[i].Name == r.ContainerName {
						from = &containers[i]
					}
				}
			}
			if from == nil {
				return nil, fmt.Errorf("env %s refers to container %q, which the pod does not have", e.Name, r.ContainerName)
			}
			q := from.Resources.Limits[corev1.ResourceName(strings.TrimPrefix(r.Resource, "limits."))]
			d := r.Divisor.MilliValue()
			if d == 0 {
				d = 1000 // the divisor defaults to 1
			}
			env[e.Name] = strconv.FormatInt((q.MilliValue()+d-1)/d, 10) // a plain integer, as the kubelet writes it
		}
	}
	return env, nil
}
