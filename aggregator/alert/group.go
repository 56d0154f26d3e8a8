package alert

import (
	"cmp"
	"slices"

	"github.com/faultline-dev/faultline/internal/wire"
)

// Ways to group alerts.
const (
	ByWorkload = "workload"
	ByRule     = "rule"
)

// Group is alerts that share a workload (then split by rule) or a rule: what a person
// reads in a storm instead of hundreds of lines. Alertmanager still receives each alert
// on its own (it groups on its side, by its own route).
type Group struct {
	// Key is "namespace/workload" (empty for alerts about no workload) or the rule.
	Key       string `json:"key"`
	Namespace string `json:"namespace,omitempty"`
	Workload  string `json:"workload,omitempty"`
	Rule      string `json:"rule,omitempty"`
	// Severity is the worst of the members'; Counts counts them by severity.
	Severity wire.Severity         `json:"severity"`
	Total    int                   `json:"total"`
	Counts   map[wire.Severity]int `json:"counts"`
	// Groups split a workload's alerts by rule; Alerts are the members of a group that
	// is not split (by rule, or a workload's rule), worst first.
	Groups []Group      `json:"groups,omitempty"`
	Alerts []wire.Alert `json:"alerts,omitempty"`
}

// GroupAlerts groups alerts by workload (each workload's alerts by rule) or by rule,
// the worst groups first: by severity, then by how many alerts they hold.
func GroupAlerts(alerts []wire.Alert, by string) []Group {
	key := func(a wire.Alert) string { return a.Rule }
	if by == ByWorkload {
		key = func(a wire.Alert) string { return scope(a.Target.Namespace, a.Target.Workload) }
	}
	groups := group(alerts, key)
	for i := range groups {
		g := &groups[i]
		if by == ByWorkload {
			g.Namespace, g.Workload = g.Alerts[0].Target.Namespace, g.Alerts[0].Target.Workload
			g.Groups = group(g.Alerts, func(a wire.Alert) string { return a.Rule })
			for j := range g.Groups {
				g.Groups[j].Rule = g.Groups[j].Key
			}
			g.Alerts = nil
		} else {
			g.Rule = g.Key
		}
	}
	return groups
}

// group splits alerts by key, each group's members worst first, the worst groups first.
func group(alerts []wire.Alert, key func(wire.Alert) string) []Group {
	index := map[string]int{}
	var out []Group
	for _, a := range alerts {
		k := key(a)
		i, ok := index[k]
		if !ok {
			i = len(out)
			index[k] = i
			out = append(out, Group{Key: k, Counts: map[wire.Severity]int{}})
		}
		g := &out[i]
		g.Alerts = append(g.Alerts, a)
		g.Total++
		g.Counts[a.Severity]++
		if a.Severity.Rank() > g.Severity.Rank() || g.Severity == "" {
			g.Severity = a.Severity
		}
	}
	for i := range out {
		sortAlerts(out[i].Alerts)
	}
	slices.SortFunc(out, func(a, b Group) int {
		return cmp.Or(cmp.Compare(b.Severity.Rank(), a.Severity.Rank()), cmp.Compare(b.Total, a.Total), cmp.Compare(a.Key, b.Key))
	})
	return out
}
