package inject

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/faultline-dev/faultline/injector/api/v1alpha1"
	"github.com/faultline-dev/faultline/internal/podtest"
)

// FuzzAnnotations admits a pod carrying one faultline.dev annotation with any value (the
// seeds are in testdata/fuzz). Inject never panics, and either injects a sidecar whose
// environment the agent's own loader accepts and whose requests are within its limits,
// or refuses with a problem that names the annotation and leaves the spec as it was.
func FuzzAnnotations(f *testing.F) {
	tmpl := template(f)
	f.Fuzz(func(t *testing.T, name, value string) {
		key := "faultline.dev/" + name
		pod := appPod(podtest.Annotate(key, value))
		r := tmpl.Inject(pod, NamespaceWide, nil)
		if r.Pod != nil {
			patched(t, pod, r)
		}
		switch r.Outcome {
		case Injected:
			agentConfig(t, r.Pod)
			c := r.Pod.Spec.InitContainers[0]
			for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				req, hasReq := c.Resources.Requests[res]
				lim, hasLim := c.Resources.Limits[res]
				if hasReq && hasLim && req.Cmp(lim) > 0 {
					t.Errorf("%s=%q: %s request %s over its limit %s", key, value, res, req.String(), lim.String())
				}
			}
		case Refused:
			if len(r.Problems) == 0 {
				t.Fatalf("%s=%q: refused without a problem", key, value)
			}
			named := false
			for _, p := range r.Problems {
				named = named || strings.Contains(p, key) || strings.Contains(p, "declares port")
			}
			if !named {
				t.Errorf("%s=%q: problems %q do not name the annotation", key, value, r.Problems)
			}
			if diff := cmp.Diff(pod.Spec, r.Pod.Spec); diff != "" {
				t.Errorf("%s=%q: a refused pod's spec changed:\n%s", key, value, diff)
			}
		case Skipped:
			if key != "faultline.dev/inject" || value != "false" {
				t.Errorf("%s=%q: skipped (%s); only inject=false opts out", key, value, r.Reason)
			}
		}
	})
}

// FuzzThresholds: ParseAlertThresholds never panics, and what it accepts is written back
// by FormatAlertThresholds into text it reads as the same thresholds, each a percentage.
func FuzzThresholds(f *testing.F) {
	f.Fuzz(func(t *testing.T, text string) {
		th, err := v1alpha1.ParseAlertThresholds(text)
		if err != nil {
			return
		}
		for rule, v := range th {
			if !(v >= 0 && v <= 100) {
				t.Errorf("%q: rule %s threshold %v is not a percentage", text, rule, v)
			}
		}
		again, err := v1alpha1.ParseAlertThresholds(v1alpha1.FormatAlertThresholds(th))
		if err != nil || !cmp.Equal(th, again) {
			t.Errorf("%q: round trip gave %v, %v; want %v", text, again, err, th)
		}
	})
}
