package decode

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/faultline-dev/faultline/internal/wire"
)

// snapshotJSON is a realistic agent metrics event: a pod sample and 10 breakers with
// counters, latencies and thresholds (about 5 KiB).
func snapshotJSON(b testing.TB) []byte {
	now := wire.Now()
	limit := uint64(512 << 20)
	s := wire.Snapshot{V: 1, Agent: wire.Agent{V: 1, ID: "svc-001-00001", Pod: "svc-001-00001", Namespace: "ns-01", UID: "uid-1", Node: "node-1", IP: "10.0.0.1", Workload: "svc-001", Version: "1.0", Mode: "pod", Started: now},
		Seq: 42, Sample: &wire.Sample{V: 1, IntervalMs: 1000, Time: now,
			CPU:        &wire.CPU{Cores: 0.2, LimitCores: wire.Ptr(1.0), PercentOfLimit: wire.Ptr(23.4), Throttling: &wire.Throttling{Periods: 10}},
			Memory:     &wire.Memory{WorkingSetBytes: 180 << 20, RSSBytes: wire.Ptr(uint64(170 << 20)), LimitBytes: &limit, PercentOfLimit: wire.Ptr(35.2)},
			Network:    &wire.Network{RxBytesPerSec: 120345, TxBytesPerSec: 98321},
			Process:    &wire.Process{Processes: 2, Threads: 31, OpenFDs: 48},
			Throughput: &wire.Throughput{RequestsPerSec: 154.2, ErrorsPerSec: 1.3, Latency: &wire.Latency{P50Ms: 12.1, P90Ms: 40.3, P99Ms: 120.7}, Source: "app"},
			Self:       &wire.Self{CPUCores: 0.004, RSSBytes: 14 << 20},
			Collectors: []wire.Collector{{Name: "processes", OK: true, DurationMs: 0.8, Status: "ok"}, {Name: "network", OK: true, Status: "ok"}, {Name: "push", OK: true, Status: "10 breakers"}}}}
	for i := 0; i < 10; i++ {
		s.Breakers = append(s.Breakers, wire.Breaker{V: 1, Name: fmt.Sprintf("dependency-%d", i), State: wire.StateClosed, FailureRate: wire.Ptr(2.5), SlowCallRate: wire.Ptr(0.4),
			Calls: wire.Calls{Succeeded: 120394, Failed: 3021, TimedOut: 12}, RatePerSec: wire.Ptr(15.3), Latency: &wire.Latency{P50Ms: 8, P90Ms: 20, P99Ms: 65}, Since: now, Source: "push",
			Thresholds: &wire.Thresholds{FailureRate: wire.Ptr(50.0), SlowCallRate: wire.Ptr(80.0), SlowCallMs: wire.Ptr(500.0), MinimumCalls: wire.Ptr(uint64(20)), OpenMs: wire.Ptr(30000.0)}, LastSeen: now})
	}
	data, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return data
}

// BenchmarkDecodeSnapshot is the decoder on one metrics event, into the snapshot the
// aggregator keeps; at 10,000 agents sending one a second, ns/op x 10^4 is the share of a
// core decoding takes.
// BenchmarkDecodeSnapshotStdlib is encoding/json on the same bytes, for comparison.
func BenchmarkDecodeSnapshot(b *testing.B) {
	data := snapshotJSON(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	dec := New()
	var sizes Sizes
	for i := 0; i < b.N; i++ {
		if _, err := dec.Snapshot(data, &sizes); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeSnapshotV2 is the reference, the JSON v2 decoder the generated ones fall
// back to.
func BenchmarkDecodeSnapshotV2(b *testing.B) {
	data := snapshotJSON(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		var s wire.Snapshot
		if err := Reference(data, &s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeSnapshotStdlib(b *testing.B) {
	data := snapshotJSON(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		var s wire.Snapshot
		if err := wire.Decode(wire.Event{Name: wire.EventMetrics, Data: data}, &s); err != nil {
			b.Fatal(err)
		}
	}
}
