package fleet

import (
	"fmt"
	"testing"
	"time"

	"github.com/faultline-dev/faultline/aggregator/view"
	"github.com/faultline-dev/faultline/internal/stream"
	"github.com/faultline-dev/faultline/internal/wire"
)

// BenchmarkTransitionLargeAgent is one circuit-breaker event from an agent holding
// 10,000 breakers in one workload: its cost must not grow with the breakers (a
// transition is handled on the reader of the agent's stream).
func BenchmarkTransitionLargeAgent(b *testing.B) {
	hub := stream.New(stream.Options{})
	st := New(Options{Hub: hub})
	const key = "http://127.0.0.1:9800"
	st.Status(view.AgentStatus{V: 1, Key: key, URL: key, State: view.AgentConnected, Pod: "big-0", Namespace: "ns", Workload: "big"})
	snap := &wire.Snapshot{V: 1, Agent: wire.Agent{V: 1, ID: "big-0"}, Sample: &wire.Sample{V: 1, IntervalMs: 1000}}
	for k := 0; k < 10000; k++ {
		snap.Breakers = append(snap.Breakers, wire.Breaker{V: 1, Name: fmt.Sprintf("dependency-%05d", k), State: wire.StateClosed,
			FailureRate: wire.Ptr(2.5), RatePerSec: wire.Ptr(15.0), Source: "push"})
	}
	st.Snapshot(key, snap, true)
	st.Parts(time.Now())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		br := snap.Breakers[(i*7919)%len(snap.Breakers)]
		from := br.State
		br.State = wire.StateOpen
		if i%2 == 1 {
			from, br.State = wire.StateOpen, wire.StateClosed
		}
		st.Transition(key, wire.Transition{V: 1, Agent: "big-0", From: from, To: br.State, Time: wire.Now(), Breaker: br})
	}
}
