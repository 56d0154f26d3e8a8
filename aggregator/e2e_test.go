package aggregator_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/faultline-dev/faultline/aggregator/view"
	"github.com/faultline-dev/faultline/internal/stream"
	"github.com/faultline-dev/faultline/internal/testbin"
	"github.com/faultline-dev/faultline/internal/wire"
)

// simAgent is an agent's stream endpoint served in the test process from an
// internal/stream hub on its own loopback address, as the real agent serves it. Stop
// closes its sockets the way a killed process's are closed; Start serves again on the
// same address with a new epoch, as a restarted agent does.
type simAgent struct {
	t    *testing.T
	addr string
	id   string

	mu       sync.Mutex
	hub      *stream.Hub
	srv      *http.Server
	breakers map[string]wire.BreakerState
	seq      uint64
	stop     chan struct{}
	done     chan struct{}
}

func newSimAgent(t *testing.T, ip, id string) *simAgent {
	a := &simAgent{t: t, addr: testbin.FreeAddr(t, ip), id: id, breakers: map[string]wire.BreakerState{}}
	a.Start()
	t.Cleanup(a.Stop)
	return a
}

func (a *simAgent) URL() string { return "http://" + a.addr }

func (a *simAgent) Start() {
	ln, err := net.Listen("tcp", a.addr)
	if err != nil {
		a.t.Fatal(err)
	}
	hub := stream.New(stream.Options{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/stream", func(w http.ResponseWriter, r *http.Request) {
		hub.Serve(w, r, nil, func() ([]byte, error) { return json.Marshal(a.snapshot()) })
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	a.mu.Lock()
	a.hub, a.srv, a.stop, a.done = hub, srv, make(chan struct{}), make(chan struct{})
	stop, done := a.stop, a.done
	a.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
	go func() { // metrics every 100 ms, as an agent sampling at 10 Hz
		defer close(done)
		tk := time.NewTicker(100 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				_, _ = hub.Publish(wire.EventMetrics, "", "", a.snapshot())
			}
		}
	}()
}

func (a *simAgent) Stop() {
	a.mu.Lock()
	srv, hub, stop, done := a.srv, a.hub, a.stop, a.done
	a.srv = nil
	a.mu.Unlock()
	if srv == nil {
		return
	}
	close(stop)
	<-done
	hub.Close()
	_ = srv.Close() // closes the listener and every connection at once
}

func (a *simAgent) snapshot() wire.Snapshot {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.seq++
	s := wire.Snapshot{V: 1, Agent: wire.Agent{V: 1, ID: a.id, Pod: a.id, Namespace: "shop", Workload: "cart", Version: "sim", Mode: "pod"}, Seq: a.seq,
		Sample:   &wire.Sample{V: 1, IntervalMs: 100, CPU: &wire.CPU{Cores: 0.1}, Throughput: &wire.Throughput{RequestsPerSec: 10, Source: "app"}},
		Breakers: []wire.Breaker{}}
	for name, st := range a.breakers {
		s.Breakers = append(s.Breakers, wire.Breaker{V: 1, Name: name, State: st, Source: "push"})
	}
	return s
}

// Flip changes a breaker and publishes the transition, as the agent's registry does.
func (a *simAgent) Flip(name string, to wire.BreakerState) {
	a.mu.Lock()
	from := a.breakers[name]
	a.breakers[name] = to
	hub := a.hub
	a.mu.Unlock()
	tr := wire.Transition{V: 1, Agent: a.id, From: from, To: to, Time: wire.Now(), Breaker: wire.Breaker{V: 1, Name: name, State: to, Source: "push"}}
	if _, err := hub.Publish(wire.EventCircuitBreaker, "", "", tr); err != nil {
		a.t.Fatal(err)
	}
}

// aggregatorProc is the real aggregator binary running on loopback.
type aggregatorProc struct {
	*testbin.Process
	api, probe string
}

func startAggregator(t *testing.T, args ...string) *aggregatorProc {
	t.Helper()
	bin := testbin.Build(t, "faultline-aggregator")
	a := &aggregatorProc{api: testbin.FreeAddr(t, "127.0.0.1"), probe: testbin.FreeAddr(t, "127.0.0.1")}
	args = append([]string{"--listen=" + a.api, "--probe-listen=" + a.probe, "--mode=static", "--log-level=debug"}, args...)
	a.Process = testbin.Start(t, bin, nil, args...)
	testbin.WaitHTTP(t, "http://"+a.probe+"/readyz", http.StatusOK, 30*time.Second)
	return a
}

// sseClient reads the aggregator's stream into a channel.
type sseClient struct {
	events chan wire.Event
	cancel context.CancelFunc
	done   chan struct{}
}

func connect(t *testing.T, url, lastID string) *sseClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		cancel()
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	c := &sseClient{events: make(chan wire.Event, 100000), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		defer resp.Body.Close()
		for ev, err := range wire.ReadEvents(resp.Body, 0) {
			if err != nil {
				return
			}
			c.events <- ev
		}
	}()
	t.Cleanup(c.Close)
	return c
}

func (c *sseClient) Close() { c.cancel(); <-c.done }

// next returns the next event matching accept, failing the test after timeout.
func (c *sseClient) next(t *testing.T, timeout time.Duration, what string, accept func(wire.Event) bool) wire.Event {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev := <-c.events:
			if accept(ev) {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %s within %v", what, timeout)
		}
	}
}

func isBreaker(name string, to wire.BreakerState) func(wire.Event) bool {
	return func(ev wire.Event) bool {
		if ev.Name != wire.EventCircuitBreaker {
			return false
		}
		var be view.BreakerEvent
		return json.Unmarshal(ev.Data, &be) == nil && be.Transition.Breaker.Name == name && be.Transition.To == to
	}
}

func isAgentState(url, state string) func(wire.Event) bool {
	return func(ev wire.Event) bool {
		if ev.Name != wire.EventAgent {
			return false
		}
		var st view.AgentStatus
		return json.Unmarshal(ev.Data, &st) == nil && st.URL == url && st.State == state
	}
}

func TestEndToEndSimulatedAgents(t *testing.T) {
	agents := []*simAgent{newSimAgent(t, "127.0.0.2", "cart-1"), newSimAgent(t, "127.0.0.3", "cart-2"), newSimAgent(t, "127.0.0.4", "cart-3")}
	var urls []string
	for _, a := range agents {
		urls = append(urls, a.URL())
	}
	agg := startAggregator(t, "--agents="+strings.Join(urls, ","))
	streamURL := "http://" + agg.api + "/api/v1/performance/stream"
	c := connect(t, streamURL, "")
	first := c.next(t, 5*time.Second, "snapshot", func(ev wire.Event) bool { return true })
	if first.Name != wire.EventSnapshot {
		t.Fatalf("first event is %q, want snapshot", first.Name)
	}
	testbin.Eventually(t, 10*time.Second, func() error {
		resp, err := http.Get("http://" + agg.api + "/api/v1/agents?state=connected")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var ar struct{ Agents []view.AgentStatus }
		if err := json.NewDecoder(resp.Body).Decode(&ar); err != nil {
			return err
		}
		if len(ar.Agents) != 3 {
			return fmt.Errorf("%d agents connected", len(ar.Agents))
		}
		return nil
	})

	t.Run("breaker transition arrives at once", func(t *testing.T) {
		start := time.Now()
		agents[1].Flip("payments", wire.StateOpen)
		ev := c.next(t, 2*time.Second, "circuit-breaker event", isBreaker("payments", wire.StateOpen))
		var be view.BreakerEvent
		_ = json.Unmarshal(ev.Data, &be)
		if be.Namespace != "shop" || be.Workload != "cart" || be.Tile.Open != 1 || be.Tile.Pods != 1 {
			t.Errorf("event = %+v; want shop/cart, tile open on 1 of 1", be)
		}
		t.Logf("flip -> client: %v", time.Since(start))
	})

	t.Run("killed agent is unavailable with an alert, and comes back without losing transitions", func(t *testing.T) {
		victim := agents[2]
		killed := time.Now()
		victim.Stop()
		c.next(t, 2*time.Second, "agent unavailable event", isAgentState(victim.URL(), view.AgentUnavailable))
		c.next(t, 2*time.Second-time.Since(killed)+time.Second, "agent-unavailable alert", func(ev wire.Event) bool {
			var a wire.Alert
			return ev.Name == wire.EventAlert && json.Unmarshal(ev.Data, &a) == nil && a.Rule == "agent-unavailable" && a.State == wire.AlertFiring
		})
		if took := time.Since(killed); took > 2*time.Second {
			t.Errorf("unavailable event and alert took %v, want within 2 s", took)
		}
		victim.Start()
		victim.Flip("inventory", wire.StateOpen) // before the aggregator reconnects
		c.next(t, 10*time.Second, "agent connected again", isAgentState(victim.URL(), view.AgentConnected))
		victim.Flip("inventory", wire.StateHalfOpen)
		c.next(t, 5*time.Second, "transition made while disconnected", isBreaker("inventory", wire.StateOpen))
		c.next(t, 5*time.Second, "transition made after reconnect", isBreaker("inventory", wire.StateHalfOpen))
	})
}

// A client that disconnects and resumes with Last-Event-ID gets exactly the events it
// missed, in order: the same ids and bytes a client that stayed connected received.
func TestEndToEndResume(t *testing.T) {
	a := newSimAgent(t, "127.0.0.5", "cart-1")
	agg := startAggregator(t, "--agents="+a.URL())
	url := "http://" + agg.api + "/api/v1/performance/stream?events=circuit-breaker"
	steady := connect(t, url, "")
	leaver := connect(t, url, "")
	for _, c := range []*sseClient{steady, leaver} {
		c.next(t, 5*time.Second, "snapshot", func(ev wire.Event) bool { return ev.Name == wire.EventSnapshot })
	}
	testbin.Eventually(t, 10*time.Second, func() error {
		a.Flip("warmup", wire.StateClosed)
		select {
		case <-steady.events:
			return nil
		case <-time.After(200 * time.Millisecond):
			return fmt.Errorf("aggregator not connected to the agent yet")
		}
	})
	a.Flip("b0", wire.StateOpen)
	last := leaver.next(t, 5*time.Second, "b0", isBreaker("b0", wire.StateOpen))
	leaver.Close()
	for i := 1; i <= 20; i++ {
		a.Flip(fmt.Sprintf("b%d", i), wire.StateOpen)
	}
	var want []wire.Event
	for _, ev := range drainUntil(t, steady, "b20") {
		if ev.Name == wire.EventCircuitBreaker {
			want = append(want, ev)
		}
	}
	// want starts after b0 in the steady client's stream.
	for len(want) > 0 && !isBreaker("b1", wire.StateOpen)(want[0]) {
		want = want[1:]
	}
	back := connect(t, url, last.ID)
	got := drainUntil(t, back, "b20")
	if len(got) != len(want) {
		t.Fatalf("resumed client got %d events, want the %d it missed", len(got), len(want))
	}
	for i := range want {
		if got[i].ID != want[i].ID || string(got[i].Data) != string(want[i].Data) {
			t.Fatalf("event %d: got %s, want %s", i, got[i].ID, want[i].ID)
		}
	}
	if len(got) != 20 {
		t.Errorf("missed %d transitions, want 20", len(got))
	}
}

func drainUntil(t *testing.T, c *sseClient, breaker string) []wire.Event {
	t.Helper()
	var out []wire.Event
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-c.events:
			if ev.Name == wire.EventSnapshot {
				t.Fatalf("got a snapshot instead of a replay")
			}
			out = append(out, ev)
			if isBreaker(breaker, wire.StateOpen)(ev) {
				return out
			}
		case <-deadline:
			t.Fatalf("no %s event within 10 s (got %d events)", breaker, len(out))
		}
	}
}

// A client that stops reading is cut off; a client that reads keeps receiving.
func TestEndToEndSlowClientIsCutOff(t *testing.T) {
	a := newSimAgent(t, "127.0.0.6", "cart-1")
	agg := startAggregator(t, "--agents="+a.URL(), "--subscriber-buffer=64")
	url := "http://" + agg.api + "/api/v1/performance/stream?events=circuit-breaker"
	fast := connect(t, url, "")
	fast.next(t, 5*time.Second, "snapshot", func(ev wire.Event) bool { return ev.Name == wire.EventSnapshot })

	slow, err := net.Dial("tcp", agg.api)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	_ = slow.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(slow, "GET /api/v1/performance/stream?events=circuit-breaker HTTP/1.1\r\nHost: %s\r\n\r\n", agg.api)
	testbin.Eventually(t, 5*time.Second, func() error {
		if n := metric(t, agg, "faultline_aggregator_stream_clients"); n != 2 {
			return fmt.Errorf("%v stream clients", n)
		}
		return nil
	})
	// Transitions carry a tile each. The fast client reads every batch before the next
	// is sent; the slow client reads nothing, so its socket buffers fill, then its
	// queue, and it is cut off.
	name := strings.Repeat("x", 185) // with the prefix, the longest name allowed
	for round := 0; ; round++ {
		if round%20 == 0 && metric(t, agg, "faultline_aggregator_stream_clients_dropped_total") > 0 {
			break
		}
		if round == 2000 {
			t.Fatal("slow client was never cut off")
		}
		to := []wire.BreakerState{wire.StateOpen, wire.StateClosed}[round%2]
		for i := 0; i < 20; i++ {
			a.Flip(fmt.Sprintf("flood-%d-%s", i, name), to)
		}
		for i := 0; i < 20; i++ {
			fast.next(t, 5*time.Second, fmt.Sprintf("flood event %d of round %d", i, round), func(wire.Event) bool { return true })
		}
	}
	if n := metric(t, agg, "faultline_aggregator_stream_clients"); n != 1 {
		t.Errorf("%v stream clients after the cut-off, want the fast one only", n)
	}
	a.Flip("after", wire.StateOpen)
	fast.next(t, 5*time.Second, "event after the cut-off", isBreaker("after", wire.StateOpen))
}

// metric reads one of the aggregator's own metrics (without labels).
func metric(t *testing.T, agg *aggregatorProc, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + agg.probe + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var v float64
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == name {
			fmt.Sscan(f[1], &v)
			return v
		}
	}
	t.Fatalf("metric %s not exposed", name)
	return 0
}
