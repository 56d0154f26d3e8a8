// Package webhook is the injector's admission webhook: it decodes each pod the API server
// sends, lets package inject decide, and answers with a JSON patch and warnings; a pod
// that asked for the agent and cannot have it also gets an Event on its owner.
package webhook

import (
	"context"
	"fmt"
	"strings"

	"github.com/hashicorp/go-hclog"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	kjson "sigs.k8s.io/json"

	"github.com/faultline-dev/faultline/injector/api/v1alpha1"
	"github.com/faultline-dev/faultline/injector/inject"
)

// Paths the webhook configuration's two webhooks call: pods of enabled namespaces, and
// pods elsewhere that ask for the agent themselves.
const (
	PathNamespace = "/inject/namespace"
	PathPod       = "/inject/pod"
)

// ProfileLister lists the AgentProfiles of a namespace (from the injector's cache).
type ProfileLister func(ctx context.Context, namespace string) ([]v1alpha1.AgentProfile, error)

// CachedProfiles lists AgentProfiles from an informer cache, without copying them: the
// injector only reads them.
func CachedProfiles(c client.Reader) ProfileLister {
	return func(ctx context.Context, ns string) ([]v1alpha1.AgentProfile, error) {
		var list v1alpha1.AgentProfileList
		err := c.List(ctx, &list, client.InNamespace(ns), client.UnsafeDisableDeepCopy)
		return list.Items, err
	}
}

// Handler admits pods for one webhook.
type Handler struct {
	Template *inject.Template
	Mode     inject.Mode
	Profiles ProfileLister
	// Excluded namespaces are never injected, even when the API server sends their pods
	// (the webhook configuration's namespaceSelector should keep it from doing so).
	Excluded map[string]bool
	// Recorder records the Event on the owner of a pod that could not be injected.
	Recorder events.EventRecorder
	Log      hclog.Logger
	// Outcomes counts the decisions, by outcome (may be nil).
	Outcomes func(inject.Outcome)
}

var _ admission.Handler = (*Handler)(nil)

// Webhook wraps h for an HTTP server.
func (h *Handler) Webhook() *admission.Webhook { return &admission.Webhook{Handler: h} }

// warningPrefix starts every warning, so kubectl users see who speaks.
const warningPrefix = "faultline: "

// Handle decides about one pod.
func (h *Handler) Handle(ctx context.Context, req admission.Request) admission.Response {
	if req.Kind.Kind != "Pod" || req.Operation != admissionv1.Create {
		return admission.Allowed("faultline injects only into pods being created")
	}
	if h.Excluded[req.Namespace] {
		return admission.Allowed("namespace " + req.Namespace + " is never injected")
	}
	// Decoded as the API machinery decodes (case-sensitive, integers kept), without the
	// scheme lookup a runtime decoder would add: the request says it is a pod.
	pod := &corev1.Pod{}
	if err := kjson.UnmarshalCaseSensitivePreserveInts(req.Object.Raw, pod); err != nil {
		// The API server sent something that is not a pod: admit it untouched.
		h.Log.Warn("cannot decode the pod of an admission request", "namespace", req.Namespace, "uid", req.UID, "error", err)
		return admission.Allowed("not a pod faultline can read")
	}
	if pod.Namespace == "" {
		pod.Namespace = req.Namespace
	}
	var res inject.Result
	profiles, err := h.Profiles(ctx, req.Namespace)
	if err != nil {
		res = h.Template.Inject(pod, h.Mode, nil)
		if res.Outcome == inject.Injected {
			res = h.Template.Refuse(pod, fmt.Sprintf("the AgentProfiles of namespace %s cannot be read: %v", req.Namespace, err))
		}
	} else {
		res = h.Template.Inject(pod, h.Mode, profiles)
	}
	if h.Outcomes != nil {
		h.Outcomes(res.Outcome)
	}
	warnings := make([]string, 0, len(res.Problems)+len(res.Warnings))
	for _, p := range res.Problems {
		warnings = append(warnings, warningPrefix+"agent not injected: "+p)
	}
	for _, w := range res.Warnings {
		warnings = append(warnings, warningPrefix+w)
	}
	name := podName(pod)
	switch res.Outcome {
	case inject.Skipped:
		h.Log.Debug("pod admitted unchanged", "namespace", req.Namespace, "pod", name, "reason", res.Reason)
		return admission.Allowed(res.Reason).WithWarnings(warnings...)
	case inject.Refused:
		h.Log.Info("agent not injected", "namespace", req.Namespace, "pod", name, "reason", res.Pod.Annotations[v1alpha1.AnnotationInjectError])
		// A second admission of the same pod (reinvocation) repeats no Event.
		dryRun := req.DryRun != nil && *req.DryRun
		if !dryRun && pod.Annotations[v1alpha1.AnnotationInjectError] != res.Pod.Annotations[v1alpha1.AnnotationInjectError] {
			h.event(pod, req.Namespace, name, res.Pod.Annotations[v1alpha1.AnnotationInjectError])
		}
	default:
		h.Log.Debug("agent injected", "namespace", req.Namespace, "pod", name, "profile", res.Profile)
	}
	return admission.Patched("", inject.Patch(pod, res)...).WithWarnings(warnings...)
}

// EventReason is the reason of the Event recorded for a pod that could not be injected.
const EventReason = "AgentNotInjected"

// event records a Warning on the pod's controller (the ReplicaSet of a Deployment's pod,
// a Job...), or on the pod itself when it has none: the pod does not exist yet.
func (h *Handler) event(pod *corev1.Pod, namespace, name, reason string) {
	if h.Recorder == nil {
		return
	}
	regarding := &metav1.PartialObjectMetadata{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
	}
	if ref := metav1.GetControllerOfNoCopy(pod); ref != nil {
		regarding.TypeMeta = metav1.TypeMeta{APIVersion: ref.APIVersion, Kind: ref.Kind}
		regarding.ObjectMeta = metav1.ObjectMeta{Namespace: namespace, Name: ref.Name, UID: ref.UID}
	}
	note := fmt.Sprintf("pod %s: faultline agent not injected: %s", name, reason)
	if len(note) > 1024 { // the events.k8s.io limit
		note = note[:1021] + "..."
	}
	h.Recorder.Eventf(regarding, nil, corev1.EventTypeWarning, EventReason, "Inject", "%s", note)
}

// podName is the pod's name, or its generateName prefix before the API server names it.
func podName(pod *corev1.Pod) string {
	if pod.Name != "" {
		return pod.Name
	}
	return strings.TrimSuffix(pod.GenerateName, "-") + "-<generated>"
}
