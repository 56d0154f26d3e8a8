package kube

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"unique"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/faultline-dev/faultline/aggregator/discovery"
	"github.com/faultline-dev/faultline/injector/api/v1alpha1"
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

// cachedPod is all the cache keeps of a selected pod: the identity the informer files it
// under, and the target it makes. The cache's transform builds it from each pod as it
// arrives, so no pod object is ever kept: a cached pod costs a few hundred bytes instead
// of the ten kilobytes or more of a decoded Pod (see docs/performance.md).
type cachedPod struct {
	metav1.TypeMeta
	metav1.ObjectMeta // name, namespace, UID and resource version only

	target discovery.Target
	ok     bool // false: the pod has no target now (not ready)
}

var _ runtime.Object = (*cachedPod)(nil)

// DeepCopyObject copies the pod; the target's fields are immutable strings.
func (p *cachedPod) DeepCopyObject() runtime.Object {
	c := *p
	p.ObjectMeta.DeepCopyInto(&c.ObjectMeta)
	return &c
}

// summarize is the cache's transform. It is idempotent, as the informer may apply it
// twice, and lets anything that is not a Pod (a tombstone) through.
func summarize(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	c := &cachedPod{ObjectMeta: metav1.ObjectMeta{
		Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID, ResourceVersion: pod.ResourceVersion}}
	c.target, c.ok = target(pod)
	return c, nil
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
		Namespace: intern(pod.Namespace),
		Node:      intern(pod.Spec.NodeName),
		Workload:  intern(workload(pod)),
		UID:       string(pod.UID),
		Profile:   intern(pod.Annotations[v1alpha1.AnnotationProfile]),
	}
	if v := pod.Annotations[v1alpha1.AnnotationAlertThresholds]; v != "" {
		// The injector checked it; one written by hand that does not parse is ignored.
		if th, err := v1alpha1.ParseAlertThresholds(v); err == nil {
			t.AlertThresholds = intern(v1alpha1.FormatAlertThresholds(th))
		}
	}
	if reason := pod.Annotations[v1alpha1.AnnotationInjectError]; reason != "" {
		// The injector was asked for the agent and could not add it.
		t.Missing = "agent not injected: " + reason
		return t, true
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
		t.MissingIfSilent = intern("nothing answering at the agent port declared by " + declared)
	} else {
		t.MissingIfSilent = undeclared
	}
	return t, true
}

var undeclared = fmt.Sprintf("no container port named %s, no %s annotation, and nothing answering on the default agent port %d",
	PortName, PortAnnotation, DefaultPort)

// intern shares one copy of strings that most targets repeat (namespaces, nodes,
// workloads, reasons).
func intern(s string) string { return unique.Make(s).Value() }

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
