package kube

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/faultline-dev/faultline/aggregator/discovery"
	"github.com/faultline-dev/faultline/internal/testbin"
)

// selected is the label the default --agent-selector matches.
var selected = map[string]string{"faultline.dev/agent": "true"}

// testPod describes a pod a test creates in the API server.
type testPod struct {
	ns, name   string
	labels     map[string]string
	owner      string // "Kind/name" of the controller, or empty
	port       int32  // container port named faultline (in a native sidecar); 0: none
	annotation string // faultline.dev/port; empty: none
	node       string
	ip         string // set through the status subresource with Ready
	notReady   bool
}

func (p testPod) object() *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: p.name, Namespace: p.ns, Labels: map[string]string{"app": p.name}},
		Spec: corev1.PodSpec{
			NodeName:   p.node,
			Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}},
		},
	}
	for k, v := range p.labels {
		pod.Labels[k] = v
	}
	if p.owner != "" {
		kind, name, _ := strings.Cut(p.owner, "/")
		apiVersion := "apps/v1"
		if kind == "Job" {
			apiVersion = "batch/v1"
		}
		pod.OwnerReferences = []metav1.OwnerReference{{APIVersion: apiVersion, Kind: kind, Name: name, UID: "owner-uid", Controller: ptr.To(true)}}
	}
	if p.port != 0 {
		pod.Spec.InitContainers = []corev1.Container{{
			Name: "faultline-agent", Image: "faultline/agent:dev", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways),
			Ports: []corev1.ContainerPort{{Name: PortName, ContainerPort: p.port}},
		}}
	}
	if p.annotation != "" {
		pod.Annotations = map[string]string{PortAnnotation: p.annotation}
	}
	return pod
}

// create makes the pod and, when it has an IP, reports it Running and Ready (or not)
// through the status subresource, as a kubelet would.
func (p testPod) create(t testing.TB, cs kubernetes.Interface) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	pod, err := cs.CoreV1().Pods(p.ns).Create(ctx, p.object(), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod %s/%s: %v", p.ns, p.name, err)
	}
	if p.ip == "" {
		return pod
	}
	return setStatus(t, cs, pod, p.ip, !p.notReady)
}

// setStatus reports pod Running at ip, Ready or not.
func setStatus(t testing.TB, cs kubernetes.Interface, pod *corev1.Pod, ip string, ready bool) *corev1.Pod {
	t.Helper()
	cond := corev1.ConditionFalse
	if ready {
		cond = corev1.ConditionTrue
	}
	now := metav1.Now()
	pod = pod.DeepCopy()
	pod.Status = corev1.PodStatus{
		Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}, HostIP: "192.168.0.10",
		StartTime: &now,
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodReady, Status: cond, LastTransitionTime: now},
			{Type: corev1.ContainersReady, Status: cond, LastTransitionTime: now},
		},
	}
	out, err := cs.CoreV1().Pods(pod.Namespace).UpdateStatus(context.Background(), pod, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("update status of pod %s/%s: %v", pod.Namespace, pod.Name, err)
	}
	return out
}

// collector runs a Discoverer and keeps every target set it sends.
type collector struct {
	d    *Discoverer
	logs *testbin.SyncBuffer

	stop func() // stops the Discoverer and waits for it

	mu   sync.Mutex
	sets [][]discovery.Target
}

// run starts a Discoverer with opts (its logger writes to c.logs) and stops it when the
// test ends.
func run(t testing.TB, opts Options) *collector {
	t.Helper()
	c := &collector{logs: &testbin.SyncBuffer{}}
	opts.Logger = hclog.New(&hclog.LoggerOptions{Name: "discovery", Level: hclog.Debug, Output: c.logs})
	if opts.Selector == "" {
		opts.Selector = "faultline.dev/agent=true"
	}
	d, err := New(opts)
	if err != nil {
		t.Fatalf("new discoverer: %v", err)
	}
	c.d = d
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan []discovery.Target)
	done := make(chan struct{})
	go func() {
		d.Run(ctx, out)
		close(done)
	}()
	go func() {
		for {
			select {
			case set := <-out:
				c.mu.Lock()
				c.sets = append(c.sets, set)
				c.mu.Unlock()
			case <-done:
				return
			}
		}
	}()
	c.stop = func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Errorf("discoverer did not stop within 30s")
		}
	}
	t.Cleanup(func() {
		c.stop()
		if t.Failed() {
			t.Logf("discovery log:\n%s", c.logs.String())
		}
	})
	return c
}

// latest is the last set sent; ok is false before the first.
func (c *collector) latest() (set []discovery.Target, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.sets) == 0 {
		return nil, false
	}
	return c.sets[len(c.sets)-1], true
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.sets)
}

// waitSet waits until the last set sent passes check.
func (c *collector) waitSet(t testing.TB, timeout time.Duration, check func([]discovery.Target) error) {
	t.Helper()
	testbin.Eventually(t, timeout, func() error {
		set, ok := c.latest()
		if !ok {
			return fmt.Errorf("no target set sent yet (status %+v)", c.d.Status())
		}
		return check(set)
	})
}

// byPod indexes a set by namespace/pod.
func byPod(set []discovery.Target) map[string]discovery.Target {
	m := map[string]discovery.Target{}
	for _, t := range set {
		m[t.Namespace+"/"+t.Pod] = t
	}
	return m
}
