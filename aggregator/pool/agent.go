package pool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/faultline-dev/faultline/aggregator/decode"
	"github.com/faultline-dev/faultline/aggregator/discovery"
	"github.com/faultline-dev/faultline/aggregator/reader"
	"github.com/faultline-dev/faultline/aggregator/view"
	"github.com/faultline-dev/faultline/injector/api/v1alpha1"
	"github.com/faultline-dev/faultline/internal/backoff"
	"github.com/faultline-dev/faultline/internal/cause"
	"github.com/faultline-dev/faultline/internal/wire"
)

// errStopped ends the stream of an agent that was stopped.
var errStopped = errors.New("agent stopped")

// errInvalid ends a stream with an event that does not decode, or fails the wire's checks
// of names, identity and figures (the checks the agent applies to what it is sent).
var errInvalid = errors.New("invalid event")

// agent is one target and its connection. No goroutine waits on its behalf: a connect
// runs in a short-lived goroutine, an open stream is read by the transport, and a retry
// waits on a timer.
type agent struct {
	p     *Pool
	local bool

	mu     sync.Mutex // guards target and st
	target discovery.Target
	st     view.AgentStatus

	ctx    context.Context
	cancel context.CancelFunc

	// sinkMu serialises what the agent reports with stop: once stop has returned,
	// nothing more about the agent reaches the sink.
	sinkMu  sync.Mutex
	stopped bool

	life     sync.Mutex    // guards the fields below
	cur      reader.Stream // the stream being read; nil between attempts
	timer    *time.Timer
	attempt  int
	answered bool
	finished sync.Once

	// Owned by the stream's reader (one at a time, in order); lastID is also read under
	// sinkMu by a connect.
	lastID   string
	states   map[string]wire.BreakerState // last known state of each breaker, from snapshots and transitions
	synced   bool                         // a snapshot has been seen
	interval atomic.Int64
	sizes    decode.Sizes // what the last snapshot took: the next one's memory
}

func newAgent(p *Pool, t discovery.Target) *agent {
	a := &agent{p: p, target: t}
	a.st = view.AgentStatus{V: wire.Version, Key: t.Key, URL: t.URL, Since: wire.Now()}
	a.applyTarget(t)
	return a
}

// setTarget takes new metadata for the same endpoint (a pod relabelled, say).
func (a *agent) setTarget(t discovery.Target) {
	a.mu.Lock()
	a.target = t
	a.applyTarget(t)
	a.mu.Unlock()
}

// applyTarget copies the target's identity into the status; called with a.mu held or
// before the agent is shared.
func (a *agent) applyTarget(t discovery.Target) {
	a.st.Pod, a.st.Namespace, a.st.Workload, a.st.Node, a.st.Profile = t.Pod, t.Namespace, t.Workload, t.Node, t.Profile
	a.st.AlertThresholds = nil
	if t.AlertThresholds != "" {
		a.st.AlertThresholds, _ = v1alpha1.ParseAlertThresholds(t.AlertThresholds) // discovery checked it
	}
	if a.st.Agent != nil {
		fillIdentity(&a.st, a.st.Agent)
	}
}

// fillIdentity completes what discovery did not know (static mode knows only a URL)
// from the identity the agent reports.
func fillIdentity(st *view.AgentStatus, id *wire.Agent) {
	if st.Pod == "" {
		st.Pod = id.Pod
		if st.Pod == "" {
			st.Pod = id.ID
		}
	}
	if st.Namespace == "" {
		st.Namespace = id.Namespace
	}
	if st.Workload == "" {
		st.Workload = id.Workload
	}
	if st.Node == "" {
		st.Node = id.Node
	}
}

func (a *agent) status() view.AgentStatus {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.st
}

// setState changes the state and reports it. An unavailable agent that stays
// unavailable keeps its Since; only the reason is refreshed.
func (a *agent) setState(state, reason string) {
	a.sinkMu.Lock()
	defer a.sinkMu.Unlock()
	if a.stopped {
		return
	}
	a.mu.Lock()
	if a.st.State == state && a.st.Reason == reason {
		a.mu.Unlock()
		return
	}
	if a.st.State != state {
		a.st.Since = wire.Now()
	}
	a.st.State, a.st.Reason = state, reason
	st := a.st
	a.mu.Unlock()
	a.p.sink.Status(st)
}

func (a *agent) start(ctx context.Context) {
	a.ctx, a.cancel = context.WithCancel(ctx)
	if a.target.Missing != "" {
		a.setState(view.AgentMissing, a.target.Missing)
		return
	}
	if a.local {
		return
	}
	a.p.wg.Add(1)
	a.setState(view.AgentConnecting, "")
	go a.connect()
}

// stop ends the connection and any retry. The pool's lock is held, so it must not wait
// on anything that takes it; it waits only for a report in progress to finish.
func (a *agent) stop() {
	if a.cancel == nil {
		return
	}
	a.cancel()
	a.sinkMu.Lock()
	a.stopped = true
	a.sinkMu.Unlock()
	a.life.Lock()
	c := a.cur
	idle := a.timer != nil && a.timer.Stop() // the retry will not run
	a.life.Unlock()
	if c != nil {
		c.Close()
	}
	if idle {
		a.finish()
	}
}

// finish marks the agent's work as over, once.
func (a *agent) finish() { a.finished.Do(a.p.wg.Done) }

// attempt is one connection of the agent: the transport hands it the stream's events,
// and tells it once when the stream ends.
type attempt struct {
	a           *agent
	connectedAt time.Time
	up          atomic.Bool // reported connected
	over        bool        // ended; guarded by a.life
}

var _ reader.Receiver = (*attempt)(nil)

func (at *attempt) Event(ev reader.Event, dec *decode.Decoder) error {
	at.connected()
	return at.a.event(ev, dec)
}

func (at *attempt) Ended(err error) { at.a.ended(at, err) }

func (at *attempt) StallTimeout() time.Duration { return at.a.stallTimeout() }

// connected reports the agent connected, once per attempt, before its first event.
func (at *attempt) connected() {
	if at.up.CompareAndSwap(false, true) {
		at.a.setState(view.AgentConnected, "")
	}
}

// connect opens the stream; it runs in a goroutine of its own, which ends once the
// stream is handed to the transport's reader.
func (a *agent) connect() {
	if a.ctx.Err() != nil {
		a.finish()
		return
	}
	a.sinkMu.Lock()
	lastID := a.lastID
	a.sinkMu.Unlock()
	at := &attempt{a: a, connectedAt: time.Now()}
	st, err := a.p.transport.Open(a.ctx, a.target.URL, lastID, at)
	if err != nil {
		a.ended(nil, err)
		return
	}
	a.life.Lock()
	if at.over || a.ctx.Err() != nil {
		a.life.Unlock()
		st.Close() // its end is reported, or is being
		return
	}
	a.cur = st
	a.life.Unlock()
	at.connected()
}

// ended is called once per attempt, when its stream ended (at nil: could not be
// opened): it reports why and schedules the next attempt.
func (a *agent) ended(at *attempt, err error) {
	a.life.Lock()
	a.cur = nil
	if at != nil {
		at.over = true
	}
	if a.ctx.Err() != nil {
		a.life.Unlock()
		a.finish()
		return
	}
	if at != nil && time.Since(at.connectedAt) > a.p.opts.BackoffMax {
		a.attempt = 0 // it was healthy for a while: start backing off afresh
	}
	if at != nil {
		a.answered = true
	}
	answered := a.answered
	delay := backoff.Policy{Base: a.p.opts.BackoffBase, Max: a.p.opts.BackoffMax}.Delay(a.attempt)
	a.attempt++
	a.life.Unlock()

	a.p.countDrop(err)
	state, reason := view.AgentUnavailable, describe(err)
	// A pod's agent that has never answered was never there: missing, not unavailable.
	if silent := a.missingIfSilent(); !answered && silent != "" {
		state, reason = view.AgentMissing, silent+": "+reason
	}
	a.p.opts.Logger.Debug("agent "+state, "agent", a.target.Key, "reason", reason)
	a.setState(state, reason)

	a.life.Lock()
	defer a.life.Unlock()
	if a.ctx.Err() != nil {
		a.finish()
		return
	}
	a.timer = time.AfterFunc(delay, a.connect)
}

// missingIfSilent is the target's reason to count as missing while it never answered.
func (a *agent) missingIfSilent() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.target.MissingIfSilent
}

// stallTimeout is how long the agent may stay silent: twice its sample interval.
func (a *agent) stallTimeout() time.Duration {
	iv := time.Duration(a.interval.Load())
	if iv <= 0 {
		iv = a.p.opts.DefaultInterval
	}
	if d := 2 * iv; d > a.p.opts.StallFloor {
		return d
	}
	return a.p.opts.StallFloor
}

// event handles one event of the stream, in order. An error means the agent misbehaves
// (or was stopped): the stream is dropped, and the agent shown unavailable with the error
// as the reason.
func (a *agent) event(ev reader.Event, dec *decode.Decoder) error {
	switch ev.Name {
	case wire.EventSnapshot, wire.EventMetrics, wire.EventCircuitBreaker:
	default:
		return nil
	}
	a.sinkMu.Lock()
	defer a.sinkMu.Unlock()
	if a.stopped {
		return errStopped
	}
	if err := a.handle(ev, dec); err != nil {
		return err
	}
	if ev.ID != "" {
		a.lastID = ev.ID
	}
	return nil
}

// handle applies one event; called with a.sinkMu held.
func (a *agent) handle(ev reader.Event, dec *decode.Decoder) error {
	switch ev.Name {
	case wire.EventSnapshot, wire.EventMetrics:
		snap, err := dec.Snapshot(ev.Data, &a.sizes)
		if err != nil {
			return fmt.Errorf("%w: %s event: %v", errInvalid, ev.Name, err)
		}
		if snap.Agent.V != 0 && snap.Agent.V != wire.Version {
			return fmt.Errorf("%w: %s event: agent wire version %d, want %d", errInvalid, ev.Name, snap.Agent.V, wire.Version)
		}
		if err := wire.CheckSnapshot(snap); err != nil {
			return fmt.Errorf("%w: %s event: %v", errInvalid, ev.Name, err)
		}
		if snap.Sample != nil && snap.Sample.IntervalMs > 0 {
			a.interval.Store(int64(snap.Sample.IntervalMs * float64(time.Millisecond)))
		}
		a.noteIdentity(&snap.Agent)
		full := ev.Name == wire.EventSnapshot
		if full {
			a.resync(snap)
			a.synced = true
			clear(a.states)
			if a.states == nil {
				a.states = make(map[string]wire.BreakerState, len(snap.Breakers))
			}
			for _, b := range snap.Breakers {
				a.states[b.Name] = b.State
			}
		}
		a.p.sink.Snapshot(a.target.Key, snap, full)
	case wire.EventCircuitBreaker:
		tr, err := dec.Transition(ev.Data)
		if err != nil {
			return fmt.Errorf("%w: %s event: %v", errInvalid, ev.Name, err)
		}
		if err := wire.CheckTransition(&tr); err != nil {
			return fmt.Errorf("%w: %s event: %v", errInvalid, ev.Name, err)
		}
		if a.states == nil {
			a.states = map[string]wire.BreakerState{}
		}
		if _, known := a.states[tr.Breaker.Name]; known || len(a.states) < maxKnown {
			a.states[tr.Breaker.Name] = tr.To
		}
		a.p.sink.Transition(a.target.Key, tr)
	}
	return nil
}

// maxKnown bounds the breaker states remembered from transitions between snapshots (a
// snapshot holds at most an event's worth).
const maxKnown = 1 << 16

// resync turns the difference between the breaker states known before a break and a
// fresh snapshot into transitions. The agent sends a snapshot instead of a replay when
// it restarted or the gap outgrew its ring; without this, a breaker that opened in that
// gap would show up open with no circuit-breaker event.
func (a *agent) resync(snap *wire.Snapshot) {
	if !a.synced {
		return
	}
	for _, b := range snap.Breakers {
		prev, ok := a.states[b.Name]
		if ok && prev == b.State {
			continue
		}
		from := prev
		if !ok {
			from = ""
		}
		at := b.Since
		if at.IsZero() {
			at = wire.Now()
		}
		a.p.sink.Transition(a.target.Key, wire.Transition{V: wire.Version, Agent: snap.Agent.ID, From: from, To: b.State, Time: at, Breaker: b})
	}
}

// noteIdentity records the identity the agent reports and when it was last heard from;
// called with a.sinkMu held.
func (a *agent) noteIdentity(id *wire.Agent) {
	a.mu.Lock()
	a.st.LastSeen = wire.Now()
	changed := a.st.Agent == nil || *a.st.Agent != *id
	if changed {
		cp := *id
		a.st.Agent = &cp
		fillIdentity(&a.st, &cp)
	}
	st := a.st
	a.mu.Unlock()
	if changed {
		a.p.sink.Status(st)
	}
}

// describe turns a stream error into the reason users see: the pool's own reasons, or
// the cause of a failed connection or read.
func describe(err error) string {
	switch {
	case err == nil:
		return "stream ended"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "stalled: no event within twice the sample interval"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "stream ended by the agent"
	case errors.Is(err, reader.ErrTooLarge), errors.Is(err, reader.ErrChunked), errors.Is(err, reader.ErrGarbage), errors.Is(err, errInvalid):
		return "misbehaving agent: " + err.Error()
	}
	return cause.Of(err)
}
