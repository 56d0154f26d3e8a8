// Package discovery tells the agent pool which agents exist. A Discoverer sends the full
// set of targets first and then the full set again whenever it changes; it returns when
// its context is done and never closes the channel it was given (the contract of
// Prometheus' discovery package).
package discovery

import (
	"context"
	"time"
)

// Target is one agent to connect to, or one pod that should have an agent and has none.
type Target struct {
	// Key identifies the target across updates: the pod UID in Kubernetes, the URL in
	// static mode.
	Key string
	// URL is the agent's base URL (http://10.0.0.7:9800). Empty when Missing is set.
	URL string
	// Missing says why a pod selected for an agent has none, without trying to connect
	// ("annotation faultline.dev/port=\"web\" is not a port number"); the pool reports
	// it as such.
	Missing string
	// MissingIfSilent, when set, is why the pool reports the target as missing an agent
	// (state "missing") rather than "unavailable" for as long as nothing has ever answered
	// at URL: an agent that answered once and then stopped is unavailable; one that never
	// answered was never there. Kubernetes discovery sets it for every pod, and uses it to
	// try the agent's default port on pods that declare none.
	MissingIfSilent string

	Pod       string
	Namespace string
	Node      string
	Workload  string
	UID       string
	// Profile is the AgentProfile the injector applied to the pod, if any.
	Profile string
	// AlertThresholds are the pod's own alert thresholds by rule name, in the form of the
	// faultline.dev/alert-thresholds annotation ("cpu-high=80,error-rate-high=2").
	AlertThresholds string
}

// Discoverer finds targets.
type Discoverer interface {
	Run(ctx context.Context, out chan<- []Target)
	// Status says whether the targets sent are complete and current; the aggregator is
	// ready once discovery has synced, and shows Error and Stale to users.
	Status() Status
}

// Status of a Discoverer.
type Status struct {
	Mode   string // "kubernetes" or "static"
	Synced bool   // the full set has been read and is being or has been sent
	// Stale is set while the source of truth cannot be reached: the last targets sent
	// are kept and shown as stale, not dropped.
	Stale bool
	Error string // what is wrong, for users ("forbidden: cannot list pods in namespace shop")
	Since time.Time
	// ReplicasError says why the desired replicas of workloads cannot be read; the pods
	// are still discovered.
	ReplicasError string
}

// Workload names a workload the way targets do: its namespace and the name pods derive
// from their controller (a Deployment's name for the pods of its ReplicaSets).
type Workload struct{ Namespace, Name string }

// Replicas is implemented by a Discoverer that knows how many pods each workload should
// have (Kubernetes: the controllers' desired replicas).
type Replicas interface {
	// DesiredReplicas returns the desired pods of every workload whose pods it selects;
	// nil while they cannot be read (Status says why, in ReplicasError).
	DesiredReplicas() map[Workload]int
}
