package merge

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/faultline-dev/faultline/aggregator/view"
	"github.com/faultline-dev/faultline/internal/wire"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func f(v float64) *float64 { return &v }
func u(v uint64) *uint64   { return &v }

func breaker(name string, state wire.BreakerState, failureRate, rate float64) wire.Breaker {
	return wire.Breaker{V: 1, Name: name, State: state, FailureRate: f(failureRate), RatePerSec: f(rate), Source: "push",
		Calls: wire.Calls{Succeeded: 10, Failed: 2}, Since: wire.NewTime(t0)}
}

// pod builds a connected agent of workload ns/wl with the given CPU percent of a 1-core
// limit, memory working set (MiB of a 100 MiB limit) and request rates.
func pod(ns, wl, name string, cpuPct, memMiB, rps, eps float64, breakers ...wire.Breaker) Agent {
	return Agent{
		Status: view.AgentStatus{V: 1, Key: "http://" + name, State: view.AgentConnected, Pod: name, Namespace: ns, Workload: wl,
			Agent: &wire.Agent{V: 1, ID: name, Pod: name, Namespace: ns, Workload: wl}},
		Snapshot: &wire.Snapshot{V: 1, Agent: wire.Agent{V: 1, ID: name}, Breakers: breakers, Sample: &wire.Sample{V: 1, IntervalMs: 1000,
			CPU:        &wire.CPU{Cores: cpuPct / 100, LimitCores: f(1), PercentOfLimit: f(cpuPct)},
			Memory:     &wire.Memory{WorkingSetBytes: uint64(memMiB * (1 << 20)), LimitBytes: u(100 << 20), PercentOfLimit: f(memMiB)},
			Throughput: &wire.Throughput{RequestsPerSec: rps, ErrorsPerSec: eps, Source: "app"},
		}},
	}
}

func down(ns, wl, name, state, reason string) Agent {
	return Agent{Status: view.AgentStatus{V: 1, Key: "http://" + name, State: state, Reason: reason, Pod: name, Namespace: ns, Workload: wl}}
}

func TestWorkloadMerge(t *testing.T) {
	in := Input{Time: t0, Agents: []Agent{
		pod("shop", "cart", "cart-1", 20, 10, 100, 1, breaker("db", wire.StateOpen, 60, 10), breaker("cache", wire.StateClosed, 0, 50)),
		pod("shop", "cart", "cart-2", 60, 30, 50, 4, breaker("db", wire.StateClosed, 10, 30), breaker("cache", wire.StateClosed, 0, 50)),
		pod("shop", "cart", "cart-3", 40, 20, 50, 0, breaker("db", wire.StateHalfOpen, 30, 0)),
		down("shop", "cart", "cart-4", view.AgentUnavailable, "connection refused"),
	}}
	c := Cluster(in)
	want := []view.Workload{{
		Namespace: "shop", Name: "cart", Pods: 4, PodsConnected: 3,
		CPUCores:       view.Stat{Max: f(0.6), Mean: f(0.4), Sum: f(1.2)},
		CPUPercent:     view.Stat{Max: f(60), Mean: f(40), Sum: f(120)},
		MemoryBytes:    view.Stat{Max: f(30 << 20), Mean: f(20 << 20), Sum: f(60 << 20)},
		MemoryPercent:  view.Stat{Max: f(30), Mean: f(20), Sum: f(60)},
		RequestsPerSec: 200, ErrorsPerSec: 5, BreakersOpen: 1,
	}}
	approx := cmp.Comparer(func(a, b float64) bool { d := a - b; return d < 1e-9 && d > -1e-9 })
	if diff := cmp.Diff(want, c.Workloads, approx); diff != "" {
		t.Errorf("workloads (-want +got):\n%s", diff)
	}
	// The db tile: open on 1 of 3 pods, worst state open, failure rate weighted by
	// volume (the idle pod weighs one call): (60*10 + 10*30 + 30*1) / 41.
	wantTiles := []view.BreakerTile{
		{Namespace: "shop", Workload: "cart", Name: "db", State: wire.StateOpen, Pods: 3, Open: 1, HalfOpen: 1,
			FailureRate: f((60*10 + 10*30 + 30*1) / 41.0), RatePerSec: 40, Calls: wire.Calls{Succeeded: 30, Failed: 6},
			Since: wire.NewTime(t0), Sources: []string{"push"}},
		{Namespace: "shop", Workload: "cart", Name: "cache", State: wire.StateClosed, Pods: 2,
			FailureRate: f(0), RatePerSec: 100, Calls: wire.Calls{Succeeded: 20, Failed: 4},
			Since: wire.NewTime(t0), Sources: []string{"push"}},
	}
	if diff := cmp.Diff(wantTiles, c.Breakers, approx); diff != "" {
		t.Errorf("tiles (-want +got):\n%s", diff)
	}
	tot := c.Totals
	gotTotals := []any{tot.Agents, tot.AgentsConnected, tot.AgentsUnavailable, tot.Breakers, tot.BreakersOpen, tot.BreakersHalfOpen, tot.RequestsPerSec}
	if diff := cmp.Diff([]any{4, 3, 1, 5, 1, 1, 200.0}, gotTotals); diff != "" {
		t.Errorf("totals (-want +got):\n%s", diff)
	}
	if tot.CPULimitCores == nil || *tot.CPULimitCores != 3 {
		t.Errorf("cpu limit = %v, want 3 (every connected pod has a 1-core limit)", tot.CPULimitCores)
	}
}

func TestUnavailableAgentContributesNoNumbers(t *testing.T) {
	stale := pod("shop", "api", "api-1", 99, 99, 1000, 1000, breaker("db", wire.StateOpen, 100, 10))
	stale.Status.State, stale.Status.Reason = view.AgentUnavailable, "stalled"
	c := Cluster(Input{Time: t0, Detail: true, Agents: []Agent{stale}})
	if c.Totals.RequestsPerSec != 0 || c.Totals.Breakers != 0 || len(c.Breakers) != 0 {
		t.Errorf("an unavailable agent's last numbers were counted: totals %+v, tiles %d", c.Totals, len(c.Breakers))
	}
	if p := c.Pods[0]; p.CPUCores != nil || p.State != view.AgentUnavailable {
		t.Errorf("pod row = %+v; want state unavailable and no CPU figure", p)
	}
}

func TestHealth(t *testing.T) {
	tests := []struct {
		name string
		in   HealthInput
		want view.Health
	}{
		{"all well", HealthInput{Breakers: 10, Agents: 3, Pressure: PressureOf(0, 0, 0)}, view.Health{Score: 100, Breakdown: []view.HealthPenalty{}}},
		{"nothing known", HealthInput{}, view.Health{Score: 100, Breakdown: []view.HealthPenalty{}}},
		{"half the breakers open", HealthInput{Breakers: 10, Open: 5, Agents: 1}, view.Health{Score: 80, Breakdown: []view.HealthPenalty{
			{Component: "breakers", Points: 20, Detail: "5 of 10 breakers open, 0 half-open"}}}},
		{"half-open counts half", HealthInput{Breakers: 4, HalfOpen: 2, Agents: 1}, view.Health{Score: 90, Breakdown: []view.HealthPenalty{
			{Component: "breakers", Points: 10, Detail: "0 of 4 breakers open, 2 half-open"}}}},
		{"alerts capped at 25", HealthInput{Alerts: AlertCounts{Critical: 2, Warning: 3}}, view.Health{Score: 75, Breakdown: []view.HealthPenalty{
			{Component: "alerts", Points: 25, Detail: "2 critical, 3 warning, 0 info alerts firing"}}}},
		{"one pod at 90 % of two", HealthInput{Pressure: PressureOf(0.5, 0)}, view.Health{Score: 95, Breakdown: []view.HealthPenalty{
			{Component: "resources", Points: 5, Detail: "1 of 2 pods above 80% of a CPU or memory limit"}}}},
		{"agents down", HealthInput{Agents: 4, AgentsDown: 1, AgentsMissed: 1}, view.Health{Score: 93, Breakdown: []view.HealthPenalty{
			{Component: "agents", Points: 7.5, Detail: "1 of 4 agents unavailable, 1 pods missing an agent"}}}},
		{"everything wrong", HealthInput{Breakers: 2, Open: 2, Alerts: AlertCounts{Critical: 9}, Pressure: PressureOf(1), Agents: 1, AgentsDown: 1},
			view.Health{Score: 0, Breakdown: []view.HealthPenalty{
				{Component: "breakers", Points: 40, Detail: "2 of 2 breakers open, 0 half-open"},
				{Component: "alerts", Points: 25, Detail: "9 critical, 0 warning, 0 info alerts firing"},
				{Component: "resources", Points: 20, Detail: "1 of 1 pods above 80% of a CPU or memory limit"},
				{Component: "agents", Points: 15, Detail: "1 of 1 agents unavailable, 0 pods missing an agent"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, Health(tt.in)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestPodPressure(t *testing.T) {
	tests := []struct {
		cpu, mem *float64
		want     float64
	}{
		{nil, nil, 0}, {f(50), f(79), 0}, {f(90), nil, 0.5}, {f(85), f(95), 0.75}, {f(150), nil, 1},
	}
	for _, tt := range tests {
		if got := podPressure(view.Pod{CPUPercent: tt.cpu, MemoryPercent: tt.mem}); got != tt.want {
			t.Errorf("pressure(cpu %v, mem %v) = %v, want %v", deref(tt.cpu), deref(tt.mem), got, tt.want)
		}
	}
}

func TestSetAlertsRescores(t *testing.T) {
	c := Cluster(Input{Time: t0, Agents: []Agent{pod("shop", "cart", "c1", 10, 10, 1, 0, breaker("db", wire.StateOpen, 50, 1))}})
	if c.Health.Score != 60 {
		t.Fatalf("score before alerts = %d, want 60 (one of one breaker open)", c.Health.Score)
	}
	SetAlerts(&c, []wire.Alert{{State: wire.AlertFiring, Severity: wire.SeverityCritical, Target: wire.Target{Namespace: "shop"}}})
	if c.Health.Score != 50 || c.Totals.AlertsFiring != 1 || c.Namespaces[0].Totals.AlertsFiring != 1 {
		t.Errorf("after one critical alert: score %d, firing %d, shop firing %d; want 50, 1, 1", c.Health.Score, c.Totals.AlertsFiring, c.Namespaces[0].Totals.AlertsFiring)
	}
}

func TestMetricsStaysCompact(t *testing.T) {
	var agents []Agent
	for i := 0; i < 50; i++ {
		name := string(rune('a'+i%26)) + string(rune('a'+i/26))
		state := wire.StateClosed
		if i == 37 {
			state = wire.StateOpen
		}
		agents = append(agents, pod("ns", "wl-"+name, name, 10, 10, 1, 0, breaker("b", state, 1, 1)))
	}
	c := Cluster(Input{Time: t0, Agents: agents, Detail: true, PerPod: true})
	m := Metrics(c, 5, 3)
	if len(m.Workloads) != 5 || m.WorkloadsTotal != 50 || len(m.Breakers) != 3 || m.BreakersTotal != 50 {
		t.Fatalf("metrics holds %d/%d workloads, %d/%d tiles; want 5/50, 3/50", len(m.Workloads), m.WorkloadsTotal, len(m.Breakers), m.BreakersTotal)
	}
	if m.Breakers[0].Open != 1 {
		t.Errorf("the open breaker's tile must come first: %+v", m.Breakers[0])
	}
	kept := false
	for _, w := range m.Workloads {
		kept = kept || w.BreakersOpen == 1
	}
	if !kept {
		t.Errorf("the workload with the open breaker was left out: %+v", m.Workloads)
	}
	for _, tl := range m.Breakers {
		if tl.PerPod != nil {
			t.Errorf("metrics tile %s carries per-pod detail", tl.Name)
		}
	}
	if m.Totals.Agents != 50 {
		t.Errorf("totals cover %d agents, want all 50", m.Totals.Agents)
	}
}

func TestFilter(t *testing.T) {
	c := Cluster(Input{Time: t0, Detail: true, Agents: []Agent{
		pod("shop", "cart", "cart-1", 1, 1, 1, 0, breaker("db", wire.StateClosed, 0, 1)),
		pod("pay", "api", "api-1", 1, 1, 1, 0, breaker("bank", wire.StateOpen, 0, 1)),
	}, Alerts: []wire.Alert{{ID: "a", Target: wire.Target{Namespace: "pay"}}, {ID: "b"}}})
	got := Filter(c, "pay", "")
	names := func() []string {
		var out []string
		for _, w := range got.Workloads {
			out = append(out, w.Name)
		}
		for _, b := range got.Breakers {
			out = append(out, b.Name)
		}
		for _, p := range got.Pods {
			out = append(out, p.Pod)
		}
		for _, a := range got.Alerts {
			out = append(out, a.ID)
		}
		return out
	}
	if diff := cmp.Diff([]string{"api", "bank", "api-1", "a", "b"}, names()); diff != "" {
		t.Errorf("namespace pay (-want +got):\n%s", diff)
	}
}

func TestWorkloadOf(t *testing.T) {
	for _, tt := range []struct {
		st   view.AgentStatus
		want string
	}{
		{view.AgentStatus{Key: "k", Pod: "p", Workload: "w"}, "w"},
		{view.AgentStatus{Key: "k", Pod: "p"}, "p"},
		{view.AgentStatus{Key: "k"}, "k"},
	} {
		if got := WorkloadOf(tt.st); got != tt.want {
			t.Errorf("WorkloadOf(%+v) = %q, want %q", tt.st, got, tt.want)
		}
	}
}
