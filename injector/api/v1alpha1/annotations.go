package v1alpha1

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Labels and annotations of the injection, on namespaces and pods. Users set the inputs
// on a namespace or a pod template; the injector writes the outputs on the pods it admits
// and the aggregator reads them (docs/kubernetes.md lists them all).
const (
	// LabelInject on a namespace, "enabled", sends every new pod of the namespace to the
	// injector. On a pod, as a label or an annotation, "true" asks for the agent in any
	// namespace and "false" refuses it in an enabled one.
	LabelInject = "faultline.dev/inject"
	// NamespaceEnabled is the value of LabelInject on a namespace whose pods get the agent.
	NamespaceEnabled = "enabled"

	// AnnotationContainer names the application container whose CPU and memory limits
	// the agent reports usage against; default: kubectl.kubernetes.io/default-container,
	// else the first container.
	AnnotationContainer = "faultline.dev/container"
	// AnnotationPort is the agent's port (default 9800), for pods whose application uses
	// 9800 itself. Discovery reads it too.
	AnnotationPort = "faultline.dev/port"
	// AnnotationSampleInterval is the agent's sample-interval (e.g. 500ms).
	AnnotationSampleInterval = "faultline.dev/sample-interval"
	// AnnotationPrometheusURL is the agent's prometheus-url: the application's metrics
	// endpoint to scrape for breaker states.
	AnnotationPrometheusURL = "faultline.dev/prometheus-url"
	// AnnotationPrometheusInterval is the agent's prometheus-interval.
	AnnotationPrometheusInterval = "faultline.dev/prometheus-interval"
	// AnnotationHystrixURL is the agent's hystrix-url: the application's hystrix.stream.
	AnnotationHystrixURL = "faultline.dev/hystrix-url"
	// AnnotationLogLevel is the agent's log-level.
	AnnotationLogLevel = "faultline.dev/log-level"
	// AnnotationCPURequest, AnnotationCPULimit, AnnotationMemoryRequest and
	// AnnotationMemoryLimit set one quantity of the sidecar's resources.
	AnnotationCPURequest    = "faultline.dev/cpu-request"
	AnnotationCPULimit      = "faultline.dev/cpu-limit"
	AnnotationMemoryRequest = "faultline.dev/memory-request"
	AnnotationMemoryLimit   = "faultline.dev/memory-limit"
	// AnnotationAlertThresholds sets the pod's alert thresholds by rule name, as
	// "cpu-high=80,error-rate-high=2" (percent). The injector writes the thresholds of
	// the pod's profile merged with the pod's own; the aggregator applies them.
	AnnotationAlertThresholds = "faultline.dev/alert-thresholds"

	// AnnotationProfile is written by the injector: the AgentProfile applied to the pod.
	AnnotationProfile = "faultline.dev/profile"
	// AnnotationInjectError is written by the injector on a pod it was asked to inject
	// and did not: why. The pod keeps the discovery label, so the aggregator lists it
	// among the pods missing an agent, with this reason.
	AnnotationInjectError = "faultline.dev/inject-error"
)

// NoThreshold are the alert rules that have no threshold to set.
var NoThreshold = []string{"breaker-open", "agent-unavailable", "agent-missing"}

// ParseAlertThresholds reads the AnnotationAlertThresholds form, "cpu-high=80,error-rate-high=2.5":
// alert rule names with a percentage each. The injector checks the annotation with it
// and the aggregator reads it.
func ParseAlertThresholds(v string) (map[string]float64, error) {
	out := map[string]float64{}
	for item := range strings.SplitSeq(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, num, ok := strings.Cut(item, "=")
		name, num = strings.TrimSpace(name), strings.TrimSpace(num)
		if !ok {
			return nil, fmt.Errorf("%q is not rule=percent", item)
		}
		if msgs := validation.IsDNS1123Label(name); len(msgs) > 0 {
			return nil, fmt.Errorf("%q is not an alert rule name", name)
		}
		if slices.Contains(NoThreshold, name) {
			return nil, fmt.Errorf("rule %s has no threshold", name)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("rule %s appears twice", name)
		}
		f, err := strconv.ParseFloat(num, 64)
		if err != nil || !(f >= 0 && f <= 100) {
			return nil, fmt.Errorf("%s=%s: the threshold is a percentage, 0 to 100", name, num)
		}
		out[name] = f
	}
	return out, nil
}

// FormatAlertThresholds writes thresholds the way ParseAlertThresholds reads them,
// sorted by name.
func FormatAlertThresholds(t map[string]float64) string {
	parts := make([]string, 0, len(t))
	for _, k := range slices.Sorted(maps.Keys(t)) {
		parts = append(parts, k+"="+strconv.FormatFloat(t[k], 'f', -1, 64))
	}
	return strings.Join(parts, ",")
}
