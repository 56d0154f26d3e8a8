// Package rewind keeps what rewinding the merged view needs beyond the history's series,
// and answers two questions from it: what did the view look like at an instant (At), and
// what did each breaker do over a window (Timelines).
//
// What is kept is the record of changes, never a copy of the view per second: every
// agent's state changes, every breaker transition as the aggregator received it (with the
// failure rate and call counters of each opening), the breaker states an agent had when
// discovery dropped it, each alert's firing period, discovery's state and the desired
// replicas of workloads. A breaker that does not change costs nothing; the figures (CPU,
// memory, requests) come from the history's one-second and one-minute points. Everything
// is bounded by the retention and by counts (see the Max constants).
package rewind

import (
	"math"
	"slices"
	"sync"
	"time"

	"github.com/faultline-dev/faultline/aggregator/discovery"
	"github.com/faultline-dev/faultline/aggregator/merge"
	"github.com/faultline-dev/faultline/aggregator/suggest"
	"github.com/faultline-dev/faultline/aggregator/view"
	"github.com/faultline-dev/faultline/internal/wire"
)

// Bounds of what is kept.
const (
	// MaxTransitions is the number of transitions kept per breaker per pod: a breaker
	// that changed state more often within the retention keeps its latest ones, and the
	// instants before the oldest kept are not known for it.
	MaxTransitions = 256
	// MaxAgentStates is the number of state changes kept per agent.
	MaxAgentStates = 128
	// MaxGone is the number of agents kept after discovery dropped them (oldest dropped
	// first); at least this many, or twice the agents present.
	MaxGone = 1000
	// MaxAlerts is the number of alert firing periods kept.
	MaxAlerts = 10000
)

// Log records changes; it is safe for concurrent use.
type Log struct {
	retention time.Duration

	mu        sync.Mutex
	started   int64 // ms: nothing is known before
	agents    map[string]*agentLog
	gone      int // agents in agents that are gone
	alerts    []alertSpan
	open      map[string]int // alert id -> index in alerts of its open span
	discovery []discoveryEntry
	desired   map[discovery.Workload][]desiredEntry
}

// New returns an empty log that keeps changes for retention.
func New(retention time.Duration, now time.Time) *Log {
	return &Log{retention: retention, started: now.UnixMilli(), agents: map[string]*agentLog{},
		open: map[string]int{}, desired: map[discovery.Workload][]desiredEntry{}}
}

// Retention is how far back the log goes.
func (l *Log) Retention() time.Duration { return l.retention }

// Range is the span of instants the log can describe at now: from when it started, or
// the retention before now, to now.
func (l *Log) Range(now time.Time) (from, to time.Time) {
	l.mu.Lock()
	started := l.started
	l.mu.Unlock()
	from = now.Add(-l.retention)
	if s := time.UnixMilli(started); s.After(from) {
		from = s
	}
	return from.UTC().Truncate(time.Millisecond), now.UTC().Truncate(time.Millisecond)
}

// agentLog is one agent's record.
type agentLog struct {
	status   view.AgentStatus // the latest: identity and address
	states   []agentState     // oldest first
	breakers []breakerLog
	gone     int64     // ms when discovery dropped it; 0 while present
	final    []lastRun // breaker states when it was dropped
}

// agentState is one state of an agent, from at on.
type agentState struct {
	at, since, lastSeen int64 // ms
	state, reason       string
}

// breakerLog is one breaker's transitions on one pod.
type breakerLog struct {
	name    string
	entries []entry // oldest first
	trips   []trip  // the openings among them, oldest first
	// cut is the time of the oldest entry kept once entries had to be dropped for
	// MaxTransitions: before it the breaker's state is not known. 0: nothing dropped.
	cut int64
}

// entry packs a transition: the time in ms, the state before and the state after.
type entry uint64

func pack(at int64, from, to uint8) entry { return entry(uint64(at)<<8 | uint64(from)<<4 | uint64(to)) }
func (e entry) at() int64                 { return int64(uint64(e) >> 8) }
func (e entry) from() uint8               { return uint8(e>>4) & 0xf }
func (e entry) to() uint8                 { return uint8(e) & 0xf }

// trip is what a breaker saw when it opened.
type trip struct {
	at          int64
	failureRate float64 // percent; NaN: not known
	calls       wire.Calls
}

// lastRun is one breaker as an agent last reported it.
type lastRun struct {
	name   string
	state  uint8
	since  int64
	source string
}

// States are coded in four bits; 0 is "not reported".
var states = [...]wire.BreakerState{"", wire.StateClosed, wire.StateOpen, wire.StateHalfOpen, wire.StateDisabled, wire.StateForcedOpen}

func code(s wire.BreakerState) uint8 {
	for i, x := range states {
		if x == s {
			return uint8(i)
		}
	}
	return 0
}

func isOpen(c uint8) bool { return c == 2 || c == 5 }

var nan = math.NaN()

// alertSpan is one alert's firing period; to is 0 while it fires.
type alertSpan struct {
	alert    wire.Alert
	from, to int64
}

type discoveryEntry struct {
	at int64
	d  view.Discovery
}

type desiredEntry struct {
	at int64
	n  int // -1: not known from then on
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func (l *Log) agent(key string) *agentLog {
	a := l.agents[key]
	if a == nil {
		a = &agentLog{}
		l.agents[key] = a
	}
	return a
}

// Status records an agent's state; a change of identity alone is kept without an entry.
func (l *Log) Status(st view.AgentStatus, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.agent(st.Key)
	if a.gone != 0 { // back after being dropped
		a.gone, a.final = 0, nil
		l.gone--
	}
	a.status = st
	if n := len(a.states); n > 0 && a.states[n-1].state == st.State && a.states[n-1].reason == st.Reason {
		return
	}
	a.states = append(a.states, agentState{at: ms(now), since: ms(st.Since.Time), lastSeen: ms(st.LastSeen.Time), state: st.State, reason: st.Reason})
	if len(a.states) > MaxAgentStates {
		a.states = slices.Delete(a.states, 0, len(a.states)-MaxAgentStates)
	}
}

// Transition records a breaker transition of agent key, received at now.
func (l *Log) Transition(key string, tr wire.Transition, now time.Time) {
	at := ms(now)
	from, to := code(tr.From), code(tr.To)
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.agent(key)
	i := slices.IndexFunc(a.breakers, func(b breakerLog) bool { return b.name == tr.Breaker.Name })
	if i < 0 {
		a.breakers = append(a.breakers, breakerLog{name: tr.Breaker.Name})
		i = len(a.breakers) - 1
	}
	b := &a.breakers[i]
	if n := len(b.entries); n > 0 && b.entries[n-1].at() > at {
		at = b.entries[n-1].at() // in order, whatever the clock did
	}
	b.entries = append(b.entries, pack(at, from, to))
	if len(b.entries) > MaxTransitions {
		b.entries = slices.Delete(b.entries, 0, len(b.entries)-MaxTransitions)
		b.cut = b.entries[0].at()
	}
	if isOpen(to) && !isOpen(from) {
		fr := nan
		if tr.Breaker.FailureRate != nil {
			fr = *tr.Breaker.FailureRate
		}
		b.trips = append(b.trips, trip{at: at, failureRate: fr, calls: tr.Breaker.Calls})
		if len(b.trips) > MaxTransitions {
			b.trips = slices.Delete(b.trips, 0, len(b.trips)-MaxTransitions)
		}
	}
}

// Removed records that discovery dropped agent key, with the breakers it last reported.
func (l *Log) Removed(key string, breakers []wire.Breaker, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.agents[key]
	if a == nil || a.gone != 0 {
		return
	}
	a.gone = ms(now)
	a.final = make([]lastRun, len(breakers))
	for i, b := range breakers {
		a.final[i] = lastRun{name: b.Name, state: code(b.State), since: ms(b.Since.Time), source: b.Source}
	}
	a.states = append(a.states, agentState{at: a.gone, state: view.AgentRemoved})
	l.gone++
	if limit := max(MaxGone, 2*(len(l.agents)-l.gone)); l.gone > limit {
		l.dropOldestGone(l.gone - limit)
	}
}

func (l *Log) dropOldestGone(n int) {
	type g struct {
		key string
		at  int64
	}
	var gone []g
	for k, a := range l.agents {
		if a.gone != 0 {
			gone = append(gone, g{k, a.gone})
		}
	}
	slices.SortFunc(gone, func(a, b g) int { return int(a.at - b.at) })
	for _, x := range gone[:n] {
		delete(l.agents, x.key)
		l.gone--
	}
}

// Broadcast records what each broadcast knows: discovery's state, the alerts that fired or
// resolved, and the desired replicas of workloads (nil: none known, as in static mode).
func (l *Log) Broadcast(now time.Time, d view.Discovery, changed []wire.Alert, desired map[discovery.Workload]int) {
	at := ms(now)
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.discovery); n == 0 || !sameDiscovery(l.discovery[n-1].d, d) {
		l.discovery = append(l.discovery, discoveryEntry{at: at, d: d})
	}
	for _, a := range changed {
		switch a.State {
		case wire.AlertFiring:
			if _, ok := l.open[a.ID]; ok {
				continue
			}
			l.alerts = append(l.alerts, alertSpan{alert: a, from: at})
			l.open[a.ID] = len(l.alerts) - 1
		case wire.AlertResolved:
			if i, ok := l.open[a.ID]; ok {
				l.alerts[i].to = at
				delete(l.open, a.ID)
			}
		}
	}
	if len(l.alerts) > MaxAlerts {
		l.trimAlerts(len(l.alerts) - MaxAlerts)
	}
	for k, n := range desired {
		list := l.desired[k]
		if len(list) == 0 || list[len(list)-1].n != n {
			l.desired[k] = append(list, desiredEntry{at: at, n: n})
		}
	}
	for wk, list := range l.desired {
		if _, ok := desired[wk]; !ok && list[len(list)-1].n != -1 {
			l.desired[wk] = append(list, desiredEntry{at: at, n: -1})
		}
	}
}

func sameDiscovery(a, b view.Discovery) bool {
	return a.Mode == b.Mode && a.Synced == b.Synced && a.Stale == b.Stale && a.Error == b.Error && a.ReplicasError == b.ReplicasError
}

// trimAlerts drops the n oldest spans (resolved ones first) and reindexes the open ones.
func (l *Log) trimAlerts(n int) {
	drop := 0
	l.alerts = slices.DeleteFunc(l.alerts, func(s alertSpan) bool {
		if drop < n && s.to != 0 {
			drop++
			return true
		}
		return false
	})
	if over := len(l.alerts) - MaxAlerts; over > 0 {
		l.alerts = slices.Delete(l.alerts, 0, over)
	}
	clear(l.open)
	for i, s := range l.alerts {
		if s.to == 0 {
			l.open[s.alert.ID] = i
		}
	}
}

// Forget drops what is older than the retention: transitions, states, gone agents,
// resolved alerts, discovery states and desired replicas, keeping for each the newest
// entry before the cut (it says what held at the cut).
func (l *Log) Forget(now time.Time) {
	cut := ms(now.Add(-l.retention))
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, a := range l.agents {
		if a.gone != 0 && a.gone < cut {
			delete(l.agents, k)
			l.gone--
			continue
		}
		if i := lastBefore(len(a.states), func(i int) int64 { return a.states[i].at }, cut); i > 0 {
			a.states = slices.Delete(a.states, 0, i)
		}
		for j := range a.breakers {
			b := &a.breakers[j]
			// An entry carries the state before it, so older ones can go.
			if i := firstAfter(len(b.entries), func(i int) int64 { return b.entries[i].at() }, cut); i > 0 {
				b.entries = slices.Delete(b.entries, 0, i)
			}
			if i := firstAfter(len(b.trips), func(i int) int64 { return b.trips[i].at }, cut); i > 0 {
				b.trips = slices.Delete(b.trips, 0, i)
			}
		}
		a.breakers = slices.DeleteFunc(a.breakers, func(b breakerLog) bool { return len(b.entries) == 0 })
	}
	kept := l.alerts[:0]
	for _, s := range l.alerts {
		if s.to == 0 || s.to >= cut {
			kept = append(kept, s)
		}
	}
	clear(l.alerts[len(kept):])
	l.alerts = kept
	clear(l.open)
	for i, s := range l.alerts {
		if s.to == 0 {
			l.open[s.alert.ID] = i
		}
	}
	if i := lastBefore(len(l.discovery), func(i int) int64 { return l.discovery[i].at }, cut); i > 0 {
		l.discovery = slices.Delete(l.discovery, 0, i)
	}
	for wk, list := range l.desired {
		if i := lastBefore(len(list), func(i int) int64 { return list[i].at }, cut); i > 0 {
			list = slices.Delete(list, 0, i)
		}
		if len(list) == 1 && list[0].n == -1 && list[0].at < cut {
			delete(l.desired, wk)
			continue
		}
		l.desired[wk] = list
	}
}

// lastBefore is the index of the newest of n entries at or before cut (-1: none).
func lastBefore(n int, at func(int) int64, cut int64) int {
	i := firstAfter(n, at, cut)
	return i - 1
}

// firstAfter is the index of the first of n entries after cut (n: none).
func firstAfter(n int, at func(int) int64, cut int64) int {
	lo, hi := 0, n
	for lo < hi {
		m := (lo + hi) / 2
		if at(m) <= cut {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// Flips returns the recent transition times of every breaker of every agent present,
// for the breaker-flapping suggestion.
func (l *Log) Flips(since time.Time) []suggest.Flips {
	from := ms(since)
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []suggest.Flips
	for _, a := range l.agents {
		if a.gone != 0 {
			continue
		}
		for _, b := range a.breakers {
			i := firstAfter(len(b.entries), func(i int) int64 { return b.entries[i].at() }, from-1)
			if i == len(b.entries) {
				continue
			}
			times := make([]time.Time, 0, len(b.entries)-i)
			for _, e := range b.entries[i:] {
				times = append(times, time.UnixMilli(e.at()))
			}
			st := a.status
			out = append(out, suggest.Flips{Namespace: st.Namespace, Workload: merge.WorkloadOf(st), Pod: st.Pod, Breaker: b.name, Times: times})
		}
	}
	return out
}
