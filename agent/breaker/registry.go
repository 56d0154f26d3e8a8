// Package breaker keeps the agent's circuit breakers, keyed by name, in the one
// normalised model every source reports into. A change of state is a transition, handed
// to the registry's listener the moment it is recorded.
package breaker

import (
	"errors"
	"fmt"
	"maps"
	"sort"
	"sync"
	"time"

	"github.com/faultline-dev/faultline/internal/wire"
)

// Registry holds the latest state of every breaker, at most Max of them.
type Registry struct {
	// emit serialises Upsert, recording and listener call together, so that the
	// listener sees the transitions of a breaker in the order they were recorded.
	emit         sync.Mutex
	mu           sync.Mutex
	breakers     map[string]*entry
	bySource     map[string]int    // breakers last reported by each source
	refused      map[string]uint64 // new breakers refused over max, by source
	max          int
	onTransition func(wire.Transition)
	agentID      string
	now          func() time.Time
}

// maxRefusedSources bounds the sources Refused names; the rest count as "other" (sources
// are the application's to name).
const maxRefusedSources = 32

// ErrFull is returned by Upsert for a new breaker when the registry holds its maximum.
var ErrFull = errors.New("the agent holds max-breakers breakers")

type entry struct {
	b     wire.Breaker
	total uint64    // call total at the last update, for the rate
	at    time.Time // time of the last update
}

// New returns an empty registry. onTransition, if not nil, is called synchronously for
// every transition, after the registry has recorded it, one at a time and in the order
// they were recorded; it must not call Upsert.
func New(agentID string, onTransition func(wire.Transition)) *Registry {
	return &Registry{breakers: make(map[string]*entry), bySource: map[string]int{}, refused: map[string]uint64{},
		onTransition: onTransition, agentID: agentID, now: time.Now}
}

// SetMax bounds the breakers held, whatever their source: a new breaker beyond max is
// refused and counted (Refused), breakers already held keep being updated. Zero or less
// means no bound. Call it before the registry is used.
func (r *Registry) SetMax(max int) { r.max = max }

// Upsert records a report of a breaker and returns the transition it caused, if any. A
// breaker seen for the first time is a transition from "". The report must pass
// wire.CheckBreaker; a new breaker beyond the maximum gets ErrFull.
func (r *Registry) Upsert(b wire.Breaker) (*wire.Transition, error) {
	if err := wire.CheckBreaker(&b); err != nil {
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
			rate := min(float64(b.Calls.Total()-e.total)/now.Sub(e.at).Seconds(), wire.MaxRate)
			b.RatePerSec = &rate
		}
		if r.bySource[e.b.Source]--; r.bySource[e.b.Source] == 0 {
			delete(r.bySource, e.b.Source)
		}
	} else {
		if r.max > 0 && len(r.breakers) >= r.max {
			r.mu.Unlock()
			r.CountRefused(b.Source, 1)
			return nil, fmt.Errorf("%q: %w (%d)", b.Name, ErrFull, r.max)
		}
		e = &entry{}
		r.breakers[b.Name] = e
	}
	r.bySource[b.Source]++
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
	return r.bySource[source]
}

// Free is how many more breakers the registry takes before it is full; -1 when unbounded.
func (r *Registry) Free() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.max <= 0 {
		return -1
	}
	return max(r.max-len(r.breakers), 0)
}

// CountRefused counts n new breakers of source refused before they reached Upsert (a
// batch refused whole for a cap).
func (r *Registry) CountRefused(source string, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, known := r.refused[source]; !known && len(r.refused) >= maxRefusedSources {
		source = "other"
	}
	r.refused[source] += uint64(n)
}

// Refused counts the new breakers refused for a cap, by source.
func (r *Registry) Refused() map[string]uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.refused)
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
