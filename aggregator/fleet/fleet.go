// Package fleet keeps what the pool learns of every agent: its state and its latest
// snapshot, merged into each workload's part of the view as the reports arrive
// (merge.Live). The pool's readers hand their reports to an inbox and go back to reading;
// the fleet's own goroutine applies them in order, records them for rewinding, and
// publishes at once the events they cause (agent, circuit-breaker). Whoever reads the
// fleet first applies what waits, so that it reads every report handed over before.
package fleet

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/faultline-dev/faultline/aggregator/merge"
	"github.com/faultline-dev/faultline/aggregator/pool"
	"github.com/faultline-dev/faultline/aggregator/rewind"
	"github.com/faultline-dev/faultline/aggregator/view"
	"github.com/faultline-dev/faultline/internal/health"
	"github.com/faultline-dev/faultline/internal/stream"
	"github.com/faultline-dev/faultline/internal/wire"
)

var _ pool.Sink = (*Fleet)(nil)

// Options configure a Fleet.
type Options struct {
	Hub *stream.Hub
	// Rewind records the changes that rewinding the view needs; nil: none are recorded.
	Rewind *rewind.Log
	Logger hclog.Logger
	// Health, when set, learns from Run whether the agents' reports are applied.
	Health *health.Monitor
}

// Fleet is every agent's state and latest snapshot, merged per workload.
type Fleet struct {
	opts Options
	log  hclog.Logger

	in       *inbox      // what the pool reported, not applied yet
	applyMu  sync.Mutex  // one applier at a time
	running  atomic.Bool // Run applies reports on a goroutine of its own
	outgoing []outgoing  // events to publish; the applier's

	mu        sync.Mutex
	live      *merge.Live     // every agent, and each workload's part of the view, kept up to date
	intervals map[float64]int // agents by sample interval (ms)

	// TransitionDelay observes how long after the agent saw a transition its
	// circuit-breaker event was published (agent and aggregator clocks). The aggregator
	// registers it with its own metrics.
	TransitionDelay prometheus.Histogram

	eventsIn    atomic.Uint64
	transitions atomic.Uint64
}

// New returns an empty fleet.
func New(opts Options) *Fleet {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	f := &Fleet{
		opts: opts, log: opts.Logger, in: newInbox(), live: merge.NewLive(), intervals: map[float64]int{},
		TransitionDelay: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "faultline_aggregator_transition_delay_seconds",
			Help:    "Time from an agent seeing a breaker transition to the aggregator publishing it (agent and aggregator clocks).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}}),
	}
	f.live.StaleAfter = staleAfter
	return f
}

// Status records an agent's new state and publishes it as an agent event.
func (f *Fleet) Status(st view.AgentStatus) {
	f.deliver(st.Key, mail{kind: mailStatus, status: &st})
}

// Snapshot records an agent's latest state, kept as it was decoded.
func (f *Fleet) Snapshot(key string, snap *wire.Snapshot, full bool) {
	f.eventsIn.Add(1)
	f.deliver(key, mail{kind: mailSnapshot, snap: snap})
}

// Transition records a breaker transition in the agent's state and publishes a
// circuit-breaker event at once, with the workload's tile after the change.
func (f *Fleet) Transition(key string, tr wire.Transition) {
	f.eventsIn.Add(1)
	f.transitions.Add(1)
	f.deliver(key, mail{kind: mailTransition, tr: &tr})
}

// Removed forgets an agent that discovery dropped.
func (f *Fleet) Removed(key string) {
	f.deliver(key, mail{kind: mailRemoved})
}

// deliver hands a report to the fleet's goroutine; while it does not run (Run not
// called), the report is applied at once.
func (f *Fleet) deliver(key string, m mail) {
	m.at = time.Now()
	if f.running.Load() {
		f.in.put(key, m)
		return
	}
	f.applyMu.Lock()
	defer f.applyMu.Unlock()
	f.applyWaiting()
	f.applyAgent(key, &box{first: m})
}

// apply applies every report waiting. One caller applies at a time, so that an agent's
// reports are applied in order whoever applies them.
func (f *Fleet) apply() {
	f.applyMu.Lock()
	defer f.applyMu.Unlock()
	f.applyWaiting()
}

// applyWaiting applies what waits in the inbox, agent by agent; called with f.applyMu
// held.
func (f *Fleet) applyWaiting() {
	for {
		order, waiting := f.in.take()
		if len(order) == 0 {
			return
		}
		for _, key := range order {
			b := waiting[key]
			f.applyAgent(key, &b)
		}
		f.in.done(order, waiting)
	}
}

// applyAgent applies one agent's reports in order, then publishes the events they cause;
// called with f.applyMu held.
func (f *Fleet) applyAgent(key string, b *box) {
	out := f.outgoing[:0]
	f.mu.Lock()
	for i := range b.len() {
		out = f.applyOne(key, b.at(i), out)
	}
	f.mu.Unlock()
	for _, o := range out {
		if _, err := f.opts.Hub.Publish(o.name, o.ns, o.wl, o.v); err != nil {
			f.log.Error("publish event", "event", o.name, "error", err)
		}
		if o.delay >= 0 {
			f.TransitionDelay.Observe(o.delay.Seconds())
		}
	}
	clear(out)
	f.outgoing = out[:0]
}

// outgoing is an event to publish once the reports that caused it are applied.
type outgoing struct {
	name, ns, wl string
	v            any
	delay        time.Duration // of a transition, from the agent's clock; -1 if not one
}

// applyOne applies one report; called with f.mu held.
func (f *Fleet) applyOne(key string, m *mail, out []outgoing) []outgoing {
	switch m.kind {
	case mailStatus:
		st := *m.status
		old, ok := f.live.Status(key)
		if st.LastSeen.Before(old.LastSeen.Time) {
			st.LastSeen = old.LastSeen
		}
		if !ok || !f.live.SetStatus(key, st) {
			f.live.Set(key, merge.Agent{Status: st})
		}
		f.rewind(func(l *rewind.Log) { l.Status(st, m.at) })
		return append(out, outgoing{wire.EventAgent, st.Namespace, merge.WorkloadOf(st), st, -1})
	case mailSnapshot:
		st, ok := f.live.Status(key)
		if !ok {
			st = view.AgentStatus{V: wire.Version, Key: key, State: view.AgentConnected}
		}
		f.countInterval(f.live.Sample(key), -1)
		f.countInterval(m.snap.Sample, 1)
		st.LastSeen = wire.NewTime(m.at)
		f.live.Set(key, merge.Agent{Status: st, Snapshot: m.snap})
	case mailTransition:
		tr := *m.tr
		tile, st, ok := f.live.Transition(key, tr.Breaker)
		if !ok {
			if st, ok = f.live.Status(key); !ok {
				return out
			}
			tile = view.BreakerTile{Name: tr.Breaker.Name, State: tr.To, Sources: []string{}}
		}
		wl := merge.WorkloadOf(st)
		tile.Namespace, tile.Workload = st.Namespace, wl
		f.rewind(func(l *rewind.Log) { l.Transition(key, tr, m.at) })
		delay := time.Duration(-1)
		if !tr.Time.IsZero() {
			if d := time.Since(tr.Time.Time); d >= 0 {
				delay = d
			}
		}
		ev := view.BreakerEvent{V: wire.Version, Namespace: st.Namespace, Workload: wl, Pod: st.Pod, Transition: tr, Tile: tile}
		return append(out, outgoing{wire.EventCircuitBreaker, st.Namespace, wl, ev, delay})
	case mailRemoved:
		a, ok := f.live.Agent(key)
		f.live.Remove(key)
		if ok {
			if a.Snapshot != nil {
				f.countInterval(a.Snapshot.Sample, -1)
			}
			var last []wire.Breaker
			if a.Snapshot != nil {
				last = a.Snapshot.Breakers
			}
			f.rewind(func(l *rewind.Log) { l.Removed(key, last, m.at) })
			st := a.Status
			st.State, st.Reason, st.Since = view.AgentRemoved, "no longer discovered", wire.Now()
			return append(out, outgoing{wire.EventAgent, st.Namespace, merge.WorkloadOf(st), st, -1})
		}
	}
	return out
}

func (f *Fleet) rewind(record func(*rewind.Log)) {
	if f.opts.Rewind != nil {
		record(f.opts.Rewind)
	}
}

// countInterval counts a sample's interval in (sign 1) or out (sign -1); called with f.mu
// held.
func (f *Fleet) countInterval(s *wire.Sample, sign int) {
	if s == nil {
		return
	}
	iv := s.IntervalMs
	if f.intervals[iv] += sign; f.intervals[iv] <= 0 {
		delete(f.intervals, iv)
	}
}

// Run applies the pool's reports as they come until ctx is done.
func (f *Fleet) Run(ctx context.Context) {
	f.running.Store(true)
	if h := f.opts.Health; h != nil {
		h.Add(func(now time.Time) string {
			if since := f.in.waitingSince(); !since.IsZero() && now.Sub(since) > maxApplyWait {
				return fmt.Sprintf("fleet: agents' reports wait unapplied for %s (expected within %s)", now.Sub(since).Round(time.Millisecond), maxApplyWait)
			}
			return ""
		})
	}
	defer func() {
		f.running.Store(false)
		f.apply()
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.in.wake:
			f.apply()
		}
	}
}

// maxApplyWait is how long the agents' reports may wait for the fleet's goroutine before
// the fleet counts as stuck.
const maxApplyWait = 10 * time.Second

// staleAfter is how old an agent's data may be before it is shown stale: three of its
// sample intervals, and at least 3 s.
func staleAfter(a merge.Agent) time.Duration {
	iv := time.Second
	if a.Snapshot != nil && a.Snapshot.Sample != nil && a.Snapshot.Sample.IntervalMs > 0 {
		iv = time.Duration(a.Snapshot.Sample.IntervalMs * float64(time.Millisecond))
	}
	return max(3*iv, 3*time.Second)
}

// Part is one workload's part of the view with the keys of its rows' agents.
type Part struct {
	*merge.Part
	Keys []string
}

// partsPerLock is how many workloads' parts are built at a time under the fleet's lock:
// the reports that arrive meanwhile (a breaker transition) wait for a few workloads, never
// for the whole fleet.
const partsPerLock = 16

// Parts marks the agents whose data is older than it should be at now (see
// merge.Live.Lag), then returns every workload's part, sorted by namespace and name; only
// the workloads that changed since they were last built are built again.
func (f *Fleet) Parts(now time.Time) []Part {
	f.apply()
	f.mu.Lock()
	f.live.Lag(now)
	keys := f.live.WorkloadKeys()
	f.mu.Unlock()
	out := make([]Part, 0, len(keys))
	for len(keys) > 0 {
		n := min(partsPerLock, len(keys))
		f.mu.Lock()
		for _, k := range keys[:n] {
			if p, rows := f.live.Part(k); p != nil {
				out = append(out, Part{Part: p, Keys: rows})
			}
		}
		f.mu.Unlock()
		keys = keys[n:]
	}
	return out
}

// Merged returns the parts of a set of Parts.
func Merged(parts []Part) []*merge.Part {
	out := make([]*merge.Part, len(parts))
	for i, p := range parts {
		out[i] = p.Part
	}
	return out
}

// Detail is the part of workload namespace/name with per-pod detail (merge.Live.Detail);
// nil for a workload the fleet does not hold.
func (f *Fleet) Detail(namespace, name string) *merge.Part {
	f.apply()
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.live.Detail(namespace, name)
}

// Agents returns every agent, its transitions applied, in no particular order.
func (f *Fleet) Agents() []merge.Agent {
	f.apply()
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.live.Agents()
}

// Statuses returns every agent's state, sorted by key.
func (f *Fleet) Statuses() []view.AgentStatus {
	f.apply()
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.live.Statuses()
}

// AgentCounts counts agents by state.
func (f *Fleet) AgentCounts() map[string]int {
	out := map[string]int{view.AgentConnecting: 0, view.AgentConnected: 0, view.AgentUnavailable: 0, view.AgentMissing: 0}
	for _, st := range f.Statuses() {
		out[st.State]++
	}
	return out
}

// Len is the number of agents.
func (f *Fleet) Len() int {
	f.apply()
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.live.Len()
}

// SampleInterval is the agents' most common sample interval, in ms (0 if none known).
func (f *Fleet) SampleInterval() float64 {
	f.apply()
	f.mu.Lock()
	defer f.mu.Unlock()
	ivs := make([]float64, 0, len(f.intervals))
	for iv := range f.intervals {
		ivs = append(ivs, iv)
	}
	slices.Sort(ivs) // the shortest of equally common intervals
	best, n := 0.0, 0
	for _, iv := range ivs {
		if f.intervals[iv] > n {
			best, n = iv, f.intervals[iv]
		}
	}
	return best
}

// Counters are the events received from agents, and of them the breaker transitions.
func (f *Fleet) Counters() (events, transitions uint64) {
	return f.eventsIn.Load(), f.transitions.Load()
}

// TransitionsDropped counts transitions dropped because an agent's reports waited
// unapplied beyond the inbox's bound.
func (f *Fleet) TransitionsDropped() uint64 { return f.in.Dropped() }
