package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/faultline-dev/faultline/internal/stream"
	"github.com/faultline-dev/faultline/internal/wire"
)

// Fleet layout: 20 pods per workload, workloads spread over 20 namespaces, 10 breakers
// per agent named alike within a workload.
const (
	podsPerWorkload = 20
	namespaces      = 20
	breakersPerPod  = 10
)

// sentinels mark where the per-tick values go in an agent's encoded snapshot, in the
// order they appear in it.
const (
	seqMark  = 987654321987
	coreMark = 0.123456789
	memMark  = 987654321
	rpsMark  = 0.234567891
	epsMark  = 0.345678912
)

var timeMark = time.Date(2001, 2, 3, 4, 5, 6, 7e6, time.UTC)

// simAgent is one simulated agent: a hub serving /v1/stream and the state it reports.
type simAgent struct {
	hub *stream.Hub

	mu       sync.Mutex
	snap     wire.Snapshot
	parts    [][]byte // the encoded snapshot split at the sentinels
	seq      uint64
	rng      *rand.Rand
	baseCPU  float64
	mem      float64 // working set: a random walk, as a real pod's
	lastData []byte
	ageProbe bool // reports ageMarker as its working set
	prom     promState
}

func newSimAgent(i int) *simAgent {
	w := i / podsPerWorkload
	ns := fmt.Sprintf("ns-%02d", w%namespaces)
	wl := fmt.Sprintf("svc-%03d", w)
	pod := fmt.Sprintf("%s-%05d", wl, i)
	now := wire.Now()
	a := &simAgent{hub: stream.New(stream.Options{RingEvents: 64, SubscriberBuffer: 64}), rng: rand.New(rand.NewPCG(uint64(i), 7)), baseCPU: 0.1 + float64(i%7)/20, mem: 180 << 20}
	limit := uint64(512 << 20)
	a.snap = wire.Snapshot{V: 1,
		Agent: wire.Agent{V: 1, ID: pod, Pod: pod, Namespace: ns, UID: fmt.Sprintf("uid-%08d", i), Node: fmt.Sprintf("node-%03d", i%200),
			IP: agentAddr(i, 0), Workload: wl, Version: "fleet-sim", Mode: "pod", Started: now},
		Sample: &wire.Sample{V: 1, IntervalMs: 1000,
			CPU: &wire.CPU{Cores: coreMark, LimitCores: wire.Ptr(1.0), PercentOfLimit: wire.Ptr(23.4),
				Throttling: &wire.Throttling{Periods: 10, ThrottledPeriods: 0, ThrottledMs: 0, Percent: 0}},
			Memory:     &wire.Memory{WorkingSetBytes: 180 << 20, RSSBytes: wire.Ptr(uint64(170 << 20)), LimitBytes: &limit, PercentOfLimit: wire.Ptr(35.2)},
			Network:    &wire.Network{RxBytesPerSec: 120345, TxBytesPerSec: 98321},
			Process:    &wire.Process{Processes: 2, Threads: 31, OpenFDs: 48},
			Throughput: &wire.Throughput{RequestsPerSec: 154.2, ErrorsPerSec: 1.3, Latency: &wire.Latency{P50Ms: 12.1, P90Ms: 40.3, P99Ms: 120.7}, Source: "app"},
			Self:       &wire.Self{CPUCores: 0.004, RSSBytes: 14 << 20},
			Collectors: []wire.Collector{
				{Name: "processes", OK: true, DurationMs: 0.8, Status: "ok"}, {Name: "network", OK: true, DurationMs: 0.2, Status: "ok"},
				{Name: "self", OK: true, DurationMs: 0.1, Status: "ok"}, {Name: "push", OK: true, DurationMs: 0, Status: "10 breakers"},
			}},
	}
	for b := 0; b < breakersPerPod; b++ {
		a.snap.Breakers = append(a.snap.Breakers, wire.Breaker{V: 1, Name: fmt.Sprintf("dependency-%d", b), State: wire.StateClosed,
			FailureRate: wire.Ptr(2.5), SlowCallRate: wire.Ptr(0.4), Calls: wire.Calls{Succeeded: 120394, Failed: 3021, Rejected: 0, TimedOut: 12},
			RatePerSec: wire.Ptr(15.3), Latency: &wire.Latency{P50Ms: 8, P90Ms: 20, P99Ms: 65}, Since: now, Source: "push",
			Thresholds: &wire.Thresholds{FailureRate: wire.Ptr(50.0), SlowCallRate: wire.Ptr(80.0), SlowCallMs: wire.Ptr(500.0), MinimumCalls: wire.Ptr(uint64(20)), OpenMs: wire.Ptr(30000.0)},
			LastSeen:   now})
	}
	a.encode()
	return a
}

// encode splits the JSON of the current snapshot at the sentinels; called with a.mu
// held (or before the agent is shared) whenever a breaker changes.
func (a *simAgent) encode() {
	s := a.snap
	s.Seq = seqMark
	smp := *s.Sample
	smp.Time = wire.NewTime(timeMark)
	cpu := *smp.CPU
	cpu.Cores = coreMark
	smp.CPU = &cpu
	mem := *smp.Memory
	mem.WorkingSetBytes = memMark
	smp.Memory = &mem
	tp := *smp.Throughput
	tp.RequestsPerSec, tp.ErrorsPerSec = rpsMark, epsMark
	smp.Throughput = &tp
	s.Sample = &smp
	data, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	var parts [][]byte
	g := func(f float64) []byte { return []byte(strconv.FormatFloat(f, 'g', -1, 64)) }
	for _, mark := range [][]byte{[]byte(strconv.FormatUint(seqMark, 10)), []byte(`"` + timeMark.Format(wire.TimeFormat) + `"`), g(coreMark),
		[]byte(strconv.FormatUint(memMark, 10)), g(rpsMark), g(epsMark)} {
		before, after, ok := bytes.Cut(data, mark)
		if !ok {
			panic("sentinel not found in " + string(mark))
		}
		parts = append(parts, before)
		data = after
	}
	a.parts = append(parts, data)
}

// tick publishes a metrics event with a new seq, time and readings that change every
// second as a real pod's do (CPU, a memory random walk, request and error rates), so
// that the aggregator's history holds realistic points.
func (a *simAgent) tick(now time.Time) {
	a.mu.Lock()
	a.seq++
	a.mem = min(max(a.mem+a.rng.NormFloat64()*50e3, 100<<20), 400<<20)
	mem := uint64(a.mem)
	if a.ageProbe {
		mem = ageMarker(now)
	}
	n := 64
	for _, p := range a.parts {
		n += len(p)
	}
	b := make([]byte, 0, n)
	b = append(b, a.parts[0]...)
	b = strconv.AppendUint(b, a.seq, 10)
	b = append(b, a.parts[1]...)
	b = append(append(append(b, '"'), now.UTC().Format(wire.TimeFormat)...), '"')
	// fixed appends v as the event carries it and returns the value that text stands for.
	fixed := func(v float64, prec int) float64 {
		start := len(b)
		b = strconv.AppendFloat(b, v, 'f', prec, 64)
		f, _ := strconv.ParseFloat(string(b[start:]), 64)
		return f
	}
	b = append(b, a.parts[2]...)
	cpu := fixed(a.baseCPU+a.rng.Float64()*0.05, 4)
	b = append(b, a.parts[3]...)
	b = strconv.AppendUint(b, mem, 10)
	b = append(b, a.parts[4]...)
	rps := fixed(150+a.rng.NormFloat64()*5, 2)
	b = append(b, a.parts[5]...)
	eps := fixed(max(0, 1.3+a.rng.NormFloat64()*0.3), 2)
	b = append(b, a.parts[6]...)
	a.lastData = b
	a.prom.sampled(a.seq, cpu, mem, rps, eps)
	a.mu.Unlock()
	a.hub.PublishData(wire.EventMetrics, "", "", b)
}

// flip moves one breaker to its next state and publishes the transition at once.
func (a *simAgent) flip() {
	a.mu.Lock()
	i := a.rng.IntN(len(a.snap.Breakers))
	br := &a.snap.Breakers[i]
	from := br.State
	switch from {
	case wire.StateClosed:
		br.State = wire.StateOpen
	case wire.StateOpen:
		br.State = wire.StateHalfOpen
	default:
		br.State = wire.StateClosed
	}
	now := wire.Now()
	br.Since, br.LastSeen = now, now
	tr := wire.Transition{V: 1, Agent: a.snap.Agent.ID, From: from, To: br.State, Time: now, Breaker: *br}
	a.encode()
	a.prom.transitioned(br.State)
	a.mu.Unlock()
	_, _ = a.hub.Publish(wire.EventCircuitBreaker, "", "", tr)
}

func (a *simAgent) snapshotData() ([]byte, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.lastData == nil {
		s := a.snap
		s.Sample = nil
		return json.Marshal(s)
	}
	return a.lastData, nil
}

// simulate serves agents [first, first+count) until stdin closes.
func simulate(o options) error {
	agents := make([]*simAgent, o.count)
	for k := range agents {
		i := o.first + k
		a := newSimAgent(i)
		a.ageProbe = o.ageProbe && isAgeProbe(i)
		agents[k] = a
		ln, err := net.Listen("tcp", agentAddr(i, o.port))
		if err != nil {
			return fmt.Errorf("agent %d: %w", i, err)
		}
		srv := &http.Server{Handler: agentMux(a), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
		go func() { _ = srv.Serve(ln) }()
	}
	// Agents tick once a second, spread evenly over the second as real agents started
	// at different times are: agent i in slot 61·i mod slots. That is the same number
	// of agents in every slot as i mod slots, but the pods of a workload (and so the
	// age probes, whole workloads) are spread over the second too, not bunched in its
	// first fifth.
	const slots = 100
	bySlot := make([][]*simAgent, slots)
	for k, a := range agents {
		s := 61 * (o.first + k) % slots
		bySlot[s] = append(bySlot[s], a)
	}
	fmt.Println("ready")
	done := make(chan struct{})
	go func() { // the orchestrator closes our stdin to stop us
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
		close(done)
	}()
	slot := time.NewTicker(time.Second / slots)
	defer slot.Stop()
	var flipEvery time.Duration
	if o.flips > 0 {
		flipEvery = time.Duration(float64(time.Second) / o.flips)
	}
	nextFlip := time.Now().Add(flipEvery)
	rng := rand.New(rand.NewPCG(uint64(o.first), 11))
	// A ticker drops the ticks of a process that cannot keep up: the slots due since
	// the last tick are ticked together, so that every agent still samples once a second.
	begin, next := time.Now(), 0
	for {
		select {
		case <-done:
			return nil
		case <-slot.C:
			now := time.Now() // the sample's time: the ticker's is when the tick was due
			for due := int(now.Sub(begin) / (time.Second / slots)); next <= due; next++ {
				for _, a := range bySlot[next%slots] {
					a.tick(now)
				}
			}
			for flipEvery > 0 && !now.Before(nextFlip) {
				agents[rng.IntN(len(agents))].flip()
				nextFlip = nextFlip.Add(flipEvery)
			}
		}
	}
}
