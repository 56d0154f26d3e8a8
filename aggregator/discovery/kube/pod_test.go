package kube

import (
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/faultline-dev/faultline/aggregator/discovery"
)

// fullPod is a pod as the API server returns it, with everything discovery does not read.
func fullPod(mods ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "checkout-7d9f8c6b5-x2x4q", Namespace: "shop", UID: "uid-1", ResourceVersion: "42",
			Labels:      map[string]string{"app": "checkout", "faultline.dev/agent": "true", "pod-template-hash": "7d9f8c6b5"},
			Annotations: map[string]string{"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet",
				Name: "checkout-7d9f8c6b5", UID: "rs-uid", Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kube-controller-manager", Operation: metav1.ManagedFieldsOperationUpdate}},
		},
		Spec: corev1.PodSpec{
			NodeName: "node-a",
			InitContainers: []corev1.Container{{
				Name: "faultline-agent", Image: "faultline/agent:1.0", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways),
				Ports: []corev1.ContainerPort{{Name: "faultline", ContainerPort: 9800, Protocol: corev1.ProtocolTCP}},
			}},
			Containers: []corev1.Container{{
				Name: "app", Image: "shop/checkout:2.3",
				Env:   []corev1.EnvVar{{Name: "JAVA_OPTS", Value: "-Xmx512m"}},
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{
					corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("1Gi")}},
			}},
		},
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning, PodIP: "10.1.2.3", HostIP: "192.168.0.10",
			Conditions: []corev1.PodCondition{
				{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
				{Type: corev1.PodReady, Status: corev1.ConditionTrue, Reason: "", LastTransitionTime: metav1.Now()},
				{Type: corev1.ContainersReady, Status: corev1.ConditionTrue},
			},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "app", Ready: true, RestartCount: 2, ImageID: "sha256:abc"}},
		},
	}
	for _, m := range mods {
		m(p)
	}
	return p
}

func noAgentContainer(p *corev1.Pod) { p.Spec.InitContainers = nil }

func TestTarget(t *testing.T) {
	base := discovery.Target{Key: "uid-1", UID: "uid-1", Pod: "checkout-7d9f8c6b5-x2x4q", Namespace: "shop", Node: "node-a", Workload: "checkout"}
	with := func(f func(*discovery.Target)) discovery.Target { t := base; f(&t); return t }
	tests := []struct {
		name string
		pod  *corev1.Pod
		want *discovery.Target // nil: no target
	}{
		{"native sidecar port named faultline", fullPod(), ptr.To(with(func(t *discovery.Target) {
			t.URL = "http://10.1.2.3:9800"
			t.MissingIfSilent = "nothing answering at the agent port declared by container faultline-agent port faultline (9800)"
		}))},
		{"regular container port named faultline", fullPod(noAgentContainer, func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "agent", Ports: []corev1.ContainerPort{{Name: "faultline", ContainerPort: 9900}}})
		}), ptr.To(with(func(t *discovery.Target) {
			t.URL = "http://10.1.2.3:9900"
			t.MissingIfSilent = "nothing answering at the agent port declared by container agent port faultline (9900)"
		}))},
		{"annotation when no port is named", fullPod(noAgentContainer, func(p *corev1.Pod) { p.Annotations[PortAnnotation] = " 9811 " }),
			ptr.To(with(func(t *discovery.Target) {
				t.URL = "http://10.1.2.3:9811"
				t.MissingIfSilent = "nothing answering at the agent port declared by annotation faultline.dev/port (9811)"
			}))},
		{"named port wins over annotation", fullPod(func(p *corev1.Pod) { p.Annotations[PortAnnotation] = "1234" }), ptr.To(with(func(t *discovery.Target) {
			t.URL = "http://10.1.2.3:9800"
			t.MissingIfSilent = "nothing answering at the agent port declared by container faultline-agent port faultline (9800)"
		}))},
		{"bad annotation is a missing agent", fullPod(noAgentContainer, func(p *corev1.Pod) { p.Annotations[PortAnnotation] = "web" }),
			ptr.To(with(func(t *discovery.Target) {
				t.Missing = `annotation faultline.dev/port="web" is not a port number (1-65535)`
			}))},
		{"annotation out of range", fullPod(noAgentContainer, func(p *corev1.Pod) { p.Annotations[PortAnnotation] = "70000" }),
			ptr.To(with(func(t *discovery.Target) {
				t.Missing = `annotation faultline.dev/port="70000" is not a port number (1-65535)`
			}))},
		{"undeclared agent: default port, missing if silent", fullPod(noAgentContainer), ptr.To(with(func(t *discovery.Target) {
			t.URL = "http://10.1.2.3:9800"
			t.MissingIfSilent = "no container port named faultline, no faultline.dev/port annotation, and nothing answering on the default agent port 9800"
		}))},
		{"IPv6 pod IP", fullPod(func(p *corev1.Pod) { p.Status.PodIP = "fd00::7" }), ptr.To(with(func(t *discovery.Target) {
			t.URL = "http://[fd00::7]:9800"
			t.MissingIfSilent = "nothing answering at the agent port declared by container faultline-agent port faultline (9800)"
		}))},
		{"not injected: the injector's reason", fullPod(noAgentContainer, func(p *corev1.Pod) {
			p.Annotations["faultline.dev/inject-error"] = `annotation faultline.dev/sample-interval="fast": "fast" is not a duration such as 500ms or 2s`
		}), ptr.To(with(func(t *discovery.Target) {
			t.Missing = `agent not injected: annotation faultline.dev/sample-interval="fast": "fast" is not a duration such as 500ms or 2s`
		}))},
		{"injected with a profile and thresholds", fullPod(func(p *corev1.Pod) {
			p.Annotations["faultline.dev/profile"] = "web"
			p.Annotations["faultline.dev/alert-thresholds"] = "memory-high=85, cpu-high=80"
		}), ptr.To(with(func(t *discovery.Target) {
			t.URL = "http://10.1.2.3:9800"
			t.MissingIfSilent = "nothing answering at the agent port declared by container faultline-agent port faultline (9800)"
			t.Profile, t.AlertThresholds = "web", "cpu-high=80,memory-high=85"
		}))},
		{"thresholds written by hand that do not parse are ignored", fullPod(func(p *corev1.Pod) {
			p.Annotations["faultline.dev/alert-thresholds"] = "cpu-high=lots"
		}), ptr.To(with(func(t *discovery.Target) {
			t.URL = "http://10.1.2.3:9800"
			t.MissingIfSilent = "nothing answering at the agent port declared by container faultline-agent port faultline (9800)"
		}))},
		{"not ready", fullPod(func(p *corev1.Pod) { p.Status.Conditions[1].Status = corev1.ConditionFalse }), nil},
		{"no ready condition yet", fullPod(func(p *corev1.Pod) { p.Status.Conditions = p.Status.Conditions[:1] }), nil},
		{"no IP yet", fullPod(func(p *corev1.Pod) { p.Status.PodIP = "" }), nil},
		{"terminating", fullPod(func(p *corev1.Pod) { p.DeletionTimestamp = ptr.To(metav1.Now()) }), nil},
		{"succeeded", fullPod(func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := target(tt.pod)
			var gotp *discovery.Target
			if ok {
				gotp = &got
			}
			if diff := cmp.Diff(tt.want, gotp); diff != "" {
				t.Errorf("target (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWorkload(t *testing.T) {
	owner := func(kind, name string, controller bool) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			p.OwnerReferences = []metav1.OwnerReference{{Kind: kind, Name: name, Controller: ptr.To(controller)}}
		}
	}
	tests := []struct {
		name string
		pod  *corev1.Pod
		want string
	}{
		{"deployment through its replicaset", fullPod(), "checkout"},
		{"deployment whose name has dashes", fullPod(owner("ReplicaSet", "shop-api-v2-7d9f8c6b5", true)), "shop-api-v2"},
		{"bare replicaset (no template hash)", fullPod(owner("ReplicaSet", "legacy", true), func(p *corev1.Pod) { delete(p.Labels, "pod-template-hash") }), "legacy"},
		{"replicaset not named after the hash", fullPod(owner("ReplicaSet", "other-abc", true)), "other-abc"},
		{"statefulset", fullPod(owner("StatefulSet", "db", true)), "db"},
		{"daemonset", fullPod(owner("DaemonSet", "node-agent", true)), "node-agent"},
		{"job", fullPod(owner("Job", "migrate-29151840", true)), "migrate-29151840"},
		{"other controller", fullPod(owner("Rollout", "canary", true)), "canary"},
		{"owner that is not the controller", fullPod(owner("ConfigMap", "cfg", false)), "checkout-7d9f8c6b5-x2x4q"},
		{"no owner", fullPod(func(p *corev1.Pod) { p.OwnerReferences = nil }), "checkout-7d9f8c6b5-x2x4q"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := workload(tt.pod); got != tt.want {
				t.Errorf("workload = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	pod := fullPod()
	want := &cachedPod{
		ObjectMeta: metav1.ObjectMeta{Name: "checkout-7d9f8c6b5-x2x4q", Namespace: "shop", UID: "uid-1", ResourceVersion: "42"},
		ok:         true,
		target: discovery.Target{Key: "uid-1", UID: "uid-1", Pod: "checkout-7d9f8c6b5-x2x4q", Namespace: "shop", Node: "node-a",
			Workload: "checkout", URL: "http://10.1.2.3:9800",
			MissingIfSilent: "nothing answering at the agent port declared by container faultline-agent port faultline (9800)"},
	}
	got, err := summarize(pod)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(cachedPod{})); diff != "" {
		t.Errorf("cached pod (-want +got):\n%s", diff)
	}
	again, _ := summarize(got)
	if again != got {
		t.Errorf("summarize is not idempotent: %v, then %v", got, again)
	}
	if cp := got.(*cachedPod).DeepCopyObject(); !cmp.Equal(got, cp, cmp.AllowUnexported(cachedPod{})) {
		t.Errorf("deep copy differs: %v", cp)
	}
	notReady, _ := summarize(fullPod(func(p *corev1.Pod) { p.Status.Conditions[1].Status = corev1.ConditionFalse }))
	if notReady.(*cachedPod).ok {
		t.Error("a pod that is not ready was cached with a target")
	}
	tomb := struct{ Key string }{"shop/x"}
	if o, _ := summarize(tomb); o != tomb {
		t.Errorf("non-pod object changed: %v", o)
	}
}

// FuzzTarget feeds arbitrary pod IPs, annotations and port numbers (all written by users
// or the cluster) through discovery: a target always has either a usable URL or a reason.
func FuzzTarget(f *testing.F) {
	f.Add("10.1.2.3", "9800", int32(0), true)
	f.Add("fd00::1", "", int32(9801), true)
	f.Add("10.0.0.1", "web", int32(-1), false)
	f.Fuzz(func(t *testing.T, ip, annotation string, port int32, ready bool) {
		p := fullPod(noAgentContainer, func(p *corev1.Pod) {
			p.UID = types.UID("u")
			p.Status.PodIP = ip
			p.Annotations[PortAnnotation] = annotation
			if port != 0 {
				p.Spec.Containers[0].Ports = append(p.Spec.Containers[0].Ports, corev1.ContainerPort{Name: PortName, ContainerPort: port})
			}
			if !ready {
				p.Status.Conditions[1].Status = corev1.ConditionFalse
			}
		})
		tg, ok := target(p)
		if !ok {
			return
		}
		if (tg.URL == "") == (tg.Missing == "") {
			t.Fatalf("want exactly one of URL and Missing: %+v", tg)
		}
		if tg.URL != "" {
			if _, err := url.Parse(tg.URL); err != nil {
				t.Fatalf("unparsable target URL %q: %v", tg.URL, err)
			}
			if tg.MissingIfSilent == "" {
				t.Fatalf("URL without a missing-if-silent reason: %+v", tg)
			}
		}
	})
}

func TestNewRejects(t *testing.T) {
	cfg := &rest.Config{Host: "https://127.0.0.1:1"}
	tests := []struct {
		name string
		opts Options
		want []string // every one must be in the error
	}{
		{"bad selector and namespaces, all reported", Options{Config: cfg, Selector: "a in (", Namespaces: []string{"Shop", "ok", "x_y"}},
			[]string{"agent-selector:", `namespaces: "Shop"`, `namespaces: "x_y"`}},
		{"empty selector", Options{Config: cfg, Selector: ""}, []string{"agent-selector: must not be empty"}},
		{"unreadable kubeconfig", Options{Kubeconfig: "/nonexistent/kubeconfig", Selector: "a=b"},
			[]string{"kubeconfig:", "/nonexistent/kubeconfig"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.opts)
			if err == nil {
				t.Fatal("New accepted bad options")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	if _, err := New(Options{Config: cfg, Selector: "faultline.dev/agent=true", Namespaces: []string{"shop"}}); err != nil {
		t.Errorf("New with good options: %v", err)
	}
}
