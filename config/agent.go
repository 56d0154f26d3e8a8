package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/faultline-dev/faultline/internal/names"
)

// Agent modes: what the agent samples.
const (
	ModePod    = "pod"    // the pod's processes (shareProcessNamespace)
	ModeCgroup = "cgroup" // the agent's own cgroup (v2, else v1)
	ModeHost   = "host"   // the whole machine
)

// Agent is the configuration of faultline-agent.
type Agent struct {
	Common
	Listen         string        // read API, stream, metrics, probes
	IngestListen   string        // pod-local writes
	SampleInterval time.Duration // 100ms to 60s
	Mode           string        // pod, cgroup or host; empty picks pod in Kubernetes, else host
	Token          string        // bearer token for mutating calls from outside the pod
	Workload       string        // workload name reported in the agent's identity

	// Container limits, set by the Downward API (resourceFieldRef) in the chart.
	CPULimitMillicores int64
	MemoryLimitBytes   int64

	// Breaker sources.
	PrometheusURL        string           // the application's metrics endpoint to scrape
	PrometheusInterval   time.Duration    // time between scrapes; 0 scrapes every sample-interval
	HystrixURL           string           // the application's hystrix.stream
	MaxBreakersPerSource int              // cap per source; the rest are counted and reported
	MaxBreakers          int              // cap over every source; the rest are counted and reported
	PrometheusMappings   []BreakerMapping // file key prometheus-mappings
}

// BreakerMapping maps any Prometheus gauge to breaker states: file key
// prometheus-mappings, a list of these.
type BreakerMapping struct {
	Metric    string            `json:"metric"`     // metric family name
	NameLabel string            `json:"name-label"` // label holding the breaker name
	States    map[string]string `json:"states"`     // sample value -> state, e.g. "1": open
}

// DefaultAgent returns the agent's defaults.
func DefaultAgent() Agent {
	return Agent{
		Common:               defaultCommon(),
		Listen:               ":9800",
		IngestListen:         "127.0.0.1:9801",
		SampleInterval:       time.Second,
		MaxBreakersPerSource: 500,
		MaxBreakers:          1000,
	}
}

func (c *Agent) bind(fs *flag.FlagSet) {
	c.Common.bind(fs)
	fs.StringVar(&c.Listen, "listen", c.Listen, "address of the read API, stream, metrics and probes")
	fs.StringVar(&c.IngestListen, "ingest-listen", c.IngestListen, "address of the pod-local ingest API")
	fs.DurationVar(&c.SampleInterval, "sample-interval", c.SampleInterval, "time between samples (100ms to 60s)")
	fs.StringVar(&c.Mode, "mode", c.Mode, "what to sample: pod, cgroup or host (default pod in Kubernetes, else host)")
	fs.StringVar(&c.Token, "token", c.Token, "bearer token accepted for mutating calls from outside the pod")
	fs.StringVar(&c.Workload, "workload", c.Workload, "workload name reported with this agent")
	fs.Int64Var(&c.CPULimitMillicores, "cpu-limit-millicores", c.CPULimitMillicores, "the application container's CPU limit in millicores, from the Downward API (limits.cpu, divisor 1m); 0: unknown")
	fs.Int64Var(&c.MemoryLimitBytes, "memory-limit-bytes", c.MemoryLimitBytes, "the application container's memory limit in bytes, from the Downward API (limits.memory); 0: unknown")
	fs.StringVar(&c.PrometheusURL, "prometheus-url", c.PrometheusURL, "the application's Prometheus metrics URL to scrape for breaker state")
	fs.DurationVar(&c.PrometheusInterval, "prometheus-interval", c.PrometheusInterval, "time between scrapes of prometheus-url (default: sample-interval)")
	fs.StringVar(&c.HystrixURL, "hystrix-url", c.HystrixURL, "the application's hystrix.stream URL")
	fs.IntVar(&c.MaxBreakersPerSource, "max-breakers-per-source", c.MaxBreakersPerSource, "most breakers one source may report")
	fs.IntVar(&c.MaxBreakers, "max-breakers", c.MaxBreakers, "most breakers the agent holds over every source (pushed sources included); new ones beyond are refused and counted")
}

// LoadAgent reads the agent's settings from args (without the program name), the
// environment and the file named by --config, and validates them.
func LoadAgent(args []string, getenv func(string) string) (Agent, error) {
	cfg := DefaultAgent()
	fs := flag.NewFlagSet("faultline-agent", flag.ContinueOnError)
	cfg.bind(fs)
	err := load(fs, args, getenv, fileSection{
		"prometheus-mappings": func(raw json.RawMessage) error { return strictJSON(raw, &cfg.PrometheusMappings) },
	})
	if err != nil {
		return cfg, err
	}
	if cfg.Mode == "" {
		cfg.Mode = ModeHost
		if InCluster(getenv) {
			cfg.Mode = ModePod
		}
	}
	return cfg, cfg.Validate()
}

// AgentUsage prints the agent's flags.
func AgentUsage(w io.Writer) {
	cfg := DefaultAgent()
	printDefaults("faultline-agent", cfg.bind, w)
}

// CheckAgentSetting reports whether the agent accepts value for its setting key (a flag
// name such as sample-interval), judged by the agent's own flag parsing and Validate, so
// that what the injector writes into a sidecar's environment is what the agent takes.
// The message does not repeat the key.
func CheckAgentSetting(key, value string) error {
	cfg := DefaultAgent()
	cfg.Mode = ModePod
	fs := flag.NewFlagSet("faultline-agent", flag.ContinueOnError)
	cfg.bind(fs)
	if key == "config" || fs.Lookup(key) == nil {
		return fmt.Errorf("%q is not a setting of the agent", key)
	}
	if err := fs.Set(key, value); err != nil {
		switch fs.Lookup(key).Value.(flag.Getter).Get().(type) {
		case time.Duration:
			return fmt.Errorf("%q is not a duration such as 500ms or 2s", value)
		case int, int64:
			return fmt.Errorf("%q is not a whole number", value)
		}
		return fmt.Errorf("%q: %w", value, err)
	}
	if err := cfg.Validate(); err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), key+": "))
	}
	return nil
}

// Validate reports every problem with the settings, each naming its key.
func (c Agent) Validate() error {
	errs := c.Common.validate()
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	add(checkListen("listen", c.Listen))
	add(checkListen("ingest-listen", c.IngestListen))
	add(checkRange("sample-interval", c.SampleInterval, 100*time.Millisecond, time.Minute))
	add(checkOneOf("mode", c.Mode, ModePod, ModeCgroup, ModeHost))
	if c.CPULimitMillicores < 0 {
		add(fmt.Errorf("cpu-limit-millicores: %d is negative", c.CPULimitMillicores))
	}
	if c.MemoryLimitBytes < 0 {
		add(fmt.Errorf("memory-limit-bytes: %d is negative", c.MemoryLimitBytes))
	}
	if c.PrometheusURL != "" {
		add(checkURL("prometheus-url", c.PrometheusURL))
	}
	if c.PrometheusInterval != 0 {
		add(checkRange("prometheus-interval", c.PrometheusInterval, 100*time.Millisecond, 5*time.Minute))
	}
	if c.HystrixURL != "" {
		add(checkURL("hystrix-url", c.HystrixURL))
	}
	if c.MaxBreakersPerSource < 1 {
		add(fmt.Errorf("max-breakers-per-source: %d must be at least 1", c.MaxBreakersPerSource))
	}
	if err := names.Identity(c.Workload); err != nil {
		add(fmt.Errorf("workload: %w", err))
	}
	if c.MaxBreakers < 1 || c.MaxBreakers > 100000 {
		add(fmt.Errorf("max-breakers: %d is outside 1 to 100000", c.MaxBreakers))
	}
	for i, m := range c.PrometheusMappings {
		add(m.validate(fmt.Sprintf("prometheus-mappings[%d]", i)))
	}
	return errors.Join(errs...)
}

var breakerStates = []string{"closed", "open", "half_open", "disabled", "forced_open"}

func (m BreakerMapping) validate(key string) error {
	var errs []error
	if m.Metric == "" {
		errs = append(errs, fmt.Errorf("%s.metric: must be set", key))
	}
	if m.NameLabel == "" {
		errs = append(errs, fmt.Errorf("%s.name-label: must be set", key))
	}
	if len(m.States) == 0 {
		errs = append(errs, fmt.Errorf("%s.states: must map at least one value to a state", key))
	}
	for value, state := range m.States {
		if _, err := strconv.ParseFloat(strings.TrimSpace(value), 64); err != nil {
			errs = append(errs, fmt.Errorf("%s.states[%s]: %q is not a sample value (a number)", key, value, value))
		}
		if err := checkOneOf(key+".states["+value+"]", state, breakerStates...); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// strictJSON decodes raw into v, rejecting unknown fields.
func strictJSON(raw json.RawMessage, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
