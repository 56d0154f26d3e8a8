package suggest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/faultline-dev/faultline/aggregator/history"
	"github.com/faultline-dev/faultline/aggregator/merge"
	"github.com/faultline-dev/faultline/aggregator/view"
	"github.com/faultline-dev/faultline/internal/wire"
)

var t0 = time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)

func f(v float64) *float64 { return &v }
func u(v uint64) *uint64   { return &v }

func agent(pod string, mem *wire.Memory, cpu *wire.CPU, breakers ...wire.Breaker) merge.Agent {
	return merge.Agent{
		Status:   view.AgentStatus{Key: "http://" + pod, State: view.AgentConnected, Pod: pod, Namespace: "shop", Workload: "cart"},
		Snapshot: &wire.Snapshot{Sample: &wire.Sample{Memory: mem, CPU: cpu}, Breakers: breakers},
	}
}

// fill records v for metric of pod every second for d.
func fill(h *history.Store, pod, metric string, d time.Duration, v float64) {
	for s := time.Duration(0); s < d; s += time.Second {
		h.Record(t0.Add(s), []history.Sample{{Name: history.Name(history.ScopePod, "shop/"+pod, metric), Value: v}})
	}
}

func rules(list []wire.Suggestion) []string {
	var out []string
	for _, s := range list {
		out = append(out, s.Rule+" "+s.Target.Pod+" "+s.Target.Breaker)
	}
	return out
}

func TestSuggestions(t *testing.T) {
	h := history.New(history.Options{Retention: time.Hour})
	now := t0.Add(20 * time.Minute)
	fill(h, "big", "memory_bytes", 20*time.Minute, 100<<20)   // 100 MiB of a 1 GiB limit
	fill(h, "tight", "memory_bytes", 20*time.Minute, 950<<20) // 950 MiB of 1 GiB
	fill(h, "young", "memory_bytes", 5*time.Minute, 10<<20)   // too little history to judge
	fill(h, "hot", "cpu_throttled_percent", 15*time.Minute, 30)
	fill(h, "hot", "cpu_cores", 15*time.Minute, 0.5)
	limit := &wire.Memory{LimitBytes: u(1 << 30)}
	near := wire.Breaker{Name: "db", State: wire.StateClosed, FailureRate: f(45), Thresholds: &wire.Thresholds{FailureRate: f(50)}}
	far := wire.Breaker{Name: "cache", State: wire.StateClosed, FailureRate: f(5), Thresholds: &wire.Thresholds{FailureRate: f(50)}}
	var flips []time.Time
	for i := 0; i < 7; i++ {
		flips = append(flips, now.Add(-time.Duration(i)*time.Minute))
	}
	in := Input{Time: now, History: h,
		Agents: []merge.Agent{
			agent("big", limit, nil),
			agent("tight", limit, nil),
			agent("young", limit, nil),
			agent("hot", nil, &wire.CPU{LimitCores: f(0.5)}),
			agent("calls", nil, nil, near, far),
			{Status: view.AgentStatus{Key: "uid-9", Pod: "lost", Namespace: "shop", State: view.AgentMissing, Reason: "no port named faultline", Since: wire.NewTime(t0)}},
			{Status: view.AgentStatus{Key: "http://gone", Pod: "gone", Namespace: "shop", State: view.AgentUnavailable, Reason: "connection refused", Since: wire.NewTime(now.Add(-2 * time.Minute))}},
			{Status: view.AgentStatus{Key: "http://blip", Pod: "blip", Namespace: "shop", State: view.AgentUnavailable, Reason: "connection refused", Since: wire.NewTime(now.Add(-5 * time.Second))}},
		},
		Flips: []Flips{
			{Namespace: "shop", Workload: "cart", Pod: "calls", Breaker: "db", Times: flips},
			{Namespace: "shop", Workload: "cart", Pod: "calls", Breaker: "cache", Times: flips[:3]},
		},
	}
	got, total := Compute(in)
	want := []string{
		"agent-missing lost ",
		"agent-unavailable gone ",
		"breaker-flapping calls db",
		"cpu-throttling hot ",
		"failure-rate-near-threshold calls db",
		"memory-limit-low tight ",
		"memory-limit-high big ",
	}
	if diff := cmp.Diff(want, rules(got)); diff != "" {
		t.Errorf("suggestions (-want +got):\n%s", diff)
	}
	if total != len(want) {
		t.Errorf("total = %d", total)
	}
	for _, s := range got {
		if len(s.Evidence) == 0 || s.Action == "" || s.Summary == "" {
			t.Errorf("%s lacks evidence, action or summary: %+v", s.Rule, s)
		}
	}
}
