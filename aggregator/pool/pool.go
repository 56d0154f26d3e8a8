// Package pool keeps one long-lived stream open to every agent that discovery names: the
// agents' lifecycle. It resumes each stream by Last-Event-ID after a break, backs off
// with jitter while an agent cannot be reached, tells the transport how long an agent may
// stay silent, checks and decodes each event, and reports each agent's state
// (connecting, connected, unavailable with the reason, missing) as data. A misbehaving
// agent is marked unavailable; it never takes the pool down. Opening and reading the
// streams is the transport's job (aggregator/reader).
package pool

import (
	"context"
	"errors"
	"maps"
	"os"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/faultline-dev/faultline/aggregator/discovery"
	"github.com/faultline-dev/faultline/aggregator/reader"
	"github.com/faultline-dev/faultline/aggregator/view"
	"github.com/faultline-dev/faultline/internal/wire"
)

// Sink receives what the pool learns. Calls for one agent come one at a time, in the
// order the agent sent them; calls for different agents may come concurrently. Once the
// pool has stopped an agent (removed by discovery, or the pool ending), no call about it
// follows.
type Sink interface {
	// Status is called on every change of an agent's state.
	Status(st view.AgentStatus)
	// Snapshot is called with an agent's whole state: full is true for a snapshot
	// event (after a connect or a resync) and false for a metrics event. snap is the
	// sink's to keep; nothing changes it after.
	Snapshot(key string, snap *wire.Snapshot, full bool)
	// Transition is called the moment an agent reports a breaker transition.
	Transition(key string, tr wire.Transition)
	// Removed is called when discovery no longer names the agent.
	Removed(key string)
}

// Transport opens the agents' event streams and reads them (aggregator/reader).
type Transport interface {
	// Open connects to the agent at url and asks for its event stream, resuming after
	// lastID; from then on each event goes to r, until the stream ends.
	Open(ctx context.Context, url, lastID string, r reader.Receiver) (reader.Stream, error)
}

var _ Transport = (*reader.Reader)(nil)

// Options tune the pool; zero values take the defaults.
type Options struct {
	Logger      hclog.Logger
	BackoffBase time.Duration // first retry delay (default 250 ms)
	BackoffMax  time.Duration // retry delay cap (default 30 s)
	// StallFloor is the shortest stall timeout; the timeout is twice the agent's sample
	// interval, but never below this (default 1 s).
	StallFloor time.Duration
	// DefaultInterval stands for the agent's interval until it has told us (default 1 s).
	DefaultInterval time.Duration
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	if o.BackoffBase <= 0 {
		o.BackoffBase = 250 * time.Millisecond
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = 30 * time.Second
	}
	if o.StallFloor <= 0 {
		o.StallFloor = time.Second
	}
	if o.DefaultInterval <= 0 {
		o.DefaultInterval = time.Second
	}
	return o
}

// Pool manages the agents.
type Pool struct {
	sink      Sink
	transport Transport
	opts      Options

	mu     sync.Mutex
	agents map[string]*agent
	gone   gone // breaker states of dropped targets, by key
	wg     sync.WaitGroup

	dropMu  sync.Mutex
	dropped map[string]uint64 // streams dropped for misbehaving, by reason
}

// Reasons a stream is dropped as misbehaving, as Dropped counts them.
const (
	DropTooLarge = "event_too_large" // an event over MaxEventBytes
	DropGarbage  = "not_sse"         // more than MaxGarbageBytes that are no SSE
	DropInvalid  = "invalid_event"   // an event that does not decode or fails the wire's checks
	DropChunked  = "bad_chunking"    // malformed chunked transfer encoding
	DropStalled  = "stalled"         // no event within the stall timeout
)

// Dropped counts the streams dropped because the agent misbehaved or stalled, by reason.
func (p *Pool) Dropped() map[string]uint64 {
	p.dropMu.Lock()
	defer p.dropMu.Unlock()
	return maps.Clone(p.dropped)
}

func (p *Pool) countDrop(err error) {
	var reason string
	switch {
	case errors.Is(err, reader.ErrTooLarge):
		reason = DropTooLarge
	case errors.Is(err, reader.ErrGarbage):
		reason = DropGarbage
	case errors.Is(err, errInvalid):
		reason = DropInvalid
	case errors.Is(err, reader.ErrChunked):
		reason = DropChunked
	case errors.Is(err, os.ErrDeadlineExceeded):
		reason = DropStalled
	default:
		return
	}
	p.dropMu.Lock()
	p.dropped[reason]++
	p.dropMu.Unlock()
}

// New returns a pool reporting to sink, reading the agents' streams with transport.
func New(sink Sink, transport Transport, opts Options) *Pool {
	return &Pool{sink: sink, transport: transport, opts: opts.withDefaults(), agents: make(map[string]*agent), dropped: map[string]uint64{}}
}

// Run applies every target set received until ctx is done, then closes every
// connection and returns once every agent's stream has ended.
func (p *Pool) Run(ctx context.Context, targets <-chan []discovery.Target) {
	defer p.wg.Wait()
	for {
		select {
		case <-ctx.Done():
			p.mu.Lock()
			for _, a := range p.agents {
				a.stop()
			}
			p.mu.Unlock()
			return
		case set := <-targets:
			p.Update(ctx, set)
		}
	}
}

// Update makes the pool's agents match set: new targets are connected, vanished ones
// dropped at once, and a target whose URL changed is reconnected.
func (p *Pool) Update(ctx context.Context, set []discovery.Target) {
	p.mu.Lock()
	defer p.mu.Unlock()
	seen := make(map[string]bool, len(set))
	for _, t := range set {
		if t.Key == "" || seen[t.Key] {
			continue
		}
		seen[t.Key] = true
		if a, ok := p.agents[t.Key]; ok {
			if a.target.URL == t.URL && a.target.Missing == t.Missing {
				a.setTarget(t)
				continue
			}
			p.drop(a)
		}
		a := newAgent(p, t)
		a.states, a.synced = p.gone.take(t.Key)
		p.agents[t.Key] = a
		a.start(ctx)
	}
	for key, a := range p.agents {
		if !seen[key] && !a.local {
			p.drop(a)
			p.sink.Removed(key)
		}
	}
}

// drop stops an agent and keeps the breaker states it knew, so that if its target comes
// back (a pod that was not ready for a while: its agent container restarted, say) the
// first snapshot is compared with them, and a breaker that changed in the gap is still
// reported as a transition. Called with p.mu held.
func (p *Pool) drop(a *agent) {
	a.stop()
	delete(p.agents, a.target.Key)
	a.sinkMu.Lock() // once stopped, the reader no longer touches the states
	if a.synced {
		p.gone.put(a.target.Key, a.states)
	}
	a.sinkMu.Unlock()
}

// maxGone bounds the dropped targets whose breaker states are kept, oldest forgotten
// first.
const maxGone = 1024

// gone holds the breaker states of the latest maxGone dropped targets.
type gone struct {
	kept  map[string]keptStates
	order []keptKey // oldest first; an entry whose seq is not kept's was taken or put again
	seq   uint64
}

type keptStates struct {
	seq    uint64
	states map[string]wire.BreakerState
}

type keptKey struct {
	key string
	seq uint64
}

func (g *gone) put(key string, states map[string]wire.BreakerState) {
	if g.kept == nil {
		g.kept = map[string]keptStates{}
	}
	g.seq++
	g.kept[key] = keptStates{g.seq, states}
	g.order = append(g.order, keptKey{key, g.seq})
	for len(g.kept) > maxGone {
		k := g.order[0]
		g.order = g.order[1:]
		if g.kept[k.key].seq == k.seq {
			delete(g.kept, k.key)
		}
	}
	if len(g.order) > 2*maxGone { // mostly entries already taken
		g.order = slices.DeleteFunc(g.order, func(k keptKey) bool { return g.kept[k.key].seq != k.seq })
	}
}

// take returns and forgets the states kept for key; ok is false when none are.
func (g *gone) take(key string) (states map[string]wire.BreakerState, ok bool) {
	k, ok := g.kept[key]
	delete(g.kept, key)
	return k.states, ok
}

// Statuses returns every agent's state, sorted by key.
func (p *Pool) Statuses() []view.AgentStatus {
	p.mu.Lock()
	out := make([]view.AgentStatus, 0, len(p.agents))
	for _, a := range p.agents {
		out = append(out, a.status())
	}
	p.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// Connected returns the base URLs of the agents connected now, keyed by agent key.
func (p *Pool) Connected() map[string]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]string)
	for key, a := range p.agents {
		if st := a.status(); st.State == view.AgentConnected && st.URL != "" {
			out[key] = st.URL
		}
	}
	return out
}

// Local is an agent that runs inside this process (the aggregator's --local-agent): it
// reports through the pool like a connected agent, without a connection.
type Local struct{ a *agent }

// AddLocal registers an in-process agent under key, shown with url.
func (p *Pool) AddLocal(key, url string) *Local {
	p.mu.Lock()
	defer p.mu.Unlock()
	a := newAgent(p, discovery.Target{Key: key, URL: url})
	a.local = true
	p.agents[key] = a
	return &Local{a: a}
}

// Snapshot reports the local agent's state; the first one makes it connected.
func (l *Local) Snapshot(snap *wire.Snapshot) {
	l.a.noteIdentity(&snap.Agent)
	l.a.setState(view.AgentConnected, "")
	l.a.p.sink.Snapshot(l.a.target.Key, snap, false)
}

// Unavailable reports that the local agent cannot sample.
func (l *Local) Unavailable(reason string) { l.a.setState(view.AgentUnavailable, reason) }
