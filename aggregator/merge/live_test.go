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

// Live kept up to date change by change must give the view a fresh merge of the same
// agents gives, after any sequence of changes: agents arriving, changing (figures,
// breakers, state, workload) and leaving. Sums may differ in their last bits.
func TestLiveAgreesWithFreshMerge(t *testing.T) {
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
				switch rng.IntN(6) {
				case 0:
					live.Remove(key)
					delete(agents, key)
					continue
				case 1, 2: // transitions of breakers held or new
					a, ok := agents[key]
					if !ok {
						continue
					}
					for range 1 + rng.IntN(3) {
						b := randomAgent(rng, key).Snapshot.Breakers
						if len(b) == 0 {
							continue
						}
						br := b[0]
						br.Name = fmt.Sprintf("b%d", rng.IntN(6))
						_, _, applied := live.Transition(key, br)
						if applied != (a.Snapshot != nil) {
							t.Fatalf("Transition applied %v to an agent with snapshot %v", applied, a.Snapshot != nil)
						}
						if a.Snapshot != nil {
							a = withBreaker(a, br)
						}
					}
					agents[key] = a
					continue
				case 3:
					if a, ok := agents[key]; ok && rng.IntN(2) == 0 {
						st := randomAgent(rng, key).Status
						live.SetStatus(key, st)
						a.Status = st
						agents[key] = a
						continue
					}
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

// merged is the part of the one workload of agents, merged at once.
func merged(agents ...Agent) *Part {
	l := NewLive()
	for _, a := range agents {
		l.Set(a.Status.Key, a)
	}
	return l.Parts(nil)[0]
}

// withBreaker is a with breaker b replacing the one of its name, or added last.
func withBreaker(a Agent, b wire.Breaker) Agent {
	s := *a.Snapshot
	s.Breakers = slices.Clone(s.Breakers)
	if i := slices.IndexFunc(s.Breakers, func(x wire.Breaker) bool { return x.Name == b.Name }); i >= 0 {
		s.Breakers[i] = b
	} else {
		s.Breakers = append(s.Breakers, b)
	}
	a.Snapshot = &s
	return a
}

// A transition's tile is the workload's tile of that breaker after the change, as a full
// merge makes it, and the agent Live gives back is the one the transitions left.
func TestLiveTransitionTile(t *testing.T) {
	live := NewLive()
	a1 := pod("ns", "wl", "p1", 1, 1, 1, 1, breaker("db", wire.StateClosed, 10, 5), breaker("cache", wire.StateClosed, 1, 1))
	a2 := pod("ns", "wl", "p2", 1, 1, 1, 1, breaker("db", wire.StateClosed, 30, 5))
	live.Set("p1", a1)
	live.Set("p2", a2)
	opened := breaker("db", wire.StateOpen, 90, 7)
	opened.Since = wire.NewTime(t0.Add(time.Minute))
	tile, st, ok := live.Transition("p1", opened)
	if !ok || st.Pod != "p1" {
		t.Fatalf("Transition = %v, %+v", ok, st)
	}
	a1 = withBreaker(a1, opened)
	want := merged(a1, a2)
	i := slices.IndexFunc(want.Tiles, func(x view.BreakerTile) bool { return x.Name == "db" })
	if diff := cmp.Diff(want.Tiles[i], tile, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("tile (-full merge +transition):\n%s", diff)
	}
	got, _ := live.Agent("p1")
	if diff := cmp.Diff(a1, got); diff != "" {
		t.Errorf("agent after the transition (-want +got):\n%s", diff)
	}
	if _, _, ok := live.Transition("nobody", opened); ok {
		t.Error("a transition of an unknown agent was applied")
	}
}

// An agent whose data is older than it should be shows stale, pod and tiles, until its
// data is fresh again.
func TestLiveLag(t *testing.T) {
	live := NewLive()
	live.StaleAfter = func(Agent) time.Duration { return 3 * time.Second }
	a := pod("ns", "wl", "p1", 1, 1, 1, 1, breaker("db", wire.StateClosed, 10, 5))
	a.Status.LastSeen = wire.NewTime(t0)
	live.Set("p1", a)
	stale := func() (bool, bool) {
		p := Assemble(Input{Detail: true}, live.Parts(nil))
		return p.Pods[0].Stale, p.Breakers[0].Stale
	}
	live.Lag(t0.Add(2 * time.Second))
	if pod, tile := stale(); pod || tile {
		t.Errorf("fresh data shows stale: pod %v, tile %v", pod, tile)
	}
	live.Lag(t0.Add(4 * time.Second))
	if pod, tile := stale(); !pod || !tile {
		t.Errorf("data 4 s old with 3 s allowed: pod stale %v, tile stale %v", pod, tile)
	}
	got, _ := live.Agent("p1")
	if want := merged(got); !want.Pods[0].Stale || !want.Tiles[0].Stale {
		t.Error("a full merge of the lagging agent does not show it stale")
	}
	a.Status.LastSeen = wire.NewTime(t0.Add(4 * time.Second))
	live.Set("p1", a)
	live.Lag(t0.Add(5 * time.Second))
	if pod, tile := stale(); pod || tile {
		t.Errorf("fresh again, still stale: pod %v, tile %v", pod, tile)
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
