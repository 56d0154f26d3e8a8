package injector_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/faultline-dev/faultline/injector/api/v1alpha1"
	"github.com/faultline-dev/faultline/internal/podtest"
	"github.com/faultline-dev/faultline/internal/testbin"
	"github.com/faultline-dev/faultline/internal/testenv"
)

var crds = filepath.Join(testbin.RepoRoot(), "charts", "faultline", "crds")

var enabled = map[string]string{"faultline.dev/inject": "enabled"}

// TestInjection registers the chart's webhook configuration in a real API server
// (envtest's WebhookInstallOptions), runs the injector as a user bound to exactly the
// chart's rules, and creates pods and Deployments as users do: what the API server
// stores is what this checks.
func TestInjection(t *testing.T) {
	testbin.Tool(t, "helm", "make tools installs it into bin/")
	env := testenv.StartWith(t, testenv.Options{CRDs: []string{crds}})
	a := newAdmin(t, env)
	a.namespace(t, namespace, enabled) // the release's own: never injected, even labelled
	a.namespace(t, "shop", enabled)
	a.namespace(t, "plain", nil)
	a.namespace(t, "kube-system", enabled)
	a.namespace(t, "off", map[string]string{"faultline.dev/inject": "disabled"})

	c := renderChart(t)
	wh := env.InstallWebhooks(t, c.webhooks)
	rules, err := testenv.LoadInjectorRules(webhookName, secretName)
	if err != nil {
		t.Fatal(err)
	}
	user := env.AddUser(t, "faultline-injector")
	env.BindCluster(t, user.Name, "injector", rules.Cluster)
	// The certificate comes from envtest here, as it would from cert-manager.
	inj := startInjector(t, c, user.Config, "--listen="+wh.Addr, "--cert-dir="+wh.CertDir, "--cert-secret=")
	inj.waitReady(t)

	// calls runs create and returns how the injector's admission counts moved.
	calls := func(t *testing.T, create func()) map[string]float64 {
		t.Helper()
		before := inj.admissions(t)
		create()
		after := inj.admissions(t)
		for k, v := range before {
			after[k] -= v
			if after[k] == 0 {
				delete(after, k)
			}
		}
		return after
	}

	t.Run("a pod of an enabled namespace gets the agent", func(t *testing.T) {
		var pod *corev1.Pod
		var warns []string
		got := calls(t, func() { pod, warns = a.createPod(t, appPod("shop", "web-1")) })
		if err := injected(pod); err != nil {
			t.Fatal(err)
		}
		if len(warns) > 0 {
			t.Errorf("warnings %q for a plain pod", warns)
		}
		if diff := cmp.Diff(map[string]float64{"/inject/namespace/injected": 1}, got); diff != "" {
			t.Errorf("admissions (-want +got):\n%s", diff)
		}
		ref := pod.Spec.InitContainers[0].Env[len(pod.Spec.InitContainers[0].Env)-1].ValueFrom.ResourceFieldRef
		if ref == nil || ref.ContainerName != "shop" {
			t.Errorf("the agent reads limits from %+v, want container shop", ref)
		}

		// Injection is idempotent: the same pod admitted again is left as it is.
		again := appPod("shop", "web-1-again", func(p *corev1.Pod) { p.Labels, p.Spec = pod.Labels, *pod.Spec.DeepCopy() })
		var stored *corev1.Pod
		got = calls(t, func() { stored, _ = a.createPod(t, again) })
		if diff := cmp.Diff(pod.Spec.InitContainers, stored.Spec.InitContainers); diff != "" {
			t.Errorf("a pod that has the agent was changed (-first +second):\n%s", diff)
		}
		if diff := cmp.Diff(map[string]float64{"/inject/namespace/skipped": 1}, got); diff != "" {
			t.Errorf("admissions (-want +got):\n%s", diff)
		}
	})

	t.Run("pods that opt out, and excluded namespaces", func(t *testing.T) {
		tests := []struct {
			name string
			pod  *corev1.Pod
			want map[string]float64 // admissions; nil: the API server does not call the injector
		}{
			{"annotation false", appPod("shop", "opt-out-a", podtest.Annotate("faultline.dev/inject", "false")), map[string]float64{"/inject/namespace/skipped": 1}},
			{"label false", appPod("shop", "opt-out-l", podtest.Label("faultline.dev/inject", "false")), nil},
			{"kube-system, labelled enabled", appPod("kube-system", "sys"), nil},
			{"the release namespace, labelled enabled", appPod(namespace, "own"), nil},
			{"a namespace labelled disabled, pod asks", appPod("off", "asks", podtest.Annotate("faultline.dev/inject", "true")), nil},
			{"a plain namespace, pod does not ask", appPod("plain", "quiet"), map[string]float64{"/inject/pod/skipped": 1}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				var pod *corev1.Pod
				got := calls(t, func() { pod, _ = a.createPod(t, tt.pod) })
				if len(pod.Spec.InitContainers) != 0 || pod.Labels["faultline.dev/agent"] != "" {
					t.Errorf("pod %s/%s was changed: %d init containers, labels %v", pod.Namespace, pod.Name, len(pod.Spec.InitContainers), pod.Labels)
				}
				if tt.want == nil {
					tt.want = map[string]float64{}
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("admissions (-want +got):\n%s", diff)
				}
			})
		}
	})

	t.Run("pods outside enabled namespaces that ask", func(t *testing.T) {
		for _, p := range []*corev1.Pod{
			appPod("plain", "asks-by-annotation", podtest.Annotate("faultline.dev/inject", "true")),
			appPod("plain", "asks-by-label", podtest.Label("faultline.dev/inject", "true")),
		} {
			var pod *corev1.Pod
			got := calls(t, func() { pod, _ = a.createPod(t, p) })
			if err := injected(pod); err != nil {
				t.Error(err)
			}
			if diff := cmp.Diff(map[string]float64{"/inject/pod/injected": 1}, got); diff != "" {
				t.Errorf("%s: admissions (-want +got):\n%s", p.Name, diff)
			}
		}
	})

	t.Run("each bad annotation: admitted without the agent, a warning, an Event, the reason", func(t *testing.T) {
		tests := []struct{ annotation, value, want string }{
			{"faultline.dev/sample-interval", "fast", `annotation faultline.dev/sample-interval="fast": "fast" is not a duration such as 500ms or 2s`},
			{"faultline.dev/prometheus-url", "localhost:8080", `annotation faultline.dev/prometheus-url="localhost:8080": "localhost:8080" is not an http or https URL`},
			{"faultline.dev/hystrix-url", "ftp://x/y", `annotation faultline.dev/hystrix-url="ftp://x/y": "ftp://x/y" is not an http or https URL`},
			{"faultline.dev/prometheus-interval", "1h", `annotation faultline.dev/prometheus-interval="1h": 1h0m0s is outside the allowed range 100ms to 5m0s`},
			{"faultline.dev/log-level", "loud", `annotation faultline.dev/log-level="loud": "loud" is not one of trace, debug, info, warn, error`},
			{"faultline.dev/memory-limit", "lots", `annotation faultline.dev/memory-limit="lots": not a quantity such as 100m or 64Mi`},
			{"faultline.dev/memory-request", "128Mi", `agent memory request 128Mi exceeds its limit 64Mi`},
			{"faultline.dev/port", "8080", `container shop declares port 8080, the agent's: set annotation faultline.dev/port to a free port`},
			{"faultline.dev/container", "web", `annotation faultline.dev/container="web": the pod has no container web`},
			{"faultline.dev/alert-thresholds", "cpu-high=200", `annotation faultline.dev/alert-thresholds="cpu-high=200": cpu-high=200: the threshold is a percentage, 0 to 100`},
			{"faultline.dev/inject", "yes", `annotation faultline.dev/inject="yes": want "true" or "false"`},
		}
		for i, tt := range tests {
			t.Run(tt.annotation, func(t *testing.T) {
				rs := fmt.Sprintf("bad-%d-5d8f7c", i)
				pod, warns := a.createPod(t, appPod("shop", "", podtest.Annotate(tt.annotation, tt.value), ownedBy(rs)))
				if len(pod.Spec.InitContainers) != 0 {
					t.Errorf("pod %s got the agent", pod.Name)
				}
				if pod.Labels["faultline.dev/agent"] != "true" || !strings.HasPrefix(pod.Annotations[v1alpha1.AnnotationInjectError], tt.want) {
					t.Errorf("pod labels %v, inject-error %q; want the discovery label and the reason %q",
						pod.Labels, pod.Annotations[v1alpha1.AnnotationInjectError], tt.want)
				}
				if want := "faultline: agent not injected: " + tt.want; !slices.ContainsFunc(warns, func(w string) bool { return strings.HasPrefix(w, want) }) {
					t.Errorf("warnings %q, want one starting %q", warns, want)
				}
				ev := event(t, a, "shop", rs, func(e eventsv1.Event) bool { return strings.Contains(e.Note, tt.want) })
				if ev.Type != corev1.EventTypeWarning || ev.Regarding.Kind != "ReplicaSet" || ev.ReportingController != "faultline-injector" {
					t.Errorf("event %s: type %s regarding %s, reported by %s", ev.Name, ev.Type, ev.Regarding.Kind, ev.ReportingController)
				}
			})
		}
	})

	t.Run("AgentProfiles: applied, overridden by annotations, oldest first, status kept", func(t *testing.T) {
		first := a.profile(t, "shop", "first", `
selector: {matchLabels: {app: profiled}}
sampleInterval: 2s
logLevel: debug
breakers: {prometheus: {port: 8080, path: /actuator/prometheus}}
alertThresholds: {cpu-high: 70}`)
		waitStatus(t, a, first, func(st v1alpha1.AgentProfileStatus) error {
			if c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionValid); c == nil || c.Status != metav1.ConditionTrue {
				return fmt.Errorf("Valid condition %+v", c)
			}
			return nil
		})
		pod, warns := a.createPod(t, appPod("shop", "profiled-1", podtest.Label("app", "profiled"), podtest.Annotate("faultline.dev/log-level", "warn")))
		if err := injected(pod); err != nil {
			t.Fatal(err)
		}
		settings := envOf(pod.Spec.InitContainers[0])
		got := []string{pod.Annotations[v1alpha1.AnnotationProfile], settings["FAULTLINE_SAMPLE_INTERVAL"], settings["FAULTLINE_LOG_LEVEL"],
			settings["FAULTLINE_PROMETHEUS_URL"], pod.Annotations[v1alpha1.AnnotationAlertThresholds]}
		if diff := cmp.Diff([]string{"first", "2s", "warn", "http://127.0.0.1:8080/actuator/prometheus", "cpu-high=70"}, got); diff != "" {
			t.Errorf("profile, sample interval, log level (annotation), prometheus URL, thresholds (-want +got):\n%s", diff)
		}
		if len(warns) > 0 {
			t.Errorf("warnings %q", warns)
		}
		waitStatus(t, a, first, counts(1, 1))

		second := a.profile(t, "shop", "second", "selector: {matchExpressions: [{key: app, operator: In, values: [profiled, other]}]}\nsampleInterval: 5s")
		waitStatus(t, a, second, func(st v1alpha1.AgentProfileStatus) error {
			if c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionOverlapping); c == nil || c.Reason != v1alpha1.ReasonOlderApplies {
				return fmt.Errorf("Overlapping condition %+v, want reason %s", c, v1alpha1.ReasonOlderApplies)
			}
			return nil
		})
		pod, warns = a.createPod(t, appPod("shop", "profiled-2", podtest.Label("app", "profiled")))
		if pod.Annotations[v1alpha1.AnnotationProfile] != "first" {
			t.Errorf("profile %q applied, want first (the older)", pod.Annotations[v1alpha1.AnnotationProfile])
		}
		if want := "faultline: AgentProfiles first, second select this pod; first, the oldest, applies"; !slices.Contains(warns, want) {
			t.Errorf("warnings %q, want %q", warns, want)
		}
		waitStatus(t, a, first, func(st v1alpha1.AgentProfileStatus) error {
			c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionOverlapping)
			if c == nil || c.Reason != v1alpha1.ReasonThisApplies || !strings.Contains(c.Message, "(second)") {
				return fmt.Errorf("Overlapping condition %+v", c)
			}
			return counts(2, 2)(st)
		})

		broken := a.profile(t, "shop", "broken", "selector: {matchExpressions: [{key: app, operator: In, values: []}]}")
		waitStatus(t, a, broken, func(st v1alpha1.AgentProfileStatus) error {
			c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionValid)
			if c == nil || c.Status != metav1.ConditionFalse || c.Reason != v1alpha1.ReasonInvalidSelector || !strings.Contains(c.Message, "values set can't be empty") {
				return fmt.Errorf("Valid condition %+v", c)
			}
			return nil
		})

		// kubectl get agentprofiles: the printer columns read at a glance.
		table := printed(t, env, "shop")
		want := [][]string{{"broken", "False", "0", "0"}, {"first", "True", "2", "2"}, {"second", "True", "2", "2"}}
		if diff := cmp.Diff(want, table); diff != "" {
			t.Errorf("kubectl get agentprofiles: NAME VALID SELECTED WITH-AGENT (-want +got):\n%s", diff)
		}
	})

	t.Run("a Deployment's pods", func(t *testing.T) {
		env.StartControllerManager(t, "deployment", "replicaset")
		deploy := func(name string, replicas int32, annotations map[string]string) {
			d := &appsv1.Deployment{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop"},
				Spec: appsv1.DeploymentSpec{
					Replicas: ptr.To(replicas),
					Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"deploy": name}},
					Template: corev1.PodTemplateSpec{
						ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"deploy": name}, Annotations: annotations},
						Spec:       appPod("", "").Spec,
					},
				},
			}
			if _, err := a.cs.AppsV1().Deployments("shop").Create(context.Background(), d, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		pods := func(name string, n int) []corev1.Pod {
			var out []corev1.Pod
			testbin.Eventually(t, 60*time.Second, func() error {
				list, err := a.cs.CoreV1().Pods("shop").List(context.Background(), metav1.ListOptions{LabelSelector: "deploy=" + name})
				if err != nil {
					return err
				}
				if len(list.Items) != n {
					return fmt.Errorf("%d pods of Deployment %s, want %d", len(list.Items), name, n)
				}
				out = list.Items
				return nil
			})
			return out
		}
		deploy("checkout", 2, nil)
		deploy("broken", 2, map[string]string{"faultline.dev/sample-interval": "fast"})
		for _, p := range pods("checkout", 2) {
			if err := injected(&p); err != nil {
				t.Error(err)
			}
		}
		var rs string
		for _, p := range pods("broken", 2) {
			if len(p.Spec.InitContainers) != 0 || !strings.Contains(p.Annotations[v1alpha1.AnnotationInjectError], "faultline.dev/sample-interval") {
				t.Errorf("pod %s: %d init containers, inject-error %q", p.Name, len(p.Spec.InitContainers), p.Annotations[v1alpha1.AnnotationInjectError])
			}
			rs = metav1.GetControllerOf(&p).Name
		}
		// One Event on the ReplicaSet, counted twice (a series: the recorder patches it).
		event(t, a, "shop", rs, func(e eventsv1.Event) bool { return e.Series != nil && e.Series.Count == 2 })
	})

	t.Run("injector stopped: pods are created at once, without the agent", func(t *testing.T) {
		inj.stop()
		start := time.Now()
		pod, _ := a.createPod(t, appPod("shop", "while-down"))
		if took := time.Since(start); took > time.Duration(*c.webhooks.Webhooks[0].TimeoutSeconds)*time.Second {
			t.Errorf("creating a pod took %v with the injector down", took)
		}
		if len(pod.Spec.InitContainers) != 0 {
			t.Error("pod got the agent with the injector down")
		}
	})
}

// event waits for an Event about the ReplicaSet rs reported by the injector that
// matches, and returns it.
func event(t testing.TB, a admin, ns, rs string, match func(eventsv1.Event) bool) eventsv1.Event {
	t.Helper()
	var found eventsv1.Event
	testbin.Eventually(t, 20*time.Second, func() error {
		list, err := a.cs.EventsV1().Events(ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return err
		}
		var seen []string
		for _, e := range list.Items {
			if e.Reason != "AgentNotInjected" || e.Regarding.Name != rs {
				continue
			}
			if match(e) {
				found = e
				return nil
			}
			seen = append(seen, e.Note)
		}
		return fmt.Errorf("no matching AgentNotInjected event on %s (seen %q)", rs, seen)
	})
	return found
}

// waitStatus waits until the profile's status passes check.
func waitStatus(t testing.TB, a admin, p *v1alpha1.AgentProfile, check func(v1alpha1.AgentProfileStatus) error) {
	t.Helper()
	testbin.Eventually(t, 20*time.Second, func() error {
		var got v1alpha1.AgentProfile
		if err := a.c.Get(context.Background(), client.ObjectKeyFromObject(p), &got); err != nil {
			return err
		}
		if got.Status.ObservedGeneration != got.Generation {
			return fmt.Errorf("status of generation %d, profile at %d", got.Status.ObservedGeneration, got.Generation)
		}
		if err := check(got.Status); err != nil {
			return fmt.Errorf("AgentProfile %s: %w", p.Name, err)
		}
		return nil
	})
}

func counts(selected, withAgent int32) func(v1alpha1.AgentProfileStatus) error {
	return func(st v1alpha1.AgentProfileStatus) error {
		if st.SelectedPods != selected || st.PodsWithAgent != withAgent {
			return fmt.Errorf("selected %d, with agent %d; want %d, %d", st.SelectedPods, st.PodsWithAgent, selected, withAgent)
		}
		return nil
	}
}

func envOf(c corev1.Container) map[string]string {
	out := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			out[e.Name] = e.Value
		}
	}
	return out
}

// printed asks the API server for the AgentProfiles of ns as kubectl does (a Table) and
// returns the cells of the Name, Valid, Selected and With agent columns.
func printed(t testing.TB, env *testenv.Env, ns string) [][]string {
	t.Helper()
	rc := env.Client.CoreV1().RESTClient()
	raw, err := rc.Get().AbsPath("/apis/faultline.dev/v1alpha1/namespaces", ns, "agentprofiles").
		SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").DoRaw(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var table metav1.Table
	if err := json.Unmarshal(raw, &table); err != nil {
		t.Fatal(err)
	}
	idx := map[string]int{}
	for i, c := range table.ColumnDefinitions {
		idx[c.Name] = i
	}
	var out [][]string
	for _, r := range table.Rows {
		var row []string
		for _, col := range []string{"Name", "Valid", "Selected", "With agent"} {
			i, ok := idx[col]
			if !ok {
				t.Fatalf("no column %q among %v", col, table.ColumnDefinitions)
			}
			row = append(row, fmt.Sprint(r.Cells[i]))
		}
		out = append(out, row)
	}
	return out
}
