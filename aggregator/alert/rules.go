// Package alert evaluates alert rules over the merged view, keeps each alert's lifecycle
// (pending, firing, resolved, deduplicated by rule and target) and optionally delivers
// alerts to an Alertmanager v2 API.
package alert

import (
	"fmt"
	"time"

	"github.com/faultline-dev/faultline/config"
	"github.com/faultline-dev/faultline/internal/wire"
)

// Rule kinds.
const (
	KindBreakerOpen      = "breaker-open"
	KindAgentUnavailable = "agent-unavailable"
	KindAgentMissing     = "agent-missing"
	KindCPU              = "cpu"
	KindMemory           = "memory"
	KindErrorRate        = "error-rate"
	KindThrottling       = "cpu-throttling"
	// KindReplicasMissing holds while a workload has fewer connected agents than its
	// desired replicas (Kubernetes mode).
	KindReplicasMissing = "replicas-missing"
)

// Rule is one alert rule.
type Rule struct {
	Name string
	Kind string
	// Threshold is a percent: of the CPU or memory limit, of requests that failed, of
	// CPU periods throttled. Unused by the breaker and agent kinds.
	Threshold float64
	// For is how long the condition must hold before the alert fires.
	For time.Duration
	// Severity of the alert; breaker-open rules instead grade by how many pods are open
	// (all pods of the workload: critical, some: warning).
	Severity wire.Severity
}

// DefaultRules are the rules in force unless the configuration changes them.
func DefaultRules() []Rule {
	return []Rule{
		{Name: "breaker-open", Kind: KindBreakerOpen},
		{Name: "agent-unavailable", Kind: KindAgentUnavailable, Severity: wire.SeverityWarning},
		{Name: "agent-missing", Kind: KindAgentMissing, Severity: wire.SeverityWarning},
		{Name: "cpu-high", Kind: KindCPU, Threshold: 90, For: 2 * time.Minute, Severity: wire.SeverityWarning},
		{Name: "memory-high", Kind: KindMemory, Threshold: 90, For: 2 * time.Minute, Severity: wire.SeverityWarning},
		{Name: "error-rate-high", Kind: KindErrorRate, Threshold: 5, For: time.Minute, Severity: wire.SeverityWarning},
		{Name: "cpu-throttled", Kind: KindThrottling, Threshold: 25, For: 5 * time.Minute, Severity: wire.SeverityWarning},
		{Name: "replicas-missing", Kind: KindReplicasMissing, For: time.Minute, Severity: wire.SeverityWarning},
	}
}

// Rules applies the configured changes (file key alert-rules) to the defaults: an entry
// naming a default rule changes the fields it sets or disables it; an entry with a new
// name adds a rule and must set kind. config.Aggregator.Validate has checked them.
func Rules(changes []config.AlertRule) ([]Rule, error) {
	rules := DefaultRules()
	index := map[string]int{}
	for i, r := range rules {
		index[r.Name] = i
	}
	var disabled = map[string]bool{}
	for _, c := range changes {
		i, ok := index[c.Name]
		if !ok {
			if c.Kind == "" {
				return nil, fmt.Errorf("alert-rules: rule %q is new and needs a kind", c.Name)
			}
			rules = append(rules, Rule{Name: c.Name, Kind: c.Kind, Severity: wire.SeverityWarning})
			i = len(rules) - 1
			index[c.Name] = i
		}
		r := &rules[i]
		if c.Kind != "" {
			r.Kind = c.Kind
		}
		if c.Threshold != nil {
			r.Threshold = *c.Threshold
		}
		if c.For != nil {
			r.For = c.For.Duration
		}
		if c.Severity != "" {
			r.Severity = wire.Severity(c.Severity)
		}
		if c.Disabled != nil {
			disabled[c.Name] = *c.Disabled
		}
	}
	out := rules[:0:0]
	for _, r := range rules {
		if !disabled[r.Name] {
			out = append(out, r)
		}
	}
	return out, nil
}
