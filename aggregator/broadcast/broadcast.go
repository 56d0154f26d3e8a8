// Package broadcast assembles the cluster view from the fleet: every broadcast interval
// it merges the workloads' parts, evaluates the alert rules, publishes the metrics event,
// records history and widens the interval under load; on demand it builds the views the
// API serves (the view with per-pod detail, a new stream client's snapshot, the view at
// an instant).
package broadcast

import (
	"context"
	"fmt"
	"maps"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/faultline-dev/faultline/aggregator/alert"
	"github.com/faultline-dev/faultline/aggregator/discovery"
	"github.com/faultline-dev/faultline/aggregator/fleet"
	"github.com/faultline-dev/faultline/aggregator/history"
	"github.com/faultline-dev/faultline/aggregator/merge"
	"github.com/faultline-dev/faultline/aggregator/optimize"
	"github.com/faultline-dev/faultline/aggregator/rewind"
	"github.com/faultline-dev/faultline/aggregator/view"
	"github.com/faultline-dev/faultline/internal/health"
	"github.com/faultline-dev/faultline/internal/stream"
	"github.com/faultline-dev/faultline/internal/wire"
)

// Options configure a Broadcaster.
type Options struct {
	Mode    string
	Fleet   *fleet.Fleet
	Hub     *stream.Hub
	History *history.Store
	Alerts  *alert.Engine
	Deliver func(...wire.Alert) // Alertmanager delivery; nil: none
	// Discovery is discovery's state; nil: synced.
	Discovery func() discovery.Status
	// Replicas gives the desired pods of workloads when discovery knows them; nil: never.
	Replicas func() map[discovery.Workload]int
	// Rewind is the record of changes the view at an instant is built from, the one the
	// fleet records into.
	Rewind *rewind.Log
	Logger hclog.Logger

	// Optimizer sets the broadcast interval and learns how long each broadcast took.
	Optimizer *optimize.Optimizer

	MaxWorkloads int // in a metrics event (default 200)
	MaxTiles     int // in a metrics event (default 200)
	// SnapshotMaxPods bounds the pods and agents listed in a stream snapshot; a larger
	// fleet's rows are fetched from GET /api/v1/agents (default 1000).
	SnapshotMaxPods int
	// Health, when set, learns from Run whether the broadcast loop goes round.
	Health *health.Monitor
	// BeforeBroadcast, when set, is called as each broadcast of Run starts (tests stall
	// the loop with it).
	BeforeBroadcast func()
}

type wkey struct{ ns, workload string }

// seriesRefs are the history handles of one pod's or workload's series, with the object
// they were made for; broadcast goroutine only.
type seriesRefs struct {
	obj  string
	refs [len(podMetrics)]history.Ref
}

// Broadcaster runs the broadcast loop and builds the views.
type Broadcaster struct {
	opts  Options
	log   hclog.Logger
	fleet *fleet.Fleet

	viewMu  sync.RWMutex
	cluster view.Cluster // latest broadcast's view, without pods and agents

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

	// BroadcastTime observes how long each broadcast took. The aggregator registers it
	// with its own metrics.
	BroadcastTime prometheus.Histogram

	broadcasts atomic.Uint64
	lastDur    atomic.Int64 // ns
}

type cachedSnapshot struct {
	id   string
	data []byte
}

// New returns a broadcaster of the fleet's view.
func New(opts Options) *Broadcaster {
	if opts.MaxWorkloads <= 0 {
		opts.MaxWorkloads = 200
	}
	if opts.MaxTiles <= 0 {
		opts.MaxTiles = 200
	}
	if opts.SnapshotMaxPods <= 0 {
		opts.SnapshotMaxPods = 1000
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.Discovery == nil {
		opts.Discovery = func() discovery.Status { return discovery.Status{Mode: opts.Mode, Synced: true} }
	}
	b := &Broadcaster{
		opts: opts, log: opts.Logger, fleet: opts.Fleet,
		podRefs: map[string]*seriesRefs{}, wlRefs: map[wkey]*seriesRefs{},
		snapCache: map[string]cachedSnapshot{},
		snapNext:  map[string]*snapFlight{}, snapRunning: map[string]bool{},
		BroadcastTime: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "faultline_aggregator_broadcast_seconds",
			Help:    "Time each broadcast took: merge, alerts, metrics event, history.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}}),
	}
	b.cluster = merge.Cluster(merge.Input{Time: time.Now(), Mode: opts.Mode, Discovery: b.discovery()})
	for i, m := range clusterMetrics {
		b.clusterRefs[i] = opts.History.RefOf(history.ScopeCluster, "", m)
	}
	return b
}

func (b *Broadcaster) publish(name, ns, wl string, v any) {
	if _, err := b.opts.Hub.Publish(name, ns, wl, v); err != nil {
		b.log.Error("publish event", "event", name, "error", err)
	}
}

func (b *Broadcaster) discovery() view.Discovery {
	d := b.opts.Discovery()
	return view.Discovery{Mode: d.Mode, Synced: d.Synced, Stale: d.Stale, Error: d.Error, Since: wire.NewTime(d.Since), ReplicasError: d.ReplicasError}
}

// desired is the desired pods of workloads, when discovery knows them.
func (b *Broadcaster) desired() map[discovery.Workload]int {
	if b.opts.Replicas == nil {
		return nil
	}
	return b.opts.Replicas()
}

// Run broadcasts until ctx is done, and every minute forgets the history and the record
// of changes older than the retention.
func (b *Broadcaster) Run(ctx context.Context) {
	var beat *health.Beat
	if h := b.opts.Health; h != nil {
		beat = h.Beat("broadcast loop", "broadcast", beatWithin(b.opts.Optimizer.Interval()))
		defer beat.Stop()
	}
	t := time.NewTimer(b.opts.Optimizer.Interval())
	defer t.Stop()
	forget := time.NewTicker(time.Minute)
	defer forget.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-forget.C:
			b.opts.History.Forget(now)
			b.opts.Rewind.Forget(now)
		case now := <-t.C:
			if b.opts.BeforeBroadcast != nil {
				b.opts.BeforeBroadcast()
			}
			b.Broadcast(now)
			iv := b.opts.Optimizer.Interval()
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

// Broadcast merges, evaluates alerts, records history, publishes a metrics event, and
// adapts the broadcast interval to how long that took.
func (b *Broadcaster) Broadcast(now time.Time) {
	start := time.Now()
	parts := b.fleet.Parts(start) // stale against the clock the reports were received by
	desired := b.desired()
	c := merge.Assemble(merge.Input{Time: now, Mode: b.opts.Mode, Discovery: b.discovery(), Alerts: b.opts.Alerts.Firing(), Desired: desired}, fleet.Merged(parts))
	pods, agents := b.pods[:0], b.agentRows[:0]
	for _, p := range parts {
		pods = append(pods, p.Pods...)
		agents = append(agents, p.Agents...)
	}
	changed := b.opts.Alerts.Evaluate(alert.Input{Time: now, View: c, Pods: pods, Agents: agents})
	clear(pods) // keep the buffers, not what they point to
	clear(agents)
	b.pods, b.agentRows = pods[:0], agents[:0]
	merge.SetAlerts(&c, b.opts.Alerts.Firing())
	b.opts.Rewind.Broadcast(now, c.Discovery, changed, desired)
	for _, a := range changed {
		b.publish(wire.EventAlert, a.Target.Namespace, a.Target.Workload, a)
	}
	if b.opts.Deliver != nil && len(changed) > 0 {
		b.opts.Deliver(changed...)
	}
	m := merge.Metrics(c, b.opts.MaxWorkloads, b.opts.MaxTiles)
	b.publish(wire.EventMetrics, "", "", m)
	b.record(now, c, parts) // after publishing: clients need not wait for it

	b.viewMu.Lock()
	b.cluster = c
	b.viewMu.Unlock()
	b.broadcasts.Add(1)
	took := time.Since(start)
	b.BroadcastTime.Observe(took.Seconds())
	b.lastDur.Store(int64(took))
	b.opts.Optimizer.Adapt(took)
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
func (b *Broadcaster) record(now time.Time, c view.Cluster, parts []fleet.Part) {
	values := b.values[:0]
	add := func(r history.Ref, v *float64) {
		if v != nil {
			values = append(values, history.Value{Ref: r, Value: *v})
		}
	}
	f := func(v float64) *float64 { return &v }
	t := c.Totals
	var pr merge.Pressure // for the health score of a rewound view
	for _, p := range parts {
		pr.Sum, pr.Pods, pr.Hot = pr.Sum+p.Pressure.Sum, pr.Pods+p.Pressure.Pods, pr.Hot+p.Pressure.Hot
	}
	for i, v := range []float64{float64(c.Health.Score), t.CPUCores, float64(t.MemoryBytes), t.RequestsPerSec, t.ErrorsPerSec,
		float64(t.BreakersOpen), float64(t.AgentsUnavailable + t.AgentsMissing), pr.Sum / float64(max(pr.Pods, 1)), float64(pr.Hot)} {
		add(b.clusterRefs[i], f(v))
	}
	pods := 0
	for _, p := range parts {
		w := p.Workload
		r := b.wlRefs[wkey{w.Namespace, w.Name}]
		if r == nil {
			r = &seriesRefs{obj: scoped(w.Namespace, w.Name)}
			for i, m := range workloadMetrics {
				r.refs[i] = b.opts.History.RefOf(history.ScopeWorkload, r.obj, m)
			}
			b.wlRefs[wkey{w.Namespace, w.Name}] = r
		}
		add(r.refs[0], w.CPUCores.Sum)
		add(r.refs[1], w.MemoryBytes.Sum)
		add(r.refs[2], f(w.RequestsPerSec))
		add(r.refs[3], f(w.ErrorsPerSec))
		add(r.refs[4], f(float64(w.BreakersOpen)))
		for i := range p.Pods {
			pod := &p.Pods[i]
			pods++
			if pod.State != view.AgentConnected {
				continue
			}
			r := b.podRefs[p.Keys[i]]
			if r == nil || !sameObject(r.obj, pod.Namespace, pod.Pod) {
				r = &seriesRefs{obj: scoped(pod.Namespace, pod.Pod)}
				for k, m := range podMetrics {
					r.refs[k] = b.opts.History.RefOf(history.ScopePod, r.obj, m)
				}
				b.podRefs[p.Keys[i]] = r
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
	b.opts.History.Add(now, values)
	clear(values) // the handles hold objects that Forget may drop
	b.values = values[:0]
	if len(b.podRefs) > 2*pods+64 || len(b.wlRefs) > 2*len(parts)+64 { // forget agents and workloads that are gone
		live := make(map[string]bool, pods)
		wls := make(map[wkey]bool, len(parts))
		for _, p := range parts {
			wls[wkey{p.Workload.Namespace, p.Workload.Name}] = true
			for _, k := range p.Keys {
				live[k] = true
			}
		}
		maps.DeleteFunc(b.podRefs, func(k string, _ *seriesRefs) bool { return !live[k] })
		maps.DeleteFunc(b.wlRefs, func(k wkey, _ *seriesRefs) bool { return !wls[k] })
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

// View returns the latest broadcast's view, without pods, agents and per-pod breakers.
func (b *Broadcaster) View() view.Cluster {
	b.viewMu.RLock()
	defer b.viewMu.RUnlock()
	return b.cluster
}

// Detailed is the view now, narrowed to a namespace and workload (empty: all), with
// pods, agents and, for the workloads kept, per-pod breaker detail: the polling
// endpoints' answer. Cluster totals and health stay cluster-wide.
func (b *Broadcaster) Detailed(namespace, workload string) view.Cluster {
	parts := fleet.Merged(b.fleet.Parts(time.Now()))
	for i, p := range parts {
		w := p.Workload
		if (namespace != "" && w.Namespace != namespace) || (workload != "" && w.Name != workload) {
			continue
		}
		if d := b.fleet.Detail(w.Namespace, w.Name); d != nil { // nil: gone meanwhile
			parts[i] = d
		}
	}
	c := merge.Assemble(merge.Input{Time: time.Now(), Mode: b.opts.Mode, Discovery: b.discovery(), Detail: true, Desired: b.desired()}, parts)
	merge.SetAlerts(&c, b.opts.Alerts.Firing())
	return merge.Filter(c, namespace, workload)
}

// Agents returns every agent's state, with a row for each pod a workload's desired
// replicas call for beyond the agents present, sorted by key.
func (b *Broadcaster) Agents() []view.AgentStatus {
	out := b.fleet.Statuses()
	out = append(out, merge.AbsentAgents(b.desired(), out)...)
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// SnapshotData returns the data of a stream snapshot event for the given filter,
// standing for the state as of hub event id lastID: it is merged fresh (and reused
// until another event is published), so that it includes every event up to that id.
//
// When many clients connect at once, each waits for the next snapshot merged after it
// asked, and shares it with every client that asked meanwhile: one merge serves them all
// (a snapshot of a large fleet is over a MiB of JSON).
func (b *Broadcaster) SnapshotData(namespace, workload string) ([]byte, error) {
	key := namespace + "\x00" + workload
	id := b.opts.Hub.LastID()
	b.snapMu.Lock()
	if c, ok := b.snapCache[key]; ok && c.id == id {
		b.snapMu.Unlock()
		return c.data, nil
	}
	f := b.snapNext[key]
	if f == nil {
		f = &snapFlight{done: make(chan struct{})}
		b.snapNext[key] = f
		if !b.snapRunning[key] {
			b.snapRunning[key] = true
			go b.snapshotFlights(namespace, workload, key)
		}
	}
	b.snapMu.Unlock()
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
func (b *Broadcaster) snapshotFlights(namespace, workload, key string) {
	for {
		b.snapMu.Lock()
		f := b.snapNext[key]
		delete(b.snapNext, key)
		if f == nil {
			delete(b.snapRunning, key)
			b.snapMu.Unlock()
			return
		}
		b.snapMu.Unlock()
		id := b.opts.Hub.LastID()
		b.snapMerges.Add(1)
		f.data, f.err = b.snapshotData(namespace, workload)
		b.snapMu.Lock()
		if f.err == nil {
			if len(b.snapCache) > 64 {
				clear(b.snapCache)
			}
			b.snapCache[key] = cachedSnapshot{id: id, data: f.data}
		}
		b.snapMu.Unlock()
		close(f.done)
	}
}

func (b *Broadcaster) snapshotData(namespace, workload string) ([]byte, error) {
	parts := fleet.Merged(b.fleet.Parts(time.Now()))
	n := 0
	for _, p := range parts {
		n += len(p.Agents)
	}
	c := merge.Assemble(merge.Input{Time: time.Now(), Mode: b.opts.Mode, Discovery: b.discovery(), Detail: n <= b.opts.SnapshotMaxPods, Desired: b.desired()}, parts)
	merge.SetAlerts(&c, b.opts.Alerts.Firing())
	c = merge.Filter(c, namespace, workload)
	data, dropped, err := wire.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode snapshot: %w", err)
	}
	if len(dropped) > 0 {
		b.log.Error("snapshot: figures that are not numbers left out", "fields", dropped)
	}
	return data, nil
}

// Counters are the broadcasts so far and how long the last one took.
func (b *Broadcaster) Counters() (broadcasts uint64, last time.Duration) {
	return b.broadcasts.Load(), time.Duration(b.lastDur.Load())
}
