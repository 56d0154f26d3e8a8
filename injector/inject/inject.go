package inject

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"

	"github.com/faultline-dev/faultline/config"
	"github.com/faultline-dev/faultline/injector/api/v1alpha1"
)

// Mode says how a pod reached the injector, which the webhook knows from the path the
// API server called: each of the webhook configuration's two webhooks selects one kind.
type Mode int

const (
	// NamespaceWide: the pod's namespace is labelled faultline.dev/inject=enabled; the pod
	// gets the agent unless it says faultline.dev/inject: "false".
	NamespaceWide Mode = iota
	// PodOptIn: the namespace is not enabled; the pod gets the agent only if it says
	// faultline.dev/inject: "true".
	PodOptIn
)

// Outcome is what happened to a pod.
type Outcome int

const (
	// Skipped: the pod is admitted as it is (not asked for, opted out, or it already
	// carries an agent).
	Skipped Outcome = iota
	// Injected: the pod gets the agent.
	Injected
	// Refused: the pod asked for the agent and cannot have it; it is admitted without
	// it, with the discovery labels and the reason (AnnotationInjectError), so the
	// aggregator lists it as missing its agent.
	Refused
)

func (o Outcome) String() string {
	return [...]string{"skipped", "injected", "refused"}[o]
}

// Result is the decision about one pod.
type Result struct {
	Outcome Outcome
	// Pod is the pod to admit; nil when Skipped.
	Pod *corev1.Pod
	// Reason says why a pod was skipped (for the log).
	Reason string
	// Profile is the AgentProfile applied, if any.
	Profile string
	// Problems say why a pod was refused, one per cause; the webhook returns each as an
	// admission warning.
	Problems []string
	// Warnings are for the user in any outcome: profiles that overlap, unknown
	// annotations.
	Warnings []string
}

// Inject decides about pod (which it does not modify) given how it reached the injector
// and the AgentProfiles of its namespace.
func (t *Template) Inject(pod *corev1.Pod, mode Mode, profiles []v1alpha1.AgentProfile) Result {
	want, problem := asked(pod, mode)
	switch {
	case problem != "":
		return t.refuse(pod, Result{Problems: []string{problem}})
	case !want && mode == NamespaceWide:
		return Result{Reason: "the pod opts out (faultline.dev/inject: \"false\")"}
	case !want:
		return Result{Reason: "the pod does not ask for the agent"}
	}
	if c := Carrier(pod, t.Sidecar.Name); c != "" {
		return Result{Reason: "the pod already carries an agent (container " + c + ")"}
	}

	var r Result
	s := newSettings()
	matching := Matching(profiles, pod.Labels)
	if len(matching) > 0 {
		r.Profile = matching[0].Name
		r.Problems = append(r.Problems, s.fromProfile(matching[0])...)
	}
	if len(matching) > 1 {
		r.Warnings = append(r.Warnings, fmt.Sprintf("AgentProfiles %s select this pod; %s, the oldest, applies",
			strings.Join(names(matching), ", "), r.Profile))
	}
	problems, warnings := s.fromAnnotations(pod.Annotations)
	r.Problems = append(r.Problems, problems...)
	r.Warnings = append(r.Warnings, warnings...)
	if pod.Spec.HostPID {
		r.Problems = append(r.Problems, "the pod uses hostPID, which excludes the shared process namespace the agent samples the pod through")
	}
	if pod.Spec.HostNetwork {
		r.Problems = append(r.Problems, "the pod uses hostNetwork: the agent's port would be the node's, shared with every such pod on it")
	}
	if len(pod.Spec.Containers) == 0 {
		r.Problems = append(r.Problems, "the pod has no containers")
	}
	if len(r.Problems) > 0 {
		return t.refuse(pod, r)
	}

	sidecar := t.Sidecar.DeepCopy()
	app, problem := appContainer(pod, s.container)
	if problem != "" {
		r.Problems = append(r.Problems, problem)
	}
	port := t.port
	if s.port != 0 {
		port = s.port
		for i := range sidecar.Ports {
			if sidecar.Ports[i].Name == PortName {
				sidecar.Ports[i].ContainerPort = port
			}
		}
		setEnv(sidecar, config.EnvName("listen"), ":"+strconv.Itoa(int(port)))
	}
	r.Problems = append(r.Problems, portClashes(pod, port, t.ingest)...)
	for _, e := range sidecar.Env {
		if f := e.ValueFrom; f != nil && f.ResourceFieldRef != nil && f.ResourceFieldRef.ContainerName == AppContainer {
			f.ResourceFieldRef.ContainerName = app
		}
	}
	for _, k := range slices.Sorted(maps.Keys(s.env)) {
		setEnv(sidecar, config.EnvName(k), s.env[k])
	}
	r.Problems = append(r.Problems, s.applyResources(sidecar)...)
	if len(r.Problems) > 0 {
		return t.refuse(pod, r)
	}

	out := pod.DeepCopy()
	t.label(out)
	delete(out.Annotations, v1alpha1.AnnotationInjectError)
	delete(out.Annotations, v1alpha1.AnnotationProfile)
	if r.Profile != "" {
		setAnnotation(out, v1alpha1.AnnotationProfile, r.Profile)
	}
	if len(s.alerts) > 0 {
		setAnnotation(out, v1alpha1.AnnotationAlertThresholds, v1alpha1.FormatAlertThresholds(s.alerts))
	}
	out.Spec.ShareProcessNamespace = ptr.To(true)
	out.Spec.InitContainers = append([]corev1.Container{*sidecar}, out.Spec.InitContainers...)
	r.Outcome, r.Pod = Injected, out
	return r
}

// Refuse is the result for a pod that asked for the agent and cannot have it, for a
// reason outside the pod (the webhook cannot read the profiles).
func (t *Template) Refuse(pod *corev1.Pod, problem string) Result {
	return t.refuse(pod, Result{Problems: []string{problem}})
}

// refuse admits the pod without the agent but with the discovery labels and the reason.
func (t *Template) refuse(pod *corev1.Pod, r Result) Result {
	out := pod.DeepCopy()
	t.label(out)
	setAnnotation(out, v1alpha1.AnnotationInjectError, strings.Join(r.Problems, "; "))
	r.Outcome, r.Pod = Refused, out
	return r
}

// label adds the template's labels to pod.
func (t *Template) label(pod *corev1.Pod) {
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	maps.Copy(pod.Labels, t.Labels)
}

// setAnnotation sets one annotation of pod.
func setAnnotation(pod *corev1.Pod, key, value string) {
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[key] = value
}

// asked says whether the pod wants the agent, from its faultline.dev/inject label or
// annotation and the mode; problem is set for a value that is neither "true" nor "false".
// A "false" anywhere wins.
func asked(pod *corev1.Pod, mode Mode) (want bool, problem string) {
	want = mode == NamespaceWide
	label, hasLabel := pod.Labels[v1alpha1.LabelInject]
	ann, hasAnn := pod.Annotations[v1alpha1.LabelInject]
	for _, v := range []struct {
		what, value string
		set         bool
	}{{"label", label, hasLabel}, {"annotation", ann, hasAnn}} {
		switch {
		case !v.set:
		case v.value == "false":
			return false, ""
		case v.value == "true":
			want = true
		default:
			problem = fmt.Sprintf("%s %s=%q: want \"true\" or \"false\"", v.what, v1alpha1.LabelInject, v.value)
		}
	}
	return want, problem
}

// Carrier names the container that makes pod carry an agent already: one named sidecar
// (the template's), or one with a port named PortName (a sidecar written by hand).
func Carrier(pod *corev1.Pod, sidecar string) string {
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range list {
			if c.Name == sidecar || slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == PortName }) {
				return c.Name
			}
		}
	}
	return ""
}

// defaultContainerAnnotation is kubectl's: the container kubectl logs and exec pick.
const defaultContainerAnnotation = "kubectl.kubernetes.io/default-container"

// appContainer is the application container: the one named, else kubectl's default
// container, else the first.
func appContainer(pod *corev1.Pod, named string) (string, string) {
	has := func(name string) bool {
		return slices.ContainsFunc(pod.Spec.Containers, func(c corev1.Container) bool { return c.Name == name })
	}
	if named != "" {
		if !has(named) {
			return "", fmt.Sprintf("annotation %s=%q: the pod has no container %s", v1alpha1.AnnotationContainer, named, named)
		}
		return named, ""
	}
	if d := pod.Annotations[defaultContainerAnnotation]; d != "" && has(d) {
		return d, ""
	}
	return pod.Spec.Containers[0].Name, ""
}

// portClashes reports the containers of pod that declare the agent's port or its ingest
// port: the agent could not listen, and since the application starts only once the
// agent has, the pod would never run.
func portClashes(pod *corev1.Pod, port, ingest int32) []string {
	var out []string
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range list {
			for _, p := range c.Ports {
				if p.Protocol != "" && p.Protocol != corev1.ProtocolTCP {
					continue
				}
				switch p.ContainerPort {
				case port:
					out = append(out, fmt.Sprintf("container %s declares port %d, the agent's: set annotation %s to a free port",
						c.Name, port, v1alpha1.AnnotationPort))
				case ingest:
					out = append(out, fmt.Sprintf("container %s declares port %d, the agent's pod-local ingest port", c.Name, ingest))
				}
			}
		}
	}
	return out
}

// Matching returns the profiles whose selector matches set, oldest first (by creation
// time, then name): the first is the one that applies. A profile whose selector does not
// parse matches nothing (its status says why).
func Matching(profiles []v1alpha1.AgentProfile, set map[string]string) []*v1alpha1.AgentProfile {
	var out []*v1alpha1.AgentProfile
	for i := range profiles {
		p := &profiles[i]
		sel, err := metav1.LabelSelectorAsSelector(&p.Spec.Selector)
		if err != nil || !sel.Matches(labels.Set(set)) {
			continue
		}
		out = append(out, p)
	}
	slices.SortFunc(out, Older)
	return out
}

// Older orders profiles oldest first, by creation time then name.
func Older(a, b *v1alpha1.AgentProfile) int {
	if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
		return c
	}
	return strings.Compare(a.Name, b.Name)
}

func names(ps []*v1alpha1.AgentProfile) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Name
	}
	return out
}
