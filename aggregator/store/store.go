// Package store holds what the pool learns from the agents (each agent's state and
// latest snapshot), publishes the events that must go out at once (circuit-breaker,
// agent), and runs the broadcast loop: merge, evaluate alerts, record history, publish
// metrics, compute suggestions, and widen the broadcast interval under load.
package store

import (
	"context"
	"encoding/json"
	"fmt"
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
	"github.com/faultline-dev/faultline/aggregator/suggest"
	"github.com/faultline-dev/faultline/aggregator/view"
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
	Logger    hclog.Logger

	BroadcastInterval time.Duration // base interval (default 1 s)
	BroadcastBudget   time.Duration // slower broadcasts widen the interval (default 250 ms)
	MaxWorkloads      int           // in a metrics event (default 200)
	MaxTiles          int           // in a metrics event (default 200)
	// SnapshotMaxPods bounds the pods and agents listed in a stream snapshot; a larger
	// fleet's rows are fetched from GET /api/v1/agents (default 1000).
	SnapshotMaxPods int
	// SuggestEvery is how often suggestions are recomputed (default 10 s).
	SuggestEvery time.Duration
}

// MaxCoalescing bounds how far the broadcast interval may widen: 8x the base.
const MaxCoalescing = 8

// flip log bounds.
const maxFlips = 32

type entry struct {
	status view.AgentStatus
	snap   *wire.Snapshot
}

type podSeries struct {
	key                           string // namespace/pod they were built for
	cpu, mem, rps, eps, throttled string
}

type flipKey struct{ agent, breaker string }

type wkey struct{ ns, workload string }

func workloadKey(st view.AgentStatus) wkey { return wkey{st.Namespace, merge.WorkloadOf(st)} }

// index files e under its workload after its status changed; called with s.mu held.
func (s *Store) index(key string, e *entry, old view.AgentStatus) {
	ok, nk := workloadKey(old), workloadKey(e.status)
	if ok == nk && s.byWorkload[nk][key] == e {
		return
	}
	if m := s.byWorkload[ok]; m != nil {
		delete(m, key)
		if len(m) == 0 {
			delete(s.byWorkload, ok)
		}
	}
	m := s.byWorkload[nk]
	if m == nil {
		m = map[string]*entry{}
		s.byWorkload[nk] = m
	}
	m[key] = e
}

type flipLog struct {
	ns, workload, pod string
	times             []time.Time
}

// Store is the aggregator's state.
type Store struct {
	opts Options
	log  hclog.Logger

	mu         sync.Mutex
	agents     map[string]*entry
	byWorkload map[wkey]map[string]*entry // the agents of each workload, for transitions
	flips      map[flipKey]*flipLog

	viewMu      sync.RWMutex
	cluster     view.Cluster // latest merge, with pods and agents, without per-pod breakers
	suggestions []wire.Suggestion
	suggTotal   int
	lastSuggest time.Time

	optMu    sync.Mutex
	opt      wire.Optimization
	interval time.Duration
	ewma     float64 // ms

	snapMu    sync.Mutex
	snapCache map[string]cachedSnapshot

	series map[string]podSeries // history names by agent key; broadcast goroutine only

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
	if opts.Discovery == nil {
		opts.Discovery = func() discovery.Status { return discovery.Status{Mode: opts.Mode, Synced: true} }
	}
	s := &Store{
		opts: opts, log: opts.Logger, agents: map[string]*entry{}, byWorkload: map[wkey]map[string]*entry{}, flips: map[flipKey]*flipLog{},
		interval: opts.BroadcastInterval, snapCache: map[string]cachedSnapshot{},
		suggestions: []wire.Suggestion{},
		TransitionDelay: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "faultline_aggregator_transition_delay_seconds",
			Help:    "Time from an agent seeing a breaker transition to the aggregator publishing it (agent and aggregator clocks).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}}),
		BroadcastTime: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "faultline_aggregator_broadcast_seconds",
			Help:    "Time each broadcast took: merge, alerts, metrics event, history.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}}),
	}
	s.opt = wire.Optimization{
		V: wire.Version, BroadcastIntervalMs: wire.Ms(opts.BroadcastInterval), BaseBroadcastMs: wire.Ms(opts.BroadcastInterval),
		HistoryRetentionMs: wire.Ms(opts.History.Retention()), SubscriberBuffer: opts.Hub.Options().SubscriberBuffer,
		BroadcastBudgetMs: wire.Ms(opts.BroadcastBudget), Changes: []wire.OptimizationChange{},
	}
	s.cluster = merge.Cluster(merge.Input{Time: time.Now(), Mode: opts.Mode, Discovery: s.discovery(), Detail: true})
	return s
}

// Status records an agent's new state and publishes it as an agent event.
func (s *Store) Status(st view.AgentStatus) {
	s.mu.Lock()
	e := s.agents[st.Key]
	if e == nil {
		e = &entry{}
		s.agents[st.Key] = e
	}
	if st.LastSeen.Before(e.status.LastSeen.Time) {
		st.LastSeen = e.status.LastSeen
	}
	old := e.status
	e.status = st
	s.index(st.Key, e, old)
	s.mu.Unlock()
	s.publish(wire.EventAgent, st.Namespace, merge.WorkloadOf(st), st)
}

// Snapshot records an agent's latest state.
func (s *Store) Snapshot(key string, snap *wire.Snapshot, full bool) {
	s.eventsIn.Add(1)
	s.mu.Lock()
	e := s.agents[key]
	if e == nil {
		e = &entry{status: view.AgentStatus{V: wire.Version, Key: key, State: view.AgentConnected}}
		s.agents[key] = e
		s.index(key, e, e.status)
	}
	e.snap = snap
	e.status.LastSeen = wire.Now()
	s.mu.Unlock()
}

// Transition records a breaker transition in the agent's snapshot and publishes a
// circuit-breaker event at once, with the workload's tile after the change.
func (s *Store) Transition(key string, tr wire.Transition) {
	s.eventsIn.Add(1)
	s.transitions.Add(1)
	now := time.Now()
	s.mu.Lock()
	e := s.agents[key]
	if e == nil {
		s.mu.Unlock()
		return
	}
	if e.snap != nil {
		// Copy on write: merges in progress hold the old snapshot.
		next := *e.snap
		next.Breakers = make([]wire.Breaker, 0, len(e.snap.Breakers)+1)
		found := false
		for _, b := range e.snap.Breakers {
			if b.Name == tr.Breaker.Name {
				b, found = tr.Breaker, true
			}
			next.Breakers = append(next.Breakers, b)
		}
		if !found {
			next.Breakers = append(next.Breakers, tr.Breaker)
		}
		e.snap = &next
	}
	st := e.status
	wl := merge.WorkloadOf(st)
	fk := flipKey{key, tr.Breaker.Name}
	f := s.flips[fk]
	if f == nil {
		f = &flipLog{}
		s.flips[fk] = f
	}
	f.ns, f.workload, f.pod = st.Namespace, wl, st.Pod
	f.times = append(f.times, now)
	if len(f.times) > maxFlips {
		f.times = append(f.times[:0], f.times[len(f.times)-maxFlips:]...)
	}
	var peers []merge.Agent
	for _, o := range s.byWorkload[wkey{st.Namespace, wl}] {
		peers = append(peers, merge.Agent{Status: o.status, Snapshot: o.snap})
	}
	s.mu.Unlock()
	ev := view.BreakerEvent{
		V: wire.Version, Namespace: st.Namespace, Workload: wl, Pod: st.Pod, Transition: tr,
		Tile: merge.Tile(st.Namespace, wl, tr.Breaker.Name, peers),
	}
	s.publish(wire.EventCircuitBreaker, st.Namespace, wl, ev)
	if !tr.Time.IsZero() {
		if d := time.Since(tr.Time.Time); d >= 0 {
			s.TransitionDelay.Observe(d.Seconds())
		}
	}
}

// Removed forgets an agent that discovery dropped.
func (s *Store) Removed(key string) {
	s.mu.Lock()
	e := s.agents[key]
	delete(s.agents, key)
	if e != nil {
		if m := s.byWorkload[workloadKey(e.status)]; m != nil {
			delete(m, key)
			if len(m) == 0 {
				delete(s.byWorkload, workloadKey(e.status))
			}
		}
	}
	for k := range s.flips {
		if k.agent == key {
			delete(s.flips, k)
		}
	}
	s.mu.Unlock()
	if e != nil {
		st := e.status
		st.State, st.Reason, st.Since = view.AgentRemoved, "no longer discovered", wire.Now()
		s.publish(wire.EventAgent, st.Namespace, merge.WorkloadOf(st), st)
	}
}

func (s *Store) publish(name, ns, wl string, v any) {
	if _, err := s.opts.Hub.Publish(name, ns, wl, v); err != nil {
		s.log.Error("publish event", "event", name, "error", err)
	}
}

func (s *Store) discovery() view.Discovery {
	d := s.opts.Discovery()
	return view.Discovery{Mode: d.Mode, Synced: d.Synced, Stale: d.Stale, Error: d.Error, Since: wire.NewTime(d.Since)}
}

// inputs copies the agents for a merge.
func (s *Store) inputs() []merge.Agent {
	s.mu.Lock()
	out := make([]merge.Agent, 0, len(s.agents))
	for _, e := range s.agents {
		out = append(out, merge.Agent{Status: e.status, Snapshot: e.snap})
	}
	s.mu.Unlock()
	return out
}

// Run broadcasts until ctx is done.
func (s *Store) Run(ctx context.Context) {
	t := time.NewTimer(s.currentInterval())
	defer t.Stop()
	forget := time.NewTicker(time.Minute)
	defer forget.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-forget.C:
			s.opts.History.Forget(time.Now())
		case now := <-t.C:
			s.Broadcast(now)
			t.Reset(s.currentInterval())
		}
	}
}

func (s *Store) currentInterval() time.Duration {
	s.optMu.Lock()
	defer s.optMu.Unlock()
	return s.interval
}

// Broadcast merges, evaluates alerts, records history, publishes a metrics event, and
// adapts the broadcast interval to how long that took.
func (s *Store) Broadcast(now time.Time) {
	start := time.Now()
	agents := s.inputs()
	c := merge.Cluster(merge.Input{Time: now, Mode: s.opts.Mode, Discovery: s.discovery(), Agents: agents, Alerts: s.opts.Alerts.Firing(), Detail: true, Unsorted: true})
	changed := s.opts.Alerts.Evaluate(alert.Input{Time: now, View: c, Pods: c.Pods, Agents: c.Agents})
	merge.SetAlerts(&c, s.opts.Alerts.Firing())
	for _, a := range changed {
		s.publish(wire.EventAlert, a.Target.Namespace, a.Target.Workload, a)
	}
	if s.opts.Deliver != nil && len(changed) > 0 {
		s.opts.Deliver(changed...)
	}
	m := merge.Metrics(c, s.opts.MaxWorkloads, s.opts.MaxTiles)
	s.publish(wire.EventMetrics, "", "", m)
	s.record(now, c, agents) // after publishing: clients need not wait for it

	s.viewMu.Lock()
	s.cluster = c
	due := now.Sub(s.lastSuggest) >= s.opts.SuggestEvery
	s.viewMu.Unlock()
	if due {
		s.suggest(now, agents)
	}
	s.broadcasts.Add(1)
	took := time.Since(start)
	s.BroadcastTime.Observe(took.Seconds())
	s.adapt(took, agents)
}

func (s *Store) suggest(now time.Time, agents []merge.Agent) {
	s.mu.Lock()
	flips := make([]suggest.Flips, 0, len(s.flips))
	for k, f := range s.flips {
		flips = append(flips, suggest.Flips{Namespace: f.ns, Workload: f.workload, Pod: f.pod, Breaker: k.breaker, Times: slices.Clone(f.times)})
	}
	s.mu.Unlock()
	list, total := suggest.Compute(suggest.Input{Time: now, Agents: agents, Flips: flips, History: s.opts.History})
	iv := sampleInterval(agents)
	s.optMu.Lock()
	s.opt.SampleIntervalMs = iv
	s.optMu.Unlock()
	s.viewMu.Lock()
	s.suggestions, s.suggTotal, s.lastSuggest = list, total, now
	s.viewMu.Unlock()
}

// record adds the view's figures to the history. It runs on the broadcast goroutine
// only and takes no lock that the agents' streams need.
func (s *Store) record(now time.Time, c view.Cluster, agents []merge.Agent) {
	samples := make([]history.Sample, 0, 8+len(c.Workloads)*5+len(c.Pods)*5)
	add := func(name string, v *float64) {
		if v != nil {
			samples = append(samples, history.Sample{Name: name, Value: *v})
		}
	}
	f := func(v float64) *float64 { return &v }
	t := c.Totals
	add("cluster:health", f(float64(c.Health.Score)))
	add("cluster:cpu_cores", f(t.CPUCores))
	add("cluster:memory_bytes", f(float64(t.MemoryBytes)))
	add("cluster:requests_per_sec", f(t.RequestsPerSec))
	add("cluster:errors_per_sec", f(t.ErrorsPerSec))
	add("cluster:breakers_open", f(float64(t.BreakersOpen)))
	add("cluster:agents_unavailable", f(float64(t.AgentsUnavailable+t.AgentsMissing)))
	for _, w := range c.Workloads {
		obj := w.Name
		if w.Namespace != "" {
			obj = w.Namespace + "/" + w.Name
		}
		add(history.Name(history.ScopeWorkload, obj, "cpu_cores"), w.CPUCores.Sum)
		add(history.Name(history.ScopeWorkload, obj, "memory_bytes"), w.MemoryBytes.Sum)
		add(history.Name(history.ScopeWorkload, obj, "requests_per_sec"), f(w.RequestsPerSec))
		add(history.Name(history.ScopeWorkload, obj, "errors_per_sec"), f(w.ErrorsPerSec))
		add(history.Name(history.ScopeWorkload, obj, "breakers_open"), f(float64(w.BreakersOpen)))
	}
	keys := make(map[string]string, len(agents)) // agent id and pod -> key
	for _, a := range agents {
		id := a.Status.Key
		if a.Status.Agent != nil {
			id = a.Status.Agent.ID
		}
		keys[id+"\x00"+a.Status.Pod] = a.Status.Key
	}
	if s.series == nil {
		s.series = map[string]podSeries{}
	}
	for _, p := range c.Pods {
		if p.State != view.AgentConnected {
			continue
		}
		key, ok := keys[p.Agent+"\x00"+p.Pod]
		if !ok {
			continue
		}
		obj := p.Pod
		if p.Namespace != "" {
			obj = p.Namespace + "/" + p.Pod
		}
		names := s.series[key]
		if names.key != obj {
			names = podSeries{key: obj,
				cpu: history.Name(history.ScopePod, obj, "cpu_cores"), mem: history.Name(history.ScopePod, obj, "memory_bytes"),
				rps: history.Name(history.ScopePod, obj, "requests_per_sec"), eps: history.Name(history.ScopePod, obj, "errors_per_sec"),
				throttled: history.Name(history.ScopePod, obj, "cpu_throttled_percent")}
			s.series[key] = names
		}
		add(names.cpu, p.CPUCores)
		if p.MemoryBytes != nil {
			add(names.mem, f(float64(*p.MemoryBytes)))
		}
		add(names.rps, p.RequestsPerSec)
		add(names.eps, p.ErrorsPerSec)
		add(names.throttled, p.ThrottledPct)
	}
	if len(s.series) > 2*len(agents)+64 { // forget agents that are gone
		live := make(map[string]bool, len(agents))
		for _, a := range agents {
			live[a.Status.Key] = true
		}
		for k := range s.series {
			if !live[k] {
				delete(s.series, k)
			}
		}
	}
	s.opts.History.Record(now, samples)
}

// adapt widens the broadcast interval while broadcasts take longer than the budget and
// narrows it back once they take less than half of it; every change is an optimization
// event.
func (s *Store) adapt(took time.Duration, agents []merge.Agent) {
	s.lastDur.Store(int64(took))
	ms := wire.Ms(took)
	s.optMu.Lock()
	if s.ewma == 0 {
		s.ewma = ms
	} else {
		s.ewma = 0.7*s.ewma + 0.3*ms
	}
	s.opt.LastBroadcastMs = ms
	budget := wire.Ms(s.opts.BroadcastBudget)
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

// View returns the latest merged view (pods and agents unsorted, no per-pod breakers).
func (s *Store) View() view.Cluster {
	s.viewMu.RLock()
	defer s.viewMu.RUnlock()
	return s.cluster
}

// Detailed merges now with per-pod breaker detail, for the polling endpoints.
func (s *Store) Detailed() view.Cluster {
	c := merge.Cluster(merge.Input{Time: time.Now(), Mode: s.opts.Mode, Discovery: s.discovery(), Agents: s.inputs(), Detail: true, PerPod: true})
	merge.SetAlerts(&c, s.opts.Alerts.Firing())
	return c
}

// Agents returns every agent's state, sorted by key.
func (s *Store) Agents() []view.AgentStatus {
	s.mu.Lock()
	out := make([]view.AgentStatus, 0, len(s.agents))
	for _, e := range s.agents {
		out = append(out, e.status)
	}
	s.mu.Unlock()
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
func (s *Store) SnapshotData(namespace, workload string) ([]byte, error) {
	key := namespace + "\x00" + workload
	id := s.opts.Hub.LastID()
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	if c, ok := s.snapCache[key]; ok && c.id == id {
		return c.data, nil
	}
	agents := s.inputs()
	c := merge.Cluster(merge.Input{Time: time.Now(), Mode: s.opts.Mode, Discovery: s.discovery(), Agents: agents, Detail: len(agents) <= s.opts.SnapshotMaxPods})
	merge.SetAlerts(&c, s.opts.Alerts.Firing())
	c = merge.Filter(c, namespace, workload)
	data, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode snapshot: %w", err)
	}
	if len(s.snapCache) > 64 {
		clear(s.snapCache)
	}
	s.snapCache[key] = cachedSnapshot{id: id, data: data}
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
	n := len(s.agents)
	s.mu.Unlock()
	return Counters{EventsIn: s.eventsIn.Load(), Transitions: s.transitions.Load(), Broadcasts: s.broadcasts.Load(),
		LastBroadcast: time.Duration(s.lastDur.Load()), Agents: n}
}

// AgentCounts counts agents by state.
func (s *Store) AgentCounts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{view.AgentConnecting: 0, view.AgentConnected: 0, view.AgentUnavailable: 0, view.AgentMissing: 0}
	for _, e := range s.agents {
		out[e.status.State]++
	}
	return out
}

// SetDeliver sets where changed alerts are delivered (Alertmanager), before Run.
func (s *Store) SetDeliver(f func(...wire.Alert)) { s.opts.Deliver = f }
