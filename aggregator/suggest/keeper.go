package suggest

import (
	"context"
	"sync"
	"time"

	"github.com/faultline-dev/faultline/aggregator/history"
	"github.com/faultline-dev/faultline/aggregator/merge"
	"github.com/faultline-dev/faultline/internal/wire"
)

// Keeper recomputes the suggestions every Every on a goroutine of its own and keeps the
// latest: they read every pod's history, so their cost never delays a broadcast.
type Keeper struct {
	every   time.Duration
	agents  func() []merge.Agent
	flips   func(since time.Time) []Flips
	history *history.Store

	mu    sync.RWMutex
	list  []wire.Suggestion
	total int
}

// NewKeeper returns a keeper computing from the agents, the recent breaker transitions
// and the history; every is the interval (default 10 s).
func NewKeeper(every time.Duration, agents func() []merge.Agent, flips func(since time.Time) []Flips, hist *history.Store) *Keeper {
	if every <= 0 {
		every = 10 * time.Second
	}
	return &Keeper{every: every, agents: agents, flips: flips, history: hist, list: []wire.Suggestion{}}
}

// Run recomputes until ctx is done.
func (k *Keeper) Run(ctx context.Context) {
	t := time.NewTicker(k.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			k.Update(now)
		}
	}
}

// Update recomputes the suggestions as of now.
func (k *Keeper) Update(now time.Time) {
	list, total := Compute(Input{Time: now, Agents: k.agents(), Flips: k.flips(now.Add(-FlapWindow)), History: k.history})
	k.mu.Lock()
	k.list, k.total = list, total
	k.mu.Unlock()
}

// Suggestions returns the latest suggestions and how many there are in all.
func (k *Keeper) Suggestions() ([]wire.Suggestion, int) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.list, k.total
}
