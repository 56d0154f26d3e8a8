package v1alpha1_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/faultline-dev/faultline/injector/api/v1alpha1"
	"github.com/faultline-dev/faultline/internal/testbin"
	"github.com/faultline-dev/faultline/internal/testenv"
)

// TestCRDValidation installs the generated CRD in a real API server and creates profiles
// as a user would write them: what the schema and its CEL rules can refuse is refused
// there, with a message that says what to change, and good profiles are stored.
func TestCRDValidation(t *testing.T) {
	env := testenv.StartWith(t, testenv.Options{CRDs: []string{filepath.Join(testbin.RepoRoot(), "charts", "faultline", "crds")}})
	env.CreateNamespace(t, "shop")
	c, err := client.New(env.Config, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	create := func(name, spec string) error {
		var s map[string]any
		if err := yaml.Unmarshal([]byte(spec), &s); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": v1alpha1.GroupVersion.String(), "kind": "AgentProfile",
			"metadata": map[string]any{"name": name, "namespace": "shop"},
		}}
		if s != nil {
			u.Object["spec"] = s
		}
		return c.Create(context.Background(), u)
	}
	good := []struct{ name, spec string }{
		{"minimal", "selector: {}"},
		{"full", `
selector: {matchLabels: {app: shop}, matchExpressions: [{key: tier, operator: In, values: [web]}]}
breakers:
  prometheus: {port: 8080, path: /actuator/prometheus, interval: 10s}
  hystrix: {url: "http://127.0.0.1:8081/hystrix.stream"}
sampleInterval: 500ms
logLevel: debug
resources: {requests: {cpu: 10m, memory: 24Mi}, limits: {cpu: "1", memory: 64Mi}}
alertThresholds: {cpu-high: 80, error-rate-high: 2}`},
		{"push-only", "selector: {}\nbreakers: {pushOnly: true}"},
		{"prometheus-url", "selector: {}\nbreakers: {prometheus: {url: \"https://metrics.shop.svc:8443/metrics\"}}"},
		{"request-equals-limit", "selector: {}\nresources: {requests: {memory: 64Mi}, limits: {memory: 64Mi}}"},
	}
	for _, g := range good {
		if err := create(g.name, g.spec); err != nil {
			t.Errorf("good profile %s refused: %v", g.name, err)
		}
	}
	bad := []struct{ name, spec, want string }{
		{"no-spec", "", `spec: Required value`},
		{"no-selector", "logLevel: info", `spec.selector: Required value`},
		{"interval-too-short", "selector: {}\nsampleInterval: 50ms", "sampleInterval must be between 100ms and 60s"},
		{"interval-too-long", "selector: {}\nsampleInterval: 2m", "sampleInterval must be between 100ms and 60s"},
		{"interval-not-a-duration", "selector: {}\nsampleInterval: fast", `spec.sampleInterval: Invalid value: "fast": spec.sampleInterval in body must be of type duration`},
		{"log-level", "selector: {}\nlogLevel: loud", `spec.logLevel: Unsupported value: "loud"`},
		{"url-and-port", "selector: {}\nbreakers: {prometheus: {url: \"http://a/m\", port: 8080}}", "set exactly one of url and port"},
		{"neither-url-nor-port", "selector: {}\nbreakers: {hystrix: {path: /hystrix.stream}}", "set exactly one of url and port"},
		{"path-without-port", "selector: {}\nbreakers: {prometheus: {url: \"http://a/m\", path: /m}}", "path goes with port"},
		{"url-scheme", "selector: {}\nbreakers: {prometheus: {url: \"ftp://a/m\"}}", "url must be an http or https URL"},
		{"url-not-a-url", "selector: {}\nbreakers: {hystrix: {url: \"hystrix stream\"}}", "url must be an http or https URL"},
		{"port-zero", "selector: {}\nbreakers: {prometheus: {port: 0}}", "spec.breakers.prometheus.port: Invalid value: 0: spec.breakers.prometheus.port in body should be greater than or equal to 1"},
		{"port-too-high", "selector: {}\nbreakers: {hystrix: {port: 70000}}", "should be less than or equal to 65535"},
		{"path-relative", "selector: {}\nbreakers: {prometheus: {port: 8080, path: metrics}}", `spec.breakers.prometheus.path: Invalid value: "metrics"`},
		{"scrape-interval", "selector: {}\nbreakers: {prometheus: {port: 8080, interval: 1h}}", "interval must be between 100ms and 5m"},
		{"push-only-and-prometheus", "selector: {}\nbreakers: {pushOnly: true, prometheus: {port: 8080}}", "pushOnly excludes prometheus and hystrix"},
		{"resource-kind", "selector: {}\nresources: {limits: {ephemeral-storage: 1Gi}}", "only cpu and memory can be set"},
		{"request-over-limit", "selector: {}\nresources: {requests: {memory: 128Mi}, limits: {memory: 64Mi}}", "a request must not exceed its limit"},
		{"quantity", "selector: {}\nresources: {limits: {memory: lots}}", `spec.resources.limits.memory: Invalid value: "lots"`},
		{"threshold-rule-name", "selector: {}\nalertThresholds: {CPU_High: 80}", "alert rule names are lower-case letters, digits and '-', at most 63"},
		{"threshold-no-threshold-rule", "selector: {}\nalertThresholds: {breaker-open: 1}", "breaker-open, agent-unavailable and agent-missing have no threshold"},
		{"threshold-percent", "selector: {}\nalertThresholds: {cpu-high: 150}", "thresholds are percentages, 0 to 100"},
		{"threshold-count", "selector: {}\nalertThresholds: {" + thresholds(17) + "}", "spec.alertThresholds: Too many: 17: must have at most 16 items"},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			err := create(b.name, b.spec)
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), b.want) {
				t.Errorf("got %v\nwant an Invalid error containing %q", err, b.want)
			}
		})
	}
	// Every good profile is there, and nothing else.
	var list v1alpha1.AgentProfileList
	s := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	typed, err := client.New(env.Config, client.Options{Scheme: s})
	if err != nil {
		t.Fatal(err)
	}
	if err := typed.List(context.Background(), &list, client.InNamespace("shop")); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != len(good) {
		t.Errorf("%d profiles stored, want the %d good ones", len(list.Items), len(good))
	}
}

func thresholds(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf("rule-%d: 1", i)
	}
	return strings.Join(parts, ", ")
}
