package broadcast

import (
	"fmt"
	"testing"
	"time"

	"github.com/faultline-dev/faultline/aggregator/alert"
	"github.com/faultline-dev/faultline/aggregator/fleet"
	"github.com/faultline-dev/faultline/aggregator/merge"
	"github.com/faultline-dev/faultline/aggregator/suggest"
	"github.com/faultline-dev/faultline/aggregator/view"
	"github.com/faultline-dev/faultline/internal/stream"
	"github.com/faultline-dev/faultline/internal/wire"
)

// fleetOf is a broadcaster of n connected agents, 20 per workload, 10 breakers each, as
// the fleet benchmark's simulated agents are.
func fleetOf(b testing.TB, n int) (*Broadcaster, *fleet.Fleet) {
	hub := stream.New(stream.Options{})
	st, fl := newBroadcaster(hub, alert.DefaultRules())
	limit := uint64(512 << 20)
	for i := 0; i < n; i++ {
		w := i / 20
		ns, wl, pod := fmt.Sprintf("ns-%02d", w%20), fmt.Sprintf("svc-%03d", w), fmt.Sprintf("svc-%03d-%05d", w, i)
		key := fmt.Sprintf("http://127.1.%d.%d:19800", i/250, i%250+1)
		fl.Status(view.AgentStatus{V: 1, Key: key, URL: key, State: view.AgentConnected, Pod: pod, Namespace: ns, Workload: wl,
			Agent: &wire.Agent{V: 1, ID: pod, Pod: pod, Namespace: ns, Workload: wl}})
		snap := &wire.Snapshot{V: 1, Agent: wire.Agent{V: 1, ID: pod}, Sample: &wire.Sample{V: 1, IntervalMs: 1000,
			CPU:        &wire.CPU{Cores: 0.2, LimitCores: wire.Ptr(1.0), PercentOfLimit: wire.Ptr(20.0), Throttling: &wire.Throttling{Periods: 10}},
			Memory:     &wire.Memory{WorkingSetBytes: 180 << 20, LimitBytes: &limit, PercentOfLimit: wire.Ptr(35.0)},
			Throughput: &wire.Throughput{RequestsPerSec: 150, ErrorsPerSec: 1, Source: "app"}}}
		for k := 0; k < 10; k++ {
			state := wire.StateClosed
			if (i+k)%97 == 0 {
				state = wire.StateOpen
			}
			snap.Breakers = append(snap.Breakers, wire.Breaker{V: 1, Name: fmt.Sprintf("dependency-%d", k), State: state, FailureRate: wire.Ptr(2.5),
				RatePerSec: wire.Ptr(15.0), Calls: wire.Calls{Succeeded: 1000, Failed: 20}, Source: "push",
				Thresholds: &wire.Thresholds{FailureRate: wire.Ptr(50.0)}})
		}
		fl.Snapshot(key, snap, false)
	}
	return st, fl
}

// BenchmarkBroadcast10k is one broadcast (merge, alerts, history, metrics event) over
// 10,000 agents that all sent a new snapshot since the last one, as in the fleet
// benchmark; the budget is 250 ms per broadcast at the default interval of 1 s.
// Suggestions (every 10 s) are left out: BenchmarkSuggest10k measures them.
func BenchmarkBroadcast10k(b *testing.B) {
	st, fl, snaps := broadcasting(b)
	now := time.Now()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		for k, snap := range snaps {
			fl.Snapshot(k, snap, false)
		}
		b.StartTimer()
		now = now.Add(time.Second)
		st.Broadcast(now)
	}
}

// broadcasting is a fleet of 10,000 agents after a first broadcast, with the snapshot
// each agent sends every second.
func broadcasting(b *testing.B) (*Broadcaster, *fleet.Fleet, map[string]*wire.Snapshot) {
	st, fl := fleetOf(b, 10000)
	st.Broadcast(time.Now())
	snaps := map[string]*wire.Snapshot{}
	for _, a := range fl.Agents() {
		snaps[a.Status.Key] = a.Snapshot
	}
	return st, fl, snaps
}

// BenchmarkBroadcastUnchanged10k is a broadcast when no agent sent anything since the
// last one: what a broadcast costs besides merging.
func BenchmarkBroadcastUnchanged10k(b *testing.B) {
	st, _ := fleetOf(b, 10000)
	now := time.Now()
	st.Broadcast(now)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		now = now.Add(time.Second)
		st.Broadcast(now)
	}
}

func BenchmarkSuggest10k(b *testing.B) {
	st, fl := fleetOf(b, 10000)
	now := time.Now()
	for i := 0; i < 120; i++ {
		st.Broadcast(now.Add(time.Duration(i) * time.Second))
	}
	agents := fl.Agents()
	keeper := suggest.NewKeeper(0, func() []merge.Agent { return agents }, st.opts.Rewind.Flips, st.opts.History)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		keeper.Update(now.Add(120 * time.Second))
	}
}

// BenchmarkIngestAndBroadcast10k is BenchmarkBroadcast10k with the agents' snapshots
// counted too: what the store does with a second of a 10,000-agent fleet's metrics
// events (keeping them and merging them into the view) and one broadcast.
func BenchmarkIngestAndBroadcast10k(b *testing.B) {
	st, fl, snaps := broadcasting(b)
	now := time.Now()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k, snap := range snaps {
			fl.Snapshot(k, snap, false)
		}
		now = now.Add(time.Second)
		st.Broadcast(now)
	}
}
