// Package merge turns the latest snapshot of every agent, and every agent's state, into
// the cluster-wide view: per pod, per workload, per namespace and for the whole cluster,
// with a health score. Everything here is a pure function over values.
package merge

import (
	"cmp"
	"slices"
	"sort"
	"time"

	"github.com/faultline-dev/faultline/aggregator/view"
	"github.com/faultline-dev/faultline/internal/wire"
)

// Agent is one agent's state and its latest snapshot (nil until it sent one).
type Agent struct {
	Status   view.AgentStatus
	Snapshot *wire.Snapshot
}

// Input is everything the view is computed from.
type Input struct {
	Time      time.Time
	Mode      string
	Discovery view.Discovery
	Agents    []Agent
	Alerts    []wire.Alert // firing now
	// Detail adds pods and agent rows to the view; PerPod adds each pod's view of
	// every breaker to the tiles.
	Detail bool
	PerPod bool
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

// Cluster merges the input into the cluster view.
func Cluster(in Input) view.Cluster {
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
	workloads := map[wkey]*workloadAcc{}
	namespaces := map[string]*view.Totals{}
	var cluster totalsAcc
	nsAcc := map[string]*totalsAcc{}
	var pressure []float64

	for _, a := range in.Agents {
		st := a.Status
		wk := wkey{st.Namespace, WorkloadOf(st)}
		w := workloads[wk]
		if w == nil {
			w = newWorkloadAcc(wk)
			workloads[wk] = w
		}
		ns := nsAcc[st.Namespace]
		if ns == nil {
			ns = &totalsAcc{}
			nsAcc[st.Namespace] = ns
		}
		var pod view.Pod
		if in.Detail {
			pod = podRow(a)
		} else {
			pod = podNumbers(a)
		}
		for _, t := range []*totalsAcc{&cluster, ns} {
			t.addAgent(st.State)
		}
		w.pods++
		if a.live() {
			w.connected++
			w.add(pod)
			for _, t := range []*totalsAcc{&cluster, ns} {
				t.addPod(pod, a.Snapshot)
			}
			for _, b := range a.Snapshot.Breakers {
				w.addBreaker(a, b, in.PerPod)
			}
			pressure = append(pressure, podPressure(pod))
		}
		if in.Detail {
			c.Pods = append(c.Pods, pod)
			c.Agents = append(c.Agents, st)
		}
	}
	for name, acc := range nsAcc {
		t := acc.totals()
		namespaces[name] = &t
	}
	firing := countAlerts(in.Alerts)
	cluster.alerts = len(in.Alerts)
	c.Totals = cluster.totals()
	for _, a := range in.Alerts {
		if t := namespaces[a.Target.Namespace]; t != nil && a.Target.Namespace != "" {
			t.AlertsFiring++
		}
	}
	c.Namespaces = make([]view.Namespace, 0, len(namespaces))
	for name, t := range namespaces {
		c.Namespaces = append(c.Namespaces, view.Namespace{Name: name, Totals: *t})
	}
	slices.SortFunc(c.Namespaces, func(a, b view.Namespace) int { return cmp.Compare(a.Name, b.Name) })
	c.Workloads = make([]view.Workload, 0, len(workloads))
	c.Breakers = []view.BreakerTile{}
	for _, w := range workloads {
		c.Workloads = append(c.Workloads, w.workload())
		c.Breakers = append(c.Breakers, w.tiles()...)
	}
	slices.SortFunc(c.Workloads, func(a, b view.Workload) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	SortTiles(c.Breakers)
	if in.Detail && !in.Unsorted {
		slices.SortFunc(c.Pods, func(a, b view.Pod) int {
			return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Pod, b.Pod), cmp.Compare(a.Agent, b.Agent))
		})
		slices.SortFunc(c.Agents, func(a, b view.AgentStatus) int { return cmp.Compare(a.Key, b.Key) })
	}
	c.Health = Health(HealthInput{
		Breakers:     c.Totals.Breakers,
		Open:         c.Totals.BreakersOpen,
		HalfOpen:     c.Totals.BreakersHalfOpen,
		Alerts:       firing,
		PodPressure:  pressure,
		Agents:       c.Totals.Agents,
		AgentsDown:   c.Totals.AgentsUnavailable,
		AgentsMissed: c.Totals.AgentsMissing,
	})
	return c
}

// SortTiles orders tiles worst first (open, half-open, then by failure rate and volume),
// then by namespace, workload and name: the order the grid and a truncated metrics event
// show them in.
func SortTiles(tiles []view.BreakerTile) {
	sort.SliceStable(tiles, func(i, j int) bool {
		a, b := tiles[i], tiles[j]
		if ra, rb := stateRank(a.State), stateRank(b.State); ra != rb {
			return ra > rb
		}
		if fa, fb := deref(a.FailureRate), deref(b.FailureRate); fa != fb {
			return fa > fb
		}
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		if a.Workload != b.Workload {
			return a.Workload < b.Workload
		}
		return a.Name < b.Name
	})
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

// podNumbers extracts the figures of an agent's latest sample; nil where the agent
// did not report one.
func podNumbers(a Agent) view.Pod {
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

// podRow is podNumbers plus the collectors' health.
func podRow(a Agent) view.Pod {
	p := podNumbers(a)
	if a.live() && a.Snapshot.Sample != nil {
		p.Collectors = a.Snapshot.Sample.Collectors
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
