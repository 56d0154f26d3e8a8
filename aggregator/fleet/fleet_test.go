package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/faultline-dev/faultline/aggregator/merge"
	"github.com/faultline-dev/faultline/aggregator/view"
	"github.com/faultline-dev/faultline/internal/stream"
	"github.com/faultline-dev/faultline/internal/wire"
)

// A transition is published at once with the workload's tile after it, counting only
// the pods of that workload, even when an agent moved between workloads.
func TestTransitionEventCarriesTheWorkloadTile(t *testing.T) {
	hub := stream.New(stream.Options{})
	st := New(Options{Hub: hub})
	add := func(key, wl string, state wire.BreakerState) {
		st.Status(view.AgentStatus{V: 1, Key: key, State: view.AgentConnected, Pod: key, Namespace: "shop", Workload: wl})
		st.Snapshot(key, &wire.Snapshot{V: 1, Agent: wire.Agent{V: 1, ID: key}, Breakers: []wire.Breaker{{V: 1, Name: "db", State: state}}}, true)
	}
	add("a", "cart", wire.StateClosed)
	add("b", "cart", wire.StateOpen)
	add("c", "pay", wire.StateOpen)
	add("d", "pay", wire.StateClosed)
	add("d", "cart", wire.StateClosed) // moved from pay to cart
	sub := hub.Subscribe(hub.LastID(), nil)
	defer hub.Unsubscribe(sub)
	st.Transition("a", wire.Transition{V: 1, Agent: "a", From: wire.StateClosed, To: wire.StateOpen, Breaker: wire.Breaker{V: 1, Name: "db", State: wire.StateOpen}})
	select {
	case ev := <-sub.C:
		if ev.Name != wire.EventCircuitBreaker || ev.Workload != "cart" {
			t.Fatalf("event %s for %s", ev.Name, ev.Workload)
		}
		frame := string(ev.Frame)
		data := frame[len("id: "+hub.LastID()+"\nevent: circuit-breaker\ndata: ") : len(frame)-2]
		var be view.BreakerEvent
		if err := json.Unmarshal([]byte(data), &be); err != nil {
			t.Fatal(err)
		}
		if be.Tile.Pods != 3 || be.Tile.Open != 2 {
			t.Errorf("tile = %d of %d open; want 2 of 3 (a, b, d in cart)", be.Tile.Open, be.Tile.Pods)
		}
	case <-time.After(time.Second):
		t.Fatal("no circuit-breaker event")
	}
	st.Removed("b")
	if n := len(st.Detail("shop", "cart").Agents); n != 2 {
		t.Errorf("cart has %d agents indexed after a removal, want 2", n)
	}
}

// The fleet keeps each workload's part of the view up to date event by event; the result
// must be what merging every agent afresh gives (merge.Cluster), whatever happened in
// between: snapshots, transitions, state changes, agents moving between workloads,
// removals (up to the last bits of sums).
func TestIncrementalMergeAgreesWithFullMerge(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		rng := rand.New(rand.NewPCG(seed, 99))
		st := New(Options{Hub: stream.New(stream.Options{})})
		keys := make([]string, 5+rng.IntN(40))
		for i := range keys {
			keys[i] = fmt.Sprintf("agent-%02d", i)
		}
		status := func(key string) view.AgentStatus {
			states := []string{view.AgentConnected, view.AgentConnected, view.AgentConnected, view.AgentUnavailable, view.AgentMissing, view.AgentConnecting}
			ns := []string{"", "shop", "pay"}[rng.IntN(3)]
			wl := []string{"", "cart", "api", "web"}[rng.IntN(4)]
			return view.AgentStatus{V: 1, Key: key, State: states[rng.IntN(len(states))], Pod: key, Namespace: ns, Workload: wl,
				Agent: &wire.Agent{V: 1, ID: key}}
		}
		snapshot := func(key string) *wire.Snapshot {
			s := &wire.Snapshot{V: 1, Agent: wire.Agent{V: 1, ID: key}}
			if rng.IntN(5) > 0 {
				s.Sample = &wire.Sample{V: 1, IntervalMs: 1000, CPU: &wire.CPU{Cores: rng.Float64()}}
				if rng.IntN(2) == 0 {
					s.Sample.CPU.LimitCores = wire.Ptr(1.0)
					s.Sample.CPU.PercentOfLimit = wire.Ptr(rng.Float64() * 100)
				}
				if rng.IntN(3) > 0 {
					s.Sample.Memory = &wire.Memory{WorkingSetBytes: uint64(rng.IntN(1 << 30)), LimitBytes: wire.Ptr(uint64(1 << 30))}
				}
				if rng.IntN(3) > 0 {
					s.Sample.Throughput = &wire.Throughput{RequestsPerSec: rng.Float64() * 100, ErrorsPerSec: rng.Float64()}
				}
			}
			for b := range rng.IntN(4) {
				br := wire.Breaker{V: 1, Name: fmt.Sprintf("b%d", b), State: randomState(rng), Source: []string{"push", "scrape"}[rng.IntN(2)],
					Calls: wire.Calls{Succeeded: uint64(rng.IntN(100)), Failed: uint64(rng.IntN(10))}, Since: wire.NewTime(time.Unix(int64(rng.IntN(1e6)), 0))}
				if rng.IntN(2) == 0 {
					br.FailureRate, br.RatePerSec = wire.Ptr(rng.Float64()*100), wire.Ptr(rng.Float64()*10)
				}
				s.Breakers = append(s.Breakers, br)
			}
			return s
		}
		for round := 0; round < 30; round++ {
			for range 1 + rng.IntN(20) {
				key := keys[rng.IntN(len(keys))]
				switch rng.IntN(10) {
				case 0, 1:
					st.Status(status(key))
				case 2:
					st.Removed(key)
				case 3:
					name := fmt.Sprintf("b%d", rng.IntN(4))
					to := randomState(rng)
					st.Transition(key, wire.Transition{V: 1, Agent: key, To: to, Breaker: wire.Breaker{V: 1, Name: name, State: to}})
				default:
					st.Snapshot(key, snapshot(key), rng.IntN(2) == 0)
				}
			}
			now := time.Unix(1e9+int64(round), 0)
			in := merge.Input{Time: now, Mode: "static", Detail: true}
			got := merge.Assemble(in, Merged(st.Parts(time.Time{})))
			agents := st.Agents()
			slices.SortFunc(agents, func(a, b merge.Agent) int { return strings.Compare(a.Status.Key, b.Status.Key) })
			in.Agents = agents
			want := merge.Cluster(in)
			approx := cmp.Comparer(func(a, b float64) bool { return a == b || math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b)) })
			if diff := cmp.Diff(want, got, cmpopts.EquateEmpty(), approx); diff != "" {
				t.Fatalf("seed %d, round %d: incremental view (-full +incremental):\n%s", seed, round, diff)
			}
		}
	}
}

func randomState(rng *rand.Rand) wire.BreakerState {
	states := []wire.BreakerState{wire.StateClosed, wire.StateOpen, wire.StateHalfOpen, wire.StateForcedOpen, wire.StateDisabled}
	return states[rng.IntN(len(states))]
}

// What the pool reports never waits for merging: while a merge holds the view (here, for
// as long as the test likes), reports are taken at once, and applied, their events
// published, as soon as it is done. A transition of an agent with 10,000 breakers then
// costs what one of a small agent costs (BenchmarkTransitionLargeAgent).
func TestReportsNeverWaitForMerging(t *testing.T) {
	hub := stream.New(stream.Options{})
	st := New(Options{Hub: hub})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go st.Run(ctx)
	for !st.running.Load() {
		time.Sleep(time.Millisecond)
	}
	sub := hub.Subscribe(hub.LastID(), nil)
	defer hub.Unsubscribe(sub)
	big := &wire.Snapshot{V: 1, Agent: wire.Agent{V: 1, ID: "big"}}
	for k := range 10000 {
		big.Breakers = append(big.Breakers, wire.Breaker{V: 1, Name: fmt.Sprintf("b%05d", k), State: wire.StateClosed, Source: "push"})
	}
	st.mu.Lock() // a merge in progress
	reported := make(chan struct{})
	go func() {
		st.Status(view.AgentStatus{V: 1, Key: "big", State: view.AgentConnected, Pod: "big", Namespace: "ns", Workload: "wl"})
		st.Snapshot("big", big, true)
		st.Transition("big", wire.Transition{V: 1, Agent: "big", From: wire.StateClosed, To: wire.StateOpen,
			Breaker: wire.Breaker{V: 1, Name: "b00042", State: wire.StateOpen, Source: "push"}})
		close(reported)
	}()
	select {
	case <-reported:
	case <-time.After(5 * time.Second):
		t.Fatal("the pool's reports waited for the merge")
	}
	st.mu.Unlock()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case ev := <-sub.C:
			if ev.Name != wire.EventCircuitBreaker {
				continue
			}
			if !strings.Contains(string(ev.Frame), `"open":1,`) {
				t.Errorf("circuit-breaker event without the tile open on one pod: %.300s", ev.Frame)
			}
			c := merge.Assemble(merge.Input{}, []*merge.Part{st.Detail("ns", "wl")})
			if c.Totals.Breakers != 10000 || c.Totals.BreakersOpen != 1 {
				t.Errorf("view after the transition: %d breakers, %d open; want 10000 and 1", c.Totals.Breakers, c.Totals.BreakersOpen)
			}
			return
		case <-deadline:
			t.Fatal("no circuit-breaker event once the merge was done")
		}
	}
}
