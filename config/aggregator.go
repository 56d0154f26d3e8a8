package config

import (
	"errors"
	"flag"
	"time"
)

// Aggregator discovery modes.
const (
	ModeKubernetes = "kubernetes"
	ModeStatic     = "static"
)

// Aggregator is the configuration of faultline-aggregator.
type Aggregator struct {
	Common
	Listen            string        // dashboard, API and stream
	ProbeListen       string        // /healthz, /readyz, /metrics
	Mode              string        // kubernetes or static; empty picks kubernetes in a cluster
	Agents            List          // static targets
	LocalAgent        bool          // embed an agent sampling this machine
	AgentSelector     string        // label selector of pods that should have an agent
	Namespaces        List          // namespaces to watch; empty: all
	Kubeconfig        string        // out-of-cluster kubeconfig; empty: in-cluster or KUBECONFIG
	BroadcastInterval time.Duration // time between metrics events
	Token             string        // bearer token for mutating calls from outside loopback
	AlertmanagerURL   string        // Alertmanager to deliver alerts to (v2 API)
}

// DefaultAggregator returns the aggregator's defaults.
func DefaultAggregator() Aggregator {
	return Aggregator{
		Common:            defaultCommon(),
		Listen:            ":3001",
		ProbeListen:       ":8081",
		AgentSelector:     "faultline.dev/agent=true",
		BroadcastInterval: time.Second,
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
	fs.DurationVar(&c.BroadcastInterval, "broadcast-interval", c.BroadcastInterval, "time between metrics events (100ms to 60s)")
	fs.StringVar(&c.Token, "token", c.Token, "bearer token accepted for mutating calls from outside loopback")
	fs.StringVar(&c.AlertmanagerURL, "alertmanager-url", c.AlertmanagerURL, "Alertmanager base URL to deliver alerts to")
}

// LoadAggregator reads the aggregator's settings from args (without the program name),
// the environment and the file named by --config, and validates them.
func LoadAggregator(args []string, getenv func(string) string) (Aggregator, error) {
	cfg := DefaultAggregator()
	fs := flag.NewFlagSet("faultline-aggregator", flag.ContinueOnError)
	cfg.bind(fs)
	if err := load(fs, args, getenv, fileSection{}); err != nil {
		return cfg, err
	}
	if cfg.Mode == "" {
		cfg.Mode = ModeStatic
		if InCluster(getenv) {
			cfg.Mode = ModeKubernetes
		}
	}
	return cfg, cfg.Validate()
}

// AggregatorUsage prints the aggregator's flags.
func AggregatorUsage(w interface{ Write([]byte) (int, error) }) {
	cfg := DefaultAggregator()
	fs := flag.NewFlagSet("faultline-aggregator", flag.ContinueOnError)
	cfg.bind(fs)
	fs.SetOutput(w)
	fs.PrintDefaults()
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
	if c.AgentSelector == "" {
		add(errors.New("agent-selector: must not be empty (it would select every pod)"))
	}
	return errors.Join(errs...)
}
