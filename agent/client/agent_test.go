package client

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/faultline-dev/faultline/agent/source/agenttest"
	"github.com/faultline-dev/faultline/internal/wire"
)

// TestWithRealAgent reports through the real faultline-agent binary: a breaker's
// transitions must appear as circuit-breaker events on the agent's /v1/stream, the
// service's throughput in its samples; and when the agent dies and comes back, the
// reporter counts what it dropped and brings the new agent up to date.
func TestWithRealAgent(t *testing.T) {
	agent := agenttest.Start(t, "--sample-interval", "200ms")
	stream := agent.Stream(t)
	r := New(Options{AgentURL: agent.IngestURL, FlushInterval: 50 * time.Millisecond, HTTPClient: &http.Client{Timeout: 500 * time.Millisecond}})
	defer r.Close()
	cb := NewBreaker[string](r, gobreaker.Settings{
		Name:        "inventory",
		Timeout:     200 * time.Millisecond,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= 2 },
	})
	stream.WaitTransition(t, 5*time.Second, "inventory first seen closed", agenttest.Is("inventory", wire.StateClosed))

	for range 2 {
		start := time.Now()
		cb.Execute(fail)
		r.ObserveRequest(time.Since(start)+3*time.Millisecond, true)
	}
	opened := stream.WaitTransition(t, 5*time.Second, "inventory open", agenttest.Is("inventory", wire.StateOpen))
	if b := opened.Transition.Breaker; b.Source != "gobreaker" || b.FailureRate == nil || *b.FailureRate != 100 || b.Calls.Failed != 2 {
		t.Errorf("open breaker = %+v, want source gobreaker, failure rate 100, 2 failed calls", b)
	}
	stream.WaitTransition(t, 5*time.Second, "inventory half-open", agenttest.Is("inventory", wire.StateHalfOpen))
	cb.Execute(ok)
	r.ObserveRequest(2*time.Millisecond, false)
	stream.WaitTransition(t, 5*time.Second, "inventory closed", agenttest.Is("inventory", wire.StateClosed))

	// Throughput: the agent turns the posted counters into rates in its samples.
	deadline := time.After(10 * time.Second)
	for {
		var snap wire.Snapshot
		select {
		case snap = <-stream.Metrics:
		case <-deadline:
			t.Fatal("no sample with the application's throughput")
		}
		if tp := snap.Sample.Throughput; tp != nil && tp.Source == "app" && tp.Latency != nil {
			break
		}
		// Keep the counters moving so that the agent has two reports to rate.
		r.ObserveRequest(time.Millisecond, false)
	}

	// The agent dies: calls go on, reports are dropped and counted.
	agent.Proc.Kill()
	for range 10 {
		cb.Execute(ok)
	}
	// The first failure may be a reset of the kept-alive connection; then refusals.
	waitFor(t, "refusals counted", func() bool {
		st := r.Stats()
		return st.Failures > 0 && st.Dropped > 0 && strings.Contains(st.LastError, "connection refused")
	})

	back := agenttest.StartAt(t, strings.TrimPrefix(agent.MainURL, "http://"), strings.TrimPrefix(agent.IngestURL, "http://"), "--sample-interval", "200ms")
	stream2 := back.Stream(t)
	// The reporter may resend before this stream is open, so look at the samples,
	// which carry every breaker.
	deadline = time.After(15 * time.Second)
	for {
		select {
		case snap := <-stream2.Metrics:
			for _, b := range snap.Breakers {
				if b.Name == "inventory" && b.State == wire.StateClosed && b.Calls.Succeeded >= 11 {
					return
				}
			}
		case <-deadline:
			t.Fatal("the new agent never learnt inventory, closed, with the 11 successful calls made so far")
		}
	}
}

// BenchmarkTransitionToStream measures a gobreaker state change, reported through this
// package, until it is on the real agent's /v1/stream. Run with a fixed count:
// go test -run '^$' -bench TransitionToStream -benchtime 10000x ./agent/client
func BenchmarkTransitionToStream(b *testing.B) {
	agent := agenttest.Start(b)
	stream := agent.Stream(b)
	r := New(Options{AgentURL: agent.IngestURL})
	defer r.Close()
	// Every state change with its time: the reporter's own polling may make the
	// open -> half-open change before the loop asks for it, so none may be lost.
	type change struct {
		to gobreaker.State
		at time.Time
	}
	changes := make(chan change, 3*b.N+16)
	cb := NewBreaker[string](r, gobreaker.Settings{
		Name:        "bench",
		Timeout:     time.Nanosecond, // open turns half-open at the next look
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= 1 },
		OnStateChange: func(_ string, _, to gobreaker.State) {
			changes <- change{to, time.Now()}
		},
	})
	stream.WaitTransition(b, 5*time.Second, "bench first seen", agenttest.Is("bench", wire.StateClosed))
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		var want gobreaker.State
		switch i % 3 {
		case 0:
			cb.Execute(fail) // closed -> open
			want = gobreaker.StateOpen
		case 1:
			cb.State() // open -> half-open: the timeout has passed
			want = gobreaker.StateHalfOpen
		case 2:
			cb.Execute(ok) // half-open -> closed
			want = gobreaker.StateClosed
		}
		var c change
		for c = <-changes; c.to != want; c = <-changes {
		}
		wantWire := wire.BreakerState(stateName(want))
		got := stream.WaitTransition(b, 5*time.Second, string(wantWire), agenttest.Is("bench", wantWire))
		lat = append(lat, got.At.Sub(c.at))
	}
	b.StopTimer()
	reportLatencies(b, lat)
	if st := r.Stats(); st.Dropped > 0 {
		b.Errorf("stats = %+v: nothing should be dropped", st)
	}
}

func reportLatencies(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	sorted := slices.Clone(lat)
	slices.Sort(sorted)
	at := func(q float64) float64 {
		return float64(sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(at(0.5), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
	b.ReportMetric(float64(sorted[len(sorted)-1])/float64(time.Millisecond), "max-ms")
}
