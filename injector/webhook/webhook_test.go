package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/faultline-dev/faultline/injector/api/v1alpha1"
	"github.com/faultline-dev/faultline/injector/inject"
)

// TestHandleGuards: what the API server should never send (the webhook configuration's
// rules and selectors keep it away) is admitted untouched all the same, and profiles that
// cannot be read keep the pod from an agent configured wrongly, with the reason.
func TestHandleGuards(t *testing.T) {
	tmpl, err := inject.LoadTemplate(filepath.Join("..", "inject", "testdata", "sidecar.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var outcomes []inject.Outcome
	h := &Handler{Template: tmpl, Mode: inject.NamespaceWide, Excluded: map[string]bool{"kube-system": true},
		Profiles: func(_ context.Context, ns string) ([]v1alpha1.AgentProfile, error) {
			if ns == "broken" {
				return nil, errors.New("cache not synced")
			}
			return nil, nil
		},
		Log: hclog.NewNullLogger(), Outcomes: func(o inject.Outcome) { outcomes = append(outcomes, o) }}
	raw, _ := json.Marshal(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "a"}}}})
	req := func(ns string, op admissionv1.Operation, kind string, obj []byte) admission.Request {
		return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{Namespace: ns, Operation: op,
			Kind: metav1.GroupVersionKind{Version: "v1", Kind: kind}, Object: runtime.RawExtension{Raw: obj}}}
	}
	for name, r := range map[string]admission.Request{
		"excluded namespace": req("kube-system", admissionv1.Create, "Pod", raw),
		"an update":          req("shop", admissionv1.Update, "Pod", raw),
		"not a pod":          req("shop", admissionv1.Create, "Deployment", raw),
		"not JSON":           req("shop", admissionv1.Create, "Pod", []byte("{")),
	} {
		resp := h.Handle(context.Background(), r)
		if !resp.Allowed || len(resp.Patches) > 0 {
			t.Errorf("%s: allowed %v, %d patch operations; want admitted untouched", name, resp.Allowed, len(resp.Patches))
		}
	}
	if len(outcomes) != 0 {
		t.Errorf("decisions counted for requests never decided: %v", outcomes)
	}

	resp := h.Handle(context.Background(), req("broken", admissionv1.Create, "Pod", raw))
	want := "faultline: agent not injected: the AgentProfiles of namespace broken cannot be read: cache not synced"
	if !resp.Allowed || len(resp.Warnings) != 1 || resp.Warnings[0] != want {
		t.Errorf("profiles unreadable: allowed %v, warnings %q; want admitted with %q", resp.Allowed, resp.Warnings, want)
	}
	var annotated bool
	for _, op := range resp.Patches {
		annotated = annotated || strings.HasSuffix(op.Path, "faultline.dev~1inject-error") || op.Path == "/metadata/annotations"
	}
	if !annotated || len(outcomes) != 1 || outcomes[0] != inject.Refused {
		t.Errorf("patch %v, outcomes %v: want the reason written and one refusal counted", resp.Patches, outcomes)
	}
}
