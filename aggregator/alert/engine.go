package alert

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/faultline-dev/faultline/aggregator/view"
	"github.com/faultline-dev/faultline/internal/wire"
)

// MaxResolved bounds the resolved alerts kept for GET /api/v1/alerts.
const MaxResolved = 200

// Input is what the rules look at: the merged view with pods and agents.
type Input struct {
	Time   time.Time
	View   view.Cluster // Breakers and Workloads are used
	Pods   []view.Pod
	Agents []view.AgentStatus
}

// Engine keeps every alert's lifecycle.
type Engine struct {
	rules []Rule

	mu       sync.Mutex
	active   map[string]*tracked // by alert id
	resolved []wire.Alert        // newest last
}

type tracked struct {
	alert   wire.Alert
	pending time.Time // when the condition started holding
	firing  bool
}

// NewEngine returns an engine for rules.
func NewEngine(rules []Rule) *Engine {
	return &Engine{rules: rules, active: map[string]*tracked{}}
}

// Rules returns the rules in force.
func (e *Engine) Rules() []Rule { return e.rules }

// condition is one rule holding for one target now.
type condition struct {
	rule     Rule
	target   wire.Target
	severity wire.Severity
	summary  string
	value    *float64
}

// Evaluate applies the rules to in and returns the alerts that fired or resolved, each
// once: an alert that keeps firing is not repeated.
func (e *Engine) Evaluate(in Input) []wire.Alert {
	conds := map[string]condition{}
	own := ownThresholds(in.Agents)
	for _, r := range e.rules {
		for _, c := range r.check(in, own) {
			conds[alertID(r.Name, c.target)] = c
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var changed []wire.Alert
	for id, c := range conds {
		t := e.active[id]
		if t == nil {
			t = &tracked{pending: in.Time}
			e.active[id] = t
		}
		a := &t.alert
		*a = wire.Alert{V: wire.Version, ID: id, Rule: c.rule.Name, State: wire.AlertFiring, Severity: c.severity,
			Summary: c.summary, Target: c.target, Value: c.value, Labels: labels(c), Started: a.Started}
		if !t.firing && in.Time.Sub(t.pending) >= c.rule.For {
			t.firing = true
			a.Started = wire.NewTime(in.Time)
			changed = append(changed, *a)
		}
	}
	for id, t := range e.active {
		if _, ok := conds[id]; ok {
			continue
		}
		delete(e.active, id)
		if !t.firing {
			continue // pending only: it never fired, so it does not resolve
		}
		a := t.alert
		a.State = wire.AlertResolved
		a.Resolved = wire.Ptr(wire.NewTime(in.Time))
		changed = append(changed, a)
		e.resolved = append(e.resolved, a)
		if len(e.resolved) > MaxResolved {
			e.resolved = append(e.resolved[:0], e.resolved[len(e.resolved)-MaxResolved:]...)
		}
	}
	sortAlerts(changed)
	return changed
}

// Firing returns the alerts firing now, most severe first.
func (e *Engine) Firing() []wire.Alert {
	e.mu.Lock()
	out := make([]wire.Alert, 0, len(e.active))
	for _, t := range e.active {
		if t.firing {
			out = append(out, t.alert)
		}
	}
	e.mu.Unlock()
	sortAlerts(out)
	return out
}

// Resolved returns the most recently resolved alerts, newest first.
func (e *Engine) Resolved() []wire.Alert {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]wire.Alert, len(e.resolved))
	for i, a := range e.resolved {
		out[len(out)-1-i] = a
	}
	return out
}

func sortAlerts(as []wire.Alert) {
	sort.Slice(as, func(i, j int) bool {
		if ri, rj := as[i].Severity.Rank(), as[j].Severity.Rank(); ri != rj {
			return ri > rj
		}
		return as[i].ID < as[j].ID
	})
}

// alertID is stable for a rule and target, so that the same problem is one alert.
func alertID(rule string, t wire.Target) string {
	parts := []string{rule}
	for _, p := range []string{t.Namespace, t.Workload, t.Pod, t.Agent, t.Breaker} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, "/")
}

func labels(c condition) map[string]string {
	l := map[string]string{"alertname": c.rule.Name, "severity": string(c.severity), "source": "faultline"}
	for k, v := range map[string]string{"namespace": c.target.Namespace, "workload": c.target.Workload, "pod": c.target.Pod, "agent": c.target.Agent, "breaker": c.target.Breaker} {
		if v != "" {
			l[k] = v
		}
	}
	return l
}

// thresholds are the pods' own alert thresholds (from their AgentProfile or annotation),
// by namespace/pod and by namespace/workload, then by rule name. A workload's is the
// lowest any of its pods sets.
type thresholds struct{ pod, workload map[string]map[string]float64 }

func ownThresholds(agents []view.AgentStatus) thresholds {
	th := thresholds{pod: map[string]map[string]float64{}, workload: map[string]map[string]float64{}}
	for _, a := range agents {
		if len(a.AlertThresholds) == 0 {
			continue
		}
		th.pod[a.Namespace+"/"+a.Pod] = a.AlertThresholds
		w := th.workload[a.Namespace+"/"+a.Workload]
		if w == nil {
			w = map[string]float64{}
			th.workload[a.Namespace+"/"+a.Workload] = w
		}
		for rule, v := range a.AlertThresholds {
			if old, ok := w[rule]; !ok || v < old {
				w[rule] = v
			}
		}
	}
	return th
}

// threshold is the rule's threshold for the target key in m (a pod's or a workload's own
// if set, else the rule's).
func (r Rule) threshold(m map[string]map[string]float64, key string) float64 {
	if v, ok := m[key][r.Name]; ok {
		return v
	}
	return r.Threshold
}

// check returns the targets the rule holds for now.
func (r Rule) check(in Input, own thresholds) []condition {
	var out []condition
	switch r.Kind {
	case KindBreakerOpen:
		for _, t := range in.View.Breakers {
			if t.Open == 0 {
				continue
			}
			sev := wire.SeverityWarning
			if t.Open == t.Pods {
				sev = wire.SeverityCritical
			}
			if r.Severity != "" && r.Severity.Rank() > sev.Rank() {
				sev = r.Severity
			}
			out = append(out, condition{rule: r, severity: sev,
				target:  wire.Target{Namespace: t.Namespace, Workload: t.Workload, Breaker: t.Name},
				summary: fmt.Sprintf("breaker %s open on %d of %d pods of %s", t.Name, t.Open, t.Pods, scope(t.Namespace, t.Workload)),
				value:   wire.Ptr(float64(t.Open) / float64(t.Pods) * 100)})
		}
	case KindAgentUnavailable, KindAgentMissing:
		want := view.AgentUnavailable
		if r.Kind == KindAgentMissing {
			want = view.AgentMissing
		}
		for _, a := range in.Agents {
			if a.State != want {
				continue
			}
			what := "agent " + a.Key
			if a.Pod != "" {
				what = "agent of pod " + scope(a.Namespace, a.Pod)
			}
			out = append(out, condition{rule: r, severity: r.Severity,
				target:  wire.Target{Namespace: a.Namespace, Workload: a.Workload, Pod: a.Pod, Agent: a.Key},
				summary: fmt.Sprintf("%s %s: %s", what, a.State, a.Reason)})
		}
	case KindCPU, KindMemory, KindThrottling:
		for _, p := range in.Pods {
			var v *float64
			var what string
			switch r.Kind {
			case KindCPU:
				v, what = p.CPUPercent, "CPU"
			case KindMemory:
				v, what = p.MemoryPercent, "memory"
			default:
				v, what = p.ThrottledPct, "CPU throttled"
			}
			threshold := r.threshold(own.pod, p.Namespace+"/"+p.Pod)
			if v == nil || *v < threshold || p.State != view.AgentConnected {
				continue
			}
			unit := "of its limit"
			if r.Kind == KindThrottling {
				unit = "of periods"
			}
			out = append(out, condition{rule: r, severity: r.Severity,
				target:  wire.Target{Namespace: p.Namespace, Workload: p.Workload, Pod: p.Pod, Agent: p.Agent},
				summary: fmt.Sprintf("pod %s %s at %.0f%% %s (threshold %.0f%%)", scope(p.Namespace, p.Pod), what, *v, unit, threshold),
				value:   wire.Ptr(*v)})
		}
	case KindReplicasMissing:
		for _, w := range in.View.Workloads {
			if w.DesiredPods == nil || w.PodsConnected >= *w.DesiredPods {
				continue
			}
			want := *w.DesiredPods
			out = append(out, condition{rule: r, severity: r.Severity,
				target: wire.Target{Namespace: w.Namespace, Workload: w.Name},
				summary: fmt.Sprintf("%s: %d of %d desired pods have a connected agent (%d missing)",
					scope(w.Namespace, w.Name), w.PodsConnected, want, want-w.PodsConnected),
				value: wire.Ptr(float64(want - w.PodsConnected))})
		}
	case KindErrorRate:
		for _, w := range in.View.Workloads {
			if w.RequestsPerSec < MinRequestsForErrorRate {
				continue
			}
			rate := w.ErrorsPerSec / w.RequestsPerSec * 100
			threshold := r.threshold(own.workload, w.Namespace+"/"+w.Name)
			if rate < threshold {
				continue
			}
			out = append(out, condition{rule: r, severity: r.Severity,
				target:  wire.Target{Namespace: w.Namespace, Workload: w.Name},
				summary: fmt.Sprintf("%s: %.1f%% of %.1f requests/s failing (threshold %.0f%%)", scope(w.Namespace, w.Name), rate, w.RequestsPerSec, threshold),
				value:   wire.Ptr(rate)})
		}
	}
	return out
}

// MinRequestsForErrorRate keeps an idle workload's one failed call from alerting.
const MinRequestsForErrorRate = 1.0

func scope(ns, name string) string {
	if ns == "" {
		return name
	}
	return ns + "/" + name
}
