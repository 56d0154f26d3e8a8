package optimize

import (
	"testing"
	"time"

	"github.com/faultline-dev/faultline/internal/stream"
	"github.com/faultline-dev/faultline/internal/wire"
)

// Slow broadcasts widen the interval, cheap ones narrow it back; each change is an
// optimization event and is listed in the status.
func TestAdaptiveCoalescing(t *testing.T) {
	hub := stream.New(stream.Options{})
	st := New(Options{Hub: hub, BroadcastInterval: time.Second, BroadcastBudget: 100 * time.Millisecond})
	sub := hub.Subscribe(hub.LastID(), nil)
	defer hub.Unsubscribe(sub)
	var intervals []float64
	for _, took := range []time.Duration{300, 300, 300, 300, 5, 5, 5, 5, 5, 5, 5, 5} {
		st.Adapt(took * time.Millisecond)
		intervals = append(intervals, st.Optimization().BroadcastIntervalMs)
	}
	// The running average (weight 0.3, from zero, a broadcast counted at most at twice
	// the budget) exceeds the budget at the second slow one and falls below half of it
	// after four cheap ones.
	want := []float64{1000, 2000, 4000, 8000, 8000, 8000, 8000, 4000, 2000, 1000, 1000, 1000}
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
	// One slow broadcast among cheap ones changes nothing.
	st = New(Options{Hub: hub, BroadcastInterval: time.Second, BroadcastBudget: 100 * time.Millisecond})
	for _, took := range []time.Duration{5, 5, 5, 2000, 5, 5} {
		st.Adapt(took * time.Millisecond)
		if iv := st.Optimization().BroadcastIntervalMs; iv != 1000 {
			t.Fatalf("interval %v ms after a single slow broadcast, want 1000", iv)
		}
	}
}
