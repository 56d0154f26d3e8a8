package inject

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/faultline-dev/faultline/config"
	"github.com/faultline-dev/faultline/injector/api/v1alpha1"
	"github.com/faultline-dev/faultline/internal/podtest"
)

// template is the chart's rendering with default values (testdata/sidecar.yaml, kept
// equal to the chart by TestInjectionTemplateGolden in charts/).
func template(t testing.TB) *Template {
	t.Helper()
	tmpl, err := LoadTemplate("testdata/sidecar.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return tmpl
}

// appPod is a Deployment's pod as the ReplicaSet controller creates it: no name yet, an
// application container with limits and a port.
func appPod(mutate ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "shop-7d9f8c6b5-", Namespace: "shop",
			Labels:          map[string]string{"app": "shop", "pod-template-hash": "7d9f8c6b5"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "shop-7d9f8c6b5", UID: "rs-uid", Controller: ptr.To(true)}}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "shop", Image: "registry.example.com/shop:1",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("256Mi")}},
		}}},
	}
	for _, m := range mutate {
		m(p)
	}
	return p
}

// agentConfig resolves the injected sidecar's environment as the kubelet would (field
// references as placeholders, resource references from the named container's limits)
// and loads it with the agent's own loader: what the agent would run with.
func agentConfig(t testing.TB, pod *corev1.Pod) config.Agent {
	t.Helper()
	env, err := podtest.Env(pod.Spec.InitContainers[0], pod.Spec.Containers)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadAgent(nil, func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("the agent refuses the injected environment: %v", err)
	}
	return cfg
}

func TestInjectPlainPod(t *testing.T) {
	tmpl := template(t)
	pod := appPod()
	r := tmpl.Inject(pod, NamespaceWide, nil)
	if r.Outcome != Injected || len(r.Problems)+len(r.Warnings) > 0 {
		t.Fatalf("outcome %v, problems %q, warnings %q; want injected, quietly", r.Outcome, r.Problems, r.Warnings)
	}
	if diff := cmp.Diff(appPod(), pod); diff != "" {
		t.Errorf("Inject modified its input (-before +after):\n%s", diff)
	}
	out := r.Pod
	if len(out.Spec.InitContainers) != 1 || out.Spec.InitContainers[0].Name != "faultline-agent" {
		t.Fatalf("init containers %v, want the agent", out.Spec.InitContainers)
	}
	if out.Spec.ShareProcessNamespace == nil || !*out.Spec.ShareProcessNamespace {
		t.Error("shareProcessNamespace not set")
	}
	if out.Labels["faultline.dev/agent"] != "true" || out.Labels["app"] != "shop" {
		t.Errorf("labels %v: want the pod's own plus faultline.dev/agent=true", out.Labels)
	}
	if diff := cmp.Diff(appPod().Spec.Containers, out.Spec.Containers); diff != "" {
		t.Errorf("the application containers changed (-want +got):\n%s", diff)
	}
	cfg := agentConfig(t, out)
	type summary struct {
		Listen, Mode   string
		CPU, Memory    int64
		Interval       time.Duration
		Prom, Hystrix  string
		ProfileAnnot   string
		InjectErrAnnot string
	}
	got := summary{cfg.Listen, cfg.Mode, cfg.CPULimitMillicores, cfg.MemoryLimitBytes, cfg.SampleInterval, cfg.PrometheusURL, cfg.HystrixURL,
		out.Annotations[v1alpha1.AnnotationProfile], out.Annotations[v1alpha1.AnnotationInjectError]}
	want := summary{Listen: ":9800", Mode: config.ModePod, CPU: 500, Memory: 256 << 20, Interval: time.Second}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("agent settings (-want +got):\n%s", diff)
	}
	// Idempotent: the injected pod admitted again is left as it is.
	if again := tmpl.Inject(out, NamespaceWide, nil); again.Outcome != Skipped || again.Pod != nil {
		t.Errorf("second admission: %v, want skipped (unchanged)", again.Outcome)
	}
}

func TestWhoIsInjected(t *testing.T) {
	tmpl := template(t)
	handWritten := func(p *corev1.Pod) {
		p.Spec.InitContainers = []corev1.Container{{Name: "metrics-agent", Image: "x", Ports: []corev1.ContainerPort{{Name: "faultline", ContainerPort: 9800}}}}
	}
	named := func(p *corev1.Pod) { p.Spec.InitContainers = []corev1.Container{{Name: "faultline-agent", Image: "x"}} }
	tests := []struct {
		name string
		mode Mode
		pod  *corev1.Pod
		want Outcome
	}{
		{"enabled namespace", NamespaceWide, appPod(), Injected},
		{"enabled namespace, annotation false", NamespaceWide, appPod(podtest.Annotate("faultline.dev/inject", "false")), Skipped},
		{"enabled namespace, label false", NamespaceWide, appPod(podtest.Label("faultline.dev/inject", "false")), Skipped},
		{"enabled namespace, annotation true", NamespaceWide, appPod(podtest.Annotate("faultline.dev/inject", "true")), Injected},
		{"other namespace, nothing asked", PodOptIn, appPod(), Skipped},
		{"other namespace, annotation true", PodOptIn, appPod(podtest.Annotate("faultline.dev/inject", "true")), Injected},
		{"other namespace, label true", PodOptIn, appPod(podtest.Label("faultline.dev/inject", "true")), Injected},
		{"other namespace, label true, annotation false", PodOptIn, appPod(podtest.Label("faultline.dev/inject", "true"), podtest.Annotate("faultline.dev/inject", "false")), Skipped},
		{"sidecar written by hand (port named faultline)", NamespaceWide, appPod(handWritten), Skipped},
		{"container named faultline-agent", PodOptIn, appPod(podtest.Annotate("faultline.dev/inject", "true"), named), Skipped},
		{"inject value neither true nor false", NamespaceWide, appPod(podtest.Annotate("faultline.dev/inject", "yes")), Refused},
		{"inject label neither true nor false", PodOptIn, appPod(podtest.Label("faultline.dev/inject", "enabled")), Refused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tmpl.Inject(tt.pod, tt.mode, nil)
			if r.Outcome != tt.want {
				t.Fatalf("outcome %v (reason %q, problems %q), want %v", r.Outcome, r.Reason, r.Problems, tt.want)
			}
			if (r.Pod == nil) != (tt.want == Skipped) {
				t.Errorf("pod returned: %v, want one unless skipped", r.Pod != nil)
			}
		})
	}
}

// TestBadAnnotations: each bad annotation leaves the pod without the agent, labelled for
// discovery with the reason, and the problem names the annotation, its value and what
// is wrong.
func TestBadAnnotations(t *testing.T) {
	tmpl := template(t)
	tests := []struct {
		annotations []string
		want        string
	}{
		{[]string{"faultline.dev/sample-interval", "fast"}, `annotation faultline.dev/sample-interval="fast": "fast" is not a duration such as 500ms or 2s`},
		{[]string{"faultline.dev/sample-interval", "5ms"}, `annotation faultline.dev/sample-interval="5ms": 5ms is outside the allowed range 100ms to 1m0s`},
		{[]string{"faultline.dev/prometheus-url", "localhost:8080/metrics"}, `annotation faultline.dev/prometheus-url="localhost:8080/metrics": "localhost:8080/metrics" is not an http or https URL`},
		{[]string{"faultline.dev/prometheus-interval", "1h"}, `annotation faultline.dev/prometheus-interval="1h": 1h0m0s is outside the allowed range 100ms to 5m0s`},
		{[]string{"faultline.dev/hystrix-url", "ftp://app/hystrix.stream"}, `annotation faultline.dev/hystrix-url="ftp://app/hystrix.stream": "ftp://app/hystrix.stream" is not an http or https URL`},
		{[]string{"faultline.dev/log-level", "loud"}, `annotation faultline.dev/log-level="loud": "loud" is not one of trace, debug, info, warn, error`},
		{[]string{"faultline.dev/cpu-request", "lots"}, `annotation faultline.dev/cpu-request="lots": not a quantity such as 100m or 64Mi`},
		{[]string{"faultline.dev/memory-limit", "0"}, `annotation faultline.dev/memory-limit="0": must be more than zero`},
		{[]string{"faultline.dev/memory-request", "128Mi"}, `agent memory request 128Mi exceeds its limit 64Mi (request from annotation faultline.dev/memory-request, limit from the chart's agent.resources)`},
		{[]string{"faultline.dev/port", "http"}, `annotation faultline.dev/port="http": not a port number (1-65535)`},
		{[]string{"faultline.dev/port", "70000"}, `annotation faultline.dev/port="70000": not a port number (1-65535)`},
		{[]string{"faultline.dev/port", "8080"}, `container shop declares port 8080, the agent's: set annotation faultline.dev/port to a free port`},
		{[]string{"faultline.dev/container", "web"}, `annotation faultline.dev/container="web": the pod has no container web`},
		{[]string{"faultline.dev/container", "Web_1"}, `annotation faultline.dev/container="Web_1": not a container name`},
		{[]string{"faultline.dev/alert-thresholds", "cpu-high=120"}, `annotation faultline.dev/alert-thresholds="cpu-high=120": cpu-high=120: the threshold is a percentage, 0 to 100`},
		{[]string{"faultline.dev/alert-thresholds", "breaker-open=5"}, `annotation faultline.dev/alert-thresholds="breaker-open=5": rule breaker-open has no threshold`},
		{[]string{"faultline.dev/alert-thresholds", "cpu-high"}, `annotation faultline.dev/alert-thresholds="cpu-high": "cpu-high" is not rule=percent`},
		{[]string{"faultline.dev/inject", "yes"}, `annotation faultline.dev/inject="yes": want "true" or "false"`},
	}
	for _, tt := range tests {
		t.Run(tt.annotations[0]+"="+tt.annotations[1], func(t *testing.T) {
			pod := appPod(podtest.Annotate(tt.annotations...))
			r := tmpl.Inject(pod, NamespaceWide, nil)
			if r.Outcome != Refused {
				t.Fatalf("outcome %v, want refused", r.Outcome)
			}
			if len(r.Problems) != 1 || !strings.HasPrefix(r.Problems[0], tt.want) {
				t.Errorf("problems %q\nwant one starting %q", r.Problems, tt.want)
			}
			out := r.Pod
			if diff := cmp.Diff(pod.Spec, out.Spec); diff != "" {
				t.Errorf("a refused pod's spec changed (-want +got):\n%s", diff)
			}
			if out.Labels["faultline.dev/agent"] != "true" {
				t.Error("a refused pod lacks the discovery label: the aggregator would not list it as missing its agent")
			}
			if got := out.Annotations[v1alpha1.AnnotationInjectError]; got != strings.Join(r.Problems, "; ") {
				t.Errorf("inject-error annotation %q, want the problems", got)
			}
		})
	}
	// Several problems are all reported.
	r := tmpl.Inject(appPod(podtest.Annotate("faultline.dev/sample-interval", "fast", "faultline.dev/log-level", "loud")), NamespaceWide, nil)
	if len(r.Problems) != 2 {
		t.Errorf("two bad annotations: problems %q, want both", r.Problems)
	}
}

func TestAnnotationOverrides(t *testing.T) {
	tmpl := template(t)
	pod := appPod(podtest.Annotate(
		"faultline.dev/sample-interval", "500ms",
		"faultline.dev/prometheus-url", "http://127.0.0.1:8080/actuator/prometheus",
		"faultline.dev/prometheus-interval", "5s",
		"faultline.dev/hystrix-url", "http://127.0.0.1:8080/hystrix.stream",
		"faultline.dev/log-level", "debug",
		"faultline.dev/port", "9900",
		"faultline.dev/cpu-limit", "200m",
		"faultline.dev/memory-limit", "128Mi",
		"faultline.dev/alert-thresholds", "cpu-high=80, error-rate-high=2.5",
		"faultline.dev/container", "worker",
		"faultline.dev/sampleinterval", "2s",
	), func(p *corev1.Pod) {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "worker", Image: "w",
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("1Gi")}}})
	})
	r := tmpl.Inject(pod, NamespaceWide, nil)
	if r.Outcome != Injected {
		t.Fatalf("outcome %v, problems %q", r.Outcome, r.Problems)
	}
	if want := []string{"annotation faultline.dev/sampleinterval is not one faultline knows; it is ignored (docs/kubernetes.md lists them)"}; !cmp.Equal(want, r.Warnings) {
		t.Errorf("warnings %q, want %q", r.Warnings, want)
	}
	cfg := agentConfig(t, r.Pod)
	sidecar := r.Pod.Spec.InitContainers[0]
	type summary struct {
		Listen, Prom, Hystrix, Level string
		Interval, PromInterval       time.Duration
		CPU, Memory                  int64
		Port                         int32
		CPULimit, MemLimit, MemReq   string
		Thresholds                   string
	}
	got := summary{cfg.Listen, cfg.PrometheusURL, cfg.HystrixURL, cfg.LogLevel, cfg.SampleInterval, cfg.PrometheusInterval,
		cfg.CPULimitMillicores, cfg.MemoryLimitBytes, sidecar.Ports[0].ContainerPort,
		sidecar.Resources.Limits.Cpu().String(), sidecar.Resources.Limits.Memory().String(), sidecar.Resources.Requests.Memory().String(),
		r.Pod.Annotations[v1alpha1.AnnotationAlertThresholds]}
	want := summary{Listen: ":9900", Prom: "http://127.0.0.1:8080/actuator/prometheus", Hystrix: "http://127.0.0.1:8080/hystrix.stream", Level: "debug",
		Interval: 500 * time.Millisecond, PromInterval: 5 * time.Second, CPU: 2000, Memory: 1 << 30, Port: 9900,
		CPULimit: "200m", MemLimit: "128Mi", MemReq: "24Mi", Thresholds: "cpu-high=80,error-rate-high=2.5"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("settings from annotations (-want +got):\n%s", diff)
	}

	// kubectl's default container is the application container unless one is named.
	pod = appPod(podtest.Annotate("kubectl.kubernetes.io/default-container", "worker"), func(p *corev1.Pod) {
		p.Spec.Containers = append([]corev1.Container{{Name: "proxy", Image: "p"}}, corev1.Container{Name: "worker", Image: "w"})
	})
	r = tmpl.Inject(pod, NamespaceWide, nil)
	if ref := r.Pod.Spec.InitContainers[0].Env[len(r.Pod.Spec.InitContainers[0].Env)-1].ValueFrom.ResourceFieldRef; ref == nil || ref.ContainerName != "worker" {
		t.Errorf("limits read from %+v, want container worker (kubectl's default)", ref)
	}
}

func TestPodsThatCannotTakeTheAgent(t *testing.T) {
	tmpl := template(t)
	tests := []struct {
		name string
		pod  *corev1.Pod
		want string
	}{
		{"hostPID", appPod(func(p *corev1.Pod) { p.Spec.HostPID = true }), "the pod uses hostPID"},
		{"hostNetwork", appPod(func(p *corev1.Pod) { p.Spec.HostNetwork = true }), "the pod uses hostNetwork"},
		{"application on the agent's port", appPod(func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].ContainerPort = 9800 }),
			"container shop declares port 9800, the agent's: set annotation faultline.dev/port to a free port"},
		{"application on the ingest port", appPod(func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].ContainerPort = 9801 }),
			"container shop declares port 9801, the agent's pod-local ingest port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tmpl.Inject(tt.pod, NamespaceWide, nil)
			if r.Outcome != Refused || len(r.Problems) != 1 || !strings.HasPrefix(r.Problems[0], tt.want) {
				t.Errorf("outcome %v, problems %q; want refused with %q", r.Outcome, r.Problems, tt.want)
			}
		})
	}
	// A UDP port 9800 is no clash, and the port annotation moves the agent away.
	udp := appPod(func(p *corev1.Pod) {
		p.Spec.Containers[0].Ports[0] = corev1.ContainerPort{ContainerPort: 9800, Protocol: corev1.ProtocolUDP}
	})
	moved := appPod(podtest.Annotate("faultline.dev/port", "9900"), func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].ContainerPort = 9800 })
	for _, pod := range []*corev1.Pod{udp, moved} {
		if r := tmpl.Inject(pod, NamespaceWide, nil); r.Outcome != Injected {
			t.Errorf("outcome %v, problems %q; want injected", r.Outcome, r.Problems)
		}
	}
}

// profile is an AgentProfile of namespace shop created at minute m.
func profile(name string, m int, sel map[string]string, spec func(*v1alpha1.AgentProfileSpec)) v1alpha1.AgentProfile {
	p := v1alpha1.AgentProfile{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", CreationTimestamp: metav1.NewTime(time.Date(2026, 1, 1, 0, m, 0, 0, time.UTC))},
		Spec:       v1alpha1.AgentProfileSpec{Selector: metav1.LabelSelector{MatchLabels: sel}},
	}
	if spec != nil {
		spec(&p.Spec)
	}
	return p
}

func TestProfiles(t *testing.T) {
	tmpl := template(t)
	web := profile("web", 5, map[string]string{"app": "shop"}, func(s *v1alpha1.AgentProfileSpec) {
		s.SampleInterval = &metav1.Duration{Duration: 2 * time.Second}
		s.LogLevel = "warn"
		s.Breakers = &v1alpha1.Breakers{Prometheus: &v1alpha1.PrometheusSource{Port: ptr.To[int32](8080), Interval: &metav1.Duration{Duration: 10 * time.Second}},
			Hystrix: &v1alpha1.HystrixSource{URL: "http://127.0.0.1:8081/hystrix.stream"}}
		s.Resources = &v1alpha1.Resources{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("96Mi")}}
		s.AlertThresholds = map[string]int32{"cpu-high": 70, "memory-high": 85}
	})
	newer := profile("all", 9, nil, func(s *v1alpha1.AgentProfileSpec) { s.LogLevel = "error" })
	other := profile("other", 1, map[string]string{"app": "cart"}, nil)
	broken := profile("broken", 0, nil, func(s *v1alpha1.AgentProfileSpec) {
		s.Selector.MatchExpressions = []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Sideways"}}
	})
	profiles := []v1alpha1.AgentProfile{newer, other, broken, web}

	pod := appPod(podtest.Annotate("faultline.dev/sample-interval", "250ms", "faultline.dev/alert-thresholds", "cpu-high=60,error-rate-high=1"))
	r := tmpl.Inject(pod, NamespaceWide, profiles)
	if r.Outcome != Injected || r.Profile != "web" {
		t.Fatalf("outcome %v, profile %q, problems %q; want injected with profile web", r.Outcome, r.Profile, r.Problems)
	}
	if want := []string{"AgentProfiles web, all select this pod; web, the oldest, applies"}; !cmp.Equal(want, r.Warnings) {
		t.Errorf("warnings %q, want %q", r.Warnings, want)
	}
	cfg := agentConfig(t, r.Pod)
	type summary struct {
		Interval, PromInterval    time.Duration
		Level, Prom, Hystrix      string
		MemLimit, Profile, Thresh string
	}
	got := summary{cfg.SampleInterval, cfg.PrometheusInterval, cfg.LogLevel, cfg.PrometheusURL, cfg.HystrixURL,
		r.Pod.Spec.InitContainers[0].Resources.Limits.Memory().String(), r.Pod.Annotations[v1alpha1.AnnotationProfile], r.Pod.Annotations[v1alpha1.AnnotationAlertThresholds]}
	want := summary{Interval: 250 * time.Millisecond, PromInterval: 10 * time.Second, Level: "warn", Prom: "http://127.0.0.1:8080/metrics",
		Hystrix: "http://127.0.0.1:8081/hystrix.stream", MemLimit: "96Mi", Profile: "web", Thresh: "cpu-high=60,error-rate-high=1,memory-high=85"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("profile web with the pod's annotations on top (-want +got):\n%s", diff)
	}

	// Push only: nothing is scraped, even what the chart's template would scrape.
	push := profile("push", 0, nil, func(s *v1alpha1.AgentProfileSpec) { s.Breakers = &v1alpha1.Breakers{PushOnly: true} })
	r = tmpl.Inject(appPod(), NamespaceWide, []v1alpha1.AgentProfile{push})
	if cfg := agentConfig(t, r.Pod); cfg.PrometheusURL != "" || cfg.HystrixURL != "" || r.Profile != "push" {
		t.Errorf("push-only profile: prometheus %q hystrix %q profile %q", cfg.PrometheusURL, cfg.HystrixURL, r.Profile)
	}

	// A profile the agent refuses keeps its pods from the agent, with the reason.
	tooFast := profile("too-fast", 0, nil, func(s *v1alpha1.AgentProfileSpec) { s.SampleInterval = &metav1.Duration{Duration: time.Millisecond} })
	r = tmpl.Inject(appPod(), NamespaceWide, []v1alpha1.AgentProfile{tooFast})
	if want := `AgentProfile too-fast: spec.sampleInterval "1ms": 1ms is outside the allowed range 100ms to 1m0s`; r.Outcome != Refused || !cmp.Equal([]string{want}, r.Problems) {
		t.Errorf("outcome %v, problems %q; want refused with %q", r.Outcome, r.Problems, want)
	}
}

func TestCheckProfile(t *testing.T) {
	tests := []struct {
		p    v1alpha1.AgentProfile
		want []string
	}{
		{profile("ok", 0, map[string]string{"app": "shop"}, nil), nil},
		{profile("bad-selector", 0, nil, func(s *v1alpha1.AgentProfileSpec) {
			s.Selector.MatchExpressions = []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpIn}}
		}), []string{"AgentProfile bad-selector: spec.selector: values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty"}},
		{profile("over", 0, nil, func(s *v1alpha1.AgentProfileSpec) {
			s.Resources = &v1alpha1.Resources{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}, Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}}
		}), []string{"AgentProfile over: spec.resources: agent cpu request 1 exceeds its limit 100m (request from AgentProfile over, limit from AgentProfile over)"}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, CheckProfile(&tt.p)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.p.Name, diff)
		}
	}
}

func TestThresholdsRoundTrip(t *testing.T) {
	in := map[string]float64{"cpu-high": 80, "error-rate-high": 0.5, "memory-high": 100}
	text := v1alpha1.FormatAlertThresholds(in)
	if text != "cpu-high=80,error-rate-high=0.5,memory-high=100" {
		t.Errorf("FormatAlertThresholds = %q", text)
	}
	out, err := v1alpha1.ParseAlertThresholds(text)
	if err != nil || !cmp.Equal(in, out) {
		t.Errorf("ParseAlertThresholds(%q) = %v, %v; want %v", text, out, err, in)
	}
	for _, bad := range []string{"cpu-high=80,cpu-high=90", "CPU=5", "x=-1", "x=NaN", "=5"} {
		if _, err := v1alpha1.ParseAlertThresholds(bad); err == nil {
			t.Errorf("ParseAlertThresholds(%q) accepted", bad)
		}
	}
}

func TestParseTemplateRejects(t *testing.T) {
	tests := []struct{ text, want string }{
		{"spec:\n  shareProcessNamespace: true\n  initContainers: [{name: a, image: b}]\n", "metadata.labels"},
		{"metadata: {labels: {a: b}}\nspec:\n  initContainers: [{name: a, image: b, restartPolicy: Always, ports: [{name: faultline, containerPort: 1}]}]\n", "shareProcessNamespace must be true"},
		{"metadata: {labels: {a: b}}\nspec:\n  shareProcessNamespace: true\n  initContainers: [{name: a, image: b}]\n", "restartPolicy: Always"},
		{"metadata: {labels: {a: b}}\nspec:\n  shareProcessNamespace: true\n  initContainers: [{name: a, image: b, restartPolicy: Always}]\n", "no port named faultline"},
		{"metadata: {labels: {a: b}}\nspec:\n  shareProcessNamespace: true\n  initContainers: [{name: a, image: b, restartPolicy: Always, ports: [{name: faultline, containerPort: 1}]}]\n", `no resourceFieldRef names the container "<app-container>"`},
		{"metadata: {labels: {a: b}}\nspec:\n  shareProcessNamespace: true\n  initContainers: []\n", "want the agent as the one init container"},
		{"metadata: {labels: {a: b}}\nspec:\n  shareProcessNamespace: true\n  initContainers: [{name: a, imagee: b}]\n", `unknown field "imagee"`},
	}
	for _, tt := range tests {
		_, err := ParseTemplate([]byte(tt.text))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseTemplate(%q) = %v, want an error containing %q", tt.text, err, tt.want)
		}
	}
}
