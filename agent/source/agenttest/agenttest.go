// Package agenttest runs the real faultline-agent binary for end-to-end tests of the
// breaker sources, the Go client and the demo: it starts the agent on free loopback
// ports and reads its /v1/stream, handing over each circuit-breaker event with the time
// it arrived.
package agenttest

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/faultline-dev/faultline/internal/testbin"
	"github.com/faultline-dev/faultline/internal/wire"
)

// Agent is a running faultline-agent process.
type Agent struct {
	MainURL   string // read API and stream
	IngestURL string // pod-local writes
	Proc      *testbin.Process
}

// Start builds cmd/faultline-agent (once per test binary) and runs it with args added to
// its listen addresses and --mode=host. The process is killed when the test ends.
func Start(t testing.TB, args ...string) *Agent {
	t.Helper()
	return StartAt(t, testbin.FreeAddr(t, "127.0.0.1"), testbin.FreeAddr(t, "127.0.0.1"), args...)
}

// StartAt is Start on given host:port addresses, to bring an agent back where its
// clients expect it.
func StartAt(t testing.TB, main, ingest string, args ...string) *Agent {
	t.Helper()
	bin := testbin.Build(t, "faultline-agent")
	all := append([]string{"--listen", main, "--ingest-listen", ingest, "--mode", "host"}, args...)
	a := &Agent{MainURL: "http://" + main, IngestURL: "http://" + ingest}
	a.Proc = testbin.Start(t, bin, nil, all...)
	testbin.WaitHTTP(t, a.MainURL+"/healthz", http.StatusOK, 30*time.Second)
	return a
}

// Arrival is a circuit-breaker event and when the test received it.
type Arrival struct {
	Transition wire.Transition
	At         time.Time
}

// Stream is an open GET /v1/stream.
type Stream struct {
	Transitions chan Arrival
	Snapshot    chan wire.Snapshot // the first snapshot event
	Metrics     chan wire.Snapshot // metrics events; dropped when nobody reads them
	errMu       sync.Mutex
	err         error
}

// Stream opens the agent's event stream; it is closed when the test ends.
func (a *Agent) Stream(t testing.TB) *Stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, a.MainURL+"/v1/stream", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("open stream: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		cancel()
		t.Fatalf("open stream: status %d", resp.StatusCode)
	}
	s := &Stream{Transitions: make(chan Arrival, 4096), Snapshot: make(chan wire.Snapshot, 1), Metrics: make(chan wire.Snapshot, 1)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer resp.Body.Close()
		for ev, err := range wire.ReadEvents(resp.Body, 0) {
			if err != nil {
				s.fail(err)
				return
			}
			switch ev.Name {
			case wire.EventCircuitBreaker:
				var tr wire.Transition
				if err := wire.Decode(ev, &tr); err != nil {
					s.fail(err)
					return
				}
				s.Transitions <- Arrival{Transition: tr, At: time.Now()}
			case wire.EventSnapshot, wire.EventMetrics:
				var snap wire.Snapshot
				if err := wire.Decode(ev, &snap); err != nil {
					s.fail(err)
					return
				}
				ch := s.Metrics
				if ev.Name == wire.EventSnapshot {
					ch = s.Snapshot
				}
				select {
				case ch <- snap:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

func (s *Stream) fail(err error) {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	s.err = err
}

// Err is why the stream stopped, if it did.
func (s *Stream) Err() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.err
}

// WaitTransition returns the first circuit-breaker event matching match, failing the
// test if none arrives within timeout. Events that do not match are passed over.
func (s *Stream) WaitTransition(t testing.TB, timeout time.Duration, what string, match func(wire.Transition) bool) Arrival {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		select {
		case a := <-s.Transitions:
			if match(a.Transition) {
				return a
			}
		case <-deadline.C:
			t.Fatalf("no circuit-breaker event %s within %v (stream error: %v)", what, timeout, s.Err())
			return Arrival{}
		}
	}
}

// Is matches a transition of breaker name to state to.
func Is(name string, to wire.BreakerState) func(wire.Transition) bool {
	return func(tr wire.Transition) bool { return tr.Breaker.Name == name && tr.To == to }
}

// Describe formats a transition for messages.
func Describe(tr wire.Transition) string {
	return fmt.Sprintf("%s %s>%s (%s)", tr.Breaker.Name, tr.From, tr.To, tr.Breaker.Source)
}
