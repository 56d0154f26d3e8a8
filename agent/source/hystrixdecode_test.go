package source

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/faultline-dev/faultline/agent/breaker"
	"github.com/faultline-dev/faultline/internal/wire"
)

func u64(v uint64) *uint64 { return &v }

func TestDecodeHystrixFixture(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "hystrix.stream"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []wire.Breaker
	skipped := 0
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for ev, err := range wire.ReadEvents(f, 0) {
		if err != nil {
			t.Fatal(err)
		}
		cmd, err := DecodeHystrix(ev.Data)
		if errors.Is(err, ErrNotCommand) {
			skipped++
			continue
		}
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		var track hystrixTrack
		got = append(got, cmd.breaker(track.step(cmd, now)))
	}
	if skipped != 1 {
		t.Errorf("skipped %d events, want the 1 HystrixThreadPool event", skipped)
	}
	thresholds := &wire.Thresholds{FailureRate: pct(50), MinimumCalls: u64(20), OpenMs: pct(5000)}
	want := []wire.Breaker{
		{
			V: 1, Name: "GetUser", State: wire.StateClosed, FailureRate: pct(2),
			Calls:      wire.Calls{Succeeded: 147, Failed: 2, TimedOut: 1},
			RatePerSec: pct(15), // 150 calls in the 10 s rolling window
			Latency:    &wire.Latency{P50Ms: 9, P90Ms: 28, P99Ms: 97},
			Source:     NameHystrix, Thresholds: thresholds, CallsWindowMs: pct(10000),
		},
		{
			V: 1, Name: "ChargeCard", State: wire.StateOpen, FailureRate: pct(71),
			Calls:      wire.Calls{Succeeded: 11, Failed: 19, Rejected: 56, TimedOut: 8},
			RatePerSec: pct(9.4),
			Latency:    &wire.Latency{P50Ms: 480, P90Ms: 1000, P99Ms: 1001},
			Source:     NameHystrix, Thresholds: thresholds, CallsWindowMs: pct(10000),
		},
		{
			// Forced open; no requests in the window, so no failure rate.
			V: 1, Name: "AuditLog", State: wire.StateForcedOpen,
			Calls:      wire.Calls{Rejected: 12},
			RatePerSec: pct(1.2),
			Latency:    &wire.Latency{},
			Source:     NameHystrix, Thresholds: thresholds, CallsWindowMs: pct(10000),
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("breakers (-want +got):\n%s", diff)
	}
	for _, b := range got {
		if err := wire.CheckBreaker(&b); err != nil {
			t.Errorf("%s: %v", b.Name, err)
		}
	}
}

func TestDecodeHystrixBadInput(t *testing.T) {
	const base = `"type":"HystrixCommand","name":"c","isCircuitBreakerOpen":false`
	for _, tc := range []struct {
		name, data, want string
	}{
		{"not json", `{"type":"HystrixCommand",`, "unexpected end of JSON input"},
		{"not an object", `[1,2]`, "cannot unmarshal array"},
		{"no open flag", `{"type":"HystrixCommand","name":"c"}`, "isCircuitBreakerOpen is missing"},
		{"open flag not boolean", `{` + base[:len(base)-5] + `"maybe"}`, `"maybe" is not a boolean`},
		{"empty name", `{"type":"HystrixCommand","name":"","isCircuitBreakerOpen":true}`, "name: must be 1 to"},
		{"control character in name", `{"type":"HystrixCommand","name":"a\u0007b","isCircuitBreakerOpen":true}`, "control character"},
		{"error percentage over 100", `{` + base + `,"errorPercentage":150}`, "errorPercentage: 150 is not a percentage"},
		{"negative count", `{` + base + `,"rollingCountFailure":-4}`, "rollingCountFailure: -4 is not a count"},
		{"fractional count", `{` + base + `,"requestCount":1.5}`, "requestCount: 1.5 is not a count"},
		{"count not a number", `{` + base + `,"requestCount":"lots"}`, "lots is not a number"},
		{"huge count", `{` + base + `,"requestCount":1e300}`, "is not a count"},
		{"latency percentile missing", `{` + base + `,"latencyExecute":{"50":1,"90":2}}`, "percentile 99 is missing"},
		{"latency negative", `{` + base + `,"latencyExecute":{"50":1,"90":-2,"99":3}}`, "latencyExecute[90]"},
		{"zero sleep window", `{` + base + `,"propertyValue_circuitBreakerSleepWindowInMilliseconds":0}`, "SleepWindowInMilliseconds: 0 is not a duration"},
		{"threshold over 100", `{` + base + `,"propertyValue_circuitBreakerErrorThresholdPercentage":101}`, "ErrorThresholdPercentage: 101 is not a percentage"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeHystrix([]byte(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestDecodeHystrixLenientTypes(t *testing.T) {
	// Turbine and ports of Hystrix write numbers as strings and booleans as strings or
	// summed numbers.
	c, err := DecodeHystrix([]byte(`{"type":"HystrixCommand","name":"GET /users","isCircuitBreakerOpen":"true",
		"errorPercentage":"40","requestCount":"10","rollingCountSuccess":6,"rollingCountFailure":"4",
		"propertyValue_circuitBreakerForceOpen":0,"propertyValue_circuitBreakerEnabled":1}`))
	if err != nil {
		t.Fatal(err)
	}
	want := HystrixCommand{
		Name: "GET /users", Open: true, ErrorPercentage: pct(40), RequestCount: 10, Success: 6, Failure: 4,
		Enabled: true, SleepWindow: 5 * time.Second, Window: 10 * time.Second,
	}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("decoded (-want +got):\n%s", diff)
	}
}

// TestHystrixTrack walks one command through a Hystrix breaker's life as the stream
// shows it, checking the state faultline derives at each event.
func TestHystrixTrack(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cmd := func(open bool, failures uint64) HystrixCommand {
		return HystrixCommand{Name: "c", Open: open, Failure: failures, Enabled: true, SleepWindow: 5 * time.Second, Window: 10 * time.Second}
	}
	steps := []struct {
		at   time.Duration
		cmd  HystrixCommand
		want wire.BreakerState
	}{
		{0, cmd(false, 0), wire.StateClosed},
		{1 * time.Second, cmd(false, 9), wire.StateClosed},
		{2 * time.Second, cmd(true, 12), wire.StateOpen}, // tripped
		{6 * time.Second, cmd(true, 12), wire.StateOpen}, // inside the 5 s sleep window
		{7 * time.Second, cmd(true, 12), wire.StateHalfOpen},
		{7500 * time.Millisecond, cmd(true, 11), wire.StateHalfOpen}, // an old bucket rolled out
		{8 * time.Second, cmd(true, 12), wire.StateOpen},             // the trial call failed
		{12 * time.Second, cmd(true, 12), wire.StateOpen},
		{13 * time.Second, cmd(true, 12), wire.StateHalfOpen},
		{13500 * time.Millisecond, cmd(false, 12), wire.StateClosed}, // the trial succeeded
		{14 * time.Second, HystrixCommand{Name: "c", Open: true, ForceOpen: true, Enabled: true}, wire.StateForcedOpen},
		{15 * time.Second, HystrixCommand{Name: "c", Open: false, ForceClosed: true, Enabled: true}, wire.StateDisabled},
		{16 * time.Second, HystrixCommand{Name: "c", Open: false, Enabled: false}, wire.StateDisabled},
	}
	var track hystrixTrack
	var got, want []wire.BreakerState
	for _, s := range steps {
		got = append(got, track.step(s.cmd, start.Add(s.at)))
		want = append(want, s.want)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("states (-want +got):\n%s", diff)
	}
}

// FuzzDecodeHystrix checks that any event data either decodes to a command whose breaker
// the registry accepts, or is refused with an error; never a panic.
func FuzzDecodeHystrix(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("testdata", "hystrix.stream")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if data, ok := strings.CutPrefix(line, "data: "); ok {
				f.Add([]byte(data))
			}
		}
	}
	f.Add([]byte(`{"type":"HystrixCommand","name":"x","isCircuitBreakerOpen":"1","requestCount":"3"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cmd, err := DecodeHystrix(data)
		if err != nil {
			return
		}
		var track hystrixTrack
		reg := breaker.New("fuzz", nil)
		now := time.Now()
		for i := 0; i < 3; i++ {
			b := cmd.breaker(track.step(cmd, now.Add(time.Duration(i)*cmd.SleepWindow)))
			if _, err := reg.Upsert(b); err != nil {
				t.Fatalf("registry refused %+v: %v", b, err)
			}
		}
	})
}
