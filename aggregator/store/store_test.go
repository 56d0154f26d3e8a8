package store

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/faultline-dev/faultline/aggregator/alert"
	"github.com/faultline-dev/faultline/aggregator/history"
	"github.com/faultline-dev/faultline/aggregator/view"
	"github.com/faultline-dev/faultline/internal/stream"
	"github.com/faultline-dev/faultline/internal/wire"
)

// A transition is published at once with the workload's tile after it, counting only
// the pods of that workload, even when an agent moved between workloads.
func TestTransitionEventCarriesTheWorkloadTile(t *testing.T) {
	hub := stream.New(stream.Options{})
	st := New(Options{Mode: "static", Hub: hub, History: history.New(history.Options{}), Alerts: alert.NewEngine(alert.DefaultRules())})
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
	if n := len(st.byWorkload[wkey{"shop", "cart"}]); n != 2 {
		t.Errorf("cart has %d agents indexed after a removal, want 2", n)
	}
}

// Slow broadcasts widen the interval, cheap ones narrow it back; each change is an
// optimization event and is listed in the status.
func TestAdaptiveCoalescing(t *testing.T) {
	hub := stream.New(stream.Options{})
	st := New(Options{Mode: "static", Hub: hub, History: history.New(history.Options{}), Alerts: alert.NewEngine(nil),
		BroadcastInterval: time.Second, BroadcastBudget: 100 * time.Millisecond})
	sub := hub.Subscribe(hub.LastID(), nil)
	defer hub.Unsubscribe(sub)
	var intervals []float64
	for _, took := range []time.Duration{300, 300, 300, 300, 5, 5, 5, 5, 5, 5, 5, 5} {
		st.adapt(took*time.Millisecond, nil)
		intervals = append(intervals, st.Optimization().BroadcastIntervalMs)
	}
	// The running average (weight 0.3) falls below half the budget after five cheap ones.
	want := []float64{2000, 4000, 8000, 8000, 8000, 8000, 8000, 8000, 8000, 4000, 2000, 1000}
	for i := range want {
		if intervals[i] != want[i] {
			t.Fatalf("intervals = %v, want %v", intervals, want)
		}
	}
	o := st.Optimization()
	if len(o.Changes) != 6 || o.Coalescing {
		t.Errorf("changes = %d (want 6), coalescing = %v (want false at the end)", len(o.Changes), o.Coalescing)
	}
	events := 0
	for len(sub.C) > 0 {
		if ev := <-sub.C; ev.Name == wire.EventOptimization {
			events++
		}
	}
	if events != 6 {
		t.Errorf("%d optimization events, want 6", events)
	}
}
