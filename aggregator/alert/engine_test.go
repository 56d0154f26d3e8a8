package alert

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/faultline-dev/faultline/aggregator/view"
	"github.com/faultline-dev/faultline/config"
	"github.com/faultline-dev/faultline/internal/wire"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func f(v float64) *float64 { return &v }

func tiles(open, pods int) view.Cluster {
	return view.Cluster{Breakers: []view.BreakerTile{{Namespace: "shop", Workload: "cart", Name: "db", Pods: pods, Open: open}}}
}

type step struct {
	at   time.Duration
	in   Input
	want []string // "id state severity" of the alerts that changed
}

func run(t *testing.T, e *Engine, steps []step) {
	t.Helper()
	for i, s := range steps {
		s.in.Time = t0.Add(s.at)
		var got []string
		for _, a := range e.Evaluate(s.in) {
			got = append(got, a.ID+" "+a.State+" "+string(a.Severity))
		}
		if diff := cmp.Diff(s.want, got); diff != "" {
			t.Errorf("step %d at %v (-want +got):\n%s", i, s.at, diff)
		}
	}
}

func TestBreakerOpenSeverityByShareOfPods(t *testing.T) {
	e := NewEngine(DefaultRules())
	run(t, e, []step{
		{0, Input{View: tiles(0, 3)}, nil},
		{time.Second, Input{View: tiles(1, 3)}, []string{"breaker-open/shop/cart/db firing warning"}},
		{2 * time.Second, Input{View: tiles(2, 3)}, nil}, // still firing: not repeated
		{3 * time.Second, Input{View: tiles(3, 3)}, nil},
		{4 * time.Second, Input{View: tiles(0, 3)}, []string{"breaker-open/shop/cart/db resolved critical"}},
	})
	if got := e.Resolved(); len(got) != 1 || got[0].Resolved == nil || !got[0].Resolved.Equal(t0.Add(4*time.Second)) {
		t.Errorf("resolved = %+v; want one alert resolved at t0+4s", got)
	}
	if len(e.Firing()) != 0 {
		t.Errorf("still firing after resolve: %+v", e.Firing())
	}
}

func TestForDurationAndPendingNeverResolves(t *testing.T) {
	rules, err := Rules([]config.AlertRule{{Name: "cpu-high", Threshold: f(80), For: &config.Duration{Duration: 10 * time.Second}}})
	if err != nil {
		t.Fatal(err)
	}
	hot := Input{Pods: []view.Pod{{Pod: "p", Namespace: "ns", Agent: "a", State: view.AgentConnected, CPUPercent: f(95)}}}
	cool := Input{Pods: []view.Pod{{Pod: "p", Namespace: "ns", Agent: "a", State: view.AgentConnected, CPUPercent: f(50)}}}
	e := NewEngine(rules)
	run(t, e, []step{
		{0, hot, nil},
		{5 * time.Second, cool, nil}, // pending dropped, nothing resolves
		{6 * time.Second, hot, nil},
		{15 * time.Second, hot, nil},
		{16 * time.Second, hot, []string{"cpu-high/ns/p/a firing warning"}},
		{17 * time.Second, cool, []string{"cpu-high/ns/p/a resolved warning"}},
	})
}

func TestAgentAndErrorRateRules(t *testing.T) {
	e := NewEngine(DefaultRules())
	in := Input{
		Agents: []view.AgentStatus{
			{Key: "http://a", State: view.AgentUnavailable, Reason: "connection refused"},
			{Key: "uid-2", Pod: "web-2", Namespace: "shop", State: view.AgentMissing, Reason: "no port"},
			{Key: "http://c", State: view.AgentConnected},
		},
		View: view.Cluster{Workloads: []view.Workload{
			{Namespace: "shop", Name: "web", RequestsPerSec: 100, ErrorsPerSec: 10},
			{Namespace: "shop", Name: "idle", RequestsPerSec: 0.5, ErrorsPerSec: 0.5}, // below the volume floor
		}},
	}
	run(t, e, []step{
		{0, in, []string{"agent-missing/shop/web-2/uid-2 firing warning", "agent-unavailable/http://a firing warning"}},
		{time.Minute, in, []string{"error-rate-high/shop/web firing warning"}},
	})
	got := e.Firing()
	if len(got) != 3 || got[0].Labels["alertname"] == "" {
		t.Errorf("firing = %+v", got)
	}
}

// TestPodThresholds: a pod's own thresholds (from its AgentProfile or annotation) replace
// the rule's for that pod, and for its workload's error rate the lowest of its pods'.
func TestPodThresholds(t *testing.T) {
	e := NewEngine(DefaultRules()) // cpu-high 90% for 2m, error-rate-high 5% for 1m
	agents := []view.AgentStatus{
		{Key: "u1", Pod: "strict-1", Namespace: "shop", Workload: "strict", State: view.AgentConnected, AlertThresholds: map[string]float64{"cpu-high": 60, "error-rate-high": 1}},
		{Key: "u2", Pod: "strict-2", Namespace: "shop", Workload: "strict", State: view.AgentConnected, AlertThresholds: map[string]float64{"error-rate-high": 3}},
		{Key: "u3", Pod: "plain-1", Namespace: "shop", Workload: "plain", State: view.AgentConnected},
	}
	pod := func(name, workload string, cpu float64) view.Pod {
		return view.Pod{Pod: name, Namespace: "shop", Workload: workload, Agent: name, State: view.AgentConnected, CPUPercent: f(cpu)}
	}
	in := Input{
		Agents: agents,
		Pods:   []view.Pod{pod("strict-1", "strict", 70), pod("strict-2", "strict", 70), pod("plain-1", "plain", 70)},
		View: view.Cluster{Workloads: []view.Workload{
			{Namespace: "shop", Name: "strict", RequestsPerSec: 100, ErrorsPerSec: 2},
			{Namespace: "shop", Name: "plain", RequestsPerSec: 100, ErrorsPerSec: 2},
		}},
	}
	run(t, e, []step{
		{0, in, nil},
		{time.Minute, in, []string{"error-rate-high/shop/strict firing warning"}},
		{2 * time.Minute, in, []string{"cpu-high/shop/strict/strict-1/strict-1 firing warning"}},
	})
	for _, a := range e.Firing() {
		if a.Rule == "cpu-high" && a.Summary != "pod shop/strict-1 CPU at 70% of its limit (threshold 60%)" {
			t.Errorf("summary %q does not give the pod's own threshold", a.Summary)
		}
	}
}

func TestRulesConfig(t *testing.T) {
	off := true
	rules, err := Rules([]config.AlertRule{
		{Name: "cpu-throttled", Disabled: &off},
		{Name: "memory-high", Threshold: f(75), Severity: "critical"},
		{Name: "mem-warn", Kind: KindMemory, Threshold: f(60)},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Rule{}
	for _, r := range rules {
		got[r.Name] = r
	}
	if _, ok := got["cpu-throttled"]; ok {
		t.Error("disabled rule still in force")
	}
	if r := got["memory-high"]; r.Threshold != 75 || r.Severity != wire.SeverityCritical || r.For != 2*time.Minute {
		t.Errorf("memory-high = %+v; want threshold 75, critical, default for 2m", r)
	}
	if r := got["mem-warn"]; r.Kind != KindMemory || r.Threshold != 60 {
		t.Errorf("mem-warn = %+v", r)
	}
	if _, err := Rules([]config.AlertRule{{Name: "new-without-kind"}}); err == nil {
		t.Error("a new rule without a kind was accepted")
	}
}

func TestReplicasMissingLifecycle(t *testing.T) {
	workload := func(connected int, desired *int) Input {
		return Input{View: view.Cluster{Workloads: []view.Workload{{Namespace: "shop", Name: "cart", Pods: connected, PodsConnected: connected, DesiredPods: desired}}}}
	}
	three := wire.Ptr(3)
	e := NewEngine(DefaultRules())
	const id = "replicas-missing/shop/cart"
	run(t, e, []step{
		{0, workload(3, three), nil},
		{time.Second, workload(2, three), nil},      // pending: a rollout makes such moments
		{30 * time.Second, workload(3, three), nil}, // recovered before the minute: nothing fired
		{40 * time.Second, workload(2, three), nil}, // short again
		{99 * time.Second, workload(2, three), nil}, // 59 s
		{100 * time.Second, workload(1, three), []string{id + " firing warning"}},
		{101 * time.Second, workload(2, three), nil},                              // still short: not repeated
		{110 * time.Second, workload(2, nil), []string{id + " resolved warning"}}, // desired no longer known
		{120 * time.Second, workload(2, wire.Ptr(2)), nil},                        // scaled down to what is there
	})
	run(t, NewEngine(DefaultRules()), []step{{0, workload(0, wire.Ptr(0)), nil}, {time.Hour, workload(4, three), nil}})
	if e := NewEngine(DefaultRules()); len(e.Evaluate(Input{Time: t0, View: workload(1, three).View})) != 0 {
		t.Error("fired at once; the rule waits its for")
	}
	a := NewEngine([]Rule{{Name: "replicas-missing", Kind: KindReplicasMissing, Severity: wire.SeverityWarning}}).Evaluate(Input{Time: t0, View: workload(1, three).View})
	if len(a) != 1 || a[0].Summary != "shop/cart: 1 of 3 desired pods have a connected agent (2 missing)" || *a[0].Value != 2 {
		t.Errorf("alert %+v", a)
	}
}
