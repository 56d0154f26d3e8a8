// Package merge turns the latest snapshot of every agent, and every agent's state, into
// the cluster-wide view: per pod, per workload, per namespace and for the whole cluster,
// with a health score. Everything here is a pure function over values.
package merge

import (
	"cmp"
	"slices"
	"time"

	"github.com/faultline-dev/faultline/aggregator/discovery"
	"github.com/faultline-dev/faultline/aggregator/view"
	"github.com/faultline-dev/faultline/internal/wire"
)

// Agent is one agent's state and its latest snapshot (nil until it sent one).
type Agent struct {
	Status   view.AgentStatus
	Snapshot *wire.Snapshot
	// Lagging is set when the snapshot is older than the agent's interval says it
	// should be (Live.Lag): its data is not being read fresh, and its pod and its
	// breakers are shown stale.
	Lagging bool
}

// Input is everything the view is computed from.
type Input struct {
	Time      time.Time
	Mode      string
	Discovery view.Discovery
	Agents    []Agent
	Alerts    []wire.Alert // firing now
	// Detail adds pods and agent rows to the view; PerPod adds each pod's sample to
	// its row and each pod's view of every breaker to the tiles.
	Detail bool
	PerPod bool
	// Desired is the desired pods of workloads, when discovery knows them (nil: it does
	// not); see applyDesired.
	Desired map[discovery.Workload]int
	// Unsorted leaves pods and agents in input order, for callers that only scan them
	// (the broadcast's alert rules and history); sorting 10,000 rows every second is a
	// sizeable share of a broadcast.
	Unsorted bool
}

// WorkloadOf names the workload an agent belongs to: the one discovery or the agent
// reported, else the pod (a single host is its own workload).
func WorkloadOf(st view.AgentStatus) string {
	if st.Workload != "" {
		return st.Workload
	}
	if st.Pod != "" {
		return st.Pod
	}
	return st.Key
}

// live reports whether an agent's snapshot describes the present: only a connected
// agent's numbers are counted; an unavailable agent's last numbers would be invented
// data by now.
func (a Agent) live() bool {
	return a.Status.State == view.AgentConnected && a.Snapshot != nil
}

type wkey struct{ ns, name string }

// Cluster merges the input into the cluster view: the agents set in a Live, whose parts
// Assemble puts together.
func Cluster(in Input) view.Cluster {
	l := NewLive()
	for _, a := range in.Agents {
		l.Set(a.Status.Key, a)
	}
	parts := l.Parts(nil)
	if in.PerPod {
		for i, p := range parts {
			parts[i] = l.Detail(p.Workload.Namespace, p.Workload.Name)
		}
	}
	return Assemble(in, parts)
}

// Assemble builds the cluster view from the parts of every workload (in any order); it
// is what Cluster does once the agents are merged per workload. in.Agents is not used;
// in.Detail lists the parts' pods and agents.
func Assemble(in Input, parts []*Part) view.Cluster {
	c := view.Cluster{
		V:         wire.Version,
		Time:      wire.NewTime(in.Time),
		Mode:      in.Mode,
		Discovery: in.Discovery,
		Alerts:    in.Alerts,
	}
	if c.Alerts == nil {
		c.Alerts = []wire.Alert{}
	}
	parts = SortParts(parts)
	var cluster totalsAcc
	var pressure Pressure
	nsAcc := map[string]*totalsAcc{}
	var nsOrder []string
	tiles, pods := 0, 0
	for _, p := range parts {
		tiles += len(p.Tiles)
		pods += len(p.Pods)
	}
	c.Workloads = make([]view.Workload, 0, len(parts))
	c.Breakers = make([]view.BreakerTile, 0, tiles)
	if in.Detail {
		c.Pods = make([]view.Pod, 0, pods)
		c.Agents = make([]view.AgentStatus, 0, pods)
	}
	for _, p := range parts {
		ns := nsAcc[p.Workload.Namespace]
		if ns == nil {
			ns = &totalsAcc{}
			nsAcc[p.Workload.Namespace] = ns
			nsOrder = append(nsOrder, p.Workload.Namespace)
		}
		ns.merge(&p.totals)
		cluster.merge(&p.totals)
		pressure.add(p.Pressure)
		c.Workloads = append(c.Workloads, p.Workload)
		c.Breakers = append(c.Breakers, p.Tiles...)
		if in.Detail {
			c.Pods = append(c.Pods, p.Pods...)
			c.Agents = append(c.Agents, p.Agents...)
		}
	}
	firing := CountAlerts(in.Alerts)
	cluster.alerts = len(in.Alerts)
	c.Totals = cluster.totals()
	c.Namespaces = make([]view.Namespace, 0, len(nsAcc))
	for _, name := range nsOrder { // parts are sorted by namespace
		c.Namespaces = append(c.Namespaces, view.Namespace{Name: name, Totals: nsAcc[name].totals()})
	}
	for _, a := range in.Alerts {
		if a.Target.Namespace == "" {
			continue
		}
		for i := range c.Namespaces {
			if c.Namespaces[i].Name == a.Target.Namespace {
				c.Namespaces[i].Totals.AlertsFiring++
			}
		}
	}
	SortTiles(c.Breakers)
	if in.Detail && !in.Unsorted {
		slices.SortFunc(c.Pods, func(a, b view.Pod) int {
			return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Pod, b.Pod), cmp.Compare(a.Agent, b.Agent))
		})
		slices.SortFunc(c.Agents, func(a, b view.AgentStatus) int { return cmp.Compare(a.Key, b.Key) })
	}
	if in.Desired != nil {
		applyDesired(&c, in.Desired, in.Detail)
	}
	c.Health = Health(HealthInput{
		Breakers:     c.Totals.Breakers,
		Open:         c.Totals.BreakersOpen,
		HalfOpen:     c.Totals.BreakersHalfOpen,
		Alerts:       firing,
		Pressure:     pressure,
		Agents:       c.Totals.Agents,
		AgentsDown:   c.Totals.AgentsUnavailable,
		AgentsMissed: c.Totals.AgentsMissing,
	})
	return c
}

// SortParts returns the parts ordered by namespace and workload name, as the view lists
// workloads (a new slice when they were not in order).
func SortParts(parts []*Part) []*Part {
	less := func(a, b *Part) int {
		return cmp.Or(cmp.Compare(a.Workload.Namespace, b.Workload.Namespace), cmp.Compare(a.Workload.Name, b.Workload.Name))
	}
	if slices.IsSortedFunc(parts, less) {
		return parts
	}
	parts = slices.Clone(parts)
	slices.SortFunc(parts, less)
	return parts
}

// Part is one workload's share of the cluster view, merged from its agents alone: the
// unit an aggregator recomputes when one of the workload's agents changes.
type Part struct {
	Workload view.Workload
	Tiles    []view.BreakerTile // one per breaker name, in no particular order
	Pressure Pressure           // of the connected pods
	// One row per agent, in key order.
	Pods   []view.Pod
	Agents []view.AgentStatus
	totals totalsAcc
}

// SortTiles orders tiles worst first (open, half-open, then by failure rate and volume),
// then by namespace, workload and name: the order the grid and a truncated metrics event
// show them in.
func SortTiles(tiles []view.BreakerTile) {
	slices.SortStableFunc(tiles, compareTiles)
}

func compareTiles(a, b view.BreakerTile) int {
	if ra, rb := stateRank(a.State), stateRank(b.State); ra != rb {
		return cmp.Compare(rb, ra)
	}
	if fa, fb := deref(a.FailureRate), deref(b.FailureRate); fa != fb {
		return cmp.Compare(fb, fa)
	}
	return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Workload, b.Workload), cmp.Compare(a.Name, b.Name))
}

// stateRank orders states from harmless to worst, to pick a tile's worst state.
func stateRank(s wire.BreakerState) int {
	switch s {
	case wire.StateForcedOpen:
		return 5
	case wire.StateOpen:
		return 4
	case wire.StateHalfOpen:
		return 3
	case wire.StateClosed:
		return 2
	case wire.StateDisabled:
		return 1
	}
	return 0
}

func deref(p *float64) float64 {
	if p == nil {
		return -1
	}
	return *p
}

// podRow is an agent's row: the figures of its latest sample (nil where the agent did
// not report one) and its collectors' health.
func podRow(a Agent) view.Pod {
	st := a.Status
	p := view.Pod{Agent: st.Key, Pod: st.Pod, Namespace: st.Namespace, Workload: WorkloadOf(st), Node: st.Node, State: st.State, LastSeen: st.LastSeen}
	if st.Agent != nil {
		p.Agent = st.Agent.ID
	}
	if p.Pod == "" {
		p.Pod = p.Agent
	}
	if !a.live() {
		return p
	}
	p.Stale = a.Lagging
	s := a.Snapshot.Sample
	p.Breakers = len(a.Snapshot.Breakers)
	for _, b := range a.Snapshot.Breakers {
		if b.State.Open() {
			p.BreakersOpen++
		}
	}
	if s == nil {
		return p
	}
	p.Collectors = s.Collectors
	v := new(podValues) // one allocation for all of the row's figures
	if s.CPU != nil {
		p.CPUCores = v.put(s.CPU.Cores)
		switch {
		case s.CPU.PercentOfLimit != nil:
			p.CPUPercent = v.put(*s.CPU.PercentOfLimit)
		case s.CPU.Percent != nil: // host mode: the machine is the limit
			p.CPUPercent = v.put(*s.CPU.Percent)
		}
		if s.CPU.Throttling != nil {
			p.ThrottledPct = v.put(s.CPU.Throttling.Percent)
		}
	}
	if s.Memory != nil {
		v.mem = s.Memory.WorkingSetBytes
		p.MemoryBytes = &v.mem
		switch {
		case s.Memory.PercentOfLimit != nil:
			p.MemoryPercent = v.put(*s.Memory.PercentOfLimit)
		case s.Memory.LimitBytes != nil && *s.Memory.LimitBytes > 0:
			p.MemoryPercent = v.put(float64(s.Memory.WorkingSetBytes) / float64(*s.Memory.LimitBytes) * 100)
		case s.Memory.TotalBytes != nil && *s.Memory.TotalBytes > 0:
			p.MemoryPercent = v.put(float64(s.Memory.WorkingSetBytes) / float64(*s.Memory.TotalBytes) * 100)
		}
	}
	if s.Network != nil {
		p.RxBytesPerSec = v.put(s.Network.RxBytesPerSec)
		p.TxBytesPerSec = v.put(s.Network.TxBytesPerSec)
	}
	if s.Throughput != nil {
		p.RequestsPerSec = v.put(s.Throughput.RequestsPerSec)
		p.ErrorsPerSec = v.put(s.Throughput.ErrorsPerSec)
	}
	return p
}

// Pod is one agent's row, for callers that look at a single pod.
func Pod(a Agent) view.Pod { return podRow(a) }

// podValues holds a pod row's figures, which the row points into.
type podValues struct {
	f   [10]float64
	n   int
	mem uint64
}

func (v *podValues) put(x float64) *float64 {
	v.f[v.n] = x
	v.n++
	return &v.f[v.n-1]
}
