// Package store holds what the pool learns from the agents (each agent's state and
// latest snapshot), publishes the events that must go out at once (circuit-breaker,
// agent), and runs the broadcast loop: merge, evaluate alerts, record history, publish
// metrics, compute suggestions, and widen the broadcast interval under load.
package store

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/faultline-dev/faultline/aggregator/alert"
	"github.com/faultline-dev/faultline/aggregator/discovery"
	"github.com/faultline-dev/faultline/aggregator/history"
	"github.com/faultline-dev/faultline/aggregator/merge"
	"github.com/faultline-dev/faultline/aggregator/pool"
	"github.com/faultline-dev/faultline/aggregator/rewind"
	"github.com/faultline-dev/faultline/aggregator/suggest"
	"github.com/faultline-dev/faultline/aggregator/view"
	"github.com/faultline-dev/faultline/internal/health"
	"github.com/faultline-dev/faultline/internal/stream"
	"github.com/faultline-dev/faultline/internal/wire"
)

var _ pool.Sink = (*Store)(nil)

// Options configure a Store.
type Options struct {
	Mode      string
	Hub       *stream.Hub
	History   *history.Store
	Alerts    *alert.Engine
	Deliver   func(...wire.Alert) // Alertmanager delivery; nil: none
	Discovery func() discovery.Status
	// Replicas gives the desired pods of workloads when discovery knows them; nil: never.
	Replicas func() map[discovery.Workload]int
	// Rewind records the changes that rewinding the view needs (default: a log of the
	// history's retention).
	Rewind *rewind.Log
	Logger hclog.Logger

	BroadcastInterval time.Duration // base interval (default 1 s)
	BroadcastBudget   time.Duration // slower broadcasts widen the interval (default 250 ms)
	MaxWorkloads      int           // in a metrics event (default 200)
	MaxTiles          int           // in a metrics event (default 200)
	// SnapshotMaxPods bounds the pods and agents listed in a stream snapshot; a larger
	// fleet's rows are fetched from GET /api/v1/agents (default 1000).
	SnapshotMaxPods int
	// SuggestEvery is how often suggestions are recomputed (default 10 s).
	SuggestEvery time.Duration
	// Health, when set, learns from Run whether the broadcast loop goes round and the
	// agents' reports are applied.
	Health *health.Monitor
	// BeforeBroadcast, when set, is called as each broadcast of Run starts (tests stall
	// the loop with it).
	BeforeBroadcast func()
}

// MaxCoalescing bounds how far the broadcast interval may widen: 8x the base.
const MaxCoalescing = 8

type wkey struct{ ns, workload string }

// seriesRefs are the history handles of one pod's or workload's series, with the object
// they were made for; broadcast goroutine only.
type seriesRefs struct {
	obj  string
	refs [len(podMetrics)]history.Ref
}

// Store is the aggregator's state.
type Store struct {
	opts Options
	log  hclog.Logger

	in       *inbox      // what the pool reported, not applied yet
	applyMu  sync.Mutex  // one applier at a time
	running  atomic.Bool // Run applies reports on a goroutine of its own
	outgoing []outgoing  // events to publish; the applier's

	mu     sync.Mutex
	live   *merge.Live // every agent, and each workload's part of the view, kept up to date
	shared shared

	viewMu      sync.RWMutex
	cluster     view.Cluster // latest broadcast's view, without pods and agents
	suggestions []wire.Suggestion
	suggTotal   int

	optMu    sync.Mutex
	opt      wire.Optimization
	interval time.Duration
	ewma     float64 // ms

	snapMu      sync.Mutex
	snapCache   map[string]cachedSnapshot
	snapNext    map[string]*snapFlight // the next merge, by filter
	snapRunning map[string]bool
	snapMerges  atomic.Uint64

	// Broadcast goroutine only.
	clusterRefs [len(clusterMetrics)]history.Ref
	podRefs     map[string]*seriesRefs // by agent key
	wlRefs      map[wkey]*seriesRefs
	values      []history.Value
	pods        []view.Pod // every workload's pods, for the alert rules
	agentRows   []view.AgentStatus

	// TransitionDelay observes how long after the agent saw a transition its
	// circuit-breaker event was published (agent and aggregator clocks); BroadcastTime how
	// long each broadcast took. The aggregator registers both with its own metrics.
	TransitionDelay prometheus.Histogram
	BroadcastTime   prometheus.Histogram

	eventsIn    atomic.Uint64
	transitions atomic.Uint64
	broadcasts  atomic.Uint64
	lastDur     atomic.Int64 // ns
}

type cachedSnapshot struct {
	id   string
	data []byte
}

// New returns an empty store.
func New(opts Options) *Store {
	if opts.BroadcastInterval <= 0 {
		opts.BroadcastInterval = time.Second
	}
	if opts.BroadcastBudget <= 0 {
		opts.BroadcastBudget = 250 * time.Millisecond
	}
	if opts.MaxWorkloads <= 0 {
		opts.MaxWorkloads = 200
	}
	if opts.MaxTiles <= 0 {
		opts.MaxTiles = 200
	}
	if opts.SnapshotMaxPods <= 0 {
		opts.SnapshotMaxPods = 1000
	}
	if opts.SuggestEvery <= 0 {
		opts.SuggestEvery = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.Rewind == nil {
		opts.Rewind = rewind.New(opts.History.Retention(), time.Now())
	}
	if opts.Discovery == nil {
		opts.Discovery = func() discovery.Status { return discovery.Status{Mode: opts.Mode, Synced: true} }
	}
	s := &Store{
		opts: opts, log: opts.Logger, in: newInbox(), live: merge.NewLive(),
		podRefs: map[string]*seriesRefs{}, wlRefs: map[wkey]*seriesRefs{},
		interval: opts.BroadcastInterval, snapCache: map[string]cachedSnapshot{},
		snapNext: map[string]*snapFlight{}, snapRunning: map[string]bool{},
		suggestions: []wire.Suggestion{},
		TransitionDelay: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "faultline_aggregator_transition_delay_seconds",
			Help:    "Time from an agent seeing a breaker transition to the aggregator publishing it (agent and aggregator clocks).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}}),
		BroadcastTime: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "faultline_aggregator_broadcast_seconds",
			Help:    "Time each broadcast took: merge, alerts, metrics event, history.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}}),
	}
	s.live.StaleAfter = staleAfter
	s.opt = wire.Optimization{
		V: wire.Version, BroadcastIntervalMs: wire.Ms(opts.BroadcastInterval), BaseBroadcastMs: wire.Ms(opts.BroadcastInterval),
		HistoryRetentionMs: wire.Ms(opts.History.Retention()), SubscriberBuffer: opts.Hub.Options().SubscriberBuffer,
		BroadcastBudgetMs: wire.Ms(opts.BroadcastBudget), Changes: []wire.OptimizationChange{},
	}
	s.cluster = merge.Cluster(merge.Input{Time: time.Now(), Mode: opts.Mode, Discovery: s.discovery()})
	for i, m := range clusterMetrics {
		s.clusterRefs[i] = opts.History.RefOf(history.ScopeCluster, "", m)
	}
	return s
}

// Status records an agent's new state and publishes it as an agent event.
func (s *Store) Status(st view.AgentStatus) {
	s.deliver(st.Key, mail{kind: mailStatus, status: &st})
}

// Snapshot records an agent's latest state: the slim copy of it that the view and the
// rules need (snap itself is the pool's, reused for the next event).
func (s *Store) Snapshot(key string, snap *wire.Snapshot, full bool) {
	s.eventsIn.Add(1)
	s.deliver(key, mail{kind: mailSnapshot, snap: s.shared.slim(snap)})
}

// Transition records a breaker transition in the agent's state and publishes a
// circuit-breaker event at once, with the workload's tile after the change.
func (s *Store) Transition(key string, tr wire.Transition) {
	s.eventsIn.Add(1)
	s.transitions.Add(1)
	s.deliver(key, mail{kind: mailTransition, tr: &tr})
}

// Removed forgets an agent that discovery dropped.
func (s *Store) Removed(key string) {
	s.deliver(key, mail{kind: mailRemoved})
}

// deliver hands a report to the store's goroutine; while it does not run (Run not
// called), the report is applied at once.
func (s *Store) deliver(key string, m mail) {
	m.at = time.Now()
	if s.running.Load() {
		s.in.put(key, m)
		return
	}
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	s.applyWaiting()
	s.applyAgent(key, &box{first: m})
}

// apply applies every report waiting. One caller applies at a time, so that an agent's
// reports are applied in order whoever applies them.
func (s *Store) apply() {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	s.applyWaiting()
}

// applyWaiting applies what waits in the inbox, agent by agent; called with s.applyMu
// held.
func (s *Store) applyWaiting() {
	for {
		order, waiting := s.in.take()
		if len(order) == 0 {
			return
		}
		for _, key := range order {
			b := waiting[key]
			s.applyAgent(key, &b)
		}
		s.in.done(order, waiting)
	}
}

// applyAgent applies one agent's reports in order, then publishes the events they cause;
// called with s.applyMu held.
func (s *Store) applyAgent(key string, b *box) {
	out := s.outgoing[:0]
	s.mu.Lock()
	for i := range b.len() {
		out = s.applyOne(key, b.at(i), out)
	}
	s.mu.Unlock()
	for _, o := range out {
		s.publish(o.name, o.ns, o.wl, o.v)
		if o.delay >= 0 {
			s.TransitionDelay.Observe(o.delay.Seconds())
		}
	}
	clear(out)
	s.outgoing = out[:0]
}

// outgoing is an event to publish once the reports that caused it are applied.
type outgoing struct {
	name, ns, wl string
	v            any
	delay        time.Duration // of a transition, from the agent's clock; -1 if not one
}

// applyOne applies one report; called with s.mu held.
func (s *Store) applyOne(key string, m *mail, out []outgoing) []outgoing {
	switch m.kind {
	case mailStatus:
		st := *m.status
		old, ok := s.live.Status(key)
		if st.LastSeen.Before(old.LastSeen.Time) {
			st.LastSeen = old.LastSeen
		}
		if !ok || !s.live.SetStatus(key, st) {
			s.live.Set(key, merge.Agent{Status: st})
		}
		s.opts.Rewind.Status(st, m.at)
		return append(out, outgoing{wire.EventAgent, st.Namespace, merge.WorkloadOf(st), st, -1})
	case mailSnapshot:
		st, ok := s.live.Status(key)
		if !ok {
			st = view.AgentStatus{V: wire.Version, Key: key, State: view.AgentConnected}
		}
		st.LastSeen = wire.NewTime(m.at)
		s.live.Set(key, merge.Agent{Status: st, Snapshot: m.snap})
	case mailTransition:
		tr := *m.tr
		tile, st, ok := s.live.Transition(key, tr.Breaker)
		if !ok {
			if st, ok = s.live.Status(key); !ok {
				return out
			}
			tile = view.BreakerTile{Name: tr.Breaker.Name, State: tr.To, Sources: []string{}}
		}
		wl := merge.WorkloadOf(st)
		tile.Namespace, tile.Workload = st.Namespace, wl
		s.opts.Rewind.Transition(key, tr, m.at)
		delay := time.Duration(-1)
		if !tr.Time.IsZero() {
			if d := time.Since(tr.Time.Time); d >= 0 {
				delay = d
			}
		}
		ev := view.BreakerEvent{V: wire.Version, Namespace: st.Namespace, Workload: wl, Pod: st.Pod, Transition: tr, Tile: tile}
		return append(out, outgoing{wire.EventCircuitBreaker, st.Namespace, wl, ev, delay})
	case mailRemoved:
		a, ok := s.live.Agent(key)
		s.live.Remove(key)
		if ok {
			var last []wire.Breaker
			if a.Snapshot != nil {
				last = a.Snapshot.Breakers
			}
			s.opts.Rewind.Removed(key, last, m.at)
			st := a.Status
			st.State, st.Reason, st.Since = view.AgentRemoved, "no longer discovered", wire.Now()
			return append(out, outgoing{wire.EventAgent, st.Namespace, merge.WorkloadOf(st), st, -1})
		}
	}
	return out
}

func (s *Store) publish(name, ns, wl string, v any) {
	if _, err := s.opts.Hub.Publish(name, ns, wl, v); err != nil {
		s.log.Error("publish event", "event", name, "error", err)
	}
}

func (s *Store) discovery() view.Discovery {
	d := s.opts.Discovery()
	return view.Discovery{Mode: d.Mode, Synced: d.Synced, Stale: d.Stale, Error: d.Error, Since: wire.NewTime(d.Since), ReplicasError: d.ReplicasError}
}

// inputs copies the agents for a merge.
func (s *Store) inputs() []merge.Agent {
	s.apply()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.live.Agents()
}

// Run broadcasts, and recomputes suggestions, until ctx is done. Suggestions read every
// pod's history, so they have their own goroutine: their cost neither delays a broadcast
// nor counts in the broadcast time that widens the interval.
func (s *Store) Run(ctx context.Context) {
	s.running.Store(true)
	var beat *health.Beat
	if h := s.opts.Health; h != nil {
		beat = h.Beat("broadcast loop", "broadcast", beatWithin(s.currentInterval()))
		h.Add(func(now time.Time) string {
			if since := s.in.waitingSince(); !since.IsZero() && now.Sub(since) > maxApplyWait {
				return fmt.Sprintf("store: agents' reports wait unapplied for %s (expected within %s)", now.Sub(since).Round(time.Millisecond), maxApplyWait)
			}
			return ""
		})
	}
	defer func() {
		s.running.Store(false)
		s.apply()
		if beat != nil {
			beat.Stop()
		}
	}()
	go func() { // applies the pool's reports as they come
		for {
			select {
			case <-ctx.Done():
				return
			case <-s.in.wake:
				s.apply()
			}
		}
	}()
	go func() {
		t := time.NewTicker(s.opts.SuggestEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				s.suggest(now, s.inputs())
			}
		}
	}()
	t := time.NewTimer(s.currentInterval())
	defer t.Stop()
	forget := time.NewTicker(time.Minute)
	defer forget.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-forget.C:
			s.opts.History.Forget(now)
			s.opts.Rewind.Forget(now)
		case now := <-t.C:
			if s.opts.BeforeBroadcast != nil {
				s.opts.BeforeBroadcast()
			}
			s.Broadcast(now)
			iv := s.currentInterval()
			if beat != nil {
				beat.Tick()
				beat.Within(beatWithin(iv))
			}
			t.Reset(iv)
		}
	}
}

// beatWithin is how long the broadcast loop may go without a broadcast: three of its
// intervals, and at least 5 s.
func beatWithin(interval time.Duration) time.Duration { return max(3*interval, 5*time.Second) }

// maxApplyWait is how long the agents' reports may wait for the store's goroutine
// before the store counts as stuck.
const maxApplyWait = 10 * time.Second

func (s *Store) currentInterval() time.Duration {
	s.optMu.Lock()
	defer s.optMu.Unlock()
	return s.interval
}

// part is one workload's part of the view with the keys of its rows' agents.
type part struct {
	part *merge.Part
	keys []string
}

// refresh returns every workload's part, sorted by namespace and name; only the
// workloads that changed since the last refresh are built again.
func (s *Store) refresh() []part {
	s.apply()
	keys := map[*merge.Part][]string{}
	s.mu.Lock()
	parts := s.live.Parts(keys)
	s.mu.Unlock()
	out := make([]part, len(parts))
	for i, p := range parts {
		out[i] = part{part: p, keys: keys[p]}
	}
	return out
}

func merged(parts []part) []*merge.Part {
	out := make([]*merge.Part, len(parts))
	for i, p := range parts {
		out[i] = p.part
	}
	return out
}

// Broadcast merges, evaluates alerts, records history, publishes a metrics event, and
// adapts the broadcast interval to how long that took.
func (s *Store) Broadcast(now time.Time) {
	start := time.Now()
	s.apply()
	s.mu.Lock()
	s.live.Lag(start) // against the clock the reports were received by
	s.mu.Unlock()
	parts := s.refresh()
	desired := s.desired()
	c := merge.Assemble(merge.Input{Time: now, Mode: s.opts.Mode, Discovery: s.discovery(), Alerts: s.opts.Alerts.Firing(), Desired: desired}, merged(parts))
	pods, agents := s.pods[:0], s.agentRows[:0]
	for _, p := range parts {
		pods = append(pods, p.part.Pods...)
		agents = append(agents, p.part.Agents...)
	}
	changed := s.opts.Alerts.Evaluate(alert.Input{Time: now, View: c, Pods: pods, Agents: agents})
	clear(pods) // keep the buffers, not what they point to
	clear(agents)
	s.pods, s.agentRows = pods[:0], agents[:0]
	merge.SetAlerts(&c, s.opts.Alerts.Firing())
	s.opts.Rewind.Broadcast(now, c.Discovery, changed, desired)
	for _, a := range changed {
		s.publish(wire.EventAlert, a.Target.Namespace, a.Target.Workload, a)
	}
	if s.opts.Deliver != nil && len(changed) > 0 {
		s.opts.Deliver(changed...)
	}
	m := merge.Metrics(c, s.opts.MaxWorkloads, s.opts.MaxTiles)
	s.publish(wire.EventMetrics, "", "", m)
	s.record(now, c, parts) // after publishing: clients need not wait for it

	s.viewMu.Lock()
	s.cluster = c
	s.viewMu.Unlock()
	s.broadcasts.Add(1)
	took := time.Since(start)
	s.BroadcastTime.Observe(took.Seconds())
	s.adapt(took)
}

func (s *Store) suggest(now time.Time, agents []merge.Agent) {
	flips := s.opts.Rewind.Flips(now.Add(-suggest.FlapWindow))
	list, total := suggest.Compute(suggest.Input{Time: now, Agents: agents, Flips: flips, History: s.opts.History})
	iv := sampleInterval(agents)
	s.optMu.Lock()
	s.opt.SampleIntervalMs = iv
	s.optMu.Unlock()
	s.viewMu.Lock()
	s.suggestions, s.suggTotal = list, total
	s.viewMu.Unlock()
}

// staleAfter is how old an agent's data may be before it is shown stale: three of its
// sample intervals, and at least 3 s.
func staleAfter(a merge.Agent) time.Duration {
	iv := time.Second
	if a.Snapshot != nil && a.Snapshot.Sample != nil && a.Snapshot.Sample.IntervalMs > 0 {
		iv = time.Duration(a.Snapshot.Sample.IntervalMs * float64(time.Millisecond))
	}
	return max(3*iv, 3*time.Second)
}

// The series recorded at each broadcast.
var (
	clusterMetrics = [...]string{"health", "cpu_cores", "memory_bytes", "requests_per_sec", "errors_per_sec", "breakers_open", "agents_unavailable",
		rewind.PressureMetric, rewind.PodsPressuredMetric}
	workloadMetrics = [...]string{"cpu_cores", "memory_bytes", "requests_per_sec", "errors_per_sec", "breakers_open"}
	podMetrics      = [...]string{"cpu_cores", "memory_bytes", "requests_per_sec", "errors_per_sec", "cpu_throttled_percent"}
)

// record adds the view's figures to the history, through handles kept with each
// workload and agent. It runs on the broadcast goroutine only and takes no lock that
// the agents' streams need.
func (s *Store) record(now time.Time, c view.Cluster, parts []part) {
	values := s.values[:0]
	add := func(r history.Ref, v *float64) {
		if v != nil {
			values = append(values, history.Value{Ref: r, Value: *v})
		}
	}
	f := func(v float64) *float64 { return &v }
	t := c.Totals
	var pr merge.Pressure // for the health score of a rewound view
	for _, p := range parts {
		pr.Sum, pr.Pods, pr.Hot = pr.Sum+p.part.Pressure.Sum, pr.Pods+p.part.Pressure.Pods, pr.Hot+p.part.Pressure.Hot
	}
	for i, v := range []float64{float64(c.Health.Score), t.CPUCores, float64(t.MemoryBytes), t.RequestsPerSec, t.ErrorsPerSec,
		float64(t.BreakersOpen), float64(t.AgentsUnavailable + t.AgentsMissing), pr.Sum / float64(max(pr.Pods, 1)), float64(pr.Hot)} {
		add(s.clusterRefs[i], f(v))
	}
	pods := 0
	for _, p := range parts {
		w := p.part.Workload
		r := s.wlRefs[wkey{w.Namespace, w.Name}]
		if r == nil {
			r = &seriesRefs{obj: scoped(w.Namespace, w.Name)}
			for i, m := range workloadMetrics {
				r.refs[i] = s.opts.History.RefOf(history.ScopeWorkload, r.obj, m)
			}
			s.wlRefs[wkey{w.Namespace, w.Name}] = r
		}
		add(r.refs[0], w.CPUCores.Sum)
		add(r.refs[1], w.MemoryBytes.Sum)
		add(r.refs[2], f(w.RequestsPerSec))
		add(r.refs[3], f(w.ErrorsPerSec))
		add(r.refs[4], f(float64(w.BreakersOpen)))
		for i := range p.part.Pods {
			pod := &p.part.Pods[i]
			pods++
			if pod.State != view.AgentConnected {
				continue
			}
			r := s.podRefs[p.keys[i]]
			if r == nil || !sameObject(r.obj, pod.Namespace, pod.Pod) {
				r = &seriesRefs{obj: scoped(pod.Namespace, pod.Pod)}
				for k, m := range podMetrics {
					r.refs[k] = s.opts.History.RefOf(history.ScopePod, r.obj, m)
				}
				s.podRefs[p.keys[i]] = r
			}
			add(r.refs[0], pod.CPUCores)
			if pod.MemoryBytes != nil {
				values = append(values, history.Value{Ref: r.refs[1], Value: float64(*pod.MemoryBytes)})
			}
			add(r.refs[2], pod.RequestsPerSec)
			add(r.refs[3], pod.ErrorsPerSec)
			add(r.refs[4], pod.ThrottledPct)
		}
	}
	s.opts.History.Add(now, values)
	clear(values) // the handles hold objects that Forget may drop
	s.values = values[:0]
	if len(s.podRefs) > 2*pods+64 || len(s.wlRefs) > 2*len(parts)+64 { // forget agents and workloads that are gone
		live := make(map[string]bool, pods)
		wls := make(map[wkey]bool, len(parts))
		for _, p := range parts {
			wls[wkey{p.part.Workload.Namespace, p.part.Workload.Name}] = true
			for _, k := range p.keys {
				live[k] = true
			}
		}
		maps.DeleteFunc(s.podRefs, func(k string, _ *seriesRefs) bool { return !live[k] })
		maps.DeleteFunc(s.wlRefs, func(k wkey, _ *seriesRefs) bool { return !wls[k] })
	}
}

// sameObject reports whether obj is scoped(ns, name), without building it.
func sameObject(obj, ns, name string) bool {
	if ns == "" {
		return obj == name
	}
	return len(obj) == len(ns)+1+len(name) && obj[:len(ns)] == ns && obj[len(ns)] == '/' && obj[len(ns)+1:] == name
}

// scoped names an object of a namespace: "ns/name", or "name" outside Kubernetes.
func scoped(ns, name string) string {
	if ns == "" {
		return name
	}
	return ns + "/" + name
}

// adapt widens the broadcast interval while broadcasts take longer than the budget and
// narrows it back once they take less than half of it; every change is an optimization
// event.
func (s *Store) adapt(took time.Duration) {
	s.lastDur.Store(int64(took))
	ms := wire.Ms(took)
	s.optMu.Lock()
	// The average starts from zero and counts a broadcast at most at twice the budget:
	// one slow broadcast (the first, which meets every agent) does not widen the
	// interval, and is forgotten in a few broadcasts; slowness that lasts does.
	budget := wire.Ms(s.opts.BroadcastBudget)
	s.ewma = 0.7*s.ewma + 0.3*min(ms, 2*budget)
	s.opt.LastBroadcastMs = ms
	base := s.opts.BroadcastInterval
	var change *wire.OptimizationChange
	switch {
	case s.ewma > budget && s.interval < base*MaxCoalescing:
		next := s.interval * 2
		change = &wire.OptimizationChange{Time: wire.Now(), Parameter: "broadcast-interval", From: s.interval.String(), To: next.String(),
			Reason: fmt.Sprintf("broadcasts take %.0f ms on average, over the %.0f ms budget", s.ewma, budget)}
		s.interval = next
	case s.ewma < budget/2 && s.interval > base:
		next := max(base, s.interval/2)
		change = &wire.OptimizationChange{Time: wire.Now(), Parameter: "broadcast-interval", From: s.interval.String(), To: next.String(),
			Reason: fmt.Sprintf("broadcasts take %.0f ms on average, well under the %.0f ms budget", s.ewma, budget)}
		s.interval = next
	}
	s.opt.BroadcastIntervalMs = wire.Ms(s.interval)
	s.opt.Coalescing = s.interval > base
	if change != nil {
		s.appendChange(*change)
	}
	s.optMu.Unlock()
	if change != nil {
		s.log.Info("broadcast interval changed", "from", change.From, "to", change.To, "reason", change.Reason)
		s.publish(wire.EventOptimization, "", "", s.Optimization())
	}
}

// appendChange keeps the last changes; called with s.optMu held.
func (s *Store) appendChange(c wire.OptimizationChange) {
	s.opt.Changes = append(s.opt.Changes, c)
	if len(s.opt.Changes) > 20 {
		s.opt.Changes = append(s.opt.Changes[:0:0], s.opt.Changes[len(s.opt.Changes)-20:]...)
	}
}

// NoteChange records a change of an operating parameter made elsewhere (a config
// reload) and publishes an optimization event.
func (s *Store) NoteChange(parameter, from, to, reason string) {
	s.optMu.Lock()
	s.appendChange(wire.OptimizationChange{Time: wire.Now(), Parameter: parameter, From: from, To: to, Reason: reason})
	s.optMu.Unlock()
	s.publish(wire.EventOptimization, "", "", s.Optimization())
}

// sampleInterval is the agents' most common sample interval, in ms (0 if none known).
func sampleInterval(agents []merge.Agent) float64 {
	counts := map[float64]int{}
	best, n := 0.0, 0
	for _, a := range agents {
		if a.Snapshot == nil || a.Snapshot.Sample == nil {
			continue
		}
		iv := a.Snapshot.Sample.IntervalMs
		counts[iv]++
		if counts[iv] > n {
			best, n = iv, counts[iv]
		}
	}
	return best
}

// Optimization returns the live operating parameters.
func (s *Store) Optimization() wire.Optimization {
	s.optMu.Lock()
	o := s.opt
	o.Changes = slices.Clone(s.opt.Changes)
	s.optMu.Unlock()
	o.Subscribers = s.opts.Hub.Subscribers()
	o.SubscribersDropped = s.opts.Hub.Dropped()
	return o
}

// View returns the latest broadcast's view, without pods, agents and per-pod breakers.
func (s *Store) View() view.Cluster {
	s.viewMu.RLock()
	defer s.viewMu.RUnlock()
	return s.cluster
}

// Detailed is the view now, narrowed to a namespace and workload (empty: all), with
// pods, agents and, for the workloads kept, per-pod breaker detail: the polling
// endpoints' answer. Cluster totals and health stay cluster-wide.
func (s *Store) Detailed(namespace, workload string) view.Cluster {
	parts := merged(s.refresh())
	for i, p := range parts {
		w := p.Workload
		if (namespace != "" && w.Namespace != namespace) || (workload != "" && w.Name != workload) {
			continue
		}
		s.mu.Lock()
		if d := s.live.Detail(w.Namespace, w.Name); d != nil { // nil: gone meanwhile
			parts[i] = d
		}
		s.mu.Unlock()
	}
	c := merge.Assemble(merge.Input{Time: time.Now(), Mode: s.opts.Mode, Discovery: s.discovery(), Detail: true, Desired: s.desired()}, parts)
	merge.SetAlerts(&c, s.opts.Alerts.Firing())
	return merge.Filter(c, namespace, workload)
}

// Agents returns every agent's state, sorted by key.
func (s *Store) Agents() []view.AgentStatus {
	s.apply()
	s.mu.Lock()
	out := s.live.Statuses()
	s.mu.Unlock()
	out = append(out, merge.AbsentAgents(s.desired(), out)...)
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// Suggestions returns the latest suggestions and how many there are in all.
func (s *Store) Suggestions() ([]wire.Suggestion, int) {
	s.viewMu.RLock()
	defer s.viewMu.RUnlock()
	return s.suggestions, s.suggTotal
}

// SnapshotData returns the data of a stream snapshot event for the given filter,
// standing for the state as of hub event id lastID: it is merged fresh (and reused
// until another event is published), so that it includes every event up to that id.
//
// When many clients connect at once, each waits for the next snapshot merged after it
// asked, and shares it with every client that asked meanwhile: one merge serves them all
// (a snapshot of a large fleet is over a MiB of JSON).
func (s *Store) SnapshotData(namespace, workload string) ([]byte, error) {
	key := namespace + "\x00" + workload
	id := s.opts.Hub.LastID()
	s.snapMu.Lock()
	if c, ok := s.snapCache[key]; ok && c.id == id {
		s.snapMu.Unlock()
		return c.data, nil
	}
	f := s.snapNext[key]
	if f == nil {
		f = &snapFlight{done: make(chan struct{})}
		s.snapNext[key] = f
		if !s.snapRunning[key] {
			s.snapRunning[key] = true
			go s.snapshotFlights(namespace, workload, key)
		}
	}
	s.snapMu.Unlock()
	<-f.done
	return f.data, f.err
}

// snapFlight is one snapshot merge and the clients waiting for it.
type snapFlight struct {
	done chan struct{}
	data []byte
	err  error
}

// snapshotFlights merges snapshots for key as long as clients wait for one.
func (s *Store) snapshotFlights(namespace, workload, key string) {
	for {
		s.snapMu.Lock()
		f := s.snapNext[key]
		delete(s.snapNext, key)
		if f == nil {
			delete(s.snapRunning, key)
			s.snapMu.Unlock()
			return
		}
		s.snapMu.Unlock()
		id := s.opts.Hub.LastID()
		s.snapMerges.Add(1)
		f.data, f.err = s.snapshotData(namespace, workload)
		s.snapMu.Lock()
		if f.err == nil {
			if len(s.snapCache) > 64 {
				clear(s.snapCache)
			}
			s.snapCache[key] = cachedSnapshot{id: id, data: f.data}
		}
		s.snapMu.Unlock()
		close(f.done)
	}
}

func (s *Store) snapshotData(namespace, workload string) ([]byte, error) {
	parts := merged(s.refresh())
	s.mu.Lock()
	n := s.live.Len()
	s.mu.Unlock()
	c := merge.Assemble(merge.Input{Time: time.Now(), Mode: s.opts.Mode, Discovery: s.discovery(), Detail: n <= s.opts.SnapshotMaxPods, Desired: s.desired()}, parts)
	merge.SetAlerts(&c, s.opts.Alerts.Firing())
	c = merge.Filter(c, namespace, workload)
	data, dropped, err := wire.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode snapshot: %w", err)
	}
	if len(dropped) > 0 {
		s.log.Error("snapshot: figures that are not numbers left out", "fields", dropped)
	}
	return data, nil
}

// Counters are the store's running totals, for the aggregator's own metrics.
type Counters struct {
	EventsIn, Transitions, Broadcasts uint64
	LastBroadcast                     time.Duration
	Agents                            int
}

// Counters returns the running totals.
func (s *Store) Counters() Counters {
	s.mu.Lock()
	n := s.live.Len()
	s.mu.Unlock()
	return Counters{EventsIn: s.eventsIn.Load(), Transitions: s.transitions.Load(), Broadcasts: s.broadcasts.Load(),
		LastBroadcast: time.Duration(s.lastDur.Load()), Agents: n}
}

// TransitionsDropped counts transitions dropped because an agent's reports waited
// unapplied beyond the inbox's bound.
func (s *Store) TransitionsDropped() uint64 { return s.in.Dropped() }

// AgentCounts counts agents by state.
func (s *Store) AgentCounts() map[string]int {
	s.apply()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{view.AgentConnecting: 0, view.AgentConnected: 0, view.AgentUnavailable: 0, view.AgentMissing: 0}
	for _, st := range s.live.Statuses() {
		out[st.State]++
	}
	return out
}

// SetDeliver sets where changed alerts are delivered (Alertmanager), before Run.
func (s *Store) SetDeliver(f func(...wire.Alert)) { s.opts.Deliver = f }
