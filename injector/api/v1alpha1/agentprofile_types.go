package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AgentProfile says what the faultline agent does in the pods of its namespace that its
// selector matches: where it learns breaker states, how often it samples, its resources
// and the alert thresholds of those pods. The injector applies it when it adds the agent
// to a pod; a pod annotation overrides one field of it (docs/kubernetes.md). When two
// profiles select one pod, the older one applies and both report the overlap.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=faultline
// +kubebuilder:printcolumn:name="Valid",type=string,JSONPath=`.status.conditions[?(@.type=="Valid")].status`
// +kubebuilder:printcolumn:name="Selected",type=integer,JSONPath=`.status.selectedPods`,description="Pods the selector matches"
// +kubebuilder:printcolumn:name="With agent",type=integer,JSONPath=`.status.podsWithAgent`,description="Selected pods that carry the agent"
// +kubebuilder:printcolumn:name="Overlap",type=string,JSONPath=`.status.conditions[?(@.type=="Overlapping")].status`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type AgentProfile struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec AgentProfileSpec `json:"spec"`
	// +optional
	Status AgentProfileStatus `json:"status,omitempty"`
}

// AgentProfileSpec is what a profile asks of the agents of the pods it selects. Every
// field is optional: what is not set keeps the chart's value (agent.* in its values).
type AgentProfileSpec struct {
	// Selector selects pods of the profile's namespace by label. An empty selector ({})
	// selects every pod of the namespace.
	// +required
	Selector metav1.LabelSelector `json:"selector"`

	// Breakers says where the agent learns the application's circuit-breaker states.
	// +optional
	Breakers *Breakers `json:"breakers,omitempty"`

	// SampleInterval is the time between samples, from 100ms to 60s.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Format=duration
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('100ms') && duration(self) <= duration('60s')",message="sampleInterval must be between 100ms and 60s"
	SampleInterval *metav1.Duration `json:"sampleInterval,omitempty"`

	// LogLevel is the agent's log level.
	// +optional
	// +kubebuilder:validation:Enum=trace;debug;info;warn;error
	LogLevel string `json:"logLevel,omitempty"`

	// Resources of the agent sidecar; each quantity set here replaces the chart's.
	// +optional
	Resources *Resources `json:"resources,omitempty"`

	// AlertThresholds sets, for the selected pods, the threshold (percent) of alert rules
	// by rule name, e.g. {cpu-high: 80, error-rate-high: 2}. Rules that have no
	// threshold (breaker-open, agent-unavailable, agent-missing) cannot be named.
	// +optional
	// +kubebuilder:validation:MaxProperties=16
	// +kubebuilder:validation:XValidation:rule="self.all(k, k.matches('^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$'))",message="alert rule names are lower-case letters, digits and '-', at most 63"
	// +kubebuilder:validation:XValidation:rule="self.all(k, !(k in ['breaker-open', 'agent-unavailable', 'agent-missing']))",message="breaker-open, agent-unavailable and agent-missing have no threshold"
	// +kubebuilder:validation:XValidation:rule="self.all(k, self[k] >= 0 && self[k] <= 100)",message="thresholds are percentages, 0 to 100"
	AlertThresholds map[string]int32 `json:"alertThresholds,omitempty"`
}

// Breakers names the agent's breaker sources. Unset, or pushOnly: the application
// pushes its breaker states to the agent's pod-local ingest API and nothing is scraped.
//
// +kubebuilder:validation:XValidation:rule="!(has(self.pushOnly) && self.pushOnly) || (!has(self.prometheus) && !has(self.hystrix))",message="pushOnly excludes prometheus and hystrix"
type Breakers struct {
	// Prometheus scrapes the application's Prometheus endpoint (resilience4j, Envoy, or
	// the agent's mappings).
	// +optional
	Prometheus *PrometheusSource `json:"prometheus,omitempty"`
	// Hystrix reads the application's hystrix.stream.
	// +optional
	Hystrix *HystrixSource `json:"hystrix,omitempty"`
	// PushOnly says the application pushes its breaker states (PUT /v1/breakers/{name}
	// on 127.0.0.1:9801) and the agent scrapes nothing.
	// +optional
	PushOnly bool `json:"pushOnly,omitempty"`
}

// PrometheusSource is the application's Prometheus endpoint: a URL, or a port of the pod
// (the agent then scrapes http://127.0.0.1:<port><path>).
//
// +kubebuilder:validation:XValidation:rule="has(self.url) != has(self.port)",message="set exactly one of url and port"
// +kubebuilder:validation:XValidation:rule="!has(self.path) || has(self.port)",message="path goes with port; put the path in url otherwise"
type PrometheusSource struct {
	// URL of the endpoint, http or https.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHost() != ''",message="url must be an http or https URL"
	URL string `json:"url,omitempty"`
	// Port of the pod the endpoint listens on.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port *int32 `json:"port,omitempty"`
	// Path with port; default /metrics.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^/\S*$`
	Path string `json:"path,omitempty"`
	// Interval between scrapes, from 100ms to 5m; default: every sample.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Format=duration
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('100ms') && duration(self) <= duration('5m')",message="interval must be between 100ms and 5m"
	Interval *metav1.Duration `json:"interval,omitempty"`
}

// HystrixSource is the application's hystrix.stream: a URL, or a port of the pod (the
// agent then reads http://127.0.0.1:<port><path>).
//
// +kubebuilder:validation:XValidation:rule="has(self.url) != has(self.port)",message="set exactly one of url and port"
// +kubebuilder:validation:XValidation:rule="!has(self.path) || has(self.port)",message="path goes with port; put the path in url otherwise"
type HystrixSource struct {
	// URL of the stream, http or https.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHost() != ''",message="url must be an http or https URL"
	URL string `json:"url,omitempty"`
	// Port of the pod the stream is served on.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port *int32 `json:"port,omitempty"`
	// Path with port; default /hystrix.stream.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^/\S*$`
	Path string `json:"path,omitempty"`
}

// Resources are the agent sidecar's CPU and memory requests and limits.
//
// +kubebuilder:validation:XValidation:rule="!has(self.requests) || !has(self.limits) || self.requests.all(k, !(k in self.limits) || quantity(string(self.requests[k])).compareTo(quantity(string(self.limits[k]))) <= 0)",message="a request must not exceed its limit"
type Resources struct {
	// Requests of cpu and memory.
	// +optional
	// +kubebuilder:validation:MaxProperties=2
	// +kubebuilder:validation:XValidation:rule="self.all(k, k in ['cpu', 'memory'])",message="only cpu and memory can be set"
	Requests corev1.ResourceList `json:"requests,omitempty"`
	// Limits of cpu and memory.
	// +optional
	// +kubebuilder:validation:MaxProperties=2
	// +kubebuilder:validation:XValidation:rule="self.all(k, k in ['cpu', 'memory'])",message="only cpu and memory can be set"
	Limits corev1.ResourceList `json:"limits,omitempty"`
}

// Condition types of an AgentProfile.
const (
	// ConditionValid is True when the profile can be applied: its selector parses and
	// the agent accepts every setting it makes. False names the problem.
	ConditionValid = "Valid"
	// ConditionOverlapping is True when another profile of the namespace selects some of
	// the same pods; the message says which profile applies to them (the older one).
	ConditionOverlapping = "Overlapping"
)

// Condition reasons of an AgentProfile.
const (
	ReasonValid           = "Valid"
	ReasonInvalidSelector = "InvalidSelector"
	ReasonInvalidSetting  = "InvalidSetting"
	ReasonNoOverlap       = "NoOverlap"
	ReasonOlderApplies    = "OlderProfileApplies"
	ReasonThisApplies     = "ThisProfileApplies"
)

// AgentProfileStatus is what the injector's controller observed of a profile.
type AgentProfileStatus struct {
	// ObservedGeneration is the generation of the spec this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Valid and Overlapping.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// SelectedPods is how many pods (not finished) the selector matches.
	SelectedPods int32 `json:"selectedPods"`
	// PodsWithAgent is how many of the selected pods carry the faultline agent.
	PodsWithAgent int32 `json:"podsWithAgent"`
}

// AgentProfileList is a list of AgentProfiles.
//
// +kubebuilder:object:root=true
type AgentProfileList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AgentProfile `json:"items"`
}
