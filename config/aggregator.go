package config

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// Aggregator discovery modes.
const (
	ModeKubernetes = "kubernetes"
	ModeStatic     = "static"
)

// Aggregator is the configuration of faultline-aggregator.
type Aggregator struct {
	Common
	Listen              string        // dashboard, API and stream
	ProbeListen         string        // /healthz, /readyz, /metrics
	Mode                string        // kubernetes or static; empty picks kubernetes in a cluster
	Agents              List          // static targets
	LocalAgent          bool          // embed an agent sampling this machine
	AgentSelector       string        // label selector of pods that should have an agent
	Namespaces          List          // namespaces to watch; empty: all
	Kubeconfig          string        // out-of-cluster kubeconfig; empty: in-cluster or KUBECONFIG
	LeaseName           string        // the Lease that elects the replica delivering alerts
	BroadcastInterval   time.Duration // time between metrics events
	Token               string        // bearer token for mutating calls from outside loopback
	AlertmanagerURL     string        // Alertmanager to deliver alerts to (v2 API)
	AgentToken          string        // bearer token sent to agents for cluster-wide cleanup
	HistoryRetention    time.Duration // how far back history goes (one-minute points past 15 min)
	MetricsMaxTiles     int           // breaker tiles in one metrics event, worst first
	MetricsMaxWorkloads int           // workloads in one metrics event, worst first
	BroadcastBudget     time.Duration // a broadcast slower than this widens the interval
	SubscriberBuffer    int           // events queued per stream client before it is cut off
	AgentMaxEventBytes  int           // largest event taken from an agent
	AgentMaxGarbage     int           // bytes that are not Server-Sent Events an agent's stream may carry
	Profiling           bool          // serve /debug/pprof/ on the probe listener
	AlertRules          []AlertRule   // file key alert-rules

	// AgentsPinned is set when --agents or FAULTLINE_AGENTS gave the agents, which then
	// win over the file's agents key even when the file changes.
	AgentsPinned bool
}

// AlertRule changes a default alert rule or adds one: file key alert-rules, a list of
// these. Unset fields keep the default rule's value.
type AlertRule struct {
	Name      string    `json:"name"`
	Kind      string    `json:"kind,omitempty"`      // breaker-open, agent-unavailable, agent-missing, cpu, memory, error-rate, cpu-throttling, replicas-missing
	Threshold *float64  `json:"threshold,omitempty"` // percent
	For       *Duration `json:"for,omitempty"`       // e.g. "2m"
	Severity  string    `json:"severity,omitempty"`  // info, warning, critical
	Disabled  *bool     `json:"disabled,omitempty"`
}

// AlertKinds are the kinds an alert rule can have.
var AlertKinds = []string{"breaker-open", "agent-unavailable", "agent-missing", "cpu", "memory", "error-rate", "cpu-throttling", "replicas-missing"}

// Duration is a time.Duration written as text ("90s", "2m") in the file.
type Duration struct{ time.Duration }

// UnmarshalJSON reads "2m"-style text.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration such as \"2m\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// MarshalJSON writes the duration as text.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// DefaultAggregator returns the aggregator's defaults.
func DefaultAggregator() Aggregator {
	return Aggregator{
		Common:              defaultCommon(),
		Listen:              ":3001",
		ProbeListen:         ":8081",
		AgentSelector:       "faultline.dev/agent=true",
		LeaseName:           "faultline-aggregator",
		BroadcastInterval:   time.Second,
		HistoryRetention:    time.Hour,
		MetricsMaxTiles:     50,
		MetricsMaxWorkloads: 25,
		BroadcastBudget:     250 * time.Millisecond,
		SubscriberBuffer:    256,
		AgentMaxEventBytes:  1 << 20,
		AgentMaxGarbage:     4 << 10,
	}
}

func (c *Aggregator) bind(fs *flag.FlagSet) {
	c.Common.bind(fs)
	fs.StringVar(&c.Listen, "listen", c.Listen, "address of the dashboard, API and stream")
	fs.StringVar(&c.ProbeListen, "probe-listen", c.ProbeListen, "address of /healthz, /readyz and /metrics")
	fs.StringVar(&c.Mode, "mode", c.Mode, "agent discovery: kubernetes or static (default kubernetes in a cluster, else static)")
	fs.Var(&c.Agents, "agents", "static agent URLs, comma-separated")
	fs.BoolVar(&c.LocalAgent, "local-agent", c.LocalAgent, "embed an agent sampling this machine")
	fs.StringVar(&c.AgentSelector, "agent-selector", c.AgentSelector, "label selector of pods that should have an agent")
	fs.Var(&c.Namespaces, "namespaces", "namespaces to watch, comma-separated (default all)")
	fs.StringVar(&c.Kubeconfig, "kubeconfig", c.Kubeconfig, "kubeconfig for running outside the cluster")
	fs.StringVar(&c.LeaseName, "lease-name", c.LeaseName, "Lease (in the aggregator's namespace) electing the replica that delivers alerts; one per release")
	fs.DurationVar(&c.BroadcastInterval, "broadcast-interval", c.BroadcastInterval, "time between metrics events (100ms to 60s)")
	fs.StringVar(&c.Token, "token", c.Token, "bearer token accepted for mutating calls from outside loopback")
	fs.StringVar(&c.AlertmanagerURL, "alertmanager-url", c.AlertmanagerURL, "Alertmanager base URL to deliver alerts to")
	fs.StringVar(&c.AgentToken, "agent-token", c.AgentToken, "bearer token sent to agents for POST /v1/cleanup-memory")
	fs.DurationVar(&c.HistoryRetention, "history-retention", c.HistoryRetention, "how far back history goes (15m to 24h)")
	fs.IntVar(&c.MetricsMaxTiles, "metrics-max-tiles", c.MetricsMaxTiles, "most breaker tiles in one metrics event (worst first)")
	fs.IntVar(&c.MetricsMaxWorkloads, "metrics-max-workloads", c.MetricsMaxWorkloads, "most workloads in one metrics event (worst first)")
	fs.DurationVar(&c.BroadcastBudget, "broadcast-budget", c.BroadcastBudget, "a broadcast slower than this widens the broadcast interval")
	fs.BoolVar(&c.Profiling, "profiling", c.Profiling, "serve Go profiles at /debug/pprof/ on the probe listener")
	fs.IntVar(&c.SubscriberBuffer, "subscriber-buffer", c.SubscriberBuffer, "events queued per stream client before it is cut off")
	fs.IntVar(&c.AgentMaxEventBytes, "agent-max-event-bytes", c.AgentMaxEventBytes, "largest event taken from an agent; a larger one drops the agent's stream as misbehaving")
	fs.IntVar(&c.AgentMaxGarbage, "agent-max-garbage-bytes", c.AgentMaxGarbage, "bytes of lines that are not Server-Sent Events an agent's stream may carry before it is dropped as misbehaving")
}

// LoadAggregator reads the aggregator's settings from args (without the program name),
// the environment and the file named by --config, and validates them.
func LoadAggregator(args []string, getenv func(string) string) (Aggregator, error) {
	cfg := DefaultAggregator()
	fs := flag.NewFlagSet("faultline-aggregator", flag.ContinueOnError)
	cfg.bind(fs)
	err := load(fs, args, getenv, fileSection{
		"alert-rules": func(raw json.RawMessage) error { return strictJSON(raw, &cfg.AlertRules) },
	})
	if err != nil {
		return cfg, err
	}
	cfg.AgentsPinned = getenv(EnvName("agents")) != "" || flagGiven(args, "agents")
	if cfg.Mode == "" {
		cfg.Mode = ModeStatic
		if InCluster(getenv) {
			cfg.Mode = ModeKubernetes
		}
	}
	return cfg, cfg.Validate()
}

// AggregatorUsage prints the aggregator's flags.
func AggregatorUsage(w io.Writer) {
	cfg := DefaultAggregator()
	printDefaults("faultline-aggregator", cfg.bind, w)
}

// Validate reports every problem with the settings, each naming its key.
func (c Aggregator) Validate() error {
	errs := c.Common.validate()
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	add(checkListen("listen", c.Listen))
	add(checkListen("probe-listen", c.ProbeListen))
	add(checkOneOf("mode", c.Mode, ModeKubernetes, ModeStatic))
	for _, a := range c.Agents {
		add(checkURL("agents", a))
	}
	add(checkRange("broadcast-interval", c.BroadcastInterval, 100*time.Millisecond, time.Minute))
	if c.AlertmanagerURL != "" {
		add(checkURL("alertmanager-url", c.AlertmanagerURL))
	}
	add(checkRange("history-retention", c.HistoryRetention, 15*time.Minute, 24*time.Hour))
	add(checkRange("broadcast-budget", c.BroadcastBudget, time.Millisecond, time.Minute))
	if c.MetricsMaxTiles < 1 {
		add(fmt.Errorf("metrics-max-tiles: %d must be at least 1", c.MetricsMaxTiles))
	}
	if c.MetricsMaxWorkloads < 1 {
		add(fmt.Errorf("metrics-max-workloads: %d must be at least 1", c.MetricsMaxWorkloads))
	}
	if c.AgentMaxEventBytes < 64<<10 || c.AgentMaxEventBytes > 64<<20 {
		add(fmt.Errorf("agent-max-event-bytes: %d is outside 65536 to 67108864", c.AgentMaxEventBytes))
	}
	if c.AgentMaxGarbage < 0 || c.AgentMaxGarbage > 1<<20 {
		add(fmt.Errorf("agent-max-garbage-bytes: %d is outside 0 to 1048576", c.AgentMaxGarbage))
	}
	if c.SubscriberBuffer < 8 || c.SubscriberBuffer > 1<<16 {
		add(fmt.Errorf("subscriber-buffer: %d is outside 8 to 65536", c.SubscriberBuffer))
	}
	seen := map[string]bool{}
	for i, r := range c.AlertRules {
		key := fmt.Sprintf("alert-rules[%d]", i)
		if r.Name == "" {
			add(fmt.Errorf("%s.name: must be set", key))
		} else if seen[r.Name] {
			add(fmt.Errorf("%s.name: %q appears twice", key, r.Name))
		}
		seen[r.Name] = true
		if r.Kind != "" {
			add(checkOneOf(key+".kind", r.Kind, AlertKinds...))
		}
		if r.Severity != "" {
			add(checkOneOf(key+".severity", r.Severity, "info", "warning", "critical"))
		}
		if r.Threshold != nil && (*r.Threshold < 0 || *r.Threshold > 100) {
			add(fmt.Errorf("%s.threshold: %v is not a percentage", key, *r.Threshold))
		}
		if r.For != nil && (r.For.Duration < 0 || r.For.Duration > 24*time.Hour) {
			add(fmt.Errorf("%s.for: %v is outside 0 to 24h", key, r.For.Duration))
		}
	}
	if c.AgentSelector == "" {
		add(errors.New("agent-selector: must not be empty (it would select every pod)"))
	}
	add(checkName("lease-name", c.LeaseName))
	return errors.Join(errs...)
}

// objectName is a DNS-1123 subdomain, the form of most Kubernetes object names.
var objectName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

// dnsLabel is a DNS-1123 label, the form of namespace and Service names.
var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// flagGiven reports whether args set the named flag.
func flagGiven(args []string, name string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if !strings.HasPrefix(a, "-") {
			continue
		}
		n, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if n == name {
			return true
		}
	}
	return false
}

// AgentsFromFile reads the agents key of a config file, for re-reading it when it
// changes; every URL is checked.
func AgentsFromFile(path string) ([]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var keys struct {
		Agents json.RawMessage `json:"agents"`
	}
	if err := yaml.Unmarshal(raw, &keys); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if len(keys.Agents) == 0 {
		return nil, nil
	}
	text, err := scalar(keys.Agents)
	if err != nil {
		return nil, fmt.Errorf("agents (file %s): %w", path, err)
	}
	var l List
	_ = l.Set(text)
	var errs []error
	for _, a := range l {
		if err := checkURL("agents", a); err != nil {
			errs = append(errs, fmt.Errorf("%w (file %s)", err, path))
		}
	}
	return l, errors.Join(errs...)
}
