// Package status keeps the status of every AgentProfile true: whether it is valid (and
// why not), whether it overlaps another profile and which one applies, how many pods it
// selects and how many of them carry the agent. `kubectl get agentprofiles` shows it.
package status

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/faultline-dev/faultline/injector/api/v1alpha1"
	"github.com/faultline-dev/faultline/injector/inject"
)

// Reconciler computes one profile's status from the profiles and pods of its namespace
// (read from the manager's cache) and writes it when it changed.
type Reconciler struct {
	Client client.Client
	// Sidecar is the name of the agent container (the template's), which marks a pod
	// as carrying the agent, as does a container port named faultline.
	Sidecar string
}

// SetupWithManager registers the controller: any change of a profile or a pod of a
// namespace brings every profile of that namespace up to date, since counts and
// overlaps depend on all of them.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	all := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
		var list v1alpha1.AgentProfileList
		if err := r.Client.List(ctx, &list, client.InNamespace(o.GetNamespace())); err != nil {
			return nil
		}
		out := make([]reconcile.Request, len(list.Items))
		for i, p := range list.Items {
			out[i] = reconcile.Request{NamespacedName: types.NamespacedName{Namespace: p.Namespace, Name: p.Name}}
		}
		return out
	})
	return ctrl.NewControllerManagedBy(mgr).
		Named("agentprofile-status").
		For(&v1alpha1.AgentProfile{}).
		Watches(&v1alpha1.AgentProfile{}, all).
		Watches(&corev1.Pod{}, all).
		Complete(r)
}

// Reconcile brings one profile's status up to date.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	var p v1alpha1.AgentProfile
	if err := r.Client.Get(ctx, req.NamespacedName, &p); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	var profiles v1alpha1.AgentProfileList
	if err := r.Client.List(ctx, &profiles, client.InNamespace(p.Namespace)); err != nil {
		return reconcile.Result{}, err
	}
	var pods corev1.PodList
	if err := r.Client.List(ctx, &pods, client.InNamespace(p.Namespace)); err != nil {
		return reconcile.Result{}, err
	}
	want := Compute(&p, profiles.Items, pods.Items, r.Sidecar)
	if equality.Semantic.DeepEqual(want, p.Status) {
		return reconcile.Result{}, nil
	}
	p.Status = want
	if err := r.Client.Status().Update(ctx, &p); err != nil {
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			// A newer profile (or none) is on its way through the cache, and brings
			// another reconcile with it.
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, fmt.Errorf("update status of AgentProfile %s/%s: %w", p.Namespace, p.Name, err)
	}
	return reconcile.Result{}, nil
}

// maxNamed bounds how many pods or profiles a condition message names.
const maxNamed = 5

// Compute is the status of p, given every profile and pod of its namespace. Condition
// times are kept from p's current status when nothing changed.
func Compute(p *v1alpha1.AgentProfile, profiles []v1alpha1.AgentProfile, pods []corev1.Pod, sidecar string) v1alpha1.AgentProfileStatus {
	st := v1alpha1.AgentProfileStatus{ObservedGeneration: p.Generation, Conditions: slices.Clone(p.Status.Conditions)}
	set := func(typ string, status metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: p.Generation})
	}
	problems := inject.CheckProfile(p)
	switch {
	case len(problems) == 0:
		set(v1alpha1.ConditionValid, metav1.ConditionTrue, v1alpha1.ReasonValid, "the agent accepts every setting of the profile")
	case strings.Contains(problems[0], "spec.selector"):
		set(v1alpha1.ConditionValid, metav1.ConditionFalse, v1alpha1.ReasonInvalidSelector, strings.Join(problems, "; "))
	default:
		set(v1alpha1.ConditionValid, metav1.ConditionFalse, v1alpha1.ReasonInvalidSetting, strings.Join(problems, "; ")+
			" (pods it selects are admitted without the agent, with this reason)")
	}
	sel, err := metav1.LabelSelectorAsSelector(&p.Spec.Selector)
	if err != nil {
		sel = labels.Nothing()
	}
	var lost, won []string // pods where an older profile applies / where newer ones overlap this
	others := map[string]bool{}
	for i := range pods {
		pod := &pods[i]
		if pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed ||
			!sel.Matches(labels.Set(pod.Labels)) {
			continue
		}
		st.SelectedPods++
		if inject.Carrier(pod, sidecar) != "" {
			st.PodsWithAgent++
		}
		matching := inject.Matching(profiles, pod.Labels)
		if len(matching) < 2 {
			continue
		}
		for _, m := range matching {
			if m.Name != p.Name {
				others[m.Name] = true
			}
		}
		if matching[0].Name == p.Name {
			won = append(won, pod.Name)
		} else {
			lost = append(lost, fmt.Sprintf("%s (%s applies)", pod.Name, matching[0].Name))
		}
	}
	switch {
	case len(lost) > 0:
		set(v1alpha1.ConditionOverlapping, metav1.ConditionTrue, v1alpha1.ReasonOlderApplies,
			fmt.Sprintf("%d selected pods are also selected by an older profile, which applies to them: %s", len(lost), list(lost)))
	case len(won) > 0:
		set(v1alpha1.ConditionOverlapping, metav1.ConditionTrue, v1alpha1.ReasonThisApplies,
			fmt.Sprintf("%d selected pods are also selected by newer profiles (%s); this one, the oldest, applies to them: %s",
				len(won), list(slices.Collect(maps.Keys(others))), list(won)))
	default:
		set(v1alpha1.ConditionOverlapping, metav1.ConditionFalse, v1alpha1.ReasonNoOverlap, "no other profile selects the pods this one selects")
	}
	return st
}

// list names at most maxNamed items, sorted.
func list(items []string) string {
	slices.Sort(items)
	if len(items) <= maxNamed {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:maxNamed], ", ") + fmt.Sprintf(" and %d more", len(items)-maxNamed)
}

// Strip is the pod cache's transform: it keeps of each pod what the status and the
// injector read (identity, labels, phase, deletion, and each container's name and
// ports), so that watching every pod of the cluster costs little memory.
func Strip(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	out := &corev1.Pod{
		TypeMeta: pod.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID, ResourceVersion: pod.ResourceVersion,
			Generation: pod.Generation, Labels: pod.Labels, DeletionTimestamp: pod.DeletionTimestamp},
		Status: corev1.PodStatus{Phase: pod.Status.Phase},
	}
	strip := func(cs []corev1.Container) []corev1.Container {
		out := make([]corev1.Container, len(cs))
		for i, c := range cs {
			out[i] = corev1.Container{Name: c.Name, Ports: c.Ports}
		}
		return out
	}
	out.Spec.InitContainers, out.Spec.Containers = strip(pod.Spec.InitContainers), strip(pod.Spec.Containers)
	return out, nil
}
