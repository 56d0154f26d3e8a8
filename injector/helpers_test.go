package injector_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	admissionregv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/faultline-dev/faultline/config"
	"github.com/faultline-dev/faultline/injector"
	"github.com/faultline-dev/faultline/injector/api/v1alpha1"
	"github.com/faultline-dev/faultline/internal/testbin"
	"github.com/faultline-dev/faultline/internal/testenv"
)

// release and namespace are those of every chart render here, as in the chart's tests.
const (
	release   = "faultline"
	namespace = "faultline"
	// webhookName and secretName are the chart's names for this release.
	webhookName = "faultline-faultline-injector"
	secretName  = "faultline-injector-tls"
)

// chart is what the injector gets from the chart: its webhook configuration, settings
// file and sidecar template.
type chart struct {
	webhooks *admissionregv1.MutatingWebhookConfiguration
	settings string // path of injector.yaml
	sidecar  string // path of sidecar.yaml
}

// renderChart renders charts/faultline with helm and writes the injector's ConfigMap
// files where the test can point the injector at them.
func renderChart(t testing.TB, args ...string) chart {
	t.Helper()
	out, err := testbin.Helm(t, append([]string{"template", release, filepath.Join(testbin.RepoRoot(), "charts", "faultline"), "--namespace", namespace}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	var c chart
	dir := t.TempDir()
	for _, doc := range strings.Split(out, "\n---\n") {
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode([]byte(doc), nil, nil)
		if err != nil {
			continue // comments only, or a kind outside client-go's scheme
		}
		switch o := obj.(type) {
		case *admissionregv1.MutatingWebhookConfiguration:
			c.webhooks = o
		case *corev1.ConfigMap:
			if o.Name != release+"-injector" {
				continue
			}
			c.settings, c.sidecar = filepath.Join(dir, "injector.yaml"), filepath.Join(dir, "sidecar.yaml")
			for name, path := range map[string]string{"injector.yaml": c.settings, "sidecar.yaml": c.sidecar} {
				if err := os.WriteFile(path, []byte(o.Data[name]), 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if c.webhooks == nil || c.settings == "" {
		t.Fatalf("the chart rendered no injector webhook configuration or ConfigMap")
	}
	return c
}

// refusals records the requests the API server refuses (403) to a client, as
// "verb resource" (e.g. "watch agentprofiles", "update agentprofiles/status").
type refusals struct {
	mu   sync.Mutex
	seen map[string]bool
}

// wrap returns a copy of cfg whose requests are recorded in r when refused.
func (r *refusals) wrap(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(func(next http.RoundTripper) http.RoundTripper {
		return roundTripper(func(req *http.Request) (*http.Response, error) {
			resp, err := next.RoundTrip(req)
			if err == nil && resp.StatusCode == http.StatusForbidden {
				r.mu.Lock()
				if r.seen == nil {
					r.seen = map[string]bool{}
				}
				r.seen[requestVerb(req)] = true
				r.mu.Unlock()
			}
			return resp, err
		})
	})
	return cfg
}

func (r *refusals) has(verbResource string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seen[verbResource]
}

func (r *refusals) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.seen))
	for k := range r.seen {
		out = append(out, k)
	}
	return out
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// requestVerb is the RBAC verb and resource of an API request, from its method and path
// (/api/v1/[namespaces/<ns>/]<resource>[/<name>[/<subresource>]], or /apis/<group>/...).
func requestVerb(r *http.Request) string {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) > 0 && parts[0] == "apis" {
		parts = parts[3:]
	} else if len(parts) > 1 {
		parts = parts[2:]
	}
	if len(parts) > 2 && parts[0] == "namespaces" {
		parts = parts[2:]
	}
	resource, named := "", len(parts) > 1
	if len(parts) > 0 {
		resource = parts[0]
	}
	if len(parts) > 2 {
		resource += "/" + parts[2]
	}
	verb := map[string]string{http.MethodPost: "create", http.MethodPut: "update", http.MethodPatch: "patch", http.MethodDelete: "delete"}[r.Method]
	if r.Method == http.MethodGet {
		switch w := r.URL.Query().Get("watch"); {
		case w == "true" || w == "1":
			verb = "watch"
		case named:
			verb = "get"
		default:
			verb = "list"
		}
	}
	return verb + " " + resource
}

// running is an injector started by startInjector.
type running struct {
	probes string // base URL of /healthz, /readyz, /metrics
	logs   *testbin.SyncBuffer
	stop   func() // stops it and waits
	err    chan error
	// brokenStop: the test takes rights away, and the certificate rotator does not stop
	// in time when the API server keeps refusing it, so Run's error at the end is logged
	// only.
	brokenStop bool
}

// startInjector runs injector.Run in this process with the chart's settings file, the
// overrides in args (flag=value) and the API access of cfg, until the test ends.
func startInjector(t testing.TB, c chart, cfg *rest.Config, args ...string) *running {
	t.Helper()
	r := &running{logs: &testbin.SyncBuffer{}, err: make(chan error, 1)}
	probe := testbin.FreeAddr(t, "127.0.0.1")
	r.probes = "http://" + probe
	all := append([]string{"--config=" + c.settings, "--sidecar-template=" + c.sidecar, "--probe-listen=" + probe, "--log-format=text", "--log-level=debug"}, args...)
	settings, err := config.LoadInjector(all, func(string) string { return "" })
	if err != nil {
		t.Fatalf("the injector refuses the chart's settings with %q: %v", args, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	log := hclog.New(&hclog.LoggerOptions{Name: "injector", Level: hclog.Debug, Output: r.logs})
	go func() { r.err <- injector.Run(ctx, settings, injector.Options{Config: cfg, Logger: log}) }()
	var once sync.Once
	r.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-r.err:
				if err != nil && r.brokenStop {
					t.Logf("injector stopped with %v", err)
				} else if err != nil {
					t.Errorf("injector stopped with %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("injector did not stop within 30s")
			}
		})
	}
	t.Cleanup(func() {
		r.stop()
		if t.Failed() {
			t.Logf("injector log:\n%s", r.logs.String())
		}
	})
	return r
}

// exited fails the test if the injector has stopped.
func (r *running) exited(t testing.TB) {
	t.Helper()
	select {
	case err := <-r.err:
		t.Fatalf("injector exited: %v", err)
	default:
	}
}

// ready reports whether the injector's /readyz says so now.
func (r *running) ready() bool {
	resp, err := http.Get(r.probes + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// waitReady waits for the injector's /readyz.
func (r *running) waitReady(t testing.TB) {
	t.Helper()
	testbin.Eventually(t, 60*time.Second, func() error {
		r.exited(t)
		resp, err := http.Get(r.probes + "/readyz")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz: %d %s", resp.StatusCode, b)
		}
		return nil
	})
}

var admissionLine = regexp.MustCompile(`(?m)^faultline_injector_admissions_total\{outcome="([a-z]+)",webhook="([^"]+)"\} ([0-9.e+]+)$`)

// admissions are the injector's admission counts by "webhook path/outcome".
func (r *running) admissions(t testing.TB) map[string]float64 {
	t.Helper()
	resp, err := http.Get(r.probes + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := map[string]float64{}
	for _, m := range admissionLine.FindAllStringSubmatch(string(b), -1) {
		v, _ := strconv.ParseFloat(m[3], 64)
		out[m[2]+"/"+m[1]] = v
	}
	return out
}

// admin is the administrator's clientsets, recording warnings.
type admin struct {
	cs   kubernetes.Interface
	c    client.Client
	warn *testenv.Warnings
}

func newAdmin(t testing.TB, env *testenv.Env) admin {
	t.Helper()
	a := admin{warn: &testenv.Warnings{}}
	cfg := rest.CopyConfig(env.Config)
	cfg.WarningHandler = a.warn
	var err error
	if a.cs, err = kubernetes.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	s := runtime.NewScheme()
	if err := errors.Join(scheme.AddToScheme(s), v1alpha1.AddToScheme(s)); err != nil {
		t.Fatal(err)
	}
	if a.c, err = client.New(cfg, client.Options{Scheme: s}); err != nil {
		t.Fatal(err)
	}
	return a
}

// namespace creates a namespace with labels.
func (a admin) namespace(t testing.TB, name string, labels map[string]string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if _, err := a.cs.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{}); err != nil {
		existing, gerr := a.cs.CoreV1().Namespaces().Get(context.Background(), name, metav1.GetOptions{})
		if gerr != nil {
			t.Fatalf("create namespace %s: %v", name, err)
		}
		existing.Labels = labels
		if _, err := a.cs.CoreV1().Namespaces().Update(context.Background(), existing, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("label namespace %s: %v", name, err)
		}
	}
}

// createPod creates pod as the administrator and returns it as stored, with the
// warnings the API server returned.
func (a admin) createPod(t testing.TB, pod *corev1.Pod) (*corev1.Pod, []string) {
	t.Helper()
	a.warn.Take()
	out, err := a.cs.CoreV1().Pods(pod.Namespace).Create(context.Background(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod in %s: %v", pod.Namespace, err)
	}
	return out, a.warn.Take()
}

// appPod is an application pod: one container with limits and a port, as a user would
// write it, with no faultline YAML.
func appPod(ns, name string, mutate ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": "shop"}},
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

// ownedBy makes the pod a ReplicaSet's, as its controller creates them.
func ownedBy(rs string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.GenerateName, p.Name = rs+"-", ""
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs, UID: "uid-" + "rs", Controller: ptr.To(true)}}
	}
}

// injected reports whether a stored pod carries the agent as the chart's template adds
// it, and says what is wrong otherwise.
func injected(pod *corev1.Pod) error {
	var problems []string
	if len(pod.Spec.InitContainers) == 0 || pod.Spec.InitContainers[0].Name != "faultline-agent" {
		return fmt.Errorf("pod %s has no agent (init containers %d)", pod.Name, len(pod.Spec.InitContainers))
	}
	agent := pod.Spec.InitContainers[0]
	if agent.RestartPolicy == nil || *agent.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		problems = append(problems, "not a native sidecar")
	}
	if agent.StartupProbe == nil || agent.StartupProbe.HTTPGet == nil || agent.StartupProbe.HTTPGet.Path != "/readyz" {
		problems = append(problems, "no startupProbe on /readyz")
	}
	if pod.Spec.ShareProcessNamespace == nil || !*pod.Spec.ShareProcessNamespace {
		problems = append(problems, "no shareProcessNamespace")
	}
	if pod.Labels["faultline.dev/agent"] != "true" {
		problems = append(problems, "no faultline.dev/agent label")
	}
	if len(agent.Ports) != 1 || agent.Ports[0].Name != "faultline" {
		problems = append(problems, "no port named faultline")
	}
	if len(problems) > 0 {
		return fmt.Errorf("pod %s: %s", pod.Name, strings.Join(problems, ", "))
	}
	return nil
}

// profile creates an AgentProfile from YAML (its spec).
func (a admin) profile(t testing.TB, ns, name, spec string) *v1alpha1.AgentProfile {
	t.Helper()
	p := &v1alpha1.AgentProfile{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	if err := yaml.UnmarshalStrict([]byte(spec), &p.Spec); err != nil {
		t.Fatal(err)
	}
	if err := a.c.Create(context.Background(), p); err != nil {
		t.Fatalf("create AgentProfile %s/%s: %v", ns, name, err)
	}
	return p
}
