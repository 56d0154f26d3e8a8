package rewind

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/faultline-dev/faultline/aggregator/discovery"
	"github.com/faultline-dev/faultline/aggregator/history"
	"github.com/faultline-dev/faultline/aggregator/merge"
	"github.com/faultline-dev/faultline/aggregator/view"
	"github.com/faultline-dev/faultline/internal/wire"
)

var t0 = time.Date(2026, 11, 27, 14, 0, 0, 0, time.UTC)

func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

func status(key, pod, state, reason string) view.AgentStatus {
	return view.AgentStatus{V: 1, Key: key, State: state, Reason: reason, Pod: pod, Namespace: "shop", Workload: "cart",
		Since: wire.NewTime(t0), Agent: &wire.Agent{V: 1, ID: pod}}
}

func breaker(name string, state wire.BreakerState, since time.Time) wire.Breaker {
	return wire.Breaker{V: 1, Name: name, State: state, Since: wire.NewTime(since), Source: "push"}
}

func transition(name string, from, to wire.BreakerState, fr *float64, calls wire.Calls) wire.Transition {
	return wire.Transition{V: 1, From: from, To: to, Breaker: wire.Breaker{V: 1, Name: name, State: to, FailureRate: fr, Calls: calls}}
}

// scenario is two pods of shop/cart with the breaker payments: cart-a opens it at 10 s
// (62 % failing), goes half-open at 20 s and closes at 25 s; cart-b stays closed, its
// agent is unavailable from 12 s to 14 s and is dropped at 40 s. An alert fires from
// 10 s to 25 s; the workload wants 3 pods.
type scenario struct {
	log  *Log
	hist *history.Store
	live []merge.Agent
}

func newScenario(t *testing.T) *scenario {
	t.Helper()
	s := &scenario{log: New(time.Hour, t0), hist: history.New(history.Options{Retention: time.Hour})}
	l := s.log
	l.Status(status("a", "cart-a", view.AgentConnecting, ""), at(0))
	l.Status(status("b", "cart-b", view.AgentConnecting, ""), at(0))
	l.Status(status("a", "cart-a", view.AgentConnected, ""), at(0.5))
	l.Status(status("b", "cart-b", view.AgentConnected, ""), at(0.5))
	l.Broadcast(at(1), view.Discovery{Mode: "kubernetes", Synced: true}, nil, map[discovery.Workload]int{{Namespace: "shop", Name: "cart"}: 3})
	l.Transition("a", transition("payments", wire.StateClosed, wire.StateOpen, wire.Ptr(62.0), wire.Calls{Succeeded: 38, Failed: 62}), at(10))
	alert := wire.Alert{V: 1, ID: "breaker-open/shop/cart/payments", Rule: "breaker-open", State: wire.AlertFiring, Severity: wire.SeverityWarning,
		Target: wire.Target{Namespace: "shop", Workload: "cart", Breaker: "payments"}}
	l.Broadcast(at(10), view.Discovery{Mode: "kubernetes", Synced: true}, []wire.Alert{alert}, map[discovery.Workload]int{{Namespace: "shop", Name: "cart"}: 3})
	l.Status(status("b", "cart-b", view.AgentUnavailable, "connection refused"), at(12))
	l.Status(status("b", "cart-b", view.AgentConnected, ""), at(14))
	l.Transition("a", transition("payments", wire.StateOpen, wire.StateHalfOpen, nil, wire.Calls{}), at(20))
	l.Transition("a", transition("payments", wire.StateHalfOpen, wire.StateClosed, nil, wire.Calls{}), at(25))
	resolved := alert
	resolved.State = wire.AlertResolved
	l.Broadcast(at(25), view.Discovery{Mode: "kubernetes", Synced: true}, []wire.Alert{resolved}, map[discovery.Workload]int{{Namespace: "shop", Name: "cart"}: 3})
	l.Removed("b", []wire.Breaker{breaker("payments", wire.StateClosed, t0)}, at(40))
	// The history's one-second points: each pod's CPU is its second number / 100.
	for sec := 0; sec <= 60; sec++ {
		for _, pod := range []string{"cart-a", "cart-b"} {
			if pod == "cart-b" && sec > 40 {
				continue
			}
			s.hist.Record(at(float64(sec)), []history.Sample{{Name: "pod:shop/" + pod + ":cpu_cores", Value: float64(sec) / 100}})
		}
		s.hist.Record(at(float64(sec)), []history.Sample{{Name: "cluster:" + PressureMetric, Value: 0.5}, {Name: "cluster:" + PodsPressuredMetric, Value: 1}})
	}
	s.live = []merge.Agent{{Status: status("a", "cart-a", view.AgentConnected, ""),
		Snapshot: &wire.Snapshot{V: 1, Breakers: []wire.Breaker{breaker("payments", wire.StateClosed, at(25))}}}}
	return s
}

func (s *scenario) at(sec float64) Snapshot {
	return s.log.At(Query{At: at(sec), Now: at(60), Mode: "kubernetes", Live: s.live, History: s.hist, MaxGap: 8 * time.Second})
}

func TestAtIsExactFromTheRecord(t *testing.T) {
	s := newScenario(t)
	type tileWant struct {
		State                wire.BreakerState
		Pods, Open, HalfOpen int
	}
	tests := []struct {
		sec    float64
		tile   tileWant
		alerts int
		agents map[string]string // pod -> state
	}{
		{5, tileWant{wire.StateClosed, 2, 0, 0}, 0, map[string]string{"cart-a": "connected", "cart-b": "connected"}},
		{9.999, tileWant{wire.StateClosed, 2, 0, 0}, 0, map[string]string{"cart-a": "connected", "cart-b": "connected"}},
		{10, tileWant{wire.StateOpen, 2, 1, 0}, 1, map[string]string{"cart-a": "connected", "cart-b": "connected"}},
		{13, tileWant{wire.StateOpen, 1, 1, 0}, 1, map[string]string{"cart-a": "connected", "cart-b": "unavailable"}},
		{22, tileWant{wire.StateHalfOpen, 2, 0, 1}, 1, map[string]string{"cart-a": "connected", "cart-b": "connected"}},
		{30, tileWant{wire.StateClosed, 2, 0, 0}, 0, map[string]string{"cart-a": "connected", "cart-b": "connected"}},
		{45, tileWant{wire.StateClosed, 1, 0, 0}, 0, map[string]string{"cart-a": "connected"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.sec), func(t *testing.T) {
			snap := s.at(tt.sec)
			if len(snap.Breakers) != 1 {
				t.Fatalf("tiles = %+v, want payments", snap.Breakers)
			}
			tl := snap.Breakers[0]
			got := tileWant{tl.State, tl.Pods, tl.Open, tl.HalfOpen}
			if diff := cmp.Diff(tt.tile, got); diff != "" {
				t.Errorf("tile (-want +got):\n%s", diff)
			}
			if tl.DesiredPods == nil || *tl.DesiredPods != 3 {
				t.Errorf("tile desired pods = %v, want 3", tl.DesiredPods)
			}
			if tl.RatePerSec != nil || tl.Calls != nil || tl.FailureRate != nil {
				t.Errorf("figures not kept are not null: rate %v calls %v failure rate %v", tl.RatePerSec, tl.Calls, tl.FailureRate)
			}
			if len(snap.Alerts) != tt.alerts {
				t.Errorf("alerts firing = %d, want %d", len(snap.Alerts), tt.alerts)
			}
			agents := map[string]string{}
			absent := 0
			for _, a := range snap.Agents {
				if a.State == view.AgentAbsent {
					absent++
					continue
				}
				agents[a.Pod] = a.State
			}
			if diff := cmp.Diff(tt.agents, agents); diff != "" {
				t.Errorf("agents (-want +got):\n%s", diff)
			}
			if absent != 3-len(tt.agents) {
				t.Errorf("%d absent rows, want %d", absent, 3-len(tt.agents))
			}
			if got, want := snap.At.Time.Time, at(tt.sec).Truncate(time.Millisecond); !got.Equal(want) {
				t.Errorf("at.time = %v, want %v", got, want)
			}
		})
	}
	t.Run("reason and figures", func(t *testing.T) {
		snap := s.at(13)
		for _, a := range snap.Agents {
			if a.Pod == "cart-b" && a.Reason != "connection refused" {
				t.Errorf("cart-b reason %q, want connection refused", a.Reason)
			}
		}
		for _, p := range snap.Pods {
			if p.Pod == "cart-a" && (p.CPUCores == nil || *p.CPUCores != 0.13) {
				t.Errorf("cart-a CPU at 13 s = %v, want the point recorded then (0.13)", p.CPUCores)
			}
		}
		if got := snap.At.FiguresTime.Time; !got.Equal(at(13)) {
			t.Errorf("figures time %v, want %v", got, at(13))
		}
		// cart-b unavailable: 1 of 1 counted breakers open (40), one warning (4), pressure
		// 0.5 recorded over the one pod connected (10), 1 of 2 agents down (7.5): 39.
		if snap.Health.Score != 39 {
			t.Errorf("health at 13 s = %d (%+v), want 39", snap.Health.Score, snap.Health.Breakdown)
		}
	})
}

func TestTimelines(t *testing.T) {
	s := newScenario(t)
	tl := s.log.Timelines(at(0), at(60), s.live)
	pod := tl.Pods[PodKey{"shop", "cart-a", "payments"}]
	if pod == nil {
		t.Fatalf("no timeline for cart-a's payments: %v", tl.Pods)
	}
	want := &view.Timeline{
		From: wire.NewTime(at(0)), To: wire.NewTime(at(60)), Transitions: 3, OpenMs: 10000, HalfOpenMs: 5000, LongestOpenMs: 10000,
		MeanOpenToClosedMs: wire.Ptr(15000.0), Recoveries: 1,
		Openings: []view.Opening{{Time: wire.NewTime(at(10)), Pod: "cart-a", From: wire.StateClosed, FailureRate: wire.Ptr(62.0), Calls: wire.Calls{Succeeded: 38, Failed: 62}}},
		Periods: []view.Period{{From: wire.NewTime(at(10)), To: wire.NewTime(at(20)), State: wire.StateOpen},
			{From: wire.NewTime(at(20)), To: wire.NewTime(at(25)), State: wire.StateHalfOpen}},
	}
	if diff := cmp.Diff(want, pod); diff != "" {
		t.Errorf("cart-a payments (-want +got):\n%s", diff)
	}
	tile := tl.Tiles[TileKey{"shop", "cart", "payments"}]
	if diff := cmp.Diff(want, tile); diff != "" {
		t.Errorf("tile: cart-b stayed closed, so the tile is cart-a's (-want +got):\n%s", diff)
	}
	if _, ok := tl.Pods[PodKey{"shop", "cart-b", "payments"}]; ok {
		t.Error("a timeline for cart-b, which is gone")
	}
}

func TestTileIsTheWorstOverPods(t *testing.T) {
	l := New(time.Hour, t0)
	for _, k := range []string{"a", "b"} {
		l.Status(status(k, "cart-"+k, view.AgentConnected, ""), at(0))
	}
	// a open 10-30 s, b open 20-40 s: the tile is open 10-40 s, one period of 30 s.
	l.Transition("a", transition("p", wire.StateClosed, wire.StateOpen, nil, wire.Calls{}), at(10))
	l.Transition("b", transition("p", wire.StateClosed, wire.StateOpen, nil, wire.Calls{}), at(20))
	l.Transition("a", transition("p", wire.StateOpen, wire.StateClosed, nil, wire.Calls{}), at(30))
	l.Transition("b", transition("p", wire.StateOpen, wire.StateHalfOpen, nil, wire.Calls{}), at(40))
	live := []merge.Agent{
		{Status: status("a", "cart-a", view.AgentConnected, ""), Snapshot: &wire.Snapshot{Breakers: []wire.Breaker{breaker("p", wire.StateClosed, at(30))}}},
		{Status: status("b", "cart-b", view.AgentConnected, ""), Snapshot: &wire.Snapshot{Breakers: []wire.Breaker{breaker("p", wire.StateHalfOpen, at(40))}}},
	}
	tile := l.Timelines(at(0), at(50), live).Tiles[TileKey{"shop", "cart", "p"}]
	if tile.Transitions != 4 || tile.OpenMs != 30000 || tile.LongestOpenMs != 30000 || tile.HalfOpenMs != 10000 || tile.Recoveries != 0 {
		t.Errorf("tile timeline %+v: want 4 transitions, 30 s open in one period, 10 s half-open, no recovery yet", tile)
	}
	if n := len(tile.Periods); n != 2 || !tile.Periods[1].Ongoing {
		t.Errorf("periods %+v: want open then an ongoing half-open", tile.Periods)
	}
}

func TestKeptTransitionsAreBounded(t *testing.T) {
	l := New(time.Hour, t0)
	l.Status(status("a", "cart-a", view.AgentConnected, ""), at(0))
	state := wire.StateClosed
	for i := 0; i < MaxTransitions+10; i++ {
		next := wire.StateOpen
		if state == wire.StateOpen {
			next = wire.StateClosed
		}
		l.Transition("a", transition("p", state, next, nil, wire.Calls{}), at(float64(i+1)))
		state = next
	}
	b := l.agents["a"].breakers[0]
	if len(b.entries) != MaxTransitions || len(b.trips) > MaxTransitions {
		t.Fatalf("%d transitions and %d openings kept, want at most %d", len(b.entries), len(b.trips), MaxTransitions)
	}
	live := []merge.Agent{{Status: status("a", "cart-a", view.AgentConnected, ""), Snapshot: &wire.Snapshot{Breakers: []wire.Breaker{breaker("p", state, t0)}}}}
	snap := l.At(Query{At: at(5), Now: at(400), Live: live, History: history.New(history.Options{})})
	if len(snap.Breakers) != 1 || snap.Breakers[0].State != unknown {
		t.Errorf("before the oldest transition kept the state is %+v, want unknown", snap.Breakers)
	}
	tl := l.Timelines(at(0), at(400), live).Tiles[TileKey{"shop", "cart", "p"}]
	if tl.KnownFrom == nil {
		t.Error("timeline does not say from when it is known")
	}
}

func TestForgetKeepsWhatDecidesTheCut(t *testing.T) {
	s := newScenario(t)
	s.log.retention = 20 * time.Second
	s.log.Forget(at(30))
	// Entries before 10 s are gone, but what held at 10 s is known: at 15 s payments
	// was open on cart-a.
	snap := s.log.At(Query{At: at(15), Now: at(30), Live: s.live, History: s.hist})
	if len(snap.Breakers) != 1 || snap.Breakers[0].Open != 1 {
		t.Errorf("after forgetting, payments at 15 s = %+v, want open on one pod", snap.Breakers)
	}
	s.log.Forget(at(70)) // cart-b was dropped at 40 s, more than the retention ago
	if _, ok := s.log.agents["b"]; ok {
		t.Error("an agent dropped longer ago than the retention is still kept")
	}
}
