package wire

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
)

func TestCheckSnapshotAcceptsTheGoldenMessages(t *testing.T) {
	s := exampleSample()
	snap := Snapshot{V: Version, Agent: exampleAgent(), Seq: 1, Sample: &s, Breakers: []Breaker{exampleBreaker()}}
	if err := CheckSnapshot(&snap); err != nil {
		t.Fatal(err)
	}
	tr := Transition{V: Version, Agent: "a", From: StateClosed, To: StateOpen, Breaker: exampleBreaker()}
	if err := CheckTransition(&tr); err != nil {
		t.Fatal(err)
	}
}

// Every figure whose sums could overflow, or that is not a number at all, is refused
// with the field named.
func TestCheckRefusesWhatCannotBeSummed(t *testing.T) {
	huge := 1.7e308
	tests := []struct {
		field string
		edit  func(*Snapshot)
	}{
		{"agent.id", func(s *Snapshot) { s.Agent.ID = "" }},
		{"agent.workload", func(s *Snapshot) { s.Agent.Workload = "a\x00b" }},
		{"agent.pod", func(s *Snapshot) { s.Agent.Pod = strings.Repeat("p", 100000) }},
		{"breakers[0].name", func(s *Snapshot) { s.Breakers[0].Name = strings.Repeat("n", 100000) }},
		{"breakers[0].state", func(s *Snapshot) { s.Breakers[0].State = "exploded" }},
		{"breakers[0].rate_per_sec", func(s *Snapshot) { s.Breakers[0].RatePerSec = &huge }},
		{"breakers[0].rate_per_sec", func(s *Snapshot) { s.Breakers[0].RatePerSec = Ptr(math.Inf(1)) }},
		{"breakers[0].failure_rate", func(s *Snapshot) { s.Breakers[0].FailureRate = Ptr(100.5) }},
		{"breakers[0].failure_rate", func(s *Snapshot) { s.Breakers[0].FailureRate = Ptr(math.NaN()) }},
		{"breakers[0].calls.failed", func(s *Snapshot) { s.Breakers[0].Calls.Failed = math.MaxUint64 }},
		{"breakers[0].calls_window_ms", func(s *Snapshot) { s.Breakers[0].CallsWindowMs = Ptr(0.0) }},
		{"breakers[0].latency.p99_ms", func(s *Snapshot) { s.Breakers[0].Latency = &Latency{P99Ms: huge} }},
		{"breakers[0].thresholds.minimum_calls", func(s *Snapshot) { s.Breakers[0].Thresholds.MinimumCalls = Ptr[uint64](math.MaxUint64) }},
		{"breakers[0].source", func(s *Snapshot) { s.Breakers[0].Source = "a b" }},
		{"sample.cpu.cores", func(s *Snapshot) { s.Sample.CPU.Cores = huge }},
		{"sample.memory.working_set_bytes", func(s *Snapshot) { s.Sample.Memory.WorkingSetBytes = math.MaxUint64 }},
		{"sample.network.rx_bytes_per_sec", func(s *Snapshot) { s.Sample.Network.RxBytesPerSec = -1 }},
		{"sample.throughput.requests_per_sec", func(s *Snapshot) { s.Sample.Throughput.RequestsPerSec = huge }},
		{"sample.process.threads", func(s *Snapshot) { s.Sample.Process.Threads = -3 }},
		{"sample.collectors[1].status", func(s *Snapshot) { s.Sample.Collectors[1].Status = "line\nbreak" }},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			s := exampleSample()
			snap := Snapshot{V: Version, Agent: exampleAgent(), Sample: &s, Breakers: []Breaker{exampleBreaker()}}
			tt.edit(&snap)
			err := CheckSnapshot(&snap)
			if err == nil || !strings.HasPrefix(err.Error(), tt.field+":") {
				t.Errorf("CheckSnapshot = %v, want an error naming %s", err, tt.field)
			}
		})
	}
}

func TestCheckNames(t *testing.T) {
	for _, ok := range []string{`{}`, `{"a":1,"b":{"a":2},"c":[{"a":1},{"a":2}]}`, `[{"x":1},{"x":1}]`, `"s"`, `{"a":{"b":1},"c":2}`, `{bad json`} {
		if err := CheckNames([]byte(ok)); err != nil {
			t.Errorf("CheckNames(%s) = %v", ok, err)
		}
	}
	for _, bad := range []string{`{"a":1,"a":2}`, `{"x":{"y":[1,{"s":1,"t":2,"s":3}]}}`, `{"state":"open","State":"closed"}`, `[{"a":{"b":1},"a":2}]`} {
		if err := CheckNames([]byte(bad)); !errors.Is(err, ErrDuplicateName) {
			t.Errorf("CheckNames(%s) = %v, want a duplicate name", bad, err)
		}
	}
}

// One non-finite figure does not fail a whole message: it is left out, null where the
// field may be null, and named.
func TestMarshalLeavesOutNonFinite(t *testing.T) {
	s := exampleSample()
	s.CPU.Cores = math.NaN()
	s.CPU.LimitCores = Ptr(math.Inf(1))
	snap := Snapshot{V: Version, Agent: exampleAgent(), Sample: &s, Breakers: []Breaker{exampleBreaker()}}
	snap.Breakers[0].RatePerSec = Ptr(math.Inf(-1))
	data, dropped, err := Marshal(map[string]any{"snap": &snap, "n": 1})
	if err != nil {
		t.Fatal(err)
	}
	var back struct{ Snap Snapshot }
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if back.Snap.Sample.CPU.Cores != 0 || back.Snap.Sample.CPU.LimitCores != nil || back.Snap.Breakers[0].RatePerSec != nil ||
		back.Snap.Breakers[0].Name != "payments" || back.Snap.Sample.Memory.WorkingSetBytes != 64<<20 {
		t.Errorf("encoded %s", data)
	}
	if len(dropped) != 3 {
		t.Errorf("dropped = %v, want the three figures named", dropped)
	}
	if !math.IsNaN(s.CPU.Cores) {
		t.Error("Marshal changed the value it was given")
	}
	if data, dropped, err := Marshal(exampleAgent()); err != nil || dropped != nil || !strings.Contains(string(data), `"shop"`) {
		t.Errorf("a finite message: %s %v %v", data, dropped, err)
	}
}

// BenchmarkCheckSnapshot is the aggregator's check of one agent's snapshot (a sample and
// 10 breakers), which it runs on every metrics event: ten thousand a second in a large
// fleet.
func BenchmarkCheckSnapshot(b *testing.B) {
	s := exampleSample()
	snap := Snapshot{V: Version, Agent: exampleAgent(), Sample: &s}
	for range 10 {
		snap.Breakers = append(snap.Breakers, exampleBreaker())
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := CheckSnapshot(&snap); err != nil {
			b.Fatal(err)
		}
	}
}
