// Package wire holds the v1 JSON messages shared by the agent and the aggregator and the
// Server-Sent-Events framing that carries them.
//
// Conventions: snake_case keys, times in RFC 3339 with milliseconds (UTC), durations in
// milliseconds, sizes in bytes, rates per second. A value that is not known is absent
// (null), never zero: a reader must be able to tell "0 %" from "no data".
package wire

import (
	"time"
)

// Version is the wire format version every message carries in its "v" field.
const Version = 1

// Event names on agent and aggregator streams.
const (
	EventSnapshot       = "snapshot"
	EventMetrics        = "metrics"
	EventCircuitBreaker = "circuit-breaker"
	EventAlert          = "alert"
	EventOptimization   = "optimization"
	EventAgent          = "agent"
)

// Agent identifies one agent: in Kubernetes one pod, outside it one host.
type Agent struct {
	V         int    `json:"v"`
	ID        string `json:"id"`
	Pod       string `json:"pod,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	UID       string `json:"uid,omitempty"`
	Node      string `json:"node,omitempty"`
	IP        string `json:"ip,omitempty"`
	Workload  string `json:"workload,omitempty"`
	Version   string `json:"version"`
	Mode      string `json:"mode"` // pod, cgroup or host
	Started   Time   `json:"started"`
}

// Sample is one reading of every collector. A section is nil when its collector could not
// run; the collector's entry in Collectors then says why.
type Sample struct {
	V          int         `json:"v"`
	Time       Time        `json:"time"`
	IntervalMs float64     `json:"interval_ms"`
	CPU        *CPU        `json:"cpu,omitempty"`
	Memory     *Memory     `json:"memory,omitempty"`
	Network    *Network    `json:"network,omitempty"`
	Process    *Process    `json:"process,omitempty"`
	Load       *Load       `json:"load,omitempty"`
	Throughput *Throughput `json:"throughput,omitempty"`
	Self       *Self       `json:"self,omitempty"`
	Collectors []Collector `json:"collectors"`
}

// CPU is the CPU used by the unit of interest (pod, cgroup or host) over the last interval.
type CPU struct {
	Cores          float64     `json:"cores"`                 // cores used on average
	LimitCores     *float64    `json:"limit_cores,omitempty"` // nil: no limit known
	PercentOfLimit *float64    `json:"percent_of_limit,omitempty"`
	Percent        *float64    `json:"percent,omitempty"` // host mode: share of all cores, 0-100
	Throttling     *Throttling `json:"throttling,omitempty"`
}

// Throttling comes from the cgroup cpu.stat (v2 throttled_usec, v1 throttled_time); counts are deltas over the last interval.
type Throttling struct {
	Periods          uint64  `json:"periods"`
	ThrottledPeriods uint64  `json:"throttled_periods"`
	ThrottledMs      float64 `json:"throttled_ms"`
	Percent          float64 `json:"percent"` // throttled periods / periods * 100
}

// Memory is the memory of the unit of interest.
type Memory struct {
	WorkingSetBytes uint64   `json:"working_set_bytes"`
	RSSBytes        *uint64  `json:"rss_bytes,omitempty"`
	LimitBytes      *uint64  `json:"limit_bytes,omitempty"` // nil: no limit known
	PercentOfLimit  *float64 `json:"percent_of_limit,omitempty"`
	TotalBytes      *uint64  `json:"total_bytes,omitempty"` // host mode: physical memory
}

// Network is traffic over the last interval, summed over non-loopback interfaces.
type Network struct {
	RxBytesPerSec float64 `json:"rx_bytes_per_sec"`
	TxBytesPerSec float64 `json:"tx_bytes_per_sec"`
}

// Process counts the processes of the unit of interest.
type Process struct {
	Processes int `json:"processes"`
	Threads   int `json:"threads"`
	OpenFDs   int `json:"open_fds"`
}

// Load is the host load average.
type Load struct {
	Load1  float64 `json:"load1"`
	Load5  float64 `json:"load5"`
	Load15 float64 `json:"load15"`
}

// Throughput is what the application serves, as it reports it or as derived from breaker
// call counters (Source says which).
type Throughput struct {
	RequestsPerSec float64  `json:"requests_per_sec"`
	ErrorsPerSec   float64  `json:"errors_per_sec"`
	Latency        *Latency `json:"latency,omitempty"`
	Source         string   `json:"source"` // "app" or "breakers"
}

// Latency holds latency percentiles in milliseconds.
type Latency struct {
	P50Ms float64 `json:"p50_ms"`
	P90Ms float64 `json:"p90_ms"`
	P99Ms float64 `json:"p99_ms"`
}

// Self is the agent's own footprint, reported apart from the pod it watches.
type Self struct {
	CPUCores float64 `json:"cpu_cores"`
	RSSBytes uint64  `json:"rss_bytes"`
}

// Collector is the outcome of one collector or breaker source in one sample.
type Collector struct {
	Name       string  `json:"name"`
	OK         bool    `json:"ok"`
	DurationMs float64 `json:"duration_ms"`
	// Status is "ok", a short health line ("last scrape 1.2 s ago, 14 breakers") or
	// "unavailable: <reason>".
	Status string `json:"status"`
}

// BreakerState is the normalised state of a circuit breaker.
type BreakerState string

const (
	StateClosed     BreakerState = "closed"
	StateOpen       BreakerState = "open"
	StateHalfOpen   BreakerState = "half_open"
	StateDisabled   BreakerState = "disabled"
	StateForcedOpen BreakerState = "forced_open"
)

// Valid reports whether s is one of the five states.
func (s BreakerState) Valid() bool {
	switch s {
	case StateClosed, StateOpen, StateHalfOpen, StateDisabled, StateForcedOpen:
		return true
	}
	return false
}

// Open reports whether the breaker rejects calls in state s.
func (s BreakerState) Open() bool { return s == StateOpen || s == StateForcedOpen }

// Breaker is one circuit breaker as the agent knows it.
type Breaker struct {
	V            int          `json:"v"`
	Name         string       `json:"name"`
	State        BreakerState `json:"state"`
	FailureRate  *float64     `json:"failure_rate"`   // percent; null: not enough calls yet
	SlowCallRate *float64     `json:"slow_call_rate"` // percent; null: unknown
	Calls        Calls        `json:"calls"`
	// CallsWindowMs is set when Calls count a rolling window of this length (Hystrix)
	// rather than every call since the breaker started.
	CallsWindowMs *float64    `json:"calls_window_ms,omitempty"`
	RatePerSec    *float64    `json:"rate_per_sec"` // calls per second; null: unknown
	Latency       *Latency    `json:"latency,omitempty"`
	Since         Time        `json:"since"` // when State was entered (or first seen)
	Source        string      `json:"source"`
	Thresholds    *Thresholds `json:"thresholds,omitempty"`
	// Stale is set when the source that reported the breaker has failed; LastSeen says
	// when it was last reported fresh.
	Stale    bool `json:"stale,omitempty"`
	LastSeen Time `json:"last_seen"`
}

// Calls are cumulative call counters since the breaker (or its source) started.
type Calls struct {
	Succeeded uint64 `json:"succeeded"`
	Failed    uint64 `json:"failed"`
	Rejected  uint64 `json:"rejected"`
	TimedOut  uint64 `json:"timed_out"`
}

// Total is every call the breaker saw, rejected ones included.
func (c Calls) Total() uint64 { return c.Succeeded + c.Failed + c.Rejected + c.TimedOut }

// Thresholds are the breaker's configuration, when the source reveals it.
type Thresholds struct {
	FailureRate      *float64 `json:"failure_rate,omitempty"`   // percent that opens it
	SlowCallRate     *float64 `json:"slow_call_rate,omitempty"` // percent that opens it
	SlowCallMs       *float64 `json:"slow_call_ms,omitempty"`
	MinimumCalls     *uint64  `json:"minimum_calls,omitempty"`
	OpenMs           *float64 `json:"open_ms,omitempty"` // time spent open before half-open
	ConsecutiveFails *uint64  `json:"consecutive_failures,omitempty"`
}

// Transition is a breaker changing state; it is the payload of a circuit-breaker event.
type Transition struct {
	V       int          `json:"v"`
	Agent   string       `json:"agent"`          // Agent.ID
	From    BreakerState `json:"from,omitempty"` // empty: first time seen
	To      BreakerState `json:"to"`
	Time    Time         `json:"time"`
	Breaker Breaker      `json:"breaker"`
}

// Snapshot is an agent's whole state: the payload of the agent's snapshot and metrics
// events and of GET /v1/snapshot.
type Snapshot struct {
	V        int       `json:"v"`
	Agent    Agent     `json:"agent"`
	Seq      uint64    `json:"seq"`
	Sample   *Sample   `json:"sample"` // nil until the first sample is taken
	Breakers []Breaker `json:"breakers"`
}

// Severity of an alert or suggestion.
type Severity string

const (
	SeverityInfo     Severity = "info"
	SeverityWarning  Severity = "warning"
	SeverityCritical Severity = "critical"
)

// Rank orders severities: critical 3, warning 2, anything else 1.
func (s Severity) Rank() int {
	switch s {
	case SeverityCritical:
		return 3
	case SeverityWarning:
		return 2
	}
	return 1
}

// Target names what an alert or suggestion is about; empty fields widen the scope.
type Target struct {
	Namespace string `json:"namespace,omitempty"`
	Workload  string `json:"workload,omitempty"`
	Pod       string `json:"pod,omitempty"`
	Agent     string `json:"agent,omitempty"`
	Breaker   string `json:"breaker,omitempty"`
}

// Alert is a rule firing, and later resolving, on a target.
type Alert struct {
	V        int               `json:"v"`
	ID       string            `json:"id"` // stable for the rule and target: dedup key
	Rule     string            `json:"rule"`
	State    string            `json:"state"` // "firing" or "resolved"
	Severity Severity          `json:"severity"`
	Summary  string            `json:"summary"`
	Target   Target            `json:"target"`
	Value    *float64          `json:"value,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	Started  Time              `json:"started"`
	Resolved *Time             `json:"resolved,omitempty"`
}

// Alert states.
const (
	AlertFiring   = "firing"
	AlertResolved = "resolved"
)

// Suggestion is an action worth taking, with the evidence behind it.
type Suggestion struct {
	V        int      `json:"v"`
	ID       string   `json:"id"`
	Rule     string   `json:"rule"`
	Severity Severity `json:"severity"`
	Target   Target   `json:"target"`
	Summary  string   `json:"summary"`
	Evidence []string `json:"evidence"`
	Action   string   `json:"action"`
	Since    Time     `json:"since"`
}

// Optimization is the aggregator's live operating parameters.
type Optimization struct {
	V                   int                  `json:"v"`
	SampleIntervalMs    float64              `json:"sample_interval_ms"`
	BroadcastIntervalMs float64              `json:"broadcast_interval_ms"`
	BaseBroadcastMs     float64              `json:"base_broadcast_interval_ms"`
	HistoryRetentionMs  float64              `json:"history_retention_ms"`
	SubscriberBuffer    int                  `json:"subscriber_buffer"`
	Subscribers         int                  `json:"subscribers"`
	SubscribersDropped  uint64               `json:"subscribers_dropped"`
	Coalescing          bool                 `json:"coalescing"` // broadcast widened under load
	LastBroadcastMs     float64              `json:"last_broadcast_ms"`
	BroadcastBudgetMs   float64              `json:"broadcast_budget_ms"`
	Changes             []OptimizationChange `json:"changes"`
}

// OptimizationChange records one change of an operating parameter and why.
type OptimizationChange struct {
	Time      Time   `json:"time"`
	Parameter string `json:"parameter"`
	From      string `json:"from"`
	To        string `json:"to"`
	Reason    string `json:"reason"`
}

// Time is a time.Time that encodes as RFC 3339 with milliseconds in UTC.
type Time struct{ time.Time }

// TimeFormat is the layout of every time on the wire.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// NewTime truncates t to milliseconds, as it will be after a round trip.
func NewTime(t time.Time) Time { return Time{t.UTC().Truncate(time.Millisecond)} }

// Now is the current time as it goes on the wire.
func Now() Time { return NewTime(time.Now()) }

// MarshalJSON writes the time, or null for the zero time.
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	b := make([]byte, 0, len(TimeFormat)+2)
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, TimeFormat)
	return append(b, '"'), nil
}

// UnmarshalJSON reads an RFC 3339 time (any precision) or null.
func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*t = Time{}
		return nil
	}
	var tt time.Time
	if err := tt.UnmarshalJSON(b); err != nil {
		return err
	}
	*t = NewTime(tt)
	return nil
}

// Ms converts a duration to the wire's milliseconds.
func Ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Ptr returns a pointer to v, for the optional fields above.
func Ptr[T any](v T) *T { return &v }

// WireVersion returns the message's "v" field; Decode checks it.
func (m Agent) WireVersion() int        { return m.V }
func (m Sample) WireVersion() int       { return m.V }
func (m Breaker) WireVersion() int      { return m.V }
func (m Transition) WireVersion() int   { return m.V }
func (m Snapshot) WireVersion() int     { return m.V }
func (m Alert) WireVersion() int        { return m.V }
func (m Suggestion) WireVersion() int   { return m.V }
func (m Optimization) WireVersion() int { return m.V }
