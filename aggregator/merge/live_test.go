package merge

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/faultline-dev/faultline/aggregator/view"
	"github.com/faultline-dev/faultline/internal/wire"
)

// randomAgent is an agent of a small random fleet: any state, workload and namespace,
// with or without each figure, with breakers in any state.
func randomAgent(rng *rand.Rand, key string) Agent {
	states := []string{view.AgentConnected, view.AgentConnected, view.AgentConnected, view.AgentUnavailable, view.AgentMissing, view.AgentConnecting}
	st := view.AgentStatus{V: 1, Key: key, State: states[rng.IntN(len(states))], Pod: key,
		Namespace: []string{"", "shop", "pay"}[rng.IntN(3)], Workload: []string{"", "cart", "api", "web"}[rng.IntN(4)], Agent: &wire.Agent{V: 1, ID: key}}
	s := &wire.Snapshot{V: 1}
	if rng.IntN(5) > 0 {
		s.Sample = &wire.Sample{V: 1, IntervalMs: 1000, CPU: &wire.CPU{Cores: rng.Float64()}}
		if rng.IntN(2) == 0 {
			s.Sample.CPU.LimitCores = wire.Ptr(float64(1 + rng.IntN(3)))
			s.Sample.CPU.PercentOfLimit = wire.Ptr(rng.Float64() * 110)
		}
		if rng.IntN(3) > 0 {
			s.Sample.Memory = &wire.Memory{WorkingSetBytes: uint64(rng.IntN(1 << 30)), LimitBytes: wire.Ptr(uint64(1 << 30)), PercentOfLimit: wire.Ptr(rng.Float64() * 100)}
		}
		if rng.IntN(3) > 0 {
			s.Sample.Throughput = &wire.Throughput{RequestsPerSec: rng.Float64() * 100, ErrorsPerSec: rng.Float64()}
		}
	}
	allStates := []wire.BreakerState{wire.StateClosed, wire.StateOpen, wire.StateHalfOpen, wire.StateForcedOpen, wire.StateDisabled}
	for b := range rng.IntN(4) {
		br := wire.Breaker{V: 1, Name: fmt.Sprintf("b%d", b), State: allStates[rng.IntN(len(allStates))], Source: []string{"", "push", "scrape"}[rng.IntN(3)],
			Calls: wire.Calls{Succeeded: uint64(rng.IntN(100)), Failed: uint64(rng.IntN(10))}, Since: wire.NewTime(time.Unix(int64(rng.IntN(1e6)), 0)), Stale: rng.IntN(8) == 0}
		if rng.IntN(2) == 0 {
			br.FailureRate = wire.Ptr(rng.Float64() * 100)
		}
		if rng.IntN(2) == 0 {
			br.RatePerSec = wire.Ptr(rng.Float64() * 10)
		}
		s.Breakers = append(s.Breakers, br)
	}
	return Agent{Status: st, Snapshot: s}
}

// Live must give the view a full merge gives, after any sequence of changes: agents
// arriving, changing (figures, breakers, state, workload) and leaving. Sums may differ
// in their last bits (Live's are more exact).
func TestLiveAgreesWithWorkload(t *testing.T) {
	approx := cmp.Comparer(func(a, b float64) bool {
		return a == b || math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
	})
	for seed := uint64(1); seed <= 25; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		live := NewLive()
		agents := map[string]Agent{}
		keys := make([]string, 2+rng.IntN(30))
		for i := range keys {
			keys[i] = fmt.Sprintf("a%02d", i)
		}
		for round := range 40 {
			for range 1 + rng.IntN(10) {
				key := keys[rng.IntN(len(keys))]
				if rng.IntN(6) == 0 {
					live.Remove(key)
					delete(agents, key)
					continue
				}
				a := randomAgent(rng, key)
				live.Set(key, a)
				agents[key] = a
			}
			in := Input{Time: t0, Detail: true}
			for _, k := range slices.Sorted(mapKeys(agents)) {
				in.Agents = append(in.Agents, agents[k])
			}
			want := Cluster(in)
			got := Assemble(in, live.Parts(nil))
			if diff := cmp.Diff(want, got, approx, cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("seed %d round %d (-full merge +live):\n%s", seed, round, diff)
			}
		}
	}
}

func mapKeys(m map[string]Agent) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// However many times figures are added and taken away, a sum back to nothing is exactly
// zero, and a sum of the same figures is what adding them once gives.
func TestLiveSumsDoNotDrift(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	live := NewLive()
	final := map[string]Agent{}
	for i := 0; i < 100000; i++ {
		key := fmt.Sprintf("p%d", rng.IntN(20))
		a := pod("ns", "wl", key, rng.Float64()*100, rng.Float64()*100, rng.Float64()*1000, rng.Float64(), breaker("db", wire.StateClosed, rng.Float64()*100, rng.Float64()*50))
		a.Status.Key = key
		live.Set(key, a)
		final[key] = a
	}
	var in Input
	for _, k := range slices.Sorted(mapKeys(final)) {
		in.Agents = append(in.Agents, final[k])
	}
	want := Cluster(in).Workloads[0]
	got := Assemble(Input{}, live.Parts(nil)).Workloads[0]
	if math.Abs(got.RequestsPerSec-want.RequestsPerSec) > 1e-9*want.RequestsPerSec {
		t.Errorf("requests/s after 100,000 changes: %v, want %v", got.RequestsPerSec, want.RequestsPerSec)
	}
	for k := range final {
		a := final[k]
		a.Snapshot = &wire.Snapshot{V: 1, Sample: &wire.Sample{V: 1, Throughput: &wire.Throughput{}}}
		live.Set(k, a)
	}
	w := Assemble(Input{}, live.Parts(nil)).Workloads[0]
	if w.RequestsPerSec != 0 || w.ErrorsPerSec != 0 || w.CPUCores.Sum != nil {
		t.Errorf("after every pod went to zero: requests/s %v, errors/s %v, cpu %+v", w.RequestsPerSec, w.ErrorsPerSec, w.CPUCores)
	}
}
