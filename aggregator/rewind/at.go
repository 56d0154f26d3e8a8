package rewind

import (
	"cmp"
	"math"
	"slices"
	"time"

	"github.com/faultline-dev/faultline/aggregator/discovery"
	"github.com/faultline-dev/faultline/aggregator/history"
	"github.com/faultline-dev/faultline/aggregator/merge"
	"github.com/faultline-dev/faultline/aggregator/view"
	"github.com/faultline-dev/faultline/internal/wire"
)

// Query asks for the merged view at an instant.
type Query struct {
	At, Now             time.Time
	Namespace, Workload string // filters, as on the stream; empty: all
	Mode                string
	// Live are the agents as the store holds them now: the breaker states of those that
	// did not change since At, and the identity of every agent present.
	Live    []merge.Agent
	History *history.Store
	// MaxGap is how much older than At a one-second point may be and still stand for it
	// (the broadcast interval at its widest).
	MaxGap time.Duration
	// MaxPods lists pods when the fleet had at most this many agents (as the stream's
	// snapshot does); 0: always.
	MaxPods int
}

// Snapshot is the merged view as it was at an instant: the shape of the stream's
// snapshot event, with the figures that are not kept (a tile's call rate and counters)
// null, and what the instant is.
type Snapshot struct {
	view.Cluster
	Breakers []Tile `json:"breakers"`
	At       At     `json:"at"`
}

// Tile is a breaker tile as it was: state, pods and "k of n" exact, figures not kept.
type Tile struct {
	view.BreakerTile
	RatePerSec *float64    `json:"rate_per_sec"`
	Calls      *wire.Calls `json:"calls"`
}

// At says which instant a rewound view describes.
type At struct {
	// Time is the instant: states, alerts, agents and "k of n" are as they were then,
	// from the record of changes.
	Time wire.Time `json:"time"`
	// Earliest and Latest bound the instants that can be asked for.
	Earliest wire.Time `json:"earliest"`
	Latest   wire.Time `json:"latest"`
	// FiguresTime is the history point the figures (CPU, memory, requests, health's
	// resource pressure) come from, and FiguresResolutionMs its step: 1000, or 60000 for
	// instants older than 15 minutes, whose figures are one-minute means.
	FiguresTime         wire.Time `json:"figures_time"`
	FiguresResolutionMs float64   `json:"figures_resolution_ms"`
	// NotKept names the fields the history does not keep; they are null here.
	NotKept []string `json:"not_kept"`
}

// notKept are the fields of a rewound view that have no recorded value.
var notKept = []string{"breakers[].failure_rate", "breakers[].rate_per_sec", "breakers[].calls",
	"pods[].cpu_percent_of_limit", "pods[].memory_percent_of_limit", "pods[].rx_bytes_per_sec", "pods[].tx_bytes_per_sec",
	"workloads[].cpu_percent_of_limit", "workloads[].memory_percent_of_limit", "totals.cpu_limit_cores", "totals.memory_limit_bytes"}

// podMetrics are the pod series the store records at each broadcast, in the order read.
var podMetrics = []string{"cpu_cores", "memory_bytes", "requests_per_sec", "errors_per_sec", "cpu_throttled_percent"}

// Pressure series: the cluster's mean resource pressure over connected pods and the
// number of pods under pressure, recorded at each broadcast for the health score.
const (
	PressureMetric      = "resource_pressure"
	PodsPressuredMetric = "pods_pressured"
)

// unknown is the state of a breaker at an instant before the transitions kept for it.
const unknown = wire.BreakerState("unknown")

// At rebuilds the merged view at q.At. The caller checks that q.At is within Range.
func (l *Log) At(q Query) Snapshot {
	t := q.At.UTC().Truncate(time.Millisecond)
	tm := ms(t)
	live := make(map[string]*merge.Agent, len(q.Live))
	for i := range q.Live {
		live[q.Live[i].Status.Key] = &q.Live[i]
	}
	var agents []merge.Agent
	var alerts []wire.Alert
	var disc view.Discovery
	var desired map[discovery.Workload]int
	l.mu.Lock()
	for key, a := range l.agents {
		i := lastBefore(len(a.states), func(i int) int64 { return a.states[i].at }, tm)
		if i < 0 || a.states[i].state == view.AgentRemoved {
			continue
		}
		s := a.states[i]
		st := a.status
		if lv := live[key]; lv != nil {
			st = lv.Status
		}
		st.State, st.Reason, st.Since = s.state, s.reason, wire.Time{Time: time.UnixMilli(s.since).UTC()}
		if s.since == 0 {
			st.Since = wire.Time{}
		}
		if s.state == view.AgentConnected {
			if st.LastSeen.IsZero() || st.LastSeen.After(t) {
				st.LastSeen = wire.NewTime(t)
			}
		} else if s.lastSeen > 0 {
			st.LastSeen = wire.Time{Time: time.UnixMilli(s.lastSeen).UTC()}
		} else {
			st.LastSeen = wire.Time{}
		}
		ag := merge.Agent{Status: st}
		if s.state == view.AgentConnected {
			var now []wire.Breaker
			if lv := live[key]; lv != nil && lv.Snapshot != nil {
				now = lv.Snapshot.Breakers
			}
			ag.Snapshot = &wire.Snapshot{V: wire.Version, Breakers: a.breakersAt(tm, now)}
		}
		agents = append(agents, ag)
	}
	for _, s := range l.alerts {
		if s.from <= tm && (s.to == 0 || tm < s.to) {
			alerts = append(alerts, s.alert)
		}
	}
	if i := lastBefore(len(l.discovery), func(i int) int64 { return l.discovery[i].at }, tm); i >= 0 {
		disc = l.discovery[i].d
	}
	for k, list := range l.desired {
		if i := lastBefore(len(list), func(i int) int64 { return list[i].at }, tm); i >= 0 && list[i].n >= 0 {
			if desired == nil {
				desired = map[discovery.Workload]int{}
			}
			desired[k] = list[i].n
		}
	}
	l.mu.Unlock()

	figures := withFigures(q, agents, t)
	slices.SortFunc(alerts, func(a, b wire.Alert) int {
		return cmp.Or(cmp.Compare(b.Severity.Rank(), a.Severity.Rank()), cmp.Compare(a.ID, b.ID))
	})
	c := merge.Cluster(merge.Input{Time: t, Mode: q.Mode, Discovery: disc, Agents: agents, Alerts: alerts, Detail: true, Desired: desired})
	// Percent of limits are not kept, so the view's resource pressure is read back from
	// what each broadcast recorded.
	c.Health = merge.Health(merge.HealthInput{
		Breakers: c.Totals.Breakers, Open: c.Totals.BreakersOpen, HalfOpen: c.Totals.BreakersHalfOpen,
		Alerts: merge.CountAlerts(alerts), Pressure: figures.pressure(c.Totals.AgentsConnected),
		Agents: c.Totals.Agents, AgentsDown: c.Totals.AgentsUnavailable, AgentsMissed: c.Totals.AgentsMissing,
	})
	if q.MaxPods > 0 && len(agents) > q.MaxPods {
		c.Pods = nil
	}
	c = merge.Filter(c, q.Namespace, q.Workload)
	from, to := l.Range(q.Now)
	out := Snapshot{Cluster: c, Breakers: make([]Tile, len(c.Breakers)), At: At{
		Time: wire.NewTime(t), Earliest: wire.NewTime(from), Latest: wire.NewTime(to),
		FiguresResolutionMs: wire.Ms(figures.Resolution), NotKept: notKept,
	}}
	if !figures.Time.IsZero() {
		out.At.FiguresTime = wire.NewTime(figures.Time)
	}
	for i, tl := range c.Breakers {
		out.Breakers[i] = Tile{BreakerTile: tl}
	}
	out.Cluster.Breakers = nil
	return out
}

// breakersAt is an agent's breakers as they were at t (ms), from its transitions and,
// for those that did not change since, the states reported now (or when it was dropped).
func (a *agentLog) breakersAt(t int64, now []wire.Breaker) []wire.Breaker {
	cur := now
	if a.gone != 0 {
		cur = nil
	}
	var out []wire.Breaker
	add := func(name string, c uint8, since int64, source string) {
		if c == 0 {
			return
		}
		b := wire.Breaker{V: wire.Version, Name: name, State: unknown, Source: source}
		if int(c) < len(states) {
			b.State = states[c]
		}
		if since > 0 {
			b.Since = wire.Time{Time: time.UnixMilli(since).UTC()}
		}
		out = append(out, b)
	}
	done := make(map[string]bool, len(a.breakers))
	for i := range a.breakers {
		b := &a.breakers[i]
		c, since, decided := b.at(t)
		if !decided {
			continue
		}
		done[b.name] = true
		add(b.name, c, since, sourceOf(b.name, cur, a.final))
	}
	for _, b := range cur {
		if !done[b.Name] {
			add(b.Name, code(b.State), ms(b.Since.Time), b.Source)
		}
	}
	for _, f := range a.final {
		if a.gone != 0 && !done[f.name] {
			add(f.name, f.state, f.since, f.source)
		}
	}
	return out
}

// at is the breaker's state at t (ms) and since when, when its transitions decide it:
// after its first kept transition, or before it (the state it left). 0xf: not known
// (before transitions that were not kept).
func (b *breakerLog) at(t int64) (state uint8, since int64, decided bool) {
	if len(b.entries) == 0 {
		return 0, 0, false
	}
	if b.cut != 0 && t < b.cut {
		return 0xf, 0, true
	}
	if i := lastBefore(len(b.entries), func(i int) int64 { return b.entries[i].at() }, t); i >= 0 {
		return b.entries[i].to(), b.entries[i].at(), true
	}
	return b.entries[0].from(), 0, true
}

func sourceOf(name string, cur []wire.Breaker, final []lastRun) string {
	for _, b := range cur {
		if b.Name == name {
			return b.Source
		}
	}
	for _, f := range final {
		if f.name == name {
			return f.source
		}
	}
	return ""
}

// figures are the cluster's recorded pressure at an instant.
type figures struct {
	history.Figures
}

func (f figures) pressure(pods int) merge.Pressure {
	mean, hot := f.Values[0], f.Values[1]
	if pods == 0 || math.IsNaN(mean) {
		return merge.Pressure{}
	}
	p := merge.Pressure{Sum: mean * float64(pods), Pods: pods}
	if !math.IsNaN(hot) {
		p.Hot = int(hot)
	}
	return p
}

// withFigures gives each connected agent of agents a sample of the figures its pod's
// series hold at t, and returns the cluster's recorded pressure at t.
func withFigures(q Query, agents []merge.Agent, t time.Time) figures {
	f := figures{q.History.At(history.ScopeCluster, "", []string{PressureMetric, PodsPressuredMetric}, t, q.Now, q.MaxGap)}
	for i := range agents {
		a := &agents[i]
		if a.Snapshot == nil {
			continue
		}
		p := merge.Pod(*a)
		obj := p.Pod
		if p.Namespace != "" {
			obj = p.Namespace + "/" + p.Pod
		}
		v := q.History.At(history.ScopePod, obj, podMetrics, t, q.Now, q.MaxGap).Values
		s := &wire.Sample{V: wire.Version}
		if !math.IsNaN(v[0]) {
			s.CPU = &wire.CPU{Cores: v[0]}
			if !math.IsNaN(v[4]) {
				s.CPU.Throttling = &wire.Throttling{Percent: v[4]}
			}
		}
		if !math.IsNaN(v[1]) {
			s.Memory = &wire.Memory{WorkingSetBytes: uint64(v[1])}
		}
		if !math.IsNaN(v[2]) && !math.IsNaN(v[3]) {
			s.Throughput = &wire.Throughput{RequestsPerSec: v[2], ErrorsPerSec: v[3]}
		}
		a.Snapshot.Sample = s
	}
	return f
}
