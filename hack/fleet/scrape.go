package main

import (
	"bytes"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/common/expfmt"

	"github.com/faultline-dev/faultline/agent/exposition"
	"github.com/faultline-dev/faultline/config"
	"github.com/faultline-dev/faultline/internal/wire"
)

// A simulated agent serves GET /metrics as a real agent does: its state (identity, the
// latest sample, its breakers, its counters) through the agent's own exposition code
// (agent/exposition), in the format the scraper asks for. So that 10,000 agents scraped
// every second cost the simulators little, the text format is encoded once per change of
// shape (a breaker flip, a new counter) with sentinel values, split at them, and each
// scrape splices in the figures of the moment; TestSimMetricsMatchAgent holds the result
// to the exposition's own encoding of the same state.

// Figures that change from scrape to scrape without changing the exposition's shape.
const (
	figSamples = iota
	figCPU
	figMemory
	figRequests
	figErrors
	figScrapes // requests answered on /metrics
	figSubscribers
	figDropped
	figures
)

// ageModulus bounds the age probe's marker: milliseconds modulo 10^8 (27.7 hours), at
// most 95 MiB as a working set.
const ageModulus = 100_000_000

// ageMarker is what an age-probe agent reports as its working set: the time of its
// sample in milliseconds modulo ageModulus, so that a consumer reading the figure (or a
// sum of such figures) can tell how old the sample it sees is.
func ageMarker(t time.Time) uint64 { return uint64(t.UnixMilli() % ageModulus) }

// markerAge is the age at now of the samples whose markers average mean.
func markerAge(now time.Time, mean float64) time.Duration {
	ms := float64(now.UnixMilli()%ageModulus) - mean
	if ms < -ageModulus/2 {
		ms += ageModulus
	}
	return time.Duration(ms * float64(time.Millisecond))
}

// promState is a simulated agent's side of its exposition; guarded by the agent's mu.
type promState struct {
	fig         [figures]float64
	ticked      bool // a sample was taken
	transitions map[wire.BreakerState]uint64
	requests    map[exposition.Request]uint64
	tmpl        *textTemplate // nil when the shape changed
}

// sampled records the figures of a tick.
func (p *promState) sampled(seq uint64, cpu float64, mem uint64, rps, eps float64) {
	if !p.ticked {
		p.ticked, p.tmpl = true, nil
	}
	p.fig[figSamples], p.fig[figCPU], p.fig[figMemory], p.fig[figRequests], p.fig[figErrors] = float64(seq), cpu, float64(mem), rps, eps
}

// transitioned counts a breaker's transition into state to.
func (p *promState) transitioned(to wire.BreakerState) {
	if p.transitions == nil {
		p.transitions = map[wire.BreakerState]uint64{}
	}
	p.transitions[to]++
	p.tmpl = nil
}

// answered counts a request answered with 200 on route, as the agent's instrumentation
// does (after the handler returned: a stream counts when it ends).
func (p *promState) answered(route string) {
	if p.requests == nil {
		p.requests = map[exposition.Request]uint64{}
	}
	k := exposition.Request{Listener: "main", Route: route, Code: http.StatusOK}
	if p.requests[k] == 0 {
		p.tmpl = nil
	}
	p.requests[k]++
}

// maxBreakers is the agent's default max-breakers, which its exposition reports.
var maxBreakers = config.DefaultAgent().MaxBreakers

// state is what a scrape reports with the figures fig; called with a.mu held.
func (a *simAgent) state(fig [figures]float64) exposition.State {
	p := &a.prom
	s := exposition.State{
		Agent:       a.snap.Agent,
		Samples:     uint64(fig[figSamples]),
		Transitions: maps.Clone(p.transitions),
		Requests:    maps.Clone(p.requests),
		Breakers:    a.snap.Breakers,
		MaxBreakers: maxBreakers,
		Subscribers: int(fig[figSubscribers]),
		Dropped:     uint64(fig[figDropped]),
	}
	if k := (exposition.Request{Listener: "main", Route: "/metrics", Code: http.StatusOK}); s.Requests[k] > 0 {
		s.Requests[k] = uint64(fig[figScrapes])
	}
	if p.ticked {
		smp := *a.snap.Sample
		cpu, mem, tp := *smp.CPU, *smp.Memory, *smp.Throughput
		cpu.Cores, mem.WorkingSetBytes, tp.RequestsPerSec, tp.ErrorsPerSec = fig[figCPU], uint64(fig[figMemory]), fig[figRequests], fig[figErrors]
		smp.CPU, smp.Memory, smp.Throughput = &cpu, &mem, &tp
		s.Sample = &smp
	}
	return s
}

// figures are the values of the moment; called with a.mu held.
func (a *simAgent) figures() [figures]float64 {
	f := a.prom.fig
	f[figScrapes] = float64(a.prom.requests[exposition.Request{Listener: "main", Route: "/metrics", Code: http.StatusOK}])
	f[figSubscribers] = float64(a.hub.Subscribers())
	f[figDropped] = float64(a.hub.Dropped())
	return f
}

// serveMetrics is the simulated agent's GET /metrics.
func (a *simAgent) serveMetrics(w http.ResponseWriter, r *http.Request) {
	f := exposition.Format(r.Header)
	a.mu.Lock()
	fig := a.figures()
	if f.FormatType() != expfmt.TypeTextPlain {
		st := a.state(fig)
		a.mu.Unlock()
		if exposition.Write(w, f, exposition.Families(st)) == nil {
			a.countScrape()
		}
		return
	}
	t := a.prom.tmpl
	if t == nil || t.format != f {
		var err error
		if t, err = newTextTemplate(f, a.state); err != nil {
			a.mu.Unlock()
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		a.prom.tmpl = t
	}
	a.mu.Unlock()
	exposition.SetHeader(w.Header(), f)
	buf := bodies.Get().(*[]byte)
	*buf = t.fill((*buf)[:0], &fig)
	_, err := w.Write(*buf)
	bodies.Put(buf)
	if err == nil {
		a.countScrape()
	}
}

func (a *simAgent) countScrape() {
	a.mu.Lock()
	a.prom.answered("/metrics")
	a.mu.Unlock()
}

var bodies = sync.Pool{New: func() any { return new([]byte) }}

// textTemplate is an exposition in the text format split where the figures go.
type textTemplate struct {
	format expfmt.Format
	parts  [][]byte
	slots  []int // slots[i] is the figure between parts[i] and parts[i+1]
}

// sentinel is the stand-in for figure i while the template is encoded: an integer that
// a float64 holds exactly and that no real figure of a simulated agent takes.
func sentinel(i int) float64 { return 7_340_000_000_000_000 + float64(i)*1_000_000_007 }

// newTextTemplate encodes the state that state returns for the sentinels and splits it
// at them.
func newTextTemplate(f expfmt.Format, state func([figures]float64) exposition.State) (*textTemplate, error) {
	var fig [figures]float64
	for i := range fig {
		fig[i] = sentinel(i)
	}
	var b bytes.Buffer
	if err := exposition.Encode(&b, f, exposition.Families(state(fig))); err != nil {
		return nil, err
	}
	text := b.Bytes()
	type at struct{ pos, fig int }
	var found []at
	for i := range fig {
		mark := strconv.AppendFloat(nil, sentinel(i), 'g', -1, 64)
		switch n := bytes.Count(text, mark); {
		case n > 1:
			return nil, fmt.Errorf("exposition template: figure %d appears %d times", i, n)
		case n == 1:
			found = append(found, at{bytes.Index(text, mark), i})
		}
	}
	slices.SortFunc(found, func(a, b at) int { return a.pos - b.pos })
	t := &textTemplate{format: f}
	last := 0
	for _, x := range found {
		t.parts = append(t.parts, text[last:x.pos])
		t.slots = append(t.slots, x.fig)
		last = x.pos + len(strconv.AppendFloat(nil, sentinel(x.fig), 'g', -1, 64))
	}
	t.parts = append(t.parts, text[last:])
	return t, nil
}

// fill appends the exposition with the figures fig to b. Values are written as the text
// encoder writes them (strconv's shortest 'g', a plain 0 for zero).
func (t *textTemplate) fill(b []byte, fig *[figures]float64) []byte {
	for i, p := range t.parts {
		b = append(b, p...)
		if i < len(t.slots) {
			v := fig[t.slots[i]]
			if v == 0 {
				b = append(b, '0')
			} else {
				b = strconv.AppendFloat(b, v, 'g', -1, 64)
			}
		}
	}
	return b
}

// agentMux is what a simulated agent serves: its stream and its metrics.
func agentMux(a *simAgent) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/stream", func(w http.ResponseWriter, r *http.Request) {
		a.hub.Serve(w, r, nil, a.snapshotData)
		a.mu.Lock()
		a.prom.answered("/v1/stream")
		a.mu.Unlock()
	})
	mux.HandleFunc("GET /metrics", a.serveMetrics)
	return mux
}
