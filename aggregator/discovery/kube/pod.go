package kube

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/faultline-dev/faultline/aggregator/discovery"
)

// How a pod says where its agent listens.
const (
	// PortName is the name of the agent's container port.
	PortName = "faultline"
	// PortAnnotation gives the agent's port when no container port is named PortName.
	PortAnnotation = "faultline.dev/port"
	// DefaultPort is the agent's default --listen port, tried when a pod declares none.
	DefaultPort = 9800
)

// templateHashLabel is set by the Deployment controller on the pods of each ReplicaSet it
// creates; the ReplicaSet is named <deployment>-<hash>.
const templateHashLabel = "pod-template-hash"

// stripPod is the cache's transform: it keeps only what target and workload read, so
// that a cached pod costs a few hundred bytes instead of several kilobytes (see
// docs/performance.md). It is idempotent, as the informer may apply it twice.
func stripPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil // tombstones and other types pass through
	}
	out := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:              pod.Name,
			Namespace:         pod.Namespace,
			UID:               pod.UID,
			ResourceVersion:   pod.ResourceVersion,
			DeletionTimestamp: pod.DeletionTimestamp,
		},
		Spec:   corev1.PodSpec{NodeName: pod.Spec.NodeName},
		Status: corev1.PodStatus{Phase: pod.Status.Phase, PodIP: pod.Status.PodIP},
	}
	if h, ok := pod.Labels[templateHashLabel]; ok {
		out.Labels = map[string]string{templateHashLabel: h}
	}
	if p, ok := pod.Annotations[PortAnnotation]; ok {
		out.Annotations = map[string]string{PortAnnotation: p}
	}
	if ref := metav1.GetControllerOfNoCopy(pod); ref != nil {
		out.OwnerReferences = []metav1.OwnerReference{{Kind: ref.Kind, Name: ref.Name, Controller: ref.Controller}}
	}
	// The agent runs as a regular container or as a native sidecar (an init container
	// that keeps running): keep the one port that matters, from either.
	if c, p, ok := namedPort(pod); ok {
		out.Spec.Containers = []corev1.Container{{Name: c, Ports: []corev1.ContainerPort{{Name: PortName, ContainerPort: p}}}}
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			out.Status.Conditions = []corev1.PodCondition{{Type: c.Type, Status: c.Status}}
			break
		}
	}
	return out, nil
}

// namedPort finds the container port named PortName.
func namedPort(pod *corev1.Pod) (container string, port int32, ok bool) {
	for _, list := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for _, c := range list {
			for _, p := range c.Ports {
				if p.Name == PortName {
					return c.Name, p.ContainerPort, true
				}
			}
		}
	}
	return "", 0, false
}

// ready reports whether the pod serves: Ready, with an IP, not terminating.
func ready(pod *corev1.Pod) bool {
	if pod.DeletionTimestamp != nil || pod.Status.PodIP == "" {
		return false
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return false
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// target is what the pool should do about a selected pod; ok is false for a pod that is
// not ready (not terminating, has no IP yet, or failed its readiness check): such a pod
// has no target, and one it had is dropped.
func target(pod *corev1.Pod) (t discovery.Target, ok bool) {
	if !ready(pod) {
		return discovery.Target{}, false
	}
	t = discovery.Target{
		Key:       string(pod.UID),
		Pod:       pod.Name,
		Namespace: pod.Namespace,
		Node:      pod.Spec.NodeName,
		Workload:  workload(pod),
		UID:       string(pod.UID),
	}
	port, declared, missing := agentPort(pod)
	ip := net.ParseIP(pod.Status.PodIP)
	if ip == nil {
		missing = fmt.Sprintf("pod IP %q is not an IP address", pod.Status.PodIP)
	}
	if missing != "" {
		t.Missing = missing
		return t, true
	}
	t.URL = "http://" + net.JoinHostPort(ip.String(), strconv.Itoa(int(port)))
	if declared != "" {
		t.MissingIfSilent = "nothing answering at the agent port declared by " + declared
	} else {
		t.MissingIfSilent = fmt.Sprintf("no container port named %s, no %s annotation, and nothing answering on the default agent port %d",
			PortName, PortAnnotation, DefaultPort)
	}
	return t, true
}

// agentPort says where the pod's agent listens: the container port named PortName, else
// the PortAnnotation annotation, else DefaultPort (declared is then empty). missing is
// set when the pod declares a port that cannot be used.
func agentPort(pod *corev1.Pod) (port int32, declared, missing string) {
	if c, p, ok := namedPort(pod); ok {
		if p < 1 || p > 65535 {
			return 0, "", fmt.Sprintf("container %s: port %s is %d, not a port number", c, PortName, p)
		}
		return p, fmt.Sprintf("container %s port %s (%d)", c, PortName, p), ""
	}
	if v, ok := pod.Annotations[PortAnnotation]; ok {
		p, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || p < 1 || p > 65535 {
			return 0, "", fmt.Sprintf("annotation %s=%q is not a port number (1-65535)", PortAnnotation, v)
		}
		return int32(p), fmt.Sprintf("annotation %s (%d)", PortAnnotation, p), ""
	}
	return DefaultPort, "", ""
}

// workload names what runs the pod, from its controller owner reference alone: a
// Deployment through its ReplicaSet (the Deployment controller names ReplicaSets
// <deployment>-<pod-template-hash>, and labels their pods with that hash, so reading
// ReplicaSets - and the RBAC and cache memory that would take - is not needed),
// StatefulSet, DaemonSet, Job, or any other controller by its name. A pod without a
// controller is its own workload.
func workload(pod *corev1.Pod) string {
	ref := metav1.GetControllerOfNoCopy(pod)
	if ref == nil {
		return pod.Name
	}
	if ref.Kind == "ReplicaSet" {
		if h := pod.Labels[templateHashLabel]; h != "" {
			if name, ok := strings.CutSuffix(ref.Name, "-"+h); ok && name != "" {
				return name
			}
		}
	}
	return ref.Name
}
