package source

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/faultline-dev/faultline/agent/source/agenttest"
	"github.com/faultline-dev/faultline/internal/wire"
)

// These benchmarks measure, with the real agent binary, how long a breaker transition
// takes to reach a /v1/stream consumer. Run them with a fixed count, e.g.
// go test -run '^$' -bench TransitionToStream -benchtime 100x ./agent/source

// reportLatencies adds p50, p99 and max (ms) of lat to the result under prefix.
func reportLatencies(b *testing.B, prefix string, lat []time.Duration) {
	slices.Sort(lat)
	at := func(q float64) float64 {
		return float64(lat[min(len(lat)-1, int(q*float64(len(lat))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(at(0.5), prefix+"-p50-ms")
	b.ReportMetric(at(0.99), prefix+"-p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1])/float64(time.Millisecond), prefix+"-max-ms")
}

// BenchmarkTransitionToStreamPrometheus flips a breaker in a scraped exposition at a
// random moment of the scrape cycle. Reported: from the change in the application to
// the stream (at most a scrape interval plus the scrape), and from the scrape that saw
// it to the stream.
func BenchmarkTransitionToStreamPrometheus(b *testing.B) {
	const interval = 200 * time.Millisecond
	srv := newExposition(b, r4jExposition(map[string]string{"payments": "closed"}))
	agent := agenttest.Start(b, "--prometheus-url", srv.URL, "--sample-interval", interval.String())
	stream := agent.Stream(b)
	waitBreaker(b, stream, "payments closed", "payments", func(br wire.Breaker, _ wire.Snapshot) bool { return br.State == wire.StateClosed })
	var fromChange, fromScrape []time.Duration
	state := wire.StateClosed
	b.ResetTimer()
	for range b.N {
		time.Sleep(rand.N(interval))
		state = map[wire.BreakerState]wire.BreakerState{wire.StateClosed: wire.StateOpen, wire.StateOpen: wire.StateClosed}[state]
		srv.set(http.StatusOK, r4jExposition(map[string]string{"payments": string(state)}))
		changed := time.Now()
		got := stream.WaitTransition(b, 10*time.Second, fmt.Sprintf("payments %s", state), agenttest.Is("payments", state))
		fromChange = append(fromChange, got.At.Sub(changed))
		fromScrape = append(fromScrape, got.At.Sub(srv.servedAt()))
	}
	b.StopTimer()
	reportLatencies(b, "change", fromChange)
	reportLatencies(b, "scrape", fromScrape)
	b.ReportMetric(float64(interval)/float64(time.Millisecond), "interval-ms")
}

// BenchmarkTransitionToStreamHystrix writes a command event that changes the breaker's
// state and measures until the transition is on the agent's stream.
func BenchmarkTransitionToStreamHystrix(b *testing.B) {
	srv := newHystrixServer(b)
	agent := agenttest.Start(b, "--hystrix-url", srv.URL, "--sample-interval", "1s")
	stream := agent.Stream(b)
	srv.frames <- command("ChargeCard", false, 0)
	waitBreaker(b, stream, "ChargeCard closed", "ChargeCard", func(br wire.Breaker, _ wire.Snapshot) bool { return br.State == wire.StateClosed })
	var lat []time.Duration
	open := false
	b.ResetTimer()
	for range b.N {
		open = !open
		want := wire.StateClosed
		if open {
			want = wire.StateOpen
		}
		sent := time.Now()
		srv.frames <- command("ChargeCard", open, 1)
		got := stream.WaitTransition(b, 10*time.Second, "ChargeCard "+string(want), agenttest.Is("ChargeCard", want))
		lat = append(lat, got.At.Sub(sent))
	}
	b.StopTimer()
	reportLatencies(b, "event", lat)
}
