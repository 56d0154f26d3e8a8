package merge

import (
	"fmt"
	"math"
	"sort"

	"github.com/faultline-dev/faultline/aggregator/view"
	"github.com/faultline-dev/faultline/internal/wire"
)

// Health score weights: the most each component can take off the score. They add up to
// 100, so a cluster with every breaker open, every pod saturated, every agent gone and
// many critical alerts scores 0.
const (
	BreakerWeight  = 40.0 // x (open + half_open/2) / breakers
	AlertWeight    = 25.0 // 10 per critical, 4 per warning, 1 per info alert, capped
	ResourceWeight = 20.0 // x mean pod pressure
	AgentWeight    = 15.0 // x (unavailable + missing) / agents
)

// Per-alert penalties.
const (
	CriticalAlertPoints = 10.0
	WarningAlertPoints  = 4.0
	InfoAlertPoints     = 1.0
)

// Pressure starts counting at this percent of a limit and is full at 100 %.
const PressureStart = 80.0

// HealthInput is what the health score is computed from.
type HealthInput struct {
	Breakers, Open, HalfOpen int
	Alerts                   AlertCounts
	Pressure                 Pressure // of the connected pods
	Agents                   int
	AgentsDown, AgentsMissed int
}

// Pressure sums the resource pressure (0-1) of connected pods.
type Pressure struct {
	Sum  float64
	Pods int // pods counted
	Hot  int // pods with some pressure
}

// PressureOf sums the pressures of some pods.
func PressureOf(pods ...float64) Pressure {
	var p Pressure
	for _, x := range pods {
		p.Sum += x
		p.Pods++
		if x > 0 {
			p.Hot++
		}
	}
	return p
}

func (p *Pressure) add(o Pressure) {
	p.Sum += o.Sum
	p.Pods += o.Pods
	p.Hot += o.Hot
}

// AlertCounts counts firing alerts by severity.
type AlertCounts struct{ Critical, Warning, Info int }

// CountAlerts counts the firing alerts among alerts by severity.
func CountAlerts(alerts []wire.Alert) AlertCounts {
	var c AlertCounts
	for _, a := range alerts {
		if a.State != wire.AlertFiring {
			continue
		}
		switch a.Severity {
		case wire.SeverityCritical:
			c.Critical++
		case wire.SeverityWarning:
			c.Warning++
		default:
			c.Info++
		}
	}
	return c
}

// podPressure is how close a pod is to its CPU or memory limit: 0 below PressureStart
// percent, rising linearly to 1 at 100 %, whichever resource is closer.
func podPressure(p view.Pod) float64 {
	worst := 0.0
	for _, v := range []*float64{p.CPUPercent, p.MemoryPercent} {
		if v == nil {
			continue
		}
		x := (*v - PressureStart) / (100 - PressureStart)
		worst = math.Max(worst, math.Min(1, math.Max(0, x)))
	}
	return worst
}

// Health computes the 0-100 score:
//
//	score = 100 - breakers - alerts - resources - agents
//	breakers  = 40 x (open + 0.5 x half_open) / breakers           (0 without breakers)
//	alerts    = min(25, 10 x critical + 4 x warning + 1 x info)
//	resources = 20 x mean over connected pods of pressure, where a pod's pressure is
//	            max over CPU and memory of clamp((percent of limit - 80) / 20, 0, 1)
//	agents    = 15 x (unavailable + missing) / agents               (0 without agents)
//
// rounded to the nearest integer. The breakdown lists each non-zero term, largest first.
func Health(in HealthInput) view.Health {
	var parts []view.HealthPenalty
	add := func(component string, points float64, detail string) {
		if points > 0 {
			parts = append(parts, view.HealthPenalty{Component: component, Points: math.Round(points*10) / 10, Detail: detail})
		}
	}
	if in.Breakers > 0 {
		x := (float64(in.Open) + 0.5*float64(in.HalfOpen)) / float64(in.Breakers)
		add("breakers", BreakerWeight*x, fmt.Sprintf("%d of %d breakers open, %d half-open", in.Open, in.Breakers, in.HalfOpen))
	}
	a := in.Alerts
	ap := math.Min(AlertWeight, CriticalAlertPoints*float64(a.Critical)+WarningAlertPoints*float64(a.Warning)+InfoAlertPoints*float64(a.Info))
	add("alerts", ap, fmt.Sprintf("%d critical, %d warning, %d info alerts firing", a.Critical, a.Warning, a.Info))
	if p := in.Pressure; p.Pods > 0 {
		add("resources", ResourceWeight*p.Sum/float64(p.Pods), fmt.Sprintf("%d of %d pods above %.0f%% of a CPU or memory limit", p.Hot, p.Pods, PressureStart))
	}
	if in.Agents > 0 {
		down := in.AgentsDown + in.AgentsMissed
		add("agents", AgentWeight*float64(down)/float64(in.Agents), fmt.Sprintf("%d of %d agents unavailable, %d pods missing an agent", in.AgentsDown, in.Agents, in.AgentsMissed))
	}
	total := 0.0
	for _, p := range parts {
		total += p.Points
	}
	sort.SliceStable(parts, func(i, j int) bool { return parts[i].Points > parts[j].Points })
	if parts == nil {
		parts = []view.HealthPenalty{}
	}
	score := int(math.Round(100 - total))
	return view.Health{Score: max(0, min(100, score)), Breakdown: parts}
}

// SetAlerts replaces the firing alerts of a merged view and rescores its health: alerts
// are evaluated over the view, so they are known only after it was merged.
func SetAlerts(c *view.Cluster, alerts []wire.Alert) {
	if alerts == nil {
		alerts = []wire.Alert{}
	}
	c.Alerts = alerts
	c.Totals.AlertsFiring = len(alerts)
	byNS := map[string]int{}
	for _, a := range alerts {
		byNS[a.Target.Namespace]++
	}
	for i := range c.Namespaces {
		c.Namespaces[i].Totals.AlertsFiring = byNS[c.Namespaces[i].Name]
	}
	a := CountAlerts(alerts)
	parts := make([]view.HealthPenalty, 0, len(c.Health.Breakdown)+1)
	total := 0.0
	for _, p := range c.Health.Breakdown {
		if p.Component != "alerts" {
			parts = append(parts, p)
			total += p.Points
		}
	}
	ap := math.Min(AlertWeight, CriticalAlertPoints*float64(a.Critical)+WarningAlertPoints*float64(a.Warning)+InfoAlertPoints*float64(a.Info))
	if ap > 0 {
		parts = append(parts, view.HealthPenalty{Component: "alerts", Points: ap,
			Detail: fmt.Sprintf("%d critical, %d warning, %d info alerts firing", a.Critical, a.Warning, a.Info)})
		total += ap
	}
	sort.SliceStable(parts, func(i, j int) bool { return parts[i].Points > parts[j].Points })
	c.Health = view.Health{Score: max(0, min(100, int(math.Round(100-total)))), Breakdown: parts}
}
