package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/faultline-dev/faultline/internal/stream"
	"github.com/faultline-dev/faultline/internal/wire"
)

// fleet serves many simulated agents from one HTTP server, for the dashboard benchmark: a
// thousand real agent processes would not fit on the build machine. Each simulated agent
// speaks the agent's stream protocol over real HTTP (agent i answers at /a/<i>/v1/stream:
// a snapshot on connect, a metrics event every interval, a circuit-breaker event the
// moment a breaker changes state), through the same stream.Hub the real agent uses, so
// the aggregator under test cannot tell it from a fleet of agents.
//
// The numbers are synthetic (a seeded random walk): the benchmark measures the browser's
// cost of drawing a fleet of this size, not the behaviour of any service.
type fleet struct {
	URLs   []string
	agents []*simAgent
	srv    *http.Server
	opts   fleetOptions
	stop   chan struct{}
	done   chan struct{}
}

type fleetOptions struct {
	Namespaces          int
	Workloads           int // spread over the namespaces
	PodsPerWorkload     int
	BreakersPerWorkload int // every pod of a workload has the same breakers: one tile each
	Interval            time.Duration
	Seed                uint64
}

// Pods is the number of simulated agents; Tiles the number of breaker tiles the
// aggregator will show.
func (o fleetOptions) Pods() int  { return o.Workloads * o.PodsPerWorkload }
func (o fleetOptions) Tiles() int { return o.Workloads * o.BreakersPerWorkload }

type simAgent struct {
	hub *stream.Hub
	mu  sync.Mutex
	rng *rand.Rand
	// openUntil is when each open breaker closes again (half-open first).
	openUntil map[string]time.Time
	snap      wire.Snapshot
}

// startFleet starts the fleet's server on a loopback address and its ticker.
func startFleet(t testing.TB, o fleetOptions) *fleet {
	t.Helper()
	f := &fleet{opts: o, stop: make(chan struct{}), done: make(chan struct{})}
	now := time.Now()
	started := wire.NewTime(now.Add(-time.Hour))
	for w := 0; w < o.Workloads; w++ {
		ns := fmt.Sprintf("ns-%02d", w%o.Namespaces)
		wl := fmt.Sprintf("svc-%03d", w)
		for p := 0; p < o.PodsPerWorkload; p++ {
			i := len(f.agents)
			pod := fmt.Sprintf("%s-%x-%d", wl, 0x7a00+w, p)
			a := &simAgent{
				hub:       stream.New(stream.Options{RingEvents: 16, RingBytes: 1 << 20, SubscriberBuffer: 32}),
				rng:       rand.New(rand.NewPCG(o.Seed, uint64(i))),
				openUntil: map[string]time.Time{},
			}
			a.snap = wire.Snapshot{
				V: wire.Version,
				Agent: wire.Agent{V: wire.Version, ID: pod, Pod: pod, Namespace: ns, Workload: wl,
					Node: fmt.Sprintf("node-%02d", i%40), Version: "sim", Mode: "pod", Started: started},
			}
			for b := 0; b < o.BreakersPerWorkload; b++ {
				a.snap.Breakers = append(a.snap.Breakers, wire.Breaker{
					V: wire.Version, Name: fmt.Sprintf("dep-%02d", b), State: wire.StateClosed,
					Since: started, Source: "push", LastSeen: wire.NewTime(now),
				})
			}
			a.tick(now, o.Interval)
			f.agents = append(f.agents, a)
		}
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /a/{i}/v1/stream", func(w http.ResponseWriter, r *http.Request) {
		i, err := strconv.Atoi(r.PathValue("i"))
		if err != nil || i < 0 || i >= len(f.agents) {
			http.NotFound(w, r)
			return
		}
		a := f.agents[i]
		a.hub.Serve(w, r, nil, func() ([]byte, error) {
			a.mu.Lock()
			defer a.mu.Unlock()
			return json.Marshal(a.snap)
		})
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	go f.srv.Serve(l)
	for i := range f.agents {
		f.URLs = append(f.URLs, "http://"+l.Addr().String()+"/a/"+strconv.Itoa(i))
	}
	go f.run()
	t.Cleanup(f.close)
	return f
}

func (f *fleet) close() {
	select {
	case <-f.stop:
		return
	default:
	}
	close(f.stop)
	<-f.done
	for _, a := range f.agents {
		a.hub.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = f.srv.Shutdown(ctx)
}

// run publishes every agent's metrics event each interval.
func (f *fleet) run() {
	defer close(f.done)
	tk := time.NewTicker(f.opts.Interval)
	defer tk.Stop()
	for {
		select {
		case <-f.stop:
			return
		case now := <-tk.C:
			for _, a := range f.agents {
				a.tick(now, f.opts.Interval)
			}
		}
	}
}

// tick advances the agent's random walk by one interval, publishes a circuit-breaker
// event for each breaker that changed state and then the metrics event.
func (a *simAgent) tick(now time.Time, interval time.Duration) {
	a.mu.Lock()
	wnow := wire.NewTime(now)
	var transitions []wire.Transition
	var rps, eps float64
	for i := range a.snap.Breakers {
		b := &a.snap.Breakers[i]
		base := 5 + float64(i%7)*12
		rate := math.Max(0, base*(0.8+0.4*a.rng.Float64()))
		fail := math.Max(0, a.rng.NormFloat64()*1.5+2)
		next := b.State
		switch b.State {
		case wire.StateClosed:
			// About one breaker in 5,000 opens per interval: a few transitions a second
			// across a large fleet.
			if a.rng.Float64() < 0.0002 {
				next = wire.StateOpen
				a.openUntil[b.Name] = now.Add(time.Duration(10+a.rng.IntN(40)) * time.Second)
			}
		case wire.StateOpen:
			if now.After(a.openUntil[b.Name]) {
				next = wire.StateHalfOpen
			}
		case wire.StateHalfOpen:
			next = wire.StateClosed
		}
		if next == wire.StateOpen || next == wire.StateHalfOpen {
			fail = 50 + 40*a.rng.Float64()
		}
		failed := uint64(rate * fail / 100 * interval.Seconds())
		b.Calls.Succeeded += uint64(rate*interval.Seconds()) - failed
		b.Calls.Failed += failed
		if next == wire.StateOpen {
			b.Calls.Rejected += uint64(rate * interval.Seconds())
		}
		b.RatePerSec = wire.Ptr(math.Round(rate*10) / 10)
		b.FailureRate = wire.Ptr(math.Round(fail*100) / 100)
		b.LastSeen = wnow
		rps += rate
		eps += rate * fail / 100
		if next != b.State {
			from := b.State
			b.State, b.Since = next, wnow
			transitions = append(transitions, wire.Transition{V: wire.Version, Agent: a.snap.Agent.ID, From: from, To: next, Time: wnow, Breaker: *b})
		}
	}
	cores := 0.05 + 0.4*a.rng.Float64()
	limit := 1.0
	mem := uint64(180<<20 + a.rng.IntN(60<<20))
	memLimit := uint64(512 << 20)
	a.snap.Seq++
	a.snap.Sample = &wire.Sample{
		V: wire.Version, Time: wnow, IntervalMs: wire.Ms(interval),
		CPU:        &wire.CPU{Cores: cores, LimitCores: &limit, PercentOfLimit: wire.Ptr(cores / limit * 100)},
		Memory:     &wire.Memory{WorkingSetBytes: mem, LimitBytes: &memLimit, PercentOfLimit: wire.Ptr(float64(mem) / float64(memLimit) * 100)},
		Network:    &wire.Network{RxBytesPerSec: rps * 900, TxBytesPerSec: rps * 1400},
		Throughput: &wire.Throughput{RequestsPerSec: rps, ErrorsPerSec: eps, Source: "breakers"},
		Collectors: []wire.Collector{{Name: "sim", OK: true, Status: "ok"}},
	}
	data, err := json.Marshal(a.snap)
	a.mu.Unlock()
	for _, tr := range transitions {
		_, _ = a.hub.Publish(wire.EventCircuitBreaker, "", "", tr)
	}
	if err == nil {
		a.hub.PublishData(wire.EventMetrics, "", "", data)
	}
}

// agentsFile writes the fleet's URLs as an aggregator config file (the agents key).
func (f *fleet) agentsYAML() string {
	var b strings.Builder
	b.WriteString("agents:\n")
	for _, u := range f.URLs {
		b.WriteString("  - " + u + "\n")
	}
	return b.String()
}
