package store

import (
	"time"

	"github.com/faultline-dev/faultline/aggregator/discovery"
	"github.com/faultline-dev/faultline/aggregator/rewind"
)

// desired is the desired pods of workloads, when discovery knows them.
func (s *Store) desired() map[discovery.Workload]int {
	if s.opts.Replicas == nil {
		return nil
	}
	return s.opts.Replicas()
}

// RewindRange is the span of instants Rewound can describe now.
func (s *Store) RewindRange(now time.Time) (from, to time.Time) { return s.opts.Rewind.Range(now) }

// Rewound is the merged view as it was at an instant within RewindRange, narrowed to a
// namespace and workload (empty: all).
func (s *Store) Rewound(at, now time.Time, namespace, workload string) rewind.Snapshot {
	return s.opts.Rewind.At(rewind.Query{
		At: at, Now: now, Namespace: namespace, Workload: workload, Mode: s.opts.Mode, Live: s.inputs(),
		History: s.opts.History, MaxGap: 2 * MaxCoalescing * s.opts.BroadcastInterval, MaxPods: s.opts.SnapshotMaxPods,
	})
}

// Timelines is what every breaker did over the window before now.
func (s *Store) Timelines(window time.Duration, now time.Time) rewind.Timelines {
	return s.opts.Rewind.Timelines(now.Add(-window), now, s.inputs())
}
