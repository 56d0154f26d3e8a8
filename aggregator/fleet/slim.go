package fleet

import (
	"sync"

	"github.com/faultline-dev/faultline/internal/wire"
)

// What the fleet keeps of an agent's snapshot is a slim copy: every figure of the sample
// and of the breakers, laid out in a few allocations, with what never changes shared
// between agents. A decoded snapshot spreads over a dozen allocations and carries the
// agent's identity, which the agent's state already holds; with ten thousand agents that
// is most of the aggregator's memory.

// slimSample holds a sample and its sections in one allocation.
type slimSample struct {
	sample     wire.Sample
	cpu        wire.CPU
	throttling wire.Throttling
	memory     wire.Memory
	network    wire.Network
	process    wire.Process
	load       wire.Load
	throughput wire.Throughput
	latency    wire.Latency
	self       wire.Self
	f          [4]float64
	u          [3]uint64
}

// slimFigures holds one breaker's optional figures.
type slimFigures struct {
	failureRate, slowCallRate, callsWindow, rate float64
	latency                                      wire.Latency
}

// shared dedupes what agents repeat: breaker thresholds (configuration, the same on
// every pod of a workload and usually on every breaker).
type shared struct {
	mu      sync.Mutex
	byValue map[thresholdKey]*wire.Thresholds
}

// thresholdKey is a Thresholds by value (nil fields as absent).
type thresholdKey struct {
	failureRate, slowCallRate, slowCallMs, openMs float64
	minimumCalls, consecutive                     uint64
	has                                           uint8
}

// maxShared bounds the distinct thresholds kept; beyond it, each agent keeps its own.
const maxShared = 1 << 14

func (sh *shared) threshold(t *wire.Thresholds) *wire.Thresholds {
	if t == nil {
		return nil
	}
	var k thresholdKey
	set := func(bit uint8, p *float64, dst *float64) {
		if p != nil {
			k.has |= bit
			*dst = *p
		}
	}
	set(1, t.FailureRate, &k.failureRate)
	set(2, t.SlowCallRate, &k.slowCallRate)
	set(4, t.SlowCallMs, &k.slowCallMs)
	set(8, t.OpenMs, &k.openMs)
	if t.MinimumCalls != nil {
		k.has |= 16
		k.minimumCalls = *t.MinimumCalls
	}
	if t.ConsecutiveFails != nil {
		k.has |= 32
		k.consecutive = *t.ConsecutiveFails
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if p, ok := sh.byValue[k]; ok {
		return p
	}
	cp := cloneThresholds(t)
	if sh.byValue == nil {
		sh.byValue = map[thresholdKey]*wire.Thresholds{}
	}
	if len(sh.byValue) < maxShared {
		sh.byValue[k] = cp
	}
	return cp
}

// thresholdsBlock holds a Thresholds and its figures in one allocation.
type thresholdsBlock struct {
	t wire.Thresholds
	f [4]float64
	u [2]uint64
}

func cloneThresholds(t *wire.Thresholds) *wire.Thresholds {
	b := &thresholdsBlock{}
	b.t = wire.Thresholds{
		FailureRate:  copyFloat(t.FailureRate, &b.f[0]),
		SlowCallRate: copyFloat(t.SlowCallRate, &b.f[1]),
		SlowCallMs:   copyFloat(t.SlowCallMs, &b.f[2]),
		OpenMs:       copyFloat(t.OpenMs, &b.f[3]),
	}
	if t.MinimumCalls != nil {
		b.u[0] = *t.MinimumCalls
		b.t.MinimumCalls = &b.u[0]
	}
	if t.ConsecutiveFails != nil {
		b.u[1] = *t.ConsecutiveFails
		b.t.ConsecutiveFails = &b.u[1]
	}
	return &b.t
}

// slim returns the copy of snap the fleet keeps. The result shares no memory with snap,
// which the pool reuses for the next event.
func (sh *shared) slim(snap *wire.Snapshot) *wire.Snapshot {
	out := &wire.Snapshot{V: snap.V, Seq: snap.Seq}
	if s := snap.Sample; s != nil {
		ss := &slimSample{}
		ss.sample = *s
		f := func(p *float64, i int) *float64 { return copyFloat(p, &ss.f[i]) }
		u := func(p *uint64, i int) *uint64 {
			if p == nil {
				return nil
			}
			ss.u[i] = *p
			return &ss.u[i]
		}
		if c := s.CPU; c != nil {
			ss.cpu = *c
			ss.cpu.LimitCores, ss.cpu.PercentOfLimit, ss.cpu.Percent = f(c.LimitCores, 0), f(c.PercentOfLimit, 1), f(c.Percent, 2)
			if c.Throttling != nil {
				ss.throttling = *c.Throttling
				ss.cpu.Throttling = &ss.throttling
			}
			ss.sample.CPU = &ss.cpu
		}
		if m := s.Memory; m != nil {
			ss.memory = *m
			ss.memory.RSSBytes, ss.memory.LimitBytes, ss.memory.TotalBytes = u(m.RSSBytes, 0), u(m.LimitBytes, 1), u(m.TotalBytes, 2)
			ss.memory.PercentOfLimit = f(m.PercentOfLimit, 3)
			ss.sample.Memory = &ss.memory
		}
		if n := s.Network; n != nil {
			ss.network = *n
			ss.sample.Network = &ss.network
		}
		if p := s.Process; p != nil {
			ss.process = *p
			ss.sample.Process = &ss.process
		}
		if l := s.Load; l != nil {
			ss.load = *l
			ss.sample.Load = &ss.load
		}
		if t := s.Throughput; t != nil {
			ss.throughput = *t
			if t.Latency != nil {
				ss.latency = *t.Latency
				ss.throughput.Latency = &ss.latency
			}
			ss.sample.Throughput = &ss.throughput
		}
		if x := s.Self; x != nil {
			ss.self = *x
			ss.sample.Self = &ss.self
		}
		if s.Collectors != nil {
			ss.sample.Collectors = append(make([]wire.Collector, 0, len(s.Collectors)), s.Collectors...)
		}
		out.Sample = &ss.sample
	}
	if snap.Breakers != nil {
		out.Breakers = make([]wire.Breaker, len(snap.Breakers))
		figs := make([]slimFigures, len(snap.Breakers))
		for i := range snap.Breakers {
			b, fig := &snap.Breakers[i], &figs[i]
			nb := &out.Breakers[i]
			*nb = *b
			nb.FailureRate = copyFloat(b.FailureRate, &fig.failureRate)
			nb.SlowCallRate = copyFloat(b.SlowCallRate, &fig.slowCallRate)
			nb.CallsWindowMs = copyFloat(b.CallsWindowMs, &fig.callsWindow)
			nb.RatePerSec = copyFloat(b.RatePerSec, &fig.rate)
			if b.Latency != nil {
				fig.latency = *b.Latency
				nb.Latency = &fig.latency
			}
			nb.Thresholds = sh.threshold(b.Thresholds)
		}
	}
	return out
}

func copyFloat(p, slot *float64) *float64 {
	if p == nil {
		return nil
	}
	*slot = *p
	return slot
}
