package status

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/faultline-dev/faultline/injector/api/v1alpha1"
)

func profile(name string, minute int, sel metav1.LabelSelector) v1alpha1.AgentProfile {
	return v1alpha1.AgentProfile{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", Generation: 3,
			CreationTimestamp: metav1.NewTime(time.Date(2026, 1, 1, 0, minute, 0, 0, time.UTC))},
		Spec: v1alpha1.AgentProfileSpec{Selector: sel},
	}
}

func pod(name string, labels map[string]string, agent bool, mutate ...func(*corev1.Pod)) corev1.Pod {
	p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", Labels: labels},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}}
	if agent {
		p.Spec.InitContainers = []corev1.Container{{Name: "faultline-agent", Ports: []corev1.ContainerPort{{Name: "faultline", ContainerPort: 9800}}}}
	}
	for _, m := range mutate {
		m(&p)
	}
	return p
}

func TestCompute(t *testing.T) {
	web := map[string]string{"app": "web"}
	older := profile("older", 1, metav1.LabelSelector{MatchLabels: web})
	newer := profile("newer", 2, metav1.LabelSelector{})
	lone := profile("lone", 3, metav1.LabelSelector{MatchLabels: map[string]string{"app": "cart"}})
	broken := profile("broken", 4, metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "In"}}})
	tooFast := profile("too-fast", 5, metav1.LabelSelector{MatchLabels: map[string]string{"app": "cart"}})
	tooFast.Spec.SampleInterval = &metav1.Duration{Duration: time.Millisecond}
	profiles := []v1alpha1.AgentProfile{older, newer, lone, broken, tooFast}
	pods := []corev1.Pod{
		pod("web-1", web, true), pod("web-2", web, false),
		pod("cart-1", map[string]string{"app": "cart"}, true),
		pod("done", web, true, func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }),
		pod("leaving", web, true, func(p *corev1.Pod) { p.DeletionTimestamp = ptr.To(metav1.Now()) }),
	}
	type summary struct {
		Selected, WithAgent   int32
		Valid, ValidReason    string
		Overlap, OverlapRsn   string
		OverlapMessagePortion string
	}
	tests := []struct {
		p    v1alpha1.AgentProfile
		want summary
	}{
		{older, summary{2, 1, "True", v1alpha1.ReasonValid, "True", v1alpha1.ReasonThisApplies, "2 selected pods are also selected by newer profiles (newer); this one, the oldest, applies to them: web-1, web-2"}},
		{newer, summary{3, 2, "True", v1alpha1.ReasonValid, "True", v1alpha1.ReasonOlderApplies, "2 selected pods are also selected by an older profile, which applies to them: web-1 (older applies), web-2 (older applies)"}},
		{lone, summary{1, 1, "True", v1alpha1.ReasonValid, "True", v1alpha1.ReasonOlderApplies, "cart-1 (newer applies)"}},
		{broken, summary{0, 0, "False", v1alpha1.ReasonInvalidSelector, "False", v1alpha1.ReasonNoOverlap, ""}},
		{tooFast, summary{1, 1, "False", v1alpha1.ReasonInvalidSetting, "True", v1alpha1.ReasonOlderApplies, ""}},
	}
	for _, tt := range tests {
		t.Run(tt.p.Name, func(t *testing.T) {
			st := Compute(&tt.p, profiles, pods, "faultline-agent")
			valid := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionValid)
			overlap := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionOverlapping)
			got := summary{st.SelectedPods, st.PodsWithAgent, string(valid.Status), valid.Reason, string(overlap.Status), overlap.Reason, ""}
			if tt.want.OverlapMessagePortion != "" && strings.Contains(overlap.Message, tt.want.OverlapMessagePortion) {
				got.OverlapMessagePortion = tt.want.OverlapMessagePortion
			} else if tt.want.OverlapMessagePortion != "" {
				got.OverlapMessagePortion = overlap.Message
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
			if st.ObservedGeneration != 3 || valid.ObservedGeneration != 3 {
				t.Errorf("observed generation %d / %d, want 3", st.ObservedGeneration, valid.ObservedGeneration)
			}
		})
	}
	// Nothing changed: the same status, transition times kept, so no write happens.
	p := older.DeepCopy()
	p.Status = Compute(p, profiles, pods, "faultline-agent")
	if again := Compute(p, profiles, pods, "faultline-agent"); !cmp.Equal(p.Status, again) {
		t.Errorf("a second computation differs:\n%s", cmp.Diff(p.Status, again))
	}
	if !strings.Contains(meta.FindStatusCondition(Compute(&tooFast, profiles, pods, "faultline-agent").Conditions, v1alpha1.ConditionValid).Message,
		`spec.sampleInterval "1ms": 1ms is outside the allowed range 100ms to 1m0s`) {
		t.Error("the Valid message does not say which setting the agent refuses")
	}
}

func TestStrip(t *testing.T) {
	full := pod("web-1", map[string]string{"app": "web"}, true, func(p *corev1.Pod) {
		p.Annotations = map[string]string{"a": "b"}
		p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "X", Value: "y"}}
		p.Spec.Containers[0].Image = "app:1"
		p.Status.Phase = corev1.PodRunning
		p.Status.PodIP = "10.0.0.1"
	})
	got, err := Strip(&full)
	if err != nil {
		t.Fatal(err)
	}
	want := pod("web-1", map[string]string{"app": "web"}, true, func(p *corev1.Pod) { p.Status.Phase = corev1.PodRunning })
	if diff := cmp.Diff(&want, got); diff != "" {
		t.Errorf("stripped pod (-want +got):\n%s", diff)
	}
	if tomb := "not a pod"; mustStrip(t, tomb) != tomb {
		t.Error("Strip changed something that is not a pod")
	}
}

func mustStrip(t *testing.T, obj any) any {
	out, err := Strip(obj)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
