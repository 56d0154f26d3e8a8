package inject

import (
	"encoding/json"
	"testing"

	jsonpatch5 "github.com/evanphx/json-patch/v5"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"

	"github.com/faultline-dev/faultline/injector/api/v1alpha1"
	"github.com/faultline-dev/faultline/internal/podtest"
)

// patched applies Patch(pod, r) to pod's JSON, as the API server does, and returns the
// result; it fails the test unless that is r.Pod.
func patched(t testing.TB, pod *corev1.Pod, r Result) *corev1.Pod {
	t.Helper()
	raw, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	ops, err := json.Marshal(Patch(pod, r))
	if err != nil {
		t.Fatal(err)
	}
	p, err := jsonpatch5.DecodePatch(ops)
	if err != nil {
		t.Fatalf("patch %s: %v", ops, err)
	}
	out, err := p.Apply(raw)
	if err != nil {
		t.Fatalf("apply patch %s: %v", ops, err)
	}
	got, want := &corev1.Pod{}, &corev1.Pod{}
	if err := json.Unmarshal(out, got); err != nil {
		t.Fatal(err)
	}
	// Through JSON too, as pods come (strings are valid UTF-8 there).
	if b, err := json.Marshal(r.Pod); err != nil || json.Unmarshal(b, want) != nil {
		t.Fatalf("marshal the injector's pod: %v", err)
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("the patch %s does not make the injector's pod (-want +got):\n%s", ops, diff)
	}
	return got
}

// TestPatch: the patch the webhook returns makes exactly the pod Inject decided, for pods
// of every shape: without labels or annotations, with init containers, with keys that
// need escaping in a JSON pointer, with a reason left by an earlier admission.
func TestPatch(t *testing.T) {
	tmpl := template(t)
	pods := map[string]*corev1.Pod{
		"plain":                     appPod(),
		"no labels, no annotations": appPod(func(p *corev1.Pod) { p.Labels, p.Annotations = nil, nil }),
		"init containers": appPod(func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "migrate", Image: "m"}, {Name: "warm", Image: "w"}}
		}),
		"keys to escape":              appPod(podtest.Label("example.com/team", "a~b"), podtest.Annotate("example.com/x~y", "1", "faultline.dev/sample-interval", "2s")),
		"earlier reason and profile":  appPod(podtest.Annotate(v1alpha1.AnnotationInjectError, "old", v1alpha1.AnnotationProfile, "gone")),
		"shareProcessNamespace false": appPod(func(p *corev1.Pod) { f := false; p.Spec.ShareProcessNamespace = &f }),
		"refused":                     appPod(podtest.Annotate("faultline.dev/log-level", "loud", "example.com/a/b", "c")),
	}
	for name, pod := range pods {
		t.Run(name, func(t *testing.T) {
			r := tmpl.Inject(pod, NamespaceWide, nil)
			if r.Pod == nil {
				t.Fatalf("outcome %v, no pod", r.Outcome)
			}
			patched(t, pod, r)
		})
	}
	if ops := Patch(appPod(), Result{Outcome: Skipped}); ops != nil {
		t.Errorf("a skipped pod gets a patch: %v", ops)
	}
}
