package broadcast

import (
	"time"

	"github.com/faultline-dev/faultline/aggregator/optimize"
	"github.com/faultline-dev/faultline/aggregator/rewind"
)

// RewindRange is the span of instants Rewound can describe now.
func (b *Broadcaster) RewindRange(now time.Time) (from, to time.Time) {
	return b.opts.Rewind.Range(now)
}

// Rewound is the merged view as it was at an instant within RewindRange, narrowed to a
// namespace and workload (empty: all).
func (b *Broadcaster) Rewound(at, now time.Time, namespace, workload string) rewind.Snapshot {
	return b.opts.Rewind.At(rewind.Query{
		At: at, Now: now, Namespace: namespace, Workload: workload, Mode: b.opts.Mode, Live: b.fleet.Agents(),
		History: b.opts.History, MaxGap: 2 * optimize.MaxCoalescing * b.opts.Optimizer.Base(), MaxPods: b.opts.SnapshotMaxPods,
	})
}

// Timelines is what every breaker did over the window before now.
func (b *Broadcaster) Timelines(window time.Duration, now time.Time) rewind.Timelines {
	return b.opts.Rewind.Timelines(now.Add(-window), now, b.fleet.Agents())
}
