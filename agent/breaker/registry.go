// Package breaker keeps the agent's circuit breakers, keyed by name, in the one
// normalised model every source reports into. A change of state is a transition, handed
// to the registry's listener the moment it is recorded.
package breaker

import (
	"fmt"
	"math"
	"sort"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/faultline-dev/faultline/internal/wire"
)

// MaxNameLen bounds breaker names.
const MaxNameLen = 200

// Registry holds the latest state of every breaker.
type Registry struct {
	// emit serialises Upsert, recording and listener call together, so that the
	// listener sees the transitions of a breaker in the order they were recorded.
	emit         sync.Mutex
	mu           sync.Mutex
	breakers     map[string]*entry
	onTransition func(wire.Transition)
	agentID      string
	now          func() time.Time
}

type entry struct {
	b     wire.Breaker
	total uint64    // call total at the last update, for the rate
	at    time.Time // time of the last update
}

// New returns an empty registry. onTransition, if not nil, is called synchronously for
// every transition, after the registry has recorded it, one at a time and in the order
// they were recorded; it must not call Upsert.
func New(agentID string, onTransition func(wire.Transition)) *Registry {
	return &Registry{breakers: make(map[string]*entry), onTransition: onTransition, agentID: agentID, now: time.Now}
}

// CheckName reports whether name can name a breaker: 1 to MaxNameLen printable
// characters of valid UTF-8 without "/" (names appear in URL paths and JSON).
func CheckName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return fmt.Errorf("name must be 1 to %d characters", MaxNameLen)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("name %q is not valid UTF-8", name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || r == '/' {
			return fmt.Errorf("name %q holds a control character or /", name)
		}
	}
	return nil
}

// Check reports what is wrong with a breaker report, naming the field.
func Check(b wire.Breaker) error {
	if err := CheckName(b.Name); err != nil {
		return fmt.Errorf("name: %w", err)
	}
	if !b.State.Valid() {
		return fmt.Errorf("state: %q is not one of closed, open, half_open, disabled, forced_open", b.State)
	}
	for field, v := range map[string]*float64{"failure_rate": b.FailureRate, "slow_call_rate": b.SlowCallRate} {
		if v != nil && (math.IsNaN(*v) || *v < 0 || *v > 100) {
			return fmt.Errorf("%s: %v is not a percentage", field, *v)
		}
	}
	if b.RatePerSec != nil && (math.IsNaN(*b.RatePerSec) || math.IsInf(*b.RatePerSec, 0) || *b.RatePerSec < 0) {
		return fmt.Errorf("rate_per_sec: %v is not a non-negative number", *b.RatePerSec)
	}
	return nil
}

// Upsert records a report of a breaker and returns the transition it caused, if any. A
// breaker seen for the first time is a transition from "". The report must pass Check.
func (r *Registry) Upsert(b wire.Breaker) (*wire.Transition, error) {
	if err := Check(b); err != nil {
		return nil, err
	}
	r.emit.Lock()
	defer r.emit.Unlock()
	now := r.now()
	b.V = wire.Version
	b.Stale = false
	b.LastSeen = wire.NewTime(now)

	r.mu.Lock()
	e, seen := r.breakers[b.Name]
	var from wire.BreakerState
	if seen {
		from = e.b.State
		if from == b.State && (b.Since.IsZero() || b.Since.After(e.b.Since.Time)) {
			b.Since = e.b.Since
		}
		if b.RatePerSec == nil && now.After(e.at) && b.Calls.Total() >= e.total {
			rate := float64(b.Calls.Total()-e.total) / now.Sub(e.at).Seconds()
			b.RatePerSec = &rate
		}
	} else {
		e = &entry{}
		r.breakers[b.Name] = e
	}
	if b.Since.IsZero() || (seen && from != b.State) {
		b.Since = wire.NewTime(now)
	}
	e.b, e.total, e.at = b, b.Calls.Total(), now
	r.mu.Unlock()

	if seen && from == b.State {
		return nil, nil
	}
	tr := wire.Transition{V: wire.Version, Agent: r.agentID, From: from, To: b.State, Time: b.Since, Breaker: b}
	if r.onTransition != nil {
		r.onTransition(tr)
	}
	return &tr, nil
}

// MarkStale flags every breaker last reported by source as stale: kept, with its
// last-seen time, but no longer shown as fresh. It returns how many were marked.
func (r *Registry) MarkStale(source string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.breakers {
		if e.b.Source == source && !e.b.Stale {
			e.b.Stale = true
			n++
		}
	}
	return n
}

// MarkStaleExcept flags as stale every breaker of source whose name is not in fresh: a
// source that still answers but no longer reports a breaker keeps it, with its last-seen
// time, instead of showing it as fresh. It returns how many were marked.
func (r *Registry) MarkStaleExcept(source string, fresh map[string]bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for name, e := range r.breakers {
		if e.b.Source == source && !e.b.Stale && !fresh[name] {
			e.b.Stale = true
			n++
		}
	}
	return n
}

// Count is the number of breakers last reported by source.
func (r *Registry) Count(source string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.breakers {
		if e.b.Source == source {
			n++
		}
	}
	return n
}

// Get returns one breaker.
func (r *Registry) Get(name string) (wire.Breaker, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.breakers[name]
	if !ok {
		return wire.Breaker{}, false
	}
	return e.b, true
}

// List returns every breaker, sorted by name.
func (r *Registry) List() []wire.Breaker {
	r.mu.Lock()
	out := make([]wire.Breaker, 0, len(r.breakers))
	for _, e := range r.breakers {
		out = append(out, e.b)
	}
	r.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Len is the number of breakers.
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.breakers)
}
