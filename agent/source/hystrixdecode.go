package source

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/faultline-dev/faultline/internal/names"
	"github.com/faultline-dev/faultline/internal/wire"
)

// Hystrix defaults for properties a stream leaves out (HystrixCommandProperties).
const (
	hystrixDefaultSleepWindow = 5 * time.Second
	hystrixDefaultWindow      = 10 * time.Second
)

// HystrixCommand is the part of a hystrix.stream HystrixCommand event faultline uses.
// Counts are Hystrix's rolling-window counts, not totals since start.
type HystrixCommand struct {
	Name               string
	Open               bool // isCircuitBreakerOpen
	ErrorPercentage    *float64
	RequestCount       uint64
	Success            uint64
	Failure            uint64
	Timeout            uint64
	ShortCircuited     uint64
	ThreadPoolRejected uint64
	SemaphoreRejected  uint64
	Latency            *wire.Latency // latencyExecute percentiles
	ErrorThreshold     *float64      // propertyValue_circuitBreakerErrorThresholdPercentage
	VolumeThreshold    *uint64       // propertyValue_circuitBreakerRequestVolumeThreshold
	SleepWindow        time.Duration // propertyValue_circuitBreakerSleepWindowInMilliseconds
	Window             time.Duration // propertyValue_metricsRollingStatisticalWindowInMilliseconds
	ForceOpen          bool
	ForceClosed        bool
	Enabled            bool
}

// ErrNotCommand is returned for stream events that are not HystrixCommand events
// (HystrixThreadPool, HystrixCollapser, meta): they are skipped, not errors of the stream.
var ErrNotCommand = errors.New("not a HystrixCommand event")

// hystrixJSON mirrors the event with lenient field types: Turbine and the various
// Hystrix ports write numbers as strings and booleans as numbers now and then.
type hystrixJSON struct {
	Type                  string              `json:"type"`
	Name                  string              `json:"name"`
	IsCircuitBreakerOpen  *flexBool           `json:"isCircuitBreakerOpen"`
	ErrorPercentage       *flexNum            `json:"errorPercentage"`
	RequestCount          *flexNum            `json:"requestCount"`
	RollingSuccess        *flexNum            `json:"rollingCountSuccess"`
	RollingFailure        *flexNum            `json:"rollingCountFailure"`
	RollingTimeout        *flexNum            `json:"rollingCountTimeout"`
	RollingShortCircuited *flexNum            `json:"rollingCountShortCircuited"`
	RollingThreadPoolRej  *flexNum            `json:"rollingCountThreadPoolRejected"`
	RollingSemaphoreRej   *flexNum            `json:"rollingCountSemaphoreRejected"`
	LatencyExecute        map[string]*flexNum `json:"latencyExecute"`
	ErrorThreshold        *flexNum            `json:"propertyValue_circuitBreakerErrorThresholdPercentage"`
	VolumeThreshold       *flexNum            `json:"propertyValue_circuitBreakerRequestVolumeThreshold"`
	SleepWindowMs         *flexNum            `json:"propertyValue_circuitBreakerSleepWindowInMilliseconds"`
	RollingWindowMs       *flexNum            `json:"propertyValue_metricsRollingStatisticalWindowInMilliseconds"`
	ForceOpen             *flexBool           `json:"propertyValue_circuitBreakerForceOpen"`
	ForceClosed           *flexBool           `json:"propertyValue_circuitBreakerForceClosed"`
	Enabled               *flexBool           `json:"propertyValue_circuitBreakerEnabled"`
}

// DecodeHystrix decodes the data of one hystrix.stream event. It returns ErrNotCommand
// for other event types and an error naming the field for anything malformed.
func DecodeHystrix(data []byte) (HystrixCommand, error) {
	var j hystrixJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return HystrixCommand{}, fmt.Errorf("hystrix event: %w", err)
	}
	if j.Type != "HystrixCommand" {
		return HystrixCommand{}, ErrNotCommand
	}
	c := HystrixCommand{Name: j.Name, Enabled: true, SleepWindow: hystrixDefaultSleepWindow, Window: hystrixDefaultWindow}
	if err := names.Breaker(c.Name); err != nil {
		return HystrixCommand{}, fmt.Errorf("hystrix event: name: %w", err)
	}
	if j.IsCircuitBreakerOpen == nil {
		return HystrixCommand{}, fmt.Errorf("hystrix event %q: isCircuitBreakerOpen is missing", c.Name)
	}
	c.Open = bool(*j.IsCircuitBreakerOpen)
	var err error
	counts := []struct {
		field string
		in    *flexNum
		out   *uint64
	}{
		{"requestCount", j.RequestCount, &c.RequestCount},
		{"rollingCountSuccess", j.RollingSuccess, &c.Success},
		{"rollingCountFailure", j.RollingFailure, &c.Failure},
		{"rollingCountTimeout", j.RollingTimeout, &c.Timeout},
		{"rollingCountShortCircuited", j.RollingShortCircuited, &c.ShortCircuited},
		{"rollingCountThreadPoolRejected", j.RollingThreadPoolRej, &c.ThreadPoolRejected},
		{"rollingCountSemaphoreRejected", j.RollingSemaphoreRej, &c.SemaphoreRejected},
	}
	for _, f := range counts {
		if f.in == nil {
			continue
		}
		if *f.out, err = f.in.count(); err != nil {
			return HystrixCommand{}, fmt.Errorf("hystrix event %q: %s: %w", c.Name, f.field, err)
		}
	}
	if j.ErrorPercentage != nil {
		v := float64(*j.ErrorPercentage)
		if percent(v) == nil || math.IsInf(v, 0) {
			return HystrixCommand{}, fmt.Errorf("hystrix event %q: errorPercentage: %v is not a percentage", c.Name, v)
		}
		c.ErrorPercentage = &v
	}
	if j.LatencyExecute != nil {
		l := wire.Latency{}
		for _, p := range []struct {
			key string
			out *float64
		}{{"50", &l.P50Ms}, {"90", &l.P90Ms}, {"99", &l.P99Ms}} {
			v, ok := j.LatencyExecute[p.key]
			if !ok || v == nil {
				return HystrixCommand{}, fmt.Errorf("hystrix event %q: latencyExecute: percentile %s is missing", c.Name, p.key)
			}
			if *p.out, err = v.nonNegative(); err != nil {
				return HystrixCommand{}, fmt.Errorf("hystrix event %q: latencyExecute[%s]: %w", c.Name, p.key, err)
			}
		}
		c.Latency = &l
	}
	if j.ErrorThreshold != nil {
		v := float64(*j.ErrorThreshold)
		if percent(v) == nil {
			return HystrixCommand{}, fmt.Errorf("hystrix event %q: propertyValue_circuitBreakerErrorThresholdPercentage: %v is not a percentage", c.Name, v)
		}
		c.ErrorThreshold = &v
	}
	if j.VolumeThreshold != nil {
		n, err := j.VolumeThreshold.count()
		if err != nil {
			return HystrixCommand{}, fmt.Errorf("hystrix event %q: propertyValue_circuitBreakerRequestVolumeThreshold: %w", c.Name, err)
		}
		c.VolumeThreshold = &n
	}
	for _, d := range []struct {
		field string
		in    *flexNum
		out   *time.Duration
	}{
		{"propertyValue_circuitBreakerSleepWindowInMilliseconds", j.SleepWindowMs, &c.SleepWindow},
		{"propertyValue_metricsRollingStatisticalWindowInMilliseconds", j.RollingWindowMs, &c.Window},
	} {
		if d.in == nil {
			continue
		}
		ms, err := d.in.nonNegative()
		if err != nil || ms <= 0 || ms > float64(24*time.Hour/time.Millisecond) {
			return HystrixCommand{}, fmt.Errorf("hystrix event %q: %s: %v is not a duration in milliseconds", c.Name, d.field, float64(*d.in))
		}
		*d.out = time.Duration(ms * float64(time.Millisecond))
	}
	if j.ForceOpen != nil {
		c.ForceOpen = bool(*j.ForceOpen)
	}
	if j.ForceClosed != nil {
		c.ForceClosed = bool(*j.ForceClosed)
	}
	if j.Enabled != nil {
		c.Enabled = bool(*j.Enabled)
	}
	return c, nil
}

// hystrixTrack derives a breaker state from a command's successive events. Hystrix only
// says whether the circuit is open; it is half-open once the sleep window has passed
// (Hystrix then lets one trial request through), and open again if that trial fails,
// which the stream shows as a new failure or timeout in the rolling counts.
type hystrixTrack struct {
	state    wire.BreakerState
	armedAt  time.Time // start of the current sleep window
	failBase uint64    // failures + timeouts when half-open began
	seen     time.Time // last event
}

func (t *hystrixTrack) step(c HystrixCommand, now time.Time) wire.BreakerState {
	t.seen = now
	fails := c.Failure + c.Timeout
	switch {
	case !c.Enabled:
		t.state = wire.StateDisabled
	case c.ForceOpen:
		t.state = wire.StateForcedOpen
	case c.ForceClosed:
		// Forced closed: the breaker cannot trip, whatever the error rate.
		t.state = wire.StateDisabled
	case !c.Open:
		t.state = wire.StateClosed
	case t.state == wire.StateOpen:
		if now.Sub(t.armedAt) >= c.SleepWindow {
			t.state, t.failBase = wire.StateHalfOpen, fails
		}
	case t.state == wire.StateHalfOpen:
		if fails > t.failBase {
			t.state, t.armedAt = wire.StateOpen, now
		} else {
			t.failBase = fails // counts fall as old buckets roll out of the window
		}
	default:
		t.state, t.armedAt = wire.StateOpen, now
	}
	return t.state
}

// breaker builds the wire form of a command in the state t derived.
func (c HystrixCommand) breaker(state wire.BreakerState) wire.Breaker {
	b := wire.Breaker{
		V:     wire.Version,
		Name:  c.Name,
		State: state,
		Calls: wire.Calls{
			Succeeded: c.Success,
			Failed:    c.Failure,
			Rejected:  c.ShortCircuited + c.ThreadPoolRejected + c.SemaphoreRejected,
			TimedOut:  c.Timeout,
		},
		Latency: c.Latency,
		Source:  NameHystrix,
	}
	if c.RequestCount > 0 {
		b.FailureRate = c.ErrorPercentage
	}
	// The counts cover the rolling window, so the rate is theirs over its length.
	rate := float64(b.Calls.Total()) / c.Window.Seconds()
	b.RatePerSec = &rate
	window := wire.Ms(c.Window)
	b.CallsWindowMs = &window
	th := wire.Thresholds{FailureRate: c.ErrorThreshold, MinimumCalls: c.VolumeThreshold}
	open := wire.Ms(c.SleepWindow)
	th.OpenMs = &open
	b.Thresholds = &th
	return b
}

// flexNum is a JSON number, or a string holding one.
type flexNum float64

func (n *flexNum) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		b = []byte(s)
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("%s is not a number", b)
	}
	*n = flexNum(f)
	return nil
}

func (n flexNum) nonNegative() (float64, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
		return 0, fmt.Errorf("%v is not a non-negative number", f)
	}
	return f, nil
}

func (n flexNum) count() (uint64, error) {
	f, err := n.nonNegative()
	if err != nil || f > 1<<53 || f != math.Trunc(f) {
		return 0, fmt.Errorf("%v is not a count", float64(n))
	}
	return uint64(f), nil
}

// flexBool is a JSON boolean, the strings "true"/"false", or a number (non-zero is
// true: Turbine sums booleans over hosts).
type flexBool bool

func (v *flexBool) UnmarshalJSON(b []byte) error {
	var x any
	if err := json.Unmarshal(b, &x); err != nil {
		return err
	}
	switch x := x.(type) {
	case bool:
		*v = flexBool(x)
	case float64:
		*v = x != 0
	case string:
		p, err := strconv.ParseBool(x)
		if err != nil {
			return fmt.Errorf("%q is not a boolean", x)
		}
		*v = flexBool(p)
	default:
		return fmt.Errorf("%s is not a boolean", b)
	}
	return nil
}
