package inject

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/faultline-dev/faultline/config"
	"github.com/faultline-dev/faultline/injector/api/v1alpha1"
)

// settings are what one pod's agent gets beyond the template: first from its profile,
// then from its annotations, each later value replacing an earlier one.
type settings struct {
	container string            // the application container; "" picks the default
	port      int32             // 0 keeps the template's
	env       map[string]string // agent setting (flag name) -> value; "" removes it
	resources map[resourceKey]setQuantity
	alerts    map[string]float64 // alert rule name -> threshold percent
}

type resourceKey struct {
	kind string // requests or limits
	name corev1.ResourceName
}

// setQuantity is a quantity with where it came from, for messages.
type setQuantity struct {
	q      resource.Quantity
	source string
}

func newSettings() *settings {
	return &settings{env: map[string]string{}, resources: map[resourceKey]setQuantity{}, alerts: map[string]float64{}}
}

// agentAnnotations are the annotations that set one agent setting each.
var agentAnnotations = []struct{ annotation, key string }{
	{v1alpha1.AnnotationSampleInterval, "sample-interval"},
	{v1alpha1.AnnotationPrometheusURL, "prometheus-url"},
	{v1alpha1.AnnotationPrometheusInterval, "prometheus-interval"},
	{v1alpha1.AnnotationHystrixURL, "hystrix-url"},
	{v1alpha1.AnnotationLogLevel, "log-level"},
}

// resourceAnnotations are the annotations that set one quantity of the sidecar each.
var resourceAnnotations = []struct {
	annotation string
	key        resourceKey
}{
	{v1alpha1.AnnotationCPURequest, resourceKey{"requests", corev1.ResourceCPU}},
	{v1alpha1.AnnotationCPULimit, resourceKey{"limits", corev1.ResourceCPU}},
	{v1alpha1.AnnotationMemoryRequest, resourceKey{"requests", corev1.ResourceMemory}},
	{v1alpha1.AnnotationMemoryLimit, resourceKey{"limits", corev1.ResourceMemory}},
}

// known are the faultline.dev annotations the injector understands or writes; any other
// in that prefix is most likely a typo and gets a warning.
var known = func() map[string]bool {
	m := map[string]bool{
		v1alpha1.LabelInject: true, v1alpha1.AnnotationContainer: true, v1alpha1.AnnotationPort: true,
		v1alpha1.AnnotationAlertThresholds: true, v1alpha1.AnnotationProfile: true, v1alpha1.AnnotationInjectError: true,
	}
	for _, a := range agentAnnotations {
		m[a.annotation] = true
	}
	for _, a := range resourceAnnotations {
		m[a.annotation] = true
	}
	return m
}()

// fromAnnotations applies the pod's annotations. It returns one problem per annotation
// that cannot be applied, naming it and its value, and a warning per faultline.dev
// annotation it does not know.
func (s *settings) fromAnnotations(ann map[string]string) (problems, warnings []string) {
	bad := func(key string, err error) {
		problems = append(problems, fmt.Sprintf("annotation %s=%q: %v", key, ann[key], err))
	}
	for _, a := range agentAnnotations {
		if v, ok := ann[a.annotation]; ok {
			if err := config.CheckAgentSetting(a.key, v); err != nil {
				bad(a.annotation, err)
				continue
			}
			s.env[a.key] = v
		}
	}
	for _, a := range resourceAnnotations {
		if v, ok := ann[a.annotation]; ok {
			q, err := parseQuantity(v)
			if err != nil {
				bad(a.annotation, err)
				continue
			}
			s.resources[a.key] = setQuantity{q, "annotation " + a.annotation}
		}
	}
	if v, ok := ann[v1alpha1.AnnotationPort]; ok {
		p, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || p < 1 || p > 65535 {
			bad(v1alpha1.AnnotationPort, fmt.Errorf("not a port number (1-65535)"))
		} else {
			s.port = int32(p)
		}
	}
	if v, ok := ann[v1alpha1.AnnotationContainer]; ok {
		if msgs := validation.IsDNS1123Label(v); len(msgs) > 0 {
			bad(v1alpha1.AnnotationContainer, fmt.Errorf("not a container name: %s", msgs[0]))
		} else {
			s.container = v
		}
	}
	if v, ok := ann[v1alpha1.AnnotationAlertThresholds]; ok {
		t, err := v1alpha1.ParseAlertThresholds(v)
		if err != nil {
			bad(v1alpha1.AnnotationAlertThresholds, err)
		} else {
			maps.Copy(s.alerts, t)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(ann)) {
		if strings.HasPrefix(k, "faultline.dev/") && !known[k] {
			warnings = append(warnings, fmt.Sprintf("annotation %s is not one faultline knows; it is ignored (docs/kubernetes.md lists them)", k))
		}
	}
	return problems, warnings
}

// parseQuantity is resource.ParseQuantity for a sidecar's CPU or memory: positive.
func parseQuantity(v string) (resource.Quantity, error) {
	q, err := resource.ParseQuantity(strings.TrimSpace(v))
	if err != nil {
		return q, fmt.Errorf("not a quantity such as 100m or 64Mi")
	}
	if q.Sign() <= 0 {
		return q, fmt.Errorf("must be more than zero")
	}
	return q, nil
}

// fromProfile applies an AgentProfile. Its fields were checked by the API server (the
// CRD's rules); the agent's own checks run here too, so that a profile the agent would
// refuse is caught before the pod starts. It returns one problem per field the agent
// refuses.
func (s *settings) fromProfile(p *v1alpha1.AgentProfile) []string {
	var problems []string
	set := func(field, key, value string) {
		if err := config.CheckAgentSetting(key, value); err != nil {
			problems = append(problems, fmt.Sprintf("AgentProfile %s: %s %q: %v", p.Name, field, value, err))
			return
		}
		s.env[key] = value
	}
	spec := &p.Spec
	if b := spec.Breakers; b != nil {
		if b.PushOnly {
			s.env["prometheus-url"], s.env["hystrix-url"] = "", ""
		}
		if src := b.Prometheus; src != nil {
			set("spec.breakers.prometheus", "prometheus-url", endpoint(src.URL, src.Port, src.Path, "/metrics"))
			if src.Interval != nil {
				set("spec.breakers.prometheus.interval", "prometheus-interval", src.Interval.Duration.String())
			}
		}
		if src := b.Hystrix; src != nil {
			set("spec.breakers.hystrix", "hystrix-url", endpoint(src.URL, src.Port, src.Path, "/hystrix.stream"))
		}
	}
	if spec.SampleInterval != nil {
		set("spec.sampleInterval", "sample-interval", spec.SampleInterval.Duration.String())
	}
	if spec.LogLevel != "" {
		set("spec.logLevel", "log-level", spec.LogLevel)
	}
	if r := spec.Resources; r != nil {
		for kind, list := range map[string]corev1.ResourceList{"requests": r.Requests, "limits": r.Limits} {
			for name, q := range list {
				s.resources[resourceKey{kind, name}] = setQuantity{q, fmt.Sprintf("AgentProfile %s", p.Name)}
			}
		}
	}
	for rule, v := range spec.AlertThresholds {
		s.alerts[rule] = float64(v)
	}
	return problems
}

// CheckProfile returns what keeps a profile from being applied, one problem per cause:
// a selector that does not parse, a setting the agent refuses, a request over its limit.
// Empty means it is valid.
func CheckProfile(p *v1alpha1.AgentProfile) []string {
	var problems []string
	if _, err := metav1.LabelSelectorAsSelector(&p.Spec.Selector); err != nil {
		problems = append(problems, fmt.Sprintf("AgentProfile %s: spec.selector: %v", p.Name, err))
	}
	s := newSettings()
	problems = append(problems, s.fromProfile(p)...)
	var c corev1.Container
	for _, prob := range s.applyResources(&c) {
		problems = append(problems, fmt.Sprintf("AgentProfile %s: spec.resources: %s", p.Name, prob))
	}
	return problems
}

// endpoint is a breaker source's URL: the URL given, or the pod-local port and path.
func endpoint(url string, port *int32, path, defaultPath string) string {
	if port == nil {
		return url
	}
	if path == "" {
		path = defaultPath
	}
	return fmt.Sprintf("http://127.0.0.1:%d%s", *port, path)
}

// applyResources sets the sidecar's resources and checks each request against its limit.
func (s *settings) applyResources(c *corev1.Container) []string {
	var problems []string
	for k, v := range s.resources {
		list := &c.Resources.Requests
		if k.kind == "limits" {
			list = &c.Resources.Limits
		}
		if *list == nil {
			*list = corev1.ResourceList{}
		}
		(*list)[k.name] = v.q
	}
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, hasReq := c.Resources.Requests[name]
		lim, hasLim := c.Resources.Limits[name]
		if hasReq && hasLim && req.Cmp(lim) > 0 {
			problems = append(problems, fmt.Sprintf("agent %s request %s exceeds its limit %s (%s)", name, req.String(), lim.String(),
				strings.Join(sources(s, name), ", ")))
		}
	}
	return problems
}

// sources says where the request and limit of a resource came from.
func sources(s *settings, name corev1.ResourceName) []string {
	var out []string
	for _, kind := range []string{"requests", "limits"} {
		from := "the chart's agent.resources"
		if v, ok := s.resources[resourceKey{kind, name}]; ok {
			from = v.source
		}
		out = append(out, strings.TrimSuffix(kind, "s")+" from "+from)
	}
	return out
}
