package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var t0 = NewTime(time.Date(2026, 11, 27, 9, 30, 15, 123456789, time.UTC))

func exampleBreaker() Breaker {
	return Breaker{
		V: Version, Name: "payments", State: StateOpen,
		FailureRate: Ptr(62.5), SlowCallRate: nil,
		Calls:      Calls{Succeeded: 30, Failed: 50, Rejected: 12, TimedOut: 3},
		RatePerSec: Ptr(8.0), Since: t0, Source: "push", LastSeen: t0,
		Thresholds: &Thresholds{FailureRate: Ptr(50.0), MinimumCalls: Ptr[uint64](20), OpenMs: Ptr(30000.0)},
	}
}

func exampleSample() Sample {
	return Sample{
		V: Version, Time: t0, IntervalMs: 1000,
		CPU:        &CPU{Cores: 0.25, LimitCores: Ptr(0.5), PercentOfLimit: Ptr(50.0), Throttling: &Throttling{Periods: 10, ThrottledPeriods: 2, ThrottledMs: 12.5, Percent: 20}},
		Memory:     &Memory{WorkingSetBytes: 64 << 20, RSSBytes: Ptr[uint64](60 << 20), LimitBytes: Ptr[uint64](128 << 20), PercentOfLimit: Ptr(50.0)},
		Network:    &Network{RxBytesPerSec: 1024, TxBytesPerSec: 2048},
		Process:    &Process{Processes: 2, Threads: 24, OpenFDs: 31},
		Throughput: &Throughput{RequestsPerSec: 120, ErrorsPerSec: 3, Latency: &Latency{P50Ms: 4, P90Ms: 12, P99Ms: 48}, Source: "app"},
		Self:       &Self{CPUCores: 0.001, RSSBytes: 9 << 20},
		Collectors: []Collector{
			{Name: "pod", OK: true, DurationMs: 0.4, Status: "ok"},
			{Name: "network", OK: false, DurationMs: 0.01, Status: "unavailable: /proc/net/dev: permission denied"},
		},
	}
}

func exampleAgent() Agent {
	return Agent{V: Version, ID: "shop/checkout-7d9f-abcde", Pod: "checkout-7d9f-abcde", Namespace: "shop",
		UID: "6f1c", Node: "node-1", IP: "10.0.0.7", Workload: "checkout", Version: "v0.1.0", Mode: "pod", Started: t0}
}

func TestGolden(t *testing.T) {
	sample := exampleSample()
	cases := map[string]any{
		"agent":      exampleAgent(),
		"sample":     sample,
		"breaker":    exampleBreaker(),
		"transition": Transition{V: Version, Agent: "shop/checkout-7d9f-abcde", From: StateClosed, To: StateOpen, Time: t0, Breaker: exampleBreaker()},
		"snapshot":   Snapshot{V: Version, Agent: exampleAgent(), Seq: 42, Sample: &sample, Breakers: []Breaker{exampleBreaker()}},
		"alert": Alert{V: Version, ID: "breaker-open/shop/checkout/payments", Rule: "breaker-open", State: AlertFiring,
			Severity: SeverityCritical, Summary: "breaker payments open on 2/3 pods of shop/checkout",
			Target: Target{Namespace: "shop", Workload: "checkout", Breaker: "payments"}, Value: Ptr(2.0 / 3), Started: t0},
		"suggestion": Suggestion{V: Version, ID: "memory-limit/shop/checkout", Rule: "memory-limit", Severity: SeverityWarning,
			Target: Target{Namespace: "shop", Workload: "checkout"}, Summary: "memory limit is close to the working set",
			Evidence: []string{"p99 working set 120 MiB over 15 min", "limit 128 MiB"}, Action: "raise the memory limit to 192Mi", Since: t0},
		"optimization": Optimization{V: Version, SampleIntervalMs: 1000, BroadcastIntervalMs: 2000, BaseBroadcastMs: 1000,
			HistoryRetentionMs: 3600000, SubscriberBuffer: 256, Subscribers: 3, SubscribersDropped: 1, Coalescing: true,
			LastBroadcastMs: 180, BroadcastBudgetMs: 100,
			Changes: []OptimizationChange{{Time: t0, Parameter: "broadcast-interval", From: "1s", To: "2s", Reason: "broadcast took 180 ms, budget 100 ms"}}},
	}
	for name, v := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := json.MarshalIndent(v, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", name+".json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("%s changed (-want +got):\n%s", path, diff)
			}
		})
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	sample := exampleSample()
	want := Snapshot{V: Version, Agent: exampleAgent(), Seq: 7, Sample: &sample, Breakers: []Breaker{exampleBreaker()}}
	frame, err := EncodeEvent("abc-7", EventSnapshot, want)
	if err != nil {
		t.Fatal(err)
	}
	var got Snapshot
	n := 0
	for ev, err := range ReadEvents(bytes.NewReader(frame), 0) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		if ev.ID != "abc-7" || ev.Name != EventSnapshot {
			t.Errorf("id, name = %q, %q; want abc-7, snapshot", ev.ID, ev.Name)
		}
		if err := Decode(ev, &got); err != nil {
			t.Fatal(err)
		}
	}
	if n != 1 {
		t.Fatalf("read %d events, want 1", n)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestTimeFormat(t *testing.T) {
	b, _ := json.Marshal(t0)
	if string(b) != `"2026-11-27T09:30:15.123Z"` {
		t.Errorf("time = %s, want millisecond RFC 3339 in UTC", b)
	}
	b, _ = json.Marshal(Time{})
	if string(b) != "null" {
		t.Errorf("zero time = %s, want null", b)
	}
}

func TestReadEvents(t *testing.T) {
	stream := strings.Join([]string{
		"retry: 3000",
		"",
		": heartbeat",
		"",
		"id: e-1",
		"event: metrics",
		"data: {\"a\":",
		"data: 1}",
		"",
		"ping: {}",
		"",
		"data: unnamed",
		"",
		"id: e-2\r\nevent: agent\r\ndata: x\r\n\r\n",
		"id: e-3",
		"data: incomplete at EOF",
	}, "\n")
	var got []Event
	for ev, err := range ReadEvents(strings.NewReader(stream), 0) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ev)
	}
	want := []Event{
		{ID: "e-1", Name: "metrics", Data: []byte("{\"a\":\n1}")},
		{ID: "e-1", Data: []byte("unnamed")},
		{ID: "e-2", Name: "agent", Data: []byte("x")},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestReadEventsTooLarge(t *testing.T) {
	stream := "id: 1\nevent: metrics\ndata: " + strings.Repeat("x", 2048) + "\n\n"
	var err error
	for _, e := range ReadEvents(strings.NewReader(stream), 1024) {
		err = e
	}
	if !errors.Is(err, ErrEventTooLarge) {
		t.Fatalf("err = %v, want ErrEventTooLarge", err)
	}
}

func TestDecodeRejectsOtherVersion(t *testing.T) {
	var s Snapshot
	err := Decode(Event{Name: EventSnapshot, Data: []byte(`{"v":2,"seq":1}`)}, &s)
	if err == nil || !strings.Contains(err.Error(), "wire version 2") {
		t.Fatalf("err = %v, want a wire version error", err)
	}
	err = Decode(Event{Name: EventSnapshot, Data: []byte(`{"seq":1}`)}, &s)
	if err == nil {
		t.Fatal("a message without v was accepted")
	}
}

func TestFrameMultiline(t *testing.T) {
	got := string(Frame("e-1", "alert", []byte("line one\nline two")))
	want := "id: e-1\nevent: alert\ndata: line one\ndata: line two\n\n"
	if got != want {
		t.Errorf("frame = %q, want %q", got, want)
	}
}

// FuzzReadEvents feeds arbitrary bytes to the SSE reader: it must never panic, and every
// event it yields must survive a re-frame and re-read unchanged.
func FuzzReadEvents(f *testing.F) {
	f.Add([]byte("id: 1\nevent: metrics\ndata: {}\n\n"))
	f.Add([]byte("data: a\r\ndata: b\r\n\r\n: c\n\nretry: x\n\n"))
	f.Add([]byte("\xef\xbb\xbfdata: bom\n\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		for ev, err := range ReadEvents(bytes.NewReader(in), 4096) {
			if err != nil {
				return
			}
			if bytes.ContainsAny(ev.Data, "\r") || strings.ContainsAny(ev.Name, "\r\n") {
				t.Fatalf("event fields hold newlines: %+v", ev)
			}
			again := Frame(ev.ID, ev.Name, ev.Data)
			for ev2, err := range ReadEvents(bytes.NewReader(again), 0) {
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(ev2.Data, ev.Data) || ev2.Name != ev.Name {
					t.Fatalf("re-read %+v, want %+v", ev2, ev)
				}
			}
		}
	})
}
