package fleet

import (
	"sync"
	"time"

	"github.com/faultline-dev/faultline/aggregator/view"
	"github.com/faultline-dev/faultline/internal/wire"
)

// The pool's readers hand what they learn to the fleet through an inbox and go back to
// reading: the merge work (the view kept up to date, events published) is done by the
// fleet's own goroutine, and by any reader of the fleet, which first applies what is
// waiting. So however large an agent's state, merging it never holds up the reading of
// any agent's stream; and if the merging falls behind, an agent's snapshots waiting in
// the inbox replace each other instead of piling up.

// Kinds of mail.
const (
	mailStatus = iota
	mailSnapshot
	mailTransition
	mailRemoved
)

// mail is one report of the pool about one agent.
type mail struct {
	kind   int
	status *view.AgentStatus
	snap   *wire.Snapshot
	tr     *wire.Transition
	at     time.Time // when the pool handed it over
}

// maxMail bounds the reports waiting for one agent: beyond it the oldest transition is
// dropped (and counted); the snapshots that follow it carry its state.
const maxMail = 1024

// box holds one agent's reports in arrival order; most of the time there is one, which
// needs no slice of its own.
type box struct {
	first mail
	rest  []mail
}

func (b *box) len() int { return 1 + len(b.rest) }

func (b *box) at(i int) *mail {
	if i == 0 {
		return &b.first
	}
	return &b.rest[i-1]
}

// inbox holds the reports not applied yet, in arrival order per agent.
type inbox struct {
	mu      sync.Mutex
	waiting map[string]box
	order   []string // agents with mail, in the order their first report arrived
	spare   map[string]box
	since   time.Time // when the oldest report waiting arrived
	dropped uint64    // transitions dropped for a full mailbox
	wake    chan struct{}
}

func newInbox() *inbox {
	return &inbox{waiting: map[string]box{}, spare: map[string]box{}, wake: make(chan struct{}, 1)}
}

// put adds a report. A snapshot replaces a snapshot waiting right before it, which it
// supersedes.
func (in *inbox) put(key string, m mail) {
	in.mu.Lock()
	b, ok := in.waiting[key]
	if len(in.order) == 0 {
		in.since = m.at
	}
	switch {
	case !ok:
		in.order = append(in.order, key)
		b.first = m
	case m.kind == mailSnapshot && b.at(b.len()-1).kind == mailSnapshot:
		*b.at(b.len() - 1) = m
	case b.len() >= maxMail:
		for i := 1; i < b.len(); i++ { // the first is being kept in place: drop a later one
			if b.at(i).kind == mailTransition {
				b.rest = append(b.rest[:i-1], b.rest[i:]...)
				in.dropped++
				break
			}
		}
		b.rest = append(b.rest, m)
	default:
		b.rest = append(b.rest, m)
	}
	in.waiting[key] = b
	in.mu.Unlock()
	select {
	case in.wake <- struct{}{}:
	default:
	}
}

// take returns what waits, agent by agent in arrival order, and empties the inbox. The
// caller gives both back with done once it has applied them.
func (in *inbox) take() (order []string, waiting map[string]box) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.order) == 0 {
		return nil, nil
	}
	order, waiting = in.order, in.waiting
	in.order, in.waiting, in.spare = nil, in.spare, nil
	return order, waiting
}

// done takes back what take returned, to reuse its memory.
func (in *inbox) done(order []string, waiting map[string]box) {
	clear(order)
	clear(waiting)
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.order == nil {
		in.order = order[:0]
	}
	if in.spare == nil {
		in.spare = waiting
	}
}

// waitingSince is when the oldest report waiting arrived; zero when none waits.
func (in *inbox) waitingSince() time.Time {
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.order) == 0 {
		return time.Time{}
	}
	return in.since
}

// Dropped counts transitions dropped because an agent's mailbox was full.
func (in *inbox) Dropped() uint64 {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.dropped
}
