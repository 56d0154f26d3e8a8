package merge

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/faultline-dev/faultline/aggregator/view"
	"github.com/faultline-dev/faultline/internal/wire"
)

// extreme picks a figure at or near the edges of what the wire allows.
func extreme(rng *rand.Rand, max float64) float64 {
	switch rng.IntN(6) {
	case 0:
		return 0
	case 1:
		return math.SmallestNonzeroFloat64
	case 2:
		return max
	case 3:
		return math.Nextafter(max, 0)
	case 4:
		return max / 3
	}
	return rng.Float64() * max
}

func extremeCount(rng *rand.Rand) uint64 {
	return []uint64{0, 1, wire.MaxCount, wire.MaxCount - 1, uint64(rng.Int64N(wire.MaxCount))}[rng.IntN(5)]
}

// extremeAgent is an agent whose every figure sits anywhere in the wire's bounds, and
// which passes the wire's checks, as everything the aggregator merges does.
func extremeAgent(t *testing.T, rng *rand.Rand, key, workload string) Agent {
	pct := func() *float64 { v := extreme(rng, 100); return &v }
	bytes := func() *uint64 { v := uint64(extreme(rng, wire.MaxBytes)); return &v }
	s := &wire.Snapshot{V: 1, Agent: wire.Agent{V: 1, ID: key}, Sample: &wire.Sample{V: 1, IntervalMs: extreme(rng, wire.MaxMs),
		CPU: &wire.CPU{Cores: extreme(rng, wire.MaxCores), LimitCores: wire.Ptr(extreme(rng, wire.MaxCores)),
			PercentOfLimit: wire.Ptr(extreme(rng, wire.MaxPercent)), Throttling: &wire.Throttling{Percent: extreme(rng, 100)}},
		Memory:     &wire.Memory{WorkingSetBytes: *bytes(), LimitBytes: bytes(), TotalBytes: bytes()},
		Network:    &wire.Network{RxBytesPerSec: extreme(rng, wire.MaxByteRate), TxBytesPerSec: extreme(rng, wire.MaxByteRate)},
		Throughput: &wire.Throughput{RequestsPerSec: extreme(rng, wire.MaxRate), ErrorsPerSec: extreme(rng, wire.MaxRate), Source: "app"}}}
	if rng.IntN(3) == 0 {
		s.Sample.Memory.PercentOfLimit = wire.Ptr(extreme(rng, wire.MaxPercent))
	}
	states := []wire.BreakerState{wire.StateClosed, wire.StateOpen, wire.StateHalfOpen, wire.StateForcedOpen, wire.StateDisabled}
	for b := range 1 + rng.IntN(3) {
		s.Breakers = append(s.Breakers, wire.Breaker{V: 1, Name: fmt.Sprintf("b%d", b), State: states[rng.IntN(len(states))],
			FailureRate: pct(), SlowCallRate: pct(), RatePerSec: wire.Ptr(extreme(rng, wire.MaxRate)), Source: "push",
			Calls: wire.Calls{Succeeded: extremeCount(rng), Failed: extremeCount(rng), Rejected: extremeCount(rng), TimedOut: extremeCount(rng)},
			Since: wire.NewTime(time.Unix(int64(rng.IntN(1e9)), 0))})
	}
	if err := wire.CheckSnapshot(s); err != nil {
		t.Fatalf("the test made an agent the wire refuses: %v", err)
	}
	return Agent{Status: view.AgentStatus{V: 1, Key: key, State: view.AgentConnected, Pod: key, Namespace: "ns", Workload: workload}, Snapshot: s}
}

// nonFinite lists the paths of the floats in v that are NaN or infinite.
func nonFinite(v reflect.Value, path string, out *[]string) {
	switch v.Kind() {
	case reflect.Float64, reflect.Float32:
		if f := v.Float(); math.IsNaN(f) || math.IsInf(f, 0) {
			*out = append(*out, fmt.Sprintf("%s=%v", path, f))
		}
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			nonFinite(v.Elem(), path, out)
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				nonFinite(v.Field(i), path+"."+v.Type().Field(i).Name, out)
			}
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			nonFinite(v.Index(i), fmt.Sprintf("%s[%d]", path, i), out)
		}
	}
}

// Whatever agents send within the wire's bounds, however many pods report the largest
// figures and however often they change, the merge yields finite numbers only (and so a
// view that encodes), and call counts that add up exactly: a pod writing rate_per_sec
// 1.7e308 cannot break the API and the stream for everyone.
func TestMergeStaysFinite(t *testing.T) {
	for seed := uint64(1); seed <= 12; seed++ {
		rng := rand.New(rand.NewPCG(seed, 99))
		live := NewLive()
		agents := map[string]Agent{}
		for round := range 6 {
			for range 400 {
				key := fmt.Sprintf("p%04d", rng.IntN(1500))
				switch rng.IntN(8) {
				case 0:
					live.Remove(key)
					delete(agents, key)
				case 1:
					if a, ok := agents[key]; ok {
						br := extremeAgent(t, rng, key, "").Snapshot.Breakers[0]
						live.Transition(key, br)
						agents[key] = withBreaker(a, br)
					}
				default:
					a := extremeAgent(t, rng, key, []string{"w1", "w2"}[rng.IntN(2)])
					live.Set(key, a)
					agents[key] = a
				}
			}
			in := Input{Time: t0, Detail: true}
			var want wire.Calls
			for _, a := range agents {
				in.Agents = append(in.Agents, a)
				for _, b := range a.Snapshot.Breakers {
					want.Succeeded += b.Calls.Succeeded
				}
			}
			for name, c := range map[string]view.Cluster{"full merge": Cluster(in), "live": Assemble(in, live.Parts(nil))} {
				var bad []string
				nonFinite(reflect.ValueOf(c), "cluster", &bad)
				nonFinite(reflect.ValueOf(Metrics(c, 5, 5)), "metrics", &bad)
				if len(bad) > 0 {
					t.Fatalf("seed %d round %d, %s: non-finite figures %v", seed, round, name, bad)
				}
				if _, err := json.Marshal(c); err != nil {
					t.Fatalf("seed %d round %d, %s: the view does not encode: %v", seed, round, name, err)
				}
				var got uint64
				for _, tile := range c.Breakers {
					got += tile.Calls.Succeeded
				}
				if got != want.Succeeded {
					t.Fatalf("seed %d round %d, %s: succeeded calls sum to %d over the tiles, want %d", seed, round, name, got, want.Succeeded)
				}
			}
		}
	}
}
