// Package suggest turns recent history into suggestions, each with the evidence behind
// it and the action to take: memory limits that are far from the observed working set,
// CPU throttling against the limit, breakers that flap, breakers whose failure-rate
// threshold is close to what is observed, and agents that are missing or stale.
package suggest

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/faultline-dev/faultline/aggregator/history"
	"github.com/faultline-dev/faultline/aggregator/merge"
	"github.com/faultline-dev/faultline/aggregator/view"
	"github.com/faultline-dev/faultline/internal/wire"
)

// Rule parameters.
const (
	MemoryWindow     = time.Hour        // looked at for memory limits (or the retention)
	MinCoverage      = 10 * time.Minute // history needed before judging a limit
	MemoryHighPct    = 90.0             // peak working set above this share of the limit: raise it
	MemoryLowPct     = 40.0             // peak below this share: lower it
	ThrottleWindow   = 15 * time.Minute
	ThrottleMeanPct  = 10.0 // mean throttled periods that call for more CPU
	FlapWindow       = 10 * time.Minute
	FlapTransitions  = 6   // transitions within FlapWindow that count as flapping
	NearThresholdPct = 0.8 // observed failure rate at this share of the threshold
	UnavailableFor   = time.Minute
	// MaxSuggestions bounds the list; the most severe come first.
	MaxSuggestions = 200
)

// Flips is the recent transitions of one breaker on one pod.
type Flips struct {
	Namespace, Workload, Pod, Breaker string
	Times                             []time.Time
}

// Input is what suggestions are computed from.
type Input struct {
	Time    time.Time
	Agents  []merge.Agent
	Flips   []Flips
	History *history.Store
}

// Compute returns every suggestion, most severe first, at most MaxSuggestions, and how
// many there were in all.
func Compute(in Input) ([]wire.Suggestion, int) {
	var out []wire.Suggestion
	for _, a := range in.Agents {
		out = append(out, agentRules(in, a)...)
		if a.Status.State == view.AgentConnected && a.Snapshot != nil {
			out = append(out, memoryRule(in, a)...)
			out = append(out, throttleRule(in, a)...)
			out = append(out, thresholdRule(in, a)...)
		}
	}
	out = append(out, flapRule(in)...)
	sort.SliceStable(out, func(i, j int) bool {
		if ri, rj := out[i].Severity.Rank(), out[j].Severity.Rank(); ri != rj {
			return ri > rj
		}
		return out[i].ID < out[j].ID
	})
	total := len(out)
	if len(out) > MaxSuggestions {
		out = out[:MaxSuggestions]
	}
	if out == nil {
		out = []wire.Suggestion{}
	}
	return out, total
}

func podTarget(st view.AgentStatus) wire.Target {
	return wire.Target{Namespace: st.Namespace, Workload: merge.WorkloadOf(st), Pod: st.Pod, Agent: st.Key}
}

func podName(st view.AgentStatus) string {
	if st.Namespace == "" {
		return st.Pod
	}
	return st.Namespace + "/" + st.Pod
}

func id(rule string, t wire.Target, extra ...string) string {
	parts := append([]string{rule, t.Namespace, t.Workload, t.Pod, t.Breaker}, extra...)
	return strings.Join(parts, "/")
}

func memoryRule(in Input, a merge.Agent) []wire.Suggestion {
	s := a.Snapshot.Sample
	if s == nil || s.Memory == nil || s.Memory.LimitBytes == nil || *s.Memory.LimitBytes == 0 {
		return nil
	}
	limit := float64(*s.Memory.LimitBytes)
	window := min(MemoryWindow, in.History.Retention())
	st := in.History.Summary(history.Name(history.ScopePod, podName(a.Status), "memory_bytes"), window, in.Time)
	if st.N == 0 || st.Last.Sub(st.First) < MinCoverage {
		return nil
	}
	pct := st.Max / limit * 100
	t := podTarget(a.Status)
	evidence := []string{
		fmt.Sprintf("memory limit %s", bytesText(limit)),
		fmt.Sprintf("peak working set %s (%.0f%% of the limit) over the last %s", bytesText(st.Max), pct, durText(st.Last.Sub(st.First))),
		fmt.Sprintf("mean working set %s", bytesText(st.Mean)),
	}
	switch {
	case pct >= MemoryHighPct:
		return []wire.Suggestion{{V: wire.Version, ID: id("memory-limit-low", t), Rule: "memory-limit-low", Severity: wire.SeverityWarning, Target: t,
			Summary:  fmt.Sprintf("pod %s peaks at %.0f%% of its memory limit", podName(a.Status), pct),
			Evidence: evidence, Action: fmt.Sprintf("raise the memory limit to about %s, or find what grows", bytesText(st.Max*1.3)), Since: wire.NewTime(st.First)}}
	case pct < MemoryLowPct:
		return []wire.Suggestion{{V: wire.Version, ID: id("memory-limit-high", t), Rule: "memory-limit-high", Severity: wire.SeverityInfo, Target: t,
			Summary:  fmt.Sprintf("pod %s uses at most %.0f%% of its memory limit", podName(a.Status), pct),
			Evidence: evidence, Action: fmt.Sprintf("lower the memory limit to about %s to free capacity", bytesText(st.Max*1.5)), Since: wire.NewTime(st.First)}}
	}
	return nil
}

func throttleRule(in Input, a merge.Agent) []wire.Suggestion {
	s := a.Snapshot.Sample
	if s == nil || s.CPU == nil || s.CPU.LimitCores == nil {
		return nil
	}
	st := in.History.Summary(history.Name(history.ScopePod, podName(a.Status), "cpu_throttled_percent"), ThrottleWindow, in.Time)
	if st.N == 0 || st.Last.Sub(st.First) < ThrottleWindow/3 || st.Mean < ThrottleMeanPct {
		return nil
	}
	cpu := in.History.Summary(history.Name(history.ScopePod, podName(a.Status), "cpu_cores"), ThrottleWindow, in.Time)
	limit := *s.CPU.LimitCores
	t := podTarget(a.Status)
	ev := []string{
		fmt.Sprintf("CPU limit %.2f cores", limit),
		fmt.Sprintf("%.0f%% of CPU periods throttled on average (peak %.0f%%) over %s", st.Mean, st.Max, durText(st.Last.Sub(st.First))),
	}
	if cpu.N > 0 {
		ev = append(ev, fmt.Sprintf("CPU used: mean %.2f, peak %.2f cores", cpu.Mean, cpu.Max))
	}
	return []wire.Suggestion{{V: wire.Version, ID: id("cpu-throttling", t), Rule: "cpu-throttling", Severity: wire.SeverityWarning, Target: t,
		Summary:  fmt.Sprintf("pod %s is CPU-throttled %.0f%% of the time", podName(a.Status), st.Mean),
		Evidence: ev, Action: fmt.Sprintf("raise the CPU limit to about %.2f cores (or remove it and keep the request)", limit*(1+st.Mean/100)*1.2),
		Since: wire.NewTime(st.First)}}
}

func thresholdRule(in Input, a merge.Agent) []wire.Suggestion {
	var out []wire.Suggestion
	for _, b := range a.Snapshot.Breakers {
		if b.FailureRate == nil || b.Thresholds == nil || b.Thresholds.FailureRate == nil || *b.Thresholds.FailureRate <= 0 {
			continue
		}
		if b.State != wire.StateClosed {
			continue
		}
		obs, thr := *b.FailureRate, *b.Thresholds.FailureRate
		if obs < thr*NearThresholdPct {
			continue
		}
		t := podTarget(a.Status)
		t.Breaker = b.Name
		out = append(out, wire.Suggestion{V: wire.Version, ID: id("failure-rate-near-threshold", t), Rule: "failure-rate-near-threshold", Severity: wire.SeverityWarning, Target: t,
			Summary: fmt.Sprintf("breaker %s on %s fails %.0f%% of calls; it opens at %.0f%%", b.Name, podName(a.Status), obs, thr),
			Evidence: []string{
				fmt.Sprintf("observed failure rate %.1f%%", obs),
				fmt.Sprintf("failure-rate threshold %.1f%%", thr),
				fmt.Sprintf("calls: %d succeeded, %d failed, %d timed out", b.Calls.Succeeded, b.Calls.Failed, b.Calls.TimedOut),
			},
			Action: "look at the dependency behind this breaker; if these failures are expected, raise the threshold so the breaker opens only on a real outage",
			Since:  wire.NewTime(in.Time)})
	}
	return out
}

func flapRule(in Input) []wire.Suggestion {
	var out []wire.Suggestion
	from := in.Time.Add(-FlapWindow)
	for _, f := range in.Flips {
		n := 0
		var first time.Time
		for _, t := range f.Times {
			if t.After(from) {
				if n == 0 {
					first = t
				}
				n++
			}
		}
		if n < FlapTransitions {
			continue
		}
		t := wire.Target{Namespace: f.Namespace, Workload: f.Workload, Pod: f.Pod, Breaker: f.Breaker}
		pod := f.Pod
		if f.Namespace != "" {
			pod = f.Namespace + "/" + f.Pod
		}
		out = append(out, wire.Suggestion{V: wire.Version, ID: id("breaker-flapping", t), Rule: "breaker-flapping", Severity: wire.SeverityWarning, Target: t,
			Summary:  fmt.Sprintf("breaker %s on %s is flapping", f.Breaker, pod),
			Evidence: []string{fmt.Sprintf("%d transitions in the last %s (threshold %d)", n, durText(FlapWindow), FlapTransitions)},
			Action:   "lengthen the breaker's open wait or raise its minimum number of calls, and look at the dependency's intermittent failures",
			Since:    wire.NewTime(first)})
	}
	return out
}

func agentRules(in Input, a merge.Agent) []wire.Suggestion {
	st := a.Status
	t := podTarget(st)
	name := st.Key
	if st.Pod != "" {
		name = podName(st)
	}
	switch {
	case st.State == view.AgentMissing:
		return []wire.Suggestion{{V: wire.Version, ID: id("agent-missing", t), Rule: "agent-missing", Severity: wire.SeverityWarning, Target: t,
			Summary:  fmt.Sprintf("pod %s is selected for an agent but has none", name),
			Evidence: []string{st.Reason},
			Action:   "add the faultline agent sidecar to the pod template (the chart's faultline.agent template), or give its container port the name faultline",
			Since:    st.Since}}
	case st.State == view.AgentUnavailable && in.Time.Sub(st.Since.Time) >= UnavailableFor:
		return []wire.Suggestion{{V: wire.Version, ID: id("agent-unavailable", t), Rule: "agent-unavailable", Severity: wire.SeverityWarning, Target: t,
			Summary:  fmt.Sprintf("agent %s unavailable for %s", name, durText(in.Time.Sub(st.Since.Time))),
			Evidence: []string{"reason: " + st.Reason, "since " + st.Since.Format(time.RFC3339)},
			Action:   "check that the agent runs and that the aggregator can reach " + st.URL,
			Since:    st.Since}}
	case st.State == view.AgentConnected && a.Snapshot != nil:
		var stale []string
		for _, b := range a.Snapshot.Breakers {
			if b.Stale {
				stale = append(stale, fmt.Sprintf("breaker %s (source %s) last reported %s", b.Name, b.Source, b.LastSeen.Format(time.RFC3339)))
			}
		}
		if len(stale) == 0 {
			return nil
		}
		return []wire.Suggestion{{V: wire.Version, ID: id("breakers-stale", t), Rule: "breakers-stale", Severity: wire.SeverityInfo, Target: t,
			Summary:  fmt.Sprintf("%d breakers on %s are stale: their source stopped answering", len(stale), name),
			Evidence: stale,
			Action:   "check the breaker source's status in the pod's collectors (scrape URL, hystrix stream)",
			Since:    wire.NewTime(in.Time)}}
	}
	return nil
}

func bytesText(b float64) string {
	const unit = 1024.0
	switch {
	case b >= unit*unit*unit:
		return fmt.Sprintf("%.1f GiB", b/unit/unit/unit)
	case b >= unit*unit:
		return fmt.Sprintf("%.0f MiB", b/unit/unit)
	case b >= unit:
		return fmt.Sprintf("%.0f KiB", b/unit)
	}
	return fmt.Sprintf("%.0f B", b)
}

func durText(d time.Duration) string {
	return d.Round(time.Second).String()
}
