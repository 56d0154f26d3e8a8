package pool

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/faultline-dev/faultline/aggregator/discovery"
	"github.com/faultline-dev/faultline/aggregator/reader"
	"github.com/faultline-dev/faultline/aggregator/view"
	"github.com/faultline-dev/faultline/internal/stream"
	"github.com/faultline-dev/faultline/internal/testbin"
	"github.com/faultline-dev/faultline/internal/wire"
)

// recorder is a Sink that remembers everything.
type recorder struct {
	mu          sync.Mutex
	statuses    []view.AgentStatus
	snaps       []*wire.Snapshot
	transitions []wire.Transition
	removed     []string
}

func (r *recorder) Status(st view.AgentStatus) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.statuses = append(r.statuses, st)
}

func (r *recorder) Snapshot(key string, s *wire.Snapshot, full bool) {
	// s is the pool's only during the call.
	data, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	cp := new(wire.Snapshot)
	if err := json.Unmarshal(data, cp); err != nil {
		panic(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.snaps = append(r.snaps, cp)
}

func (r *recorder) Transition(key string, tr wire.Transition) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.transitions = append(r.transitions, tr)
}

func (r *recorder) Removed(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.removed = append(r.removed, key)
}

func (r *recorder) last() view.AgentStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.statuses) == 0 {
		return view.AgentStatus{}
	}
	return r.statuses[len(r.statuses)-1]
}

func (r *recorder) toStates() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, t := range r.transitions {
		out = append(out, t.Breaker.Name+":"+string(t.To))
	}
	return out
}

// fakeAgent serves /v1/stream from an internal/stream hub, as the real agent does.
type fakeAgent struct {
	mu       sync.Mutex
	hub      *stream.Hub
	breakers map[string]wire.BreakerState
	seq      uint64
	srv      *httptest.Server
}

func newFakeAgent(t *testing.T) *fakeAgent { return startFakeAgent(t, httptest.NewServer) }

func startFakeAgent(t *testing.T, serve func(http.Handler) *httptest.Server) *fakeAgent {
	a := &fakeAgent{hub: stream.New(stream.Options{}), breakers: map[string]wire.BreakerState{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/stream", func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		hub := a.hub
		a.mu.Unlock()
		hub.Serve(w, r, nil, func() ([]byte, error) { return json.Marshal(a.snapshot()) })
	})
	a.srv = serve(mux)
	t.Cleanup(a.srv.Close)
	return a
}

func (a *fakeAgent) snapshot() wire.Snapshot {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.seq++
	s := wire.Snapshot{V: 1, Agent: wire.Agent{V: 1, ID: "agent-1", Pod: "cart-1", Namespace: "shop", Workload: "cart"}, Seq: a.seq,
		Sample: &wire.Sample{V: 1, IntervalMs: 100}, Breakers: []wire.Breaker{}}
	for name, st := range a.breakers {
		s.Breakers = append(s.Breakers, wire.Breaker{V: 1, Name: name, State: st})
	}
	return s
}

func (a *fakeAgent) metrics(t *testing.T) {
	if _, err := a.hub.Publish(wire.EventMetrics, "", "", a.snapshot()); err != nil {
		t.Fatal(err)
	}
}

func (a *fakeAgent) flip(t *testing.T, name string, to wire.BreakerState) {
	a.mu.Lock()
	from := a.breakers[name]
	a.breakers[name] = to
	hub := a.hub
	a.mu.Unlock()
	tr := wire.Transition{V: 1, Agent: "agent-1", From: from, To: to, Time: wire.Now(), Breaker: wire.Breaker{V: 1, Name: name, State: to}}
	if _, err := hub.Publish(wire.EventCircuitBreaker, "", "", tr); err != nil {
		t.Fatal(err)
	}
}

// restart replaces the hub, as a restarted agent has a new epoch and an empty ring.
func (a *fakeAgent) restart() {
	a.mu.Lock()
	old := a.hub
	a.hub = stream.New(stream.Options{})
	a.mu.Unlock()
	old.Close()
}

// setup is how a test's pool and its transport are tuned.
type setup struct {
	pool   Options
	reader reader.Options
}

func startPool(t *testing.T, sink Sink, s setup, targets ...discovery.Target) *Pool {
	t.Helper()
	opts := s.pool
	if opts.BackoffBase == 0 {
		opts.BackoffBase = 20 * time.Millisecond
	}
	if opts.BackoffMax == 0 {
		opts.BackoffMax = 100 * time.Millisecond
	}
	rd, err := reader.New(s.reader)
	if err != nil {
		t.Fatal(err)
	}
	p := New(sink, rd, opts)
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan []discovery.Target, 1)
	ch <- targets
	done := make(chan struct{})
	go func() { p.Run(ctx, ch); rd.Close(); close(done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("pool did not stop")
		}
	})
	return p
}

// withStallFloor is a setup where an agent may stay silent for d at least, checked every
// d/4.
func withStallFloor(s setup, d time.Duration) setup {
	s.pool.StallFloor = d
	s.reader.Sweep = d / 4
	return s
}

func target(url string) discovery.Target { return discovery.Target{Key: url, URL: url} }

func waitState(t *testing.T, r *recorder, state, reasonPart string) view.AgentStatus {
	t.Helper()
	var st view.AgentStatus
	testbin.Eventually(t, 5*time.Second, func() error {
		st = r.last()
		if st.State != state || !strings.Contains(st.Reason, reasonPart) {
			return fmt.Errorf("agent is %s (%s), want %s (%s)", st.State, st.Reason, state, reasonPart)
		}
		return nil
	})
	return st
}

// waitTransitions waits until the sink has heard exactly want ("breaker:state"), in order.
func waitTransitions(t *testing.T, r *recorder, timeout time.Duration, want ...string) {
	t.Helper()
	testbin.Eventually(t, timeout, func() error {
		if got := r.toStates(); !cmp.Equal(got, want) {
			return fmt.Errorf("transitions (-want +got):\n%s", cmp.Diff(want, got))
		}
		return nil
	})
}

func TestConnectsAndForwardsTransitionsAtOnce(t *testing.T) {
	mode := setup{}
	a := newFakeAgent(t)
	r := &recorder{}
	startPool(t, r, mode, target(a.srv.URL))
	st := waitState(t, r, view.AgentConnected, "")
	if st.Pod != "cart-1" || st.Namespace != "shop" || st.Workload != "cart" {
		t.Errorf("identity not taken from the agent: %+v", st)
	}
	a.flip(t, "db", wire.StateOpen)
	waitTransitions(t, r, 2*time.Second, "db:open")
}

// The stream breaks again and again while breakers change: every transition arrives
// once, in order, through Last-Event-ID resume.
func TestResumeLosesNoTransition(t *testing.T) {
	mode := setup{}
	a := newFakeAgent(t)
	r := &recorder{}
	startPool(t, r, mode, target(a.srv.URL))
	waitState(t, r, view.AgentConnected, "")
	var want []string
	for i := 0; i < 30; i++ {
		to := wire.StateOpen
		if i%2 == 1 {
			to = wire.StateClosed
		}
		name := fmt.Sprintf("b%d", i%3)
		a.flip(t, name, to)
		want = append(want, name+":"+string(to))
		if i%5 == 2 {
			a.srv.CloseClientConnections()
		}
		a.metrics(t)
	}
	waitTransitions(t, r, 5*time.Second, want...)
}

// After an agent restart the ring is gone; the fresh snapshot's differences become
// transitions, so a breaker that opened in the gap is still reported.
func TestRestartedAgentResyncs(t *testing.T) {
	mode := setup{}
	a := newFakeAgent(t)
	r := &recorder{}
	startPool(t, r, mode, target(a.srv.URL))
	waitState(t, r, view.AgentConnected, "")
	a.flip(t, "db", wire.StateClosed)
	testbin.Eventually(t, 2*time.Second, func() error {
		if len(r.toStates()) != 1 {
			return fmt.Errorf("first transition not seen")
		}
		return nil
	})
	a.restart()
	a.mu.Lock()
	a.breakers["db"] = wire.StateOpen // changed while no stream was open
	a.mu.Unlock()
	waitTransitions(t, r, 5*time.Second, "db:closed", "db:open")
}

// A target dropped by discovery and back later (a pod not ready while its agent
// container restarted) is compared with what was known before it went: a breaker that
// changed in the gap is reported as a transition, one that did not is not.
func TestTargetBackAfterDropResyncs(t *testing.T) {
	a := newFakeAgent(t)
	r := &recorder{}
	p := startPool(t, r, setup{}, target(a.srv.URL))
	waitState(t, r, view.AgentConnected, "")
	a.flip(t, "db", wire.StateClosed)
	a.flip(t, "cache", wire.StateClosed)
	waitTransitions(t, r, 2*time.Second, "db:closed", "cache:closed")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p.Update(ctx, nil)
	a.restart()
	a.mu.Lock()
	a.breakers["db"] = wire.StateOpen // changed while the target was dropped
	a.mu.Unlock()
	p.Update(ctx, []discovery.Target{target(a.srv.URL)})
	waitTransitions(t, r, 5*time.Second, "db:closed", "cache:closed", "db:open")
}

// gone keeps the states of the latest maxGone dropped targets.
func TestGoneIsBounded(t *testing.T) {
	var g gone
	for i := range 3 * maxGone {
		g.put(fmt.Sprint(i%(maxGone+10)), map[string]wire.BreakerState{"b": wire.StateOpen})
		if i%7 == 0 {
			g.take(fmt.Sprint(i % 13))
		}
	}
	if len(g.kept) > maxGone || len(g.order) > 2*maxGone+1 {
		t.Fatalf("kept %d, order %d: want at most %d", len(g.kept), len(g.order), maxGone)
	}
	last := fmt.Sprint((3*maxGone - 1) % (maxGone + 10))
	if _, ok := g.take(last); !ok {
		t.Errorf("the latest dropped target %s was forgotten", last)
	}
	if _, ok := g.take(last); ok {
		t.Errorf("states of %s taken twice", last)
	}
}

func TestStalledAgentIsUnavailableAndReconnected(t *testing.T) {
	mode := setup{}
	var conns sync.WaitGroup
	var mu sync.Mutex
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		snap, _ := json.Marshal(wire.Snapshot{V: 1, Agent: wire.Agent{V: 1, ID: "x"}, Sample: &wire.Sample{V: 1, IntervalMs: 100}})
		_, _ = w.Write(wire.Frame("e-1", wire.EventSnapshot, snap))
		w.(http.Flusher).Flush()
		conns.Add(1)
		defer conns.Done()
		<-r.Context().Done() // then silence: no events, no heartbeat
	}))
	defer srv.Close()
	r := &recorder{}
	start := time.Now()
	startPool(t, r, withStallFloor(mode, 50*time.Millisecond), target(srv.URL))
	waitState(t, r, view.AgentUnavailable, "stalled")
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("stall noticed after %v; the agent's interval is 100 ms", took)
	}
	testbin.Eventually(t, 5*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if n < 2 {
			return fmt.Errorf("not reconnected")
		}
		return nil
	})
}

// Bytes that make no event do not keep a stream alive: an agent trickling lines that are
// no Server-Sent Events is stalled as a silent one is.
func TestTrickleOfNonEventsStalls(t *testing.T) {
	mode := setup{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		snap, _ := json.Marshal(wire.Snapshot{V: 1, Agent: wire.Agent{V: 1, ID: "x"}, Sample: &wire.Sample{V: 1, IntervalMs: 100}})
		_, _ = w.Write(wire.Frame("e-1", wire.EventSnapshot, snap))
		for {
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(20 * time.Millisecond):
				_, _ = w.Write([]byte("x\n")) // never a whole event
			}
		}
	}))
	defer srv.Close()
	r := &recorder{}
	p := startPool(t, r, withStallFloor(mode, 50*time.Millisecond), target(srv.URL))
	start := time.Now()
	waitState(t, r, view.AgentUnavailable, "stalled")
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("stall noticed after %v; the agent's interval is 100 ms", took)
	}
	if p.Dropped()[DropStalled] == 0 {
		t.Errorf("dropped streams %v do not count the stall", p.Dropped())
	}
}

// A misbehaving agent is shown unavailable with the reason, and the pool keeps going.
func TestMisbehavingAgents(t *testing.T) {
	bigData := strings.Repeat("x", wire.MaxEventBytes+10)
	tests := []struct {
		name   string
		handle func(w http.ResponseWriter)
		reason string
	}{
		{"garbage", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = w.Write([]byte("event: metrics\ndata: {not json\n\n"))
		}, "misbehaving agent: invalid event: metrics event"},
		{"huge event", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = w.Write([]byte("event: metrics\ndata: " + bigData + "\n\n"))
		}, "event exceeds the size limit"},
		{"wrong version", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = w.Write([]byte("event: snapshot\ndata: {\"v\":2,\"agent\":{\"v\":2,\"id\":\"x\"}}\n\n"))
		}, "wire version 2"},
		{"bad transition", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = w.Write([]byte("event: circuit-breaker\ndata: {\"v\":1,\"to\":\"sideways\",\"breaker\":{\"v\":1,\"name\":\"db\"}}\n\n"))
		}, `to: "sideways"`},
		{"random bytes", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/event-stream")
			rng := rand.New(rand.NewPCG(1, 2))
			junk := make([]byte, 64<<10)
			for i := range junk {
				junk[i] = byte(rng.Uint32())
			}
			_, _ = w.Write(junk)
		}, "misbehaving agent: not an event stream"},
		{"lines that are no field", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = w.Write([]byte(strings.Repeat("hello world\n\n", 1000)))
		}, "bytes that are not Server-Sent Events"},
		{"long name", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = w.Write([]byte(`event: snapshot` + "\n" + `data: {"v":1,"agent":{"v":1,"id":"x"},"breakers":[{"v":1,"name":"` + strings.Repeat("n", 100000) + `","state":"open"}]}` + "\n\n"))
		}, "breakers[0].name: must be 1 to 200 bytes"},
		{"NUL in a workload", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = w.Write([]byte(`event: snapshot` + "\n" + `data: {"v":1,"agent":{"v":1,"id":"x","workload":"a\u0000b"}}` + "\n\n"))
		}, "agent.workload"},
		{"rate that would overflow", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = w.Write([]byte(`event: metrics` + "\n" + `data: {"v":1,"agent":{"v":1,"id":"x"},"breakers":[{"v":1,"name":"db","state":"open","failure_rate":100,"rate_per_sec":1.7e308}]}` + "\n\n"))
		}, "breakers[0].rate_per_sec: 1.7e+308 is above the limit"},
		{"not found", func(w http.ResponseWriter) { http.NotFound(w, nil) }, "HTTP 404"},
		{"not a stream", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte("<html>"))
		}, "not an event stream"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { misbehave(t, setup{}, tt.handle, tt.reason) })
	}
}

// misbehave serves one misbehaving stream and waits for the agent to be shown
// unavailable with the reason.
func misbehave(t *testing.T, mode setup, handle func(w http.ResponseWriter), reason string) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handle(w)
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer srv.Close()
	r := &recorder{}
	startPool(t, r, mode, target(srv.URL))
	waitState(t, r, view.AgentUnavailable, reason)
}

// https streams are decrypted on a goroutine each and read by the event loops as any
// stream is: resumed, stalls noticed, transitions in order.
func TestHTTPSAgent(t *testing.T) {
	a := startFakeAgent(t, httptest.NewTLSServer)
	r := &recorder{}
	startPool(t, r, setup{reader: reader.Options{TLS: a.srv.Client().Transport.(*http.Transport).TLSClientConfig}}, target(a.srv.URL))
	waitState(t, r, view.AgentConnected, "")
	a.flip(t, "db", wire.StateOpen)
	waitTransitions(t, r, 2*time.Second, "db:open")
	a.srv.CloseClientConnections()
	a.flip(t, "db", wire.StateClosed)
	waitTransitions(t, r, 5*time.Second, "db:open", "db:closed")
}

// Once discovery drops an agent, the sink hears nothing more about it, even while the
// agent keeps sending: a late event would bring a removed agent back.
func TestNothingAfterRemoval(t *testing.T) {
	mode := setup{}
	a := newFakeAgent(t)
	r := &recorder{}
	p := startPool(t, r, mode, target(a.srv.URL))
	waitState(t, r, view.AgentConnected, "")
	stop := make(chan struct{})
	var sent atomic.Int64
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			a.metrics(t)
			sent.Add(1)
			time.Sleep(100 * time.Microsecond)
		}
	}()
	defer close(stop)
	testbin.Eventually(t, 5*time.Second, func() error {
		r.mu.Lock()
		defer r.mu.Unlock()
		if len(r.snaps) < 20 {
			return fmt.Errorf("%d events received", len(r.snaps))
		}
		return nil
	})
	p.Update(context.Background(), nil)
	r.mu.Lock()
	snaps, statuses := len(r.snaps), len(r.statuses)
	r.mu.Unlock()
	after := sent.Load()
	testbin.Eventually(t, 5*time.Second, func() error {
		if n := sent.Load() - after; n < 200 {
			return fmt.Errorf("agent sent %d more events", n)
		}
		return nil
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.snaps) != snaps || len(r.statuses) != statuses {
		t.Errorf("after removal: %d snapshots and %d states more", len(r.snaps)-snaps, len(r.statuses)-statuses)
	}
}

func TestUnreachableAgentAndRemoval(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close()
	r := &recorder{}
	p := startPool(t, r, setup{}, target(url), discovery.Target{Key: "uid-1", Pod: "web-1", Missing: "no container port named faultline"})
	waitState(t, r, view.AgentUnavailable, "connection refused")
	sts := p.Statuses()
	if len(sts) != 2 || sts[1].State != view.AgentMissing || sts[1].Reason != "no container port named faultline" {
		t.Errorf("statuses = %+v; want the missing pod reported", sts)
	}
	p.Update(context.Background(), nil)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.removed) != 2 {
		t.Errorf("removed = %v; want both targets", r.removed)
	}
}

// A pod whose agent port has never answered counts as missing an agent, not as an
// unavailable agent; one that answered once and then stopped is unavailable.
func TestMissingIfSilent(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close()
	r := &recorder{}
	startPool(t, r, setup{}, discovery.Target{Key: "uid-1", URL: url, MissingIfSilent: "nothing answering at the default agent port"})
	waitState(t, r, view.AgentMissing, "nothing answering at the default agent port: connection refused")

	a := newFakeAgent(t)
	r2 := &recorder{}
	startPool(t, r2, setup{}, discovery.Target{Key: "uid-2", URL: a.srv.URL, MissingIfSilent: "never answered"})
	waitState(t, r2, view.AgentConnected, "")
	a.srv.CloseClientConnections()
	a.srv.Close()
	waitState(t, r2, view.AgentUnavailable, "")
}

// TestProfileAndThresholds: the AgentProfile and alert thresholds discovery read from a
// pod reach the agent's status, for the agents table and the alert rules.
func TestProfileAndThresholds(t *testing.T) {
	r := &recorder{}
	startPool(t, r, setup{}, discovery.Target{Key: "uid-1", Missing: "agent not injected: bad annotation", Pod: "web-1", Namespace: "shop",
		Profile: "web", AlertThresholds: "cpu-high=80,error-rate-high=2.5"})
	st := waitState(t, r, view.AgentMissing, "agent not injected: bad annotation")
	if diff := cmp.Diff(map[string]float64{"cpu-high": 80, "error-rate-high": 2.5}, st.AlertThresholds); st.Profile != "web" || diff != "" {
		t.Errorf("profile %q, thresholds (-want +got):\n%s", st.Profile, diff)
	}
}
