package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/faultline-dev/faultline/agent/ingest"
	"github.com/faultline-dev/faultline/internal/wire"
)

func report(requests, errs uint64, lat *wire.Latency) ingest.Throughput {
	return ingest.Throughput{Requests: &requests, Errors: &errs, Latency: lat}
}

func TestAppThroughput(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 9, 30, 0, 0, time.UTC)
	var a appThroughput
	if got, why := a.current(t0, 10*time.Second); got != nil || !strings.Contains(why, "has not posted") {
		t.Fatalf("before any report: %+v, %q", got, why)
	}
	a.record(report(1000, 10, nil), t0)
	if got, why := a.current(t0, 10*time.Second); got != nil || !strings.Contains(why, "second report") {
		t.Fatalf("after one report: %+v, %q", got, why)
	}
	lat := &wire.Latency{P50Ms: 4, P90Ms: 12, P99Ms: 48}
	a.record(report(1100, 12, nil), t0.Add(50*time.Millisecond)) // too close: summed into the next window
	a.record(report(1240, 16, lat), t0.Add(2*time.Second))
	got, why := a.current(t0.Add(2500*time.Millisecond), 10*time.Second)
	want := &wire.Throughput{RequestsPerSec: 120, ErrorsPerSec: 3, Latency: lat, Source: "app"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rates over two seconds (-want +got):\n%s", diff)
	}
	if why != "from the application, last report 500ms ago" {
		t.Errorf("status %q", why)
	}
	if got, why := a.current(t0.Add(13*time.Second), 10*time.Second); got != nil || !strings.Contains(why, "11s old") {
		t.Errorf("stale report: %+v, %q", got, why)
	}
	a.record(report(5, 0, nil), t0.Add(3*time.Second)) // the application restarted
	if got, _ := a.current(t0.Add(3*time.Second), 10*time.Second); got != nil {
		t.Errorf("after a counter reset: %+v, want no rate until the next report", got)
	}
	a.record(report(25, 1, nil), t0.Add(4*time.Second))
	if got, _ := a.current(t0.Add(4*time.Second), 10*time.Second); got == nil || got.RequestsPerSec != 20 {
		t.Errorf("after the restart: %+v, want 20 requests/s", got)
	}
}

func TestBreakerThroughput(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 9, 30, 0, 0, time.UTC)
	calls := func(s, f, r, to uint64) wire.Calls {
		return wire.Calls{Succeeded: s, Failed: f, Rejected: r, TimedOut: to}
	}
	var d breakerThroughput
	if got, why := d.update([]wire.Breaker{{Name: "idle"}}, t0); got != nil || why != "no breaker reports call counts" {
		t.Fatalf("no counts: %+v, %q", got, why)
	}
	d.update([]wire.Breaker{{Name: "a", Calls: calls(100, 10, 0, 0)}, {Name: "b", Calls: calls(50, 0, 0, 0)}}, t0)
	got, why := d.update([]wire.Breaker{
		{Name: "a", Calls: calls(180, 14, 4, 2)}, // +90 calls, 10 of them errors
		{Name: "b", Calls: calls(10, 0, 0, 0)},   // restarted: left out
		{Name: "c", Calls: calls(500, 0, 0, 0)},  // new: left out
	}, t0.Add(2*time.Second))
	want := &wire.Throughput{RequestsPerSec: 45, ErrorsPerSec: 5, Source: "breakers"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if why != "derived from the call counts of 3 breakers" {
		t.Errorf("status %q", why)
	}
}

func TestThroughputPrefersTheApplication(t *testing.T) {
	a := newTestAgent(t, nil)
	t0 := time.Date(2026, 11, 27, 9, 30, 0, 0, time.UTC)
	a.reg.Upsert(wire.Breaker{Name: "db", State: wire.StateClosed, Source: "push", Calls: wire.Calls{Succeeded: 10}})
	ignore := cmpopts.IgnoreFields(wire.Collector{}, "DurationMs")

	tp, cols := a.throughput(t0, a.reg.List(), nil)
	if diff := cmp.Diff([]wire.Collector{{Name: "throughput", OK: true, Status: "derived from breaker call counts: rates available from the next sample"}}, cols, ignore); tp != nil || diff != "" {
		t.Errorf("first tick: %+v (-want +got):\n%s", tp, diff)
	}
	a.reg.Upsert(wire.Breaker{Name: "db", State: wire.StateClosed, Source: "push", Calls: wire.Calls{Succeeded: 30}})
	tp, cols = a.throughput(t0.Add(time.Second), a.reg.List(), nil)
	if tp == nil || tp.Source != "breakers" || tp.RequestsPerSec != 20 {
		t.Errorf("second tick: %+v, %+v; want 20/s from breakers", tp, cols)
	}
	a.app.record(report(0, 0, nil), t0.Add(time.Second))
	a.app.record(report(300, 0, nil), t0.Add(2*time.Second))
	tp, _ = a.throughput(t0.Add(2*time.Second), a.reg.List(), nil)
	if tp == nil || tp.Source != "app" || tp.RequestsPerSec != 300 {
		t.Errorf("with application reports: %+v; want 300/s from the app", tp)
	}
}

func TestThroughputUnavailable(t *testing.T) {
	a := newTestAgent(t, nil)
	tp, cols := a.throughput(time.Now(), nil, nil)
	want := "unavailable: the application has not posted to /v1/throughput and no breaker reports call counts"
	if tp != nil || len(cols) != 1 || cols[0].OK || cols[0].Status != want {
		t.Errorf("got %+v, %+v; want status %q", tp, cols, want)
	}
}

func TestBreakerThroughputRollingWindow(t *testing.T) {
	// Hystrix counts a rolling window: its counters go up and down, so rates come from
	// the rate the source measured over its window, not from differences.
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	windowed := func(succeeded, failed uint64, rate float64) wire.Breaker {
		return wire.Breaker{Name: "ChargeCard", Source: "hystrix", Calls: wire.Calls{Succeeded: succeeded, Failed: failed},
			RatePerSec: &rate, CallsWindowMs: wire.Ptr(10000.0)}
	}
	var d breakerThroughput
	d.update([]wire.Breaker{windowed(80, 20, 10)}, t0)
	got, _ := d.update([]wire.Breaker{windowed(60, 20, 8)}, t0.Add(time.Second))
	if got == nil || got.RequestsPerSec != 8 || got.ErrorsPerSec != 2 {
		t.Fatalf("throughput = %+v, want 8 requests/s and 2 errors/s from the window", got)
	}
}

// Rates from counters that jump however far stay within the wire's bounds, so that the
// aggregator never refuses the agent's sample for them.
func TestRatesStayInBounds(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 9, 30, 0, 0, time.UTC)
	var a appThroughput
	a.record(report(0, 0, nil), t0)
	a.record(report(1<<63, 1<<62, nil), t0.Add(100*time.Millisecond))
	got, _ := a.current(t0.Add(100*time.Millisecond), time.Minute)
	s := wire.Sample{V: 1, IntervalMs: 100, Throughput: got}
	if err := wire.CheckSample(&s); err != nil || got.RequestsPerSec != wire.MaxRate {
		t.Errorf("app throughput %+v: %v", got, err)
	}
	var d breakerThroughput
	d.update([]wire.Breaker{{Name: "db", Calls: wire.Calls{Succeeded: 1}}}, t0)
	got, _ = d.update([]wire.Breaker{{Name: "db", Calls: wire.Calls{Succeeded: wire.MaxCount, Failed: wire.MaxCount}}}, t0.Add(time.Millisecond))
	s.Throughput = got
	if err := wire.CheckSample(&s); err != nil || got.ErrorsPerSec != wire.MaxRate {
		t.Errorf("derived throughput %+v: %v", got, err)
	}
}
