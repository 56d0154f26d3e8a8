package source

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/faultline-dev/faultline/agent/source/agenttest"
	"github.com/faultline-dev/faultline/internal/wire"
)

// These tests run the real faultline-agent binary against real HTTP servers on
// loopback whose breaker data changes over time, and read the agent's /v1/stream.

const e2eInterval = 200 * time.Millisecond

// waitBreaker waits for a metrics event in which the breaker named name satisfies ok,
// and returns that event.
func waitBreaker(t testing.TB, s *agenttest.Stream, what, name string, ok func(wire.Breaker, wire.Snapshot) bool) wire.Snapshot {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case snap := <-s.Metrics:
			for _, b := range snap.Breakers {
				if b.Name == name && ok(b, snap) {
					return snap
				}
			}
		case <-deadline:
			t.Fatalf("no metrics event with %s (stream error: %v)", what, s.Err())
		}
	}
}

func collector(snap wire.Snapshot, name string) wire.Collector {
	if snap.Sample != nil {
		for _, c := range snap.Sample.Collectors {
			if c.Name == name {
				return c
			}
		}
	}
	return wire.Collector{}
}

func TestEndToEndPrometheus(t *testing.T) {
	srv := newExposition(t, r4jExposition(map[string]string{"payments": "closed"}))
	agent := agenttest.Start(t, "--prometheus-url", srv.URL, "--sample-interval", e2eInterval.String())
	stream := agent.Stream(t)
	waitBreaker(t, stream, "payments closed", "payments", func(b wire.Breaker, snap wire.Snapshot) bool {
		c := collector(snap, NamePrometheus)
		return b.State == wire.StateClosed && b.Source == NamePrometheus && c.OK && strings.Contains(c.Status, "1 breakers")
	})
	for _, step := range []struct{ from, to wire.BreakerState }{
		{wire.StateClosed, wire.StateOpen},
		{wire.StateOpen, wire.StateHalfOpen},
		{wire.StateHalfOpen, wire.StateClosed},
	} {
		srv.set(http.StatusOK, r4jExposition(map[string]string{"payments": string(step.to)}))
		flipped := time.Now()
		got := stream.WaitTransition(t, 10*time.Second, fmt.Sprintf("payments %s>%s", step.from, step.to), agenttest.Is("payments", step.to))
		if got.Transition.From != step.from || got.Transition.Breaker.Source != NamePrometheus {
			t.Errorf("transition %s, want from %s, source prometheus", agenttest.Describe(got.Transition), step.from)
		}
		t.Logf("%s>%s on the stream %v after the exposition changed (scrape interval %v)", step.from, step.to, got.At.Sub(flipped).Round(time.Millisecond), e2eInterval)
	}

	// The application goes away: the breaker is kept, stale, and the sample says why.
	srv.Close()
	waitBreaker(t, stream, "payments stale", "payments", func(b wire.Breaker, snap wire.Snapshot) bool {
		c := collector(snap, NamePrometheus)
		return b.Stale && b.State == wire.StateClosed && !c.OK && strings.HasPrefix(c.Status, "unavailable: connection refused")
	})
}

// hystrixApp is a hystrix.stream that, like Hystrix, writes the current state of its
// command every 50 ms to each connected client.
type hystrixApp struct {
	*httptest.Server
	mu    sync.Mutex
	frame string
}

func newHystrixApp(t *testing.T) *hystrixApp {
	a := &hystrixApp{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream;charset=UTF-8")
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			a.mu.Lock()
			frame := a.frame
			a.mu.Unlock()
			if frame == "" {
				frame = "ping: \n\n"
			}
			if _, err := fmt.Fprint(w, frame); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-tick.C:
			}
		}
	}))
	t.Cleanup(func() { a.CloseClientConnections(); a.Close() })
	return a
}

func (a *hystrixApp) set(open bool, failures int) {
	frame := strings.Replace(command("ChargeCard", open, failures),
		`"propertyValue_circuitBreakerSleepWindowInMilliseconds":5000`, `"propertyValue_circuitBreakerSleepWindowInMilliseconds":300`, 1)
	a.mu.Lock()
	a.frame = frame
	a.mu.Unlock()
}

func TestEndToEndHystrix(t *testing.T) {
	app := newHystrixApp(t)
	app.set(false, 0)
	agent := agenttest.Start(t, "--hystrix-url", app.URL, "--sample-interval", e2eInterval.String())
	stream := agent.Stream(t)
	waitBreaker(t, stream, "ChargeCard closed", "ChargeCard", func(b wire.Breaker, _ wire.Snapshot) bool {
		return b.State == wire.StateClosed && b.Source == NameHystrix
	})

	app.set(true, 12)
	stream.WaitTransition(t, 10*time.Second, "ChargeCard open", agenttest.Is("ChargeCard", wire.StateOpen))
	// The 300 ms sleep window passes while Hystrix still says open: half-open.
	stream.WaitTransition(t, 10*time.Second, "ChargeCard half_open", agenttest.Is("ChargeCard", wire.StateHalfOpen))
	app.set(true, 13) // the trial request failed
	stream.WaitTransition(t, 10*time.Second, "ChargeCard open again", agenttest.Is("ChargeCard", wire.StateOpen))
	stream.WaitTransition(t, 10*time.Second, "ChargeCard half_open again", agenttest.Is("ChargeCard", wire.StateHalfOpen))
	app.set(false, 13)
	got := stream.WaitTransition(t, 10*time.Second, "ChargeCard closed", agenttest.Is("ChargeCard", wire.StateClosed))
	if got.Transition.From != wire.StateHalfOpen {
		t.Errorf("closed from %s, want from half_open", got.Transition.From)
	}
	b := got.Transition.Breaker
	if b.Latency == nil || b.Latency.P99Ms != 7 || b.Thresholds == nil || *b.Thresholds.OpenMs != 300 {
		t.Errorf("breaker %+v: want latency and thresholds from the stream", b)
	}
}
