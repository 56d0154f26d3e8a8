// Package optimize keeps the aggregator's live operating parameters (the broadcast
// interval and its base, the agents' sample interval, history retention, the stream
// clients' buffer and count) and changes the broadcast interval under load: while
// broadcasts take longer than their budget the interval widens (coalescing), and it
// narrows back once they are cheap. Every change, its own or one noted from elsewhere (a
// config reload), is listed and published as an optimization event.
package optimize

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/faultline-dev/faultline/internal/stream"
	"github.com/faultline-dev/faultline/internal/wire"
)

// MaxCoalescing bounds how far the broadcast interval may widen: 8x the base.
const MaxCoalescing = 8

// maxChanges is how many changes are listed.
const maxChanges = 20

// Options configure an Optimizer.
type Options struct {
	Hub *stream.Hub
	// SampleInterval is the agents' most common sample interval, in ms.
	SampleInterval func() float64

	BroadcastInterval time.Duration // base interval (default 1 s)
	BroadcastBudget   time.Duration // slower broadcasts widen the interval (default 250 ms)
	HistoryRetention  time.Duration
	Logger            hclog.Logger
}

// Optimizer holds the operating parameters.
type Optimizer struct {
	opts Options

	mu       sync.Mutex
	opt      wire.Optimization
	interval time.Duration
	ewma     float64 // ms
}

// New returns the parameters at their base values.
func New(opts Options) *Optimizer {
	if opts.BroadcastInterval <= 0 {
		opts.BroadcastInterval = time.Second
	}
	if opts.BroadcastBudget <= 0 {
		opts.BroadcastBudget = 250 * time.Millisecond
	}
	if opts.SampleInterval == nil {
		opts.SampleInterval = func() float64 { return 0 }
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	return &Optimizer{opts: opts, interval: opts.BroadcastInterval, opt: wire.Optimization{
		V: wire.Version, BroadcastIntervalMs: wire.Ms(opts.BroadcastInterval), BaseBroadcastMs: wire.Ms(opts.BroadcastInterval),
		HistoryRetentionMs: wire.Ms(opts.HistoryRetention), SubscriberBuffer: opts.Hub.Options().SubscriberBuffer,
		BroadcastBudgetMs: wire.Ms(opts.BroadcastBudget), Changes: []wire.OptimizationChange{},
	}}
}

// Interval is the broadcast interval now.
func (o *Optimizer) Interval() time.Duration {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.interval
}

// Base is the broadcast interval configured.
func (o *Optimizer) Base() time.Duration { return o.opts.BroadcastInterval }

// Adapt takes how long a broadcast took. It widens the broadcast interval while
// broadcasts take longer than the budget and narrows it back once they take less than
// half of it; every change is an optimization event.
func (o *Optimizer) Adapt(took time.Duration) {
	ms := wire.Ms(took)
	o.mu.Lock()
	// The average starts from zero and counts a broadcast at most at twice the budget:
	// one slow broadcast (the first, which meets every agent) does not widen the
	// interval, and is forgotten in a few broadcasts; slowness that lasts does.
	budget := wire.Ms(o.opts.BroadcastBudget)
	o.ewma = 0.7*o.ewma + 0.3*min(ms, 2*budget)
	o.opt.LastBroadcastMs = ms
	base := o.opts.BroadcastInterval
	var change *wire.OptimizationChange
	switch {
	case o.ewma > budget && o.interval < base*MaxCoalescing:
		next := o.interval * 2
		change = &wire.OptimizationChange{Time: wire.Now(), Parameter: "broadcast-interval", From: o.interval.String(), To: next.String(),
			Reason: fmt.Sprintf("broadcasts take %.0f ms on average, over the %.0f ms budget", o.ewma, budget)}
		o.interval = next
	case o.ewma < budget/2 && o.interval > base:
		next := max(base, o.interval/2)
		change = &wire.OptimizationChange{Time: wire.Now(), Parameter: "broadcast-interval", From: o.interval.String(), To: next.String(),
			Reason: fmt.Sprintf("broadcasts take %.0f ms on average, well under the %.0f ms budget", o.ewma, budget)}
		o.interval = next
	}
	o.opt.BroadcastIntervalMs = wire.Ms(o.interval)
	o.opt.Coalescing = o.interval > base
	if change != nil {
		o.appendChange(*change)
	}
	o.mu.Unlock()
	if change != nil {
		o.opts.Logger.Info("broadcast interval changed", "from", change.From, "to", change.To, "reason", change.Reason)
		o.publish()
	}
}

// appendChange keeps the last changes; called with o.mu held.
func (o *Optimizer) appendChange(c wire.OptimizationChange) {
	o.opt.Changes = append(o.opt.Changes, c)
	if len(o.opt.Changes) > maxChanges {
		o.opt.Changes = append(o.opt.Changes[:0:0], o.opt.Changes[len(o.opt.Changes)-maxChanges:]...)
	}
}

// NoteChange records a change of an operating parameter made elsewhere (a config
// reload) and publishes an optimization event.
func (o *Optimizer) NoteChange(parameter, from, to, reason string) {
	o.mu.Lock()
	o.appendChange(wire.OptimizationChange{Time: wire.Now(), Parameter: parameter, From: from, To: to, Reason: reason})
	o.mu.Unlock()
	o.publish()
}

func (o *Optimizer) publish() {
	if _, err := o.opts.Hub.Publish(wire.EventOptimization, "", "", o.Optimization()); err != nil {
		o.opts.Logger.Error("publish event", "event", wire.EventOptimization, "error", err)
	}
}

// Optimization returns the live operating parameters.
func (o *Optimizer) Optimization() wire.Optimization {
	o.mu.Lock()
	opt := o.opt
	opt.Changes = slices.Clone(o.opt.Changes)
	o.mu.Unlock()
	opt.SampleIntervalMs = o.opts.SampleInterval()
	opt.Subscribers = o.opts.Hub.Subscribers()
	opt.SubscribersDropped = o.opts.Hub.Dropped()
	return opt
}
