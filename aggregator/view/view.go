// Package view defines the aggregator's merged, cluster-wide view: the JSON the dashboard,
// the polling endpoints and the aggregator's stream carry. The wire package is the
// agent-to-aggregator contract; this package is the aggregator-to-browser one. Every
// top-level message carries "v": 1 like the wire messages.
package view

import "github.com/faultline-dev/faultline/internal/wire"

// Agent states as users see them.
const (
	AgentConnecting  = "connecting"
	AgentConnected   = "connected"
	AgentUnavailable = "unavailable" // Reason says why
	AgentMissing     = "missing"     // a pod selected for an agent has none; Reason says why
	// AgentAbsent is a row standing for a pod that a workload's desired replicas call for
	// and that is not there (not created, not Ready, or gone); Kubernetes mode only.
	AgentAbsent = "absent"
	// AgentRemoved is sent once in an agent event when discovery drops the agent; it
	// never appears in a list.
	AgentRemoved = "removed"
)

// Cluster is the whole merged state: the payload of the stream's snapshot event and of
// GET /api/v1/fault-tolerance/status (with Pods and per-pod breaker detail).
type Cluster struct {
	V          int           `json:"v"`
	Time       wire.Time     `json:"time"`
	Mode       string        `json:"mode"` // kubernetes or static
	Discovery  Discovery     `json:"discovery"`
	Health     Health        `json:"health"`
	Totals     Totals        `json:"totals"`
	Namespaces []Namespace   `json:"namespaces"`
	Workloads  []Workload    `json:"workloads"`
	Pods       []Pod         `json:"pods,omitempty"`
	Breakers   []BreakerTile `json:"breakers"`
	Agents     []AgentStatus `json:"agents,omitempty"`
	Alerts     []wire.Alert  `json:"alerts"` // firing now
}

// Metrics is the payload of the metrics event, sent every broadcast interval: what
// changes every second, without per-pod detail (fetch that by polling).
type Metrics struct {
	V          int           `json:"v"`
	Time       wire.Time     `json:"time"`
	Health     Health        `json:"health"`
	Totals     Totals        `json:"totals"`
	Namespaces []Namespace   `json:"namespaces"`
	Workloads  []Workload    `json:"workloads"`
	Breakers   []BreakerTile `json:"breakers"` // PerPod omitted
	// WorkloadsTotal and BreakersTotal count every workload and tile; Workloads and
	// Breakers hold at most the configured number, worst first, so that the event stays
	// small in a large fleet (poll the fault-tolerance endpoints for the rest).
	WorkloadsTotal int `json:"workloads_total"`
	BreakersTotal  int `json:"breakers_total"`
}

// Discovery is the state of agent discovery.
type Discovery struct {
	Mode   string    `json:"mode"`
	Synced bool      `json:"synced"`
	Stale  bool      `json:"stale"`
	Error  string    `json:"error,omitempty"`
	Since  wire.Time `json:"since"`
	// ReplicasError says why the desired replicas of workloads cannot be read
	// (Kubernetes mode); "k of n" then counts the pods seen.
	ReplicasError string `json:"replicas_error,omitempty"`
}

// Health is the 0-100 score with the reasons it is not 100.
type Health struct {
	Score     int             `json:"score"`
	Breakdown []HealthPenalty `json:"breakdown"` // what took points off, largest first
}

// HealthPenalty is one reason the score is below 100.
type HealthPenalty struct {
	Component string  `json:"component"` // breakers, alerts, resources, agents
	Points    float64 `json:"points"`    // points taken off
	Detail    string  `json:"detail"`    // "2 of 14 breakers open"
}

// Totals sum a scope (the cluster, a namespace).
type Totals struct {
	Agents            int      `json:"agents"`
	AgentsConnected   int      `json:"agents_connected"`
	AgentsUnavailable int      `json:"agents_unavailable"`
	AgentsMissing     int      `json:"agents_missing"`
	CPUCores          float64  `json:"cpu_cores"`
	CPULimitCores     *float64 `json:"cpu_limit_cores,omitempty"` // nil unless every pod has a limit
	MemoryBytes       uint64   `json:"memory_bytes"`
	MemoryLimitBytes  *uint64  `json:"memory_limit_bytes,omitempty"`
	RequestsPerSec    float64  `json:"requests_per_sec"`
	ErrorsPerSec      float64  `json:"errors_per_sec"`
	Breakers          int      `json:"breakers"`
	BreakersOpen      int      `json:"breakers_open"`
	BreakersHalfOpen  int      `json:"breakers_half_open"`
	AlertsFiring      int      `json:"alerts_firing"`
}

// Namespace is one namespace's totals.
type Namespace struct {
	Name   string `json:"name"`
	Totals Totals `json:"totals"`
}

// Stat is a statistic over the pods of a workload; nil fields mean no pod reported it.
type Stat struct {
	Max  *float64 `json:"max"`
	Mean *float64 `json:"mean"`
	Sum  *float64 `json:"sum"`
}

// Workload is one Deployment, StatefulSet, DaemonSet or Job (or a single host).
type Workload struct {
	Namespace      string  `json:"namespace"`
	Name           string  `json:"name"`
	Pods           int     `json:"pods"`
	PodsConnected  int     `json:"pods_connected"`
	CPUCores       Stat    `json:"cpu_cores"`
	CPUPercent     Stat    `json:"cpu_percent_of_limit"`
	MemoryBytes    Stat    `json:"memory_bytes"`
	MemoryPercent  Stat    `json:"memory_percent_of_limit"`
	RequestsPerSec float64 `json:"requests_per_sec"`
	ErrorsPerSec   float64 `json:"errors_per_sec"`
	BreakersOpen   int     `json:"breakers_open"`
	// DesiredPods is the replicas the workload's controller wants (Deployment,
	// StatefulSet and ReplicaSet replicas, a DaemonSet's desired scheduled pods); nil
	// when not known (single-node mode, Jobs, bare pods).
	DesiredPods *int `json:"desired_pods,omitempty"`
}

// Pod is one agent's latest readings.
type Pod struct {
	Agent          string           `json:"agent"` // agent id
	Pod            string           `json:"pod"`
	Namespace      string           `json:"namespace"`
	Workload       string           `json:"workload"`
	Node           string           `json:"node"`
	State          string           `json:"state"` // agent state
	CPUCores       *float64         `json:"cpu_cores"`
	CPUPercent     *float64         `json:"cpu_percent_of_limit"`
	MemoryBytes    *uint64          `json:"memory_bytes"`
	MemoryPercent  *float64         `json:"memory_percent_of_limit"`
	ThrottledPct   *float64         `json:"cpu_throttled_percent"`
	RxBytesPerSec  *float64         `json:"rx_bytes_per_sec"`
	TxBytesPerSec  *float64         `json:"tx_bytes_per_sec"`
	RequestsPerSec *float64         `json:"requests_per_sec"`
	ErrorsPerSec   *float64         `json:"errors_per_sec"`
	Breakers       int              `json:"breakers"`
	BreakersOpen   int              `json:"breakers_open"`
	Collectors     []wire.Collector `json:"collectors,omitempty"`
	LastSeen       wire.Time        `json:"last_seen"`
	// Stale is set when the pod's latest data is older than three of its sample
	// intervals while its agent is connected: it is not being read fresh.
	Stale bool `json:"stale,omitempty"`
	// Sample is the agent's latest sample as it sent it, in the detailed answer of
	// GET /api/v1/fault-tolerance/status only.
	Sample *wire.Sample `json:"sample,omitempty"`
}

// BreakerTile is one breaker name in one workload, merged over the workload's pods: the
// unit of the dashboard's Hystrix-style grid.
type BreakerTile struct {
	Namespace string            `json:"namespace"`
	Workload  string            `json:"workload"`
	Name      string            `json:"name"`
	State     wire.BreakerState `json:"state"` // the worst state over the pods
	Pods      int               `json:"pods"`  // pods reporting this breaker
	Open      int               `json:"open"`  // of which open or forced open (k)
	// DesiredPods is the workload's desired replicas when known: "k of n" counts n as
	// the larger of it and Pods, so that a pod that vanished or never came up counts.
	DesiredPods *int `json:"desired_pods,omitempty"`
	HalfOpen    int  `json:"half_open"`
	// FailureRate is the call-weighted mean over pods that know it; nil when none does.
	FailureRate *float64     `json:"failure_rate"`
	RatePerSec  float64      `json:"rate_per_sec"` // summed request volume
	Calls       wire.Calls   `json:"calls"`        // summed counters
	Since       wire.Time    `json:"since"`        // latest transition on any pod
	Stale       bool         `json:"stale"`        // some pod's report is stale
	Sources     []string     `json:"sources"`
	PerPod      []PodBreaker `json:"per_pod,omitempty"`
	// Timeline is what the breaker did over a window, when one was asked for.
	Timeline *Timeline `json:"timeline,omitempty"`
}

// PodBreaker is one pod's view of a breaker.
type PodBreaker struct {
	Agent    string       `json:"agent"`
	Pod      string       `json:"pod"`
	Breaker  wire.Breaker `json:"breaker"`
	Timeline *Timeline    `json:"timeline,omitempty"`
}

// Timeline is what a breaker did over a window, from the transitions the aggregator
// received: on one pod, or for a workload's tile (its worst state over the pods).
type Timeline struct {
	From wire.Time `json:"from"` // start of the window (not before the aggregator started)
	To   wire.Time `json:"to"`
	// Transitions counts the state changes (for a tile, on all its pods).
	Transitions int `json:"transitions"`
	// OpenMs and HalfOpenMs are the time spent open (or forced open) and half-open; for a
	// tile, the time its worst state was that.
	OpenMs        float64 `json:"open_ms"`
	HalfOpenMs    float64 `json:"half_open_ms"`
	LongestOpenMs float64 `json:"longest_open_ms"`
	// MeanOpenToClosedMs is the mean time from opening back to closed, over the openings
	// within the window that closed again within it (Recoveries); nil when none did.
	MeanOpenToClosedMs *float64 `json:"mean_open_to_closed_ms"`
	Recoveries         int      `json:"recoveries"`
	// Openings are the openings within the window, oldest first, with what tripped them.
	Openings []Opening `json:"openings"`
	// Periods are the spans spent in a state other than closed, oldest first; a period
	// still going on ends at To with Ongoing set.
	Periods []Period `json:"periods"`
	// KnownFrom is set when the breaker changed state more often than is kept, so that
	// its state before this time is not known.
	KnownFrom *wire.Time `json:"known_from,omitempty"`
}

// Opening is a breaker opening and what it saw when it did.
type Opening struct {
	Time        wire.Time         `json:"time"`
	Pod         string            `json:"pod"`
	From        wire.BreakerState `json:"from"`
	FailureRate *float64          `json:"failure_rate"` // null: the source did not say
	Calls       wire.Calls        `json:"calls"`
}

// Period is a span spent in one state.
type Period struct {
	From    wire.Time         `json:"from"`
	To      wire.Time         `json:"to"`
	State   wire.BreakerState `json:"state"`
	Ongoing bool              `json:"ongoing,omitempty"`
}

// AgentStatus is one agent (or one pod missing its agent): the payload of the agent event
// and the rows of GET /api/v1/agents.
type AgentStatus struct {
	V         int         `json:"v"`
	Key       string      `json:"key"`
	URL       string      `json:"url,omitempty"`
	State     string      `json:"state"`
	Reason    string      `json:"reason,omitempty"`
	Since     wire.Time   `json:"since"`
	LastSeen  wire.Time   `json:"last_seen"`
	Pod       string      `json:"pod,omitempty"`
	Namespace string      `json:"namespace,omitempty"`
	Workload  string      `json:"workload,omitempty"`
	Node      string      `json:"node,omitempty"`
	Agent     *wire.Agent `json:"agent,omitempty"` // identity the agent reported, once connected
	// Profile is the AgentProfile the injector applied to the pod.
	Profile string `json:"profile,omitempty"`
	// AlertThresholds are the pod's own alert thresholds (percent) by rule name, from its
	// profile or annotation; they replace the rules' for this pod.
	AlertThresholds map[string]float64 `json:"alert_thresholds,omitempty"`
}

// BreakerEvent is the payload of the aggregator's circuit-breaker event: an agent's
// transition with where it happened and the tile it changed.
type BreakerEvent struct {
	V          int             `json:"v"`
	Namespace  string          `json:"namespace"`
	Workload   string          `json:"workload"`
	Pod        string          `json:"pod"`
	Transition wire.Transition `json:"transition"`
	Tile       BreakerTile     `json:"tile"` // the workload's tile after the transition
}

// WireVersion returns the message's "v" field.
func (m Cluster) WireVersion() int      { return m.V }
func (m Metrics) WireVersion() int      { return m.V }
func (m AgentStatus) WireVersion() int  { return m.V }
func (m BreakerEvent) WireVersion() int { return m.V }
