package kube

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/faultline-dev/faultline/aggregator/discovery"
	"github.com/faultline-dev/faultline/internal/testenv"
)

// The cluster of the informer benchmark: selected pods among many that are not.
const (
	benchSelected   = 5000
	benchOthers     = 20000
	benchNamespaces = 10
)

// BenchmarkInformer puts 5,000 selected and 20,000 other pods in a real API server and
// measures, in the same run, what holding them costs the aggregator against plain Pod
// informers: heap held once synced (after GC), per cached pod, the API requests made to
// start, and the time to sync. See docs/performance.md, "Kubernetes discovery".
func BenchmarkInformer(b *testing.B) {
	env := testenv.Start(b)
	start := time.Now()
	fillCluster(b, env)
	b.Logf("created and readied %d pods in %v", benchSelected+benchOthers, time.Since(start).Round(time.Second))

	b.Run("discovery", func(b *testing.B) {
		benchInformer(b, env, benchSelected, func(ctx context.Context, cfg *rest.Config) func() {
			return runDiscovery(b, ctx, cfg)
		})
	})
	b.Run("discovery-10-namespaces", func(b *testing.B) {
		var namespaces []string
		for i := range benchNamespaces {
			namespaces = append(namespaces, fmt.Sprintf("team-%d", i))
		}
		benchInformer(b, env, benchSelected, func(ctx context.Context, cfg *rest.Config) func() {
			return runDiscovery(b, ctx, cfg, namespaces...)
		})
	})
	b.Run("discovery-no-watchlist", func(b *testing.B) {
		testenv.WithoutWatchList(b)
		benchInformer(b, env, benchSelected, func(ctx context.Context, cfg *rest.Config) func() {
			return runDiscovery(b, ctx, cfg)
		})
	})
	b.Run("plain-selected", func(b *testing.B) {
		benchInformer(b, env, benchSelected, func(ctx context.Context, cfg *rest.Config) func() {
			return runPlainInformer(b, ctx, cfg, "faultline.dev/agent=true")
		})
	})
	b.Run("plain-all", func(b *testing.B) {
		benchInformer(b, env, benchSelected+benchOthers, func(ctx context.Context, cfg *rest.Config) func() {
			return runPlainInformer(b, ctx, cfg, "")
		})
	})
}

// benchInformer starts an informer with start, which returns once it has synced with a
// func that stops it and waits until it has, and reports its cost.
func benchInformer(b *testing.B, env *testenv.Env, pods int, start func(context.Context, *rest.Config) func()) {
	for b.Loop() {
		counts := &requestCounts{}
		cfg := rest.CopyConfig(env.Config)
		cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return &countingTransport{next: rt, c: counts} })
		ctx, cancel := context.WithCancel(context.Background())
		before := heapInUse()
		t0 := time.Now()
		stop := start(ctx, cfg)
		synced := time.Since(t0)
		held := heapInUse() - before
		cancel()
		stop()
		b.ReportMetric(float64(held)/(1<<20), "heap-MiB")
		b.ReportMetric(float64(held)/float64(pods), "B/pod")
		b.ReportMetric(float64(synced.Milliseconds()), "sync-ms")
		b.ReportMetric(float64(counts.list.Load()), "lists")
		b.ReportMetric(float64(counts.watch.Load()), "watches")
		b.ReportMetric(float64(counts.other.Load()), "other-requests")
	}
}

// runDiscovery starts a Discoverer with the default selector over namespaces (none: all)
// and waits for its first target set.
func runDiscovery(b *testing.B, ctx context.Context, cfg *rest.Config, namespaces ...string) func() {
	d, err := New(Options{Config: cfg, Selector: "faultline.dev/agent=true", Namespaces: namespaces})
	if err != nil {
		b.Fatal(err)
	}
	out := make(chan []discovery.Target)
	done := make(chan struct{})
	go func() {
		d.Run(ctx, out)
		close(done)
	}()
	set := <-out
	if len(set) != benchSelected {
		b.Fatalf("discovery sent %d targets, want %d", len(set), benchSelected)
	}
	go func() {
		for {
			select {
			case <-out:
			case <-done:
				return
			}
		}
	}()
	return func() { <-done }
}

// runPlainInformer starts a client-go Pod informer keeping whole pods, as a controller
// without a transform does.
func runPlainInformer(b *testing.B, ctx context.Context, cfg *rest.Config, selector string) func() {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	f := informers.NewSharedInformerFactoryWithOptions(cs, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = selector }))
	inf := f.Core().V1().Pods().Informer()
	f.Start(ctx.Done())
	if !toolscache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		b.Fatal("plain informer did not sync")
	}
	return f.Shutdown
}

func heapInUse() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

type requestCounts struct{ list, watch, other atomic.Int64 }

type countingTransport struct {
	next http.RoundTripper
	c    *requestCounts
}

func (t *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	switch _, watch, ok := podRequest(r); {
	case ok && watch:
		t.c.watch.Add(1)
	case ok:
		t.c.list.Add(1)
	default:
		t.c.other.Add(1)
	}
	return t.next.RoundTrip(r)
}

// fillCluster creates the benchmark's pods with realistic (small) specs and statuses:
// every pod Running and Ready with an IP, as the informers would find them in a cluster.
func fillCluster(b *testing.B, env *testenv.Env) {
	for i := range benchNamespaces {
		env.CreateNamespace(b, fmt.Sprintf("team-%d", i))
	}
	cfg := rest.CopyConfig(env.Config)
	cfg.QPS, cfg.Burst = -1, 0 // no client-side throttling: the API server is the limit
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	jobs := make(chan int)
	var wg sync.WaitGroup
	var failed atomic.Value
	for range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				if err := createReadyPod(cs, i); err != nil {
					failed.Store(err)
				}
			}
		}()
	}
	for i := range benchSelected + benchOthers {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
}

// createReadyPod makes pod i: the first benchSelected carry the agent (selected, with a
// native sidecar), the rest are ordinary pods.
func createReadyPod(cs kubernetes.Interface, i int) error {
	ctx := context.Background()
	ns := fmt.Sprintf("team-%d", i%benchNamespaces)
	app := fmt.Sprintf("svc-%d", i/50)
	hash := fmt.Sprintf("%x", uint32(i/50)*2654435761)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: fmt.Sprintf("%s-%s-%05d", app, hash, i), Namespace: ns,
			Labels: map[string]string{"app.kubernetes.io/name": app, "app.kubernetes.io/part-of": "shop",
				"app.kubernetes.io/version": "1.4.2", "pod-template-hash": hash},
			Annotations: map[string]string{"kubectl.kubernetes.io/default-container": "app",
				"prometheus.io/scrape": "true", "prometheus.io/port": "8080"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet",
				Name: app + "-" + hash, UID: "6f1c0d5e-0000-4000-8000-000000000000", Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}},
		},
		Spec: corev1.PodSpec{
			NodeName: fmt.Sprintf("node-%03d", i%200),
			Containers: []corev1.Container{{
				Name: "app", Image: "registry.example/shop/" + app + ":1.4.2",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				Env: []corev1.EnvVar{{Name: "LOG_LEVEL", Value: "info"}, {Name: "JAVA_OPTS", Value: "-XX:MaxRAMPercentage=75"},
					{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}},
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("512Mi")},
					Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("512Mi")}},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromString("http")}},
					PeriodSeconds: 5},
				VolumeMounts: []corev1.VolumeMount{{Name: "config", MountPath: "/etc/app"}},
			}},
			Volumes: []corev1.Volume{{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: app + "-config"}}}}},
		},
	}
	if i < benchSelected {
		pod.Labels["faultline.dev/agent"] = "true"
		pod.Spec.InitContainers = []corev1.Container{{
			Name: "faultline-agent", Image: "ghcr.io/faultline-dev/faultline-agent:1.0.0", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways),
			Ports: []corev1.ContainerPort{{Name: PortName, ContainerPort: DefaultPort}},
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("32Mi")}},
		}}
	}
	created, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create pod %d: %w", i, err)
	}
	now := metav1.Now()
	ip := fmt.Sprintf("10.%d.%d.%d", 64+i>>16, i>>8&255, i&255)
	created.Status = corev1.PodStatus{
		Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}, HostIP: "192.168.1.10", QOSClass: corev1.PodQOSBurstable,
		StartTime: &now,
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodReadyToStartContainers, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
		},
		ContainerStatuses: []corev1.ContainerStatus{{
			Name: "app", Ready: true, Started: ptr.To(true), Image: "registry.example/shop/" + app + ":1.4.2",
			ImageID:     "registry.example/shop/" + app + "@sha256:9b2f1c3e5d7a8b6c4e2f0a1b3c5d7e9f8a6b4c2d0e1f3a5b7c9d8e6f4a2b0c1d",
			ContainerID: fmt.Sprintf("containerd://%064x", i),
			State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		}},
	}
	if _, err := cs.CoreV1().Pods(ns).UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("ready pod %d: %w", i, err)
	}
	return nil
}
