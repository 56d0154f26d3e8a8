package merge

import (
	"slices"
	"sort"

	"github.com/faultline-dev/faultline/aggregator/view"
	"github.com/faultline-dev/faultline/internal/wire"
)

// totalsAcc sums a scope.
type totalsAcc struct {
	t           view.Totals
	cpuLimit    float64
	cpuLimitAll bool
	memLimit    uint64
	memLimitAll bool
	pods        int
	alerts      int
}

func (t *totalsAcc) addAgent(state string) {
	t.t.Agents++
	switch state {
	case view.AgentConnected:
		t.t.AgentsConnected++
	case view.AgentUnavailable:
		t.t.AgentsUnavailable++
	case view.AgentMissing:
		t.t.AgentsMissing++
	}
}

func (t *totalsAcc) addPod(p view.Pod, snap *wire.Snapshot) {
	if t.pods == 0 {
		t.cpuLimitAll, t.memLimitAll = true, true
	}
	t.pods++
	if p.CPUCores != nil {
		t.t.CPUCores += *p.CPUCores
	}
	if p.MemoryBytes != nil {
		t.t.MemoryBytes += *p.MemoryBytes
	}
	if p.RequestsPerSec != nil {
		t.t.RequestsPerSec += *p.RequestsPerSec
	}
	if p.ErrorsPerSec != nil {
		t.t.ErrorsPerSec += *p.ErrorsPerSec
	}
	s := snap.Sample
	if s != nil && s.CPU != nil && s.CPU.LimitCores != nil {
		t.cpuLimit += *s.CPU.LimitCores
	} else {
		t.cpuLimitAll = false
	}
	if s != nil && s.Memory != nil && s.Memory.LimitBytes != nil {
		t.memLimit += *s.Memory.LimitBytes
	} else {
		t.memLimitAll = false
	}
	for _, b := range snap.Breakers {
		t.t.Breakers++
		switch {
		case b.State.Open():
			t.t.BreakersOpen++
		case b.State == wire.StateHalfOpen:
			t.t.BreakersHalfOpen++
		}
	}
}

// merge adds another scope's sums (a workload's to its namespace's, say).
func (t *totalsAcc) merge(o *totalsAcc) {
	t.t.Agents += o.t.Agents
	t.t.AgentsConnected += o.t.AgentsConnected
	t.t.AgentsUnavailable += o.t.AgentsUnavailable
	t.t.AgentsMissing += o.t.AgentsMissing
	if o.pods > 0 {
		if t.pods == 0 {
			t.cpuLimitAll, t.memLimitAll = true, true
		}
		t.pods += o.pods
		t.cpuLimitAll = t.cpuLimitAll && o.cpuLimitAll
		t.memLimitAll = t.memLimitAll && o.memLimitAll
		t.cpuLimit += o.cpuLimit
		t.memLimit += o.memLimit
		t.t.CPUCores += o.t.CPUCores
		t.t.MemoryBytes += o.t.MemoryBytes
		t.t.RequestsPerSec += o.t.RequestsPerSec
		t.t.ErrorsPerSec += o.t.ErrorsPerSec
	}
	t.t.Breakers += o.t.Breakers
	t.t.BreakersOpen += o.t.BreakersOpen
	t.t.BreakersHalfOpen += o.t.BreakersHalfOpen
}

func (t *totalsAcc) totals() view.Totals {
	out := t.t
	if t.pods > 0 && t.cpuLimitAll {
		out.CPULimitCores = wire.Ptr(t.cpuLimit)
	}
	if t.pods > 0 && t.memLimitAll {
		out.MemoryLimitBytes = wire.Ptr(t.memLimit)
	}
	out.AlertsFiring = t.alerts
	return out
}

// statAcc accumulates max, mean and sum of a figure over the pods that report it.
type statAcc struct {
	n        int
	max, sum float64
}

func (s *statAcc) add(v *float64) {
	if v == nil {
		return
	}
	if s.n == 0 || *v > s.max {
		s.max = *v
	}
	s.n++
	s.sum += *v
}

func (s *statAcc) addU(v *uint64) {
	if v != nil {
		s.add(wire.Ptr(float64(*v)))
	}
}

func (s statAcc) stat() view.Stat {
	if s.n == 0 {
		return view.Stat{}
	}
	return view.Stat{Max: wire.Ptr(s.max), Mean: wire.Ptr(s.sum / float64(s.n)), Sum: wire.Ptr(s.sum)}
}

type workloadAcc struct {
	key             wkey
	pods, connected int
	cpu, cpuPct     statAcc
	mem, memPct     statAcc
	rps, eps        float64
	open            int
	breakers        []*tileAcc // a workload has a handful of breaker names: a list beats a map
}

func newWorkloadAcc(k wkey) *workloadAcc {
	return &workloadAcc{key: k}
}

func (w *workloadAcc) add(p view.Pod) {
	w.cpu.add(p.CPUCores)
	w.cpuPct.add(p.CPUPercent)
	w.mem.addU(p.MemoryBytes)
	w.memPct.add(p.MemoryPercent)
	if p.RequestsPerSec != nil {
		w.rps += *p.RequestsPerSec
	}
	if p.ErrorsPerSec != nil {
		w.eps += *p.ErrorsPerSec
	}
}

func (w *workloadAcc) addBreaker(a Agent, b *wire.Breaker, detail bool) {
	var t *tileAcc
	for _, x := range w.breakers {
		if x.tile.Name == b.Name {
			t = x
			break
		}
	}
	if t == nil {
		t = &tileAcc{tile: view.BreakerTile{Namespace: w.key.ns, Workload: w.key.name, Name: b.Name}}
		w.breakers = append(w.breakers, t)
	}
	if b.State.Open() {
		w.open++
	}
	t.add(a, b, detail)
}

func (w *workloadAcc) workload() view.Workload {
	return view.Workload{
		Namespace:      w.key.ns,
		Name:           w.key.name,
		Pods:           w.pods,
		PodsConnected:  w.connected,
		CPUCores:       w.cpu.stat(),
		CPUPercent:     w.cpuPct.stat(),
		MemoryBytes:    w.mem.stat(),
		MemoryPercent:  w.memPct.stat(),
		RequestsPerSec: w.rps,
		ErrorsPerSec:   w.eps,
		BreakersOpen:   w.open,
	}
}

func (w *workloadAcc) tiles() []view.BreakerTile {
	out := make([]view.BreakerTile, 0, len(w.breakers))
	for _, t := range w.breakers {
		out = append(out, t.done())
	}
	return out
}

// tileAcc merges one breaker name over a workload's pods.
type tileAcc struct {
	tile            view.BreakerTile
	frSum, frWeight float64
	frKnown         bool
	sources         []string
}

func (t *tileAcc) add(a Agent, b *wire.Breaker, detail bool) {
	tl := &t.tile
	tl.Pods++
	switch {
	case b.State.Open():
		tl.Open++
	case b.State == wire.StateHalfOpen:
		tl.HalfOpen++
	}
	if tl.Pods == 1 || stateRank(b.State) > stateRank(tl.State) {
		tl.State = b.State
	}
	rate := 0.0
	if b.RatePerSec != nil {
		rate = *b.RatePerSec
		tl.RatePerSec += rate
	}
	if b.FailureRate != nil {
		// Weighted by call volume, so that an idle pod's 100 % from one call does not
		// outweigh a busy pod's 1 %; pods without a known volume weigh one call.
		w := rate
		if w <= 0 {
			w = 1
		}
		t.frSum += *b.FailureRate * w
		t.frWeight += w
		t.frKnown = true
	}
	tl.Calls.Succeeded += b.Calls.Succeeded
	tl.Calls.Failed += b.Calls.Failed
	tl.Calls.Rejected += b.Calls.Rejected
	tl.Calls.TimedOut += b.Calls.TimedOut
	if b.Since.After(tl.Since.Time) {
		tl.Since = b.Since
	}
	if b.Stale || a.Lagging {
		tl.Stale = true
	}
	if b.Source != "" && !slices.Contains(t.sources, b.Source) {
		t.sources = append(t.sources, b.Source)
	}
	if detail {
		id := a.Status.Key
		if a.Status.Agent != nil {
			id = a.Status.Agent.ID
		}
		tl.PerPod = append(tl.PerPod, view.PodBreaker{Agent: id, Pod: a.Status.Pod, Breaker: *b})
	}
}

func (t *tileAcc) done() view.BreakerTile {
	tl := t.tile
	if t.frKnown {
		tl.FailureRate = wire.Ptr(t.frSum / t.frWeight)
	}
	tl.Sources = t.sources
	if tl.Sources == nil {
		tl.Sources = []string{}
	}
	slices.Sort(tl.Sources)
	sort.Slice(tl.PerPod, func(i, j int) bool { return tl.PerPod[i].Pod < tl.PerPod[j].Pod })
	return tl
}
