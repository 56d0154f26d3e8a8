package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// Failure pattern kinds a dependency can follow.
const (
	KindHealthy = "healthy" // every request succeeds after its latency
	KindSteady  = "steady"  // a steady share of requests fails
	KindBursts  = "bursts"  // requests fail in bursts: for burst_for_ms out of every burst_every_ms
	KindOutage  = "outage"  // every request fails at once
	KindSlow    = "slow"    // every request takes slow_ms, past the callers' timeout
)

var kinds = []string{KindHealthy, KindSteady, KindBursts, KindOutage, KindSlow}

// Pattern is how a dependency behaves. It is the JSON of the control API and, in the
// compact form "steady,errors=2%,latency=20ms", the value of a dependency's flag.
type Pattern struct {
	Kind         string  `json:"pattern"`
	ErrorPercent float64 `json:"error_percent,omitempty"`  // steady, bursts: share of requests answered 503
	LatencyMs    float64 `json:"latency_ms,omitempty"`     // time to answer a request
	SlowMs       float64 `json:"slow_ms,omitempty"`        // slow: time to answer instead of latency_ms
	BurstEveryMs float64 `json:"burst_every_ms,omitempty"` // bursts: period
	BurstForMs   float64 `json:"burst_for_ms,omitempty"`   // bursts: failing part of each period
}

// withDefaults fills what a pattern of its kind needs and the user left out.
func (p Pattern) withDefaults() Pattern {
	switch p.Kind {
	case KindBursts:
		if p.ErrorPercent == 0 {
			p.ErrorPercent = 100
		}
		if p.BurstEveryMs == 0 {
			p.BurstEveryMs = 30000
		}
		if p.BurstForMs == 0 {
			p.BurstForMs = 5000
		}
	case KindSlow:
		if p.SlowMs == 0 {
			p.SlowMs = 2000
		}
	}
	return p
}

// Validate names the field at fault.
func (p Pattern) Validate() error {
	var errs []error
	known := false
	for _, k := range kinds {
		known = known || p.Kind == k
	}
	if !known {
		errs = append(errs, fmt.Errorf("pattern: %q is not one of %s", p.Kind, strings.Join(kinds, ", ")))
	}
	if !(p.ErrorPercent >= 0 && p.ErrorPercent <= 100) { // NaN included
		errs = append(errs, fmt.Errorf("error_percent: %v is not a percentage", p.ErrorPercent))
	}
	for name, v := range map[string]float64{"latency_ms": p.LatencyMs, "slow_ms": p.SlowMs, "burst_every_ms": p.BurstEveryMs, "burst_for_ms": p.BurstForMs} {
		if v < 0 || v > 600000 {
			errs = append(errs, fmt.Errorf("%s: %v is not between 0 and 600000", name, v))
		}
	}
	if p.Kind == KindBursts && p.BurstForMs > p.BurstEveryMs {
		errs = append(errs, fmt.Errorf("burst_for_ms: %v is longer than burst_every_ms (%v)", p.BurstForMs, p.BurstEveryMs))
	}
	return errors.Join(errs...)
}

// outcome decides how the dependency answers a request arriving at now: after how
// long, and whether it fails.
func (p Pattern) outcome(now time.Time, rnd *rand.Rand) (time.Duration, bool) {
	ms := func(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
	switch p.Kind {
	case KindOutage:
		return 0, true
	case KindSlow:
		return ms(p.SlowMs), false
	case KindSteady:
		return ms(p.LatencyMs), rnd.Float64()*100 < p.ErrorPercent
	case KindBursts:
		phase := float64(now.UnixMilli() % int64(max(p.BurstEveryMs, 1)))
		if phase < p.BurstForMs {
			return ms(p.LatencyMs), rnd.Float64()*100 < p.ErrorPercent
		}
		return ms(p.LatencyMs), false
	}
	return ms(p.LatencyMs), false
}

// ParsePattern reads the compact flag form: a kind, then key=value options with keys
// errors (percent), latency, slow, every and for (durations).
//
//	steady,errors=2%,latency=20ms
//	bursts,errors=80%,every=30s,for=5s
//	slow,slow=2s
func ParsePattern(s string) (Pattern, error) {
	parts := strings.Split(s, ",")
	p := Pattern{Kind: strings.TrimSpace(parts[0])}
	for _, opt := range parts[1:] {
		key, value, ok := strings.Cut(strings.TrimSpace(opt), "=")
		if !ok {
			return Pattern{}, fmt.Errorf("%q: want key=value", opt)
		}
		var err error
		switch key {
		case "errors":
			p.ErrorPercent, err = strconv.ParseFloat(strings.TrimSuffix(value, "%"), 64)
		case "latency":
			p.LatencyMs, err = parseMs(value)
		case "slow":
			p.SlowMs, err = parseMs(value)
		case "every":
			p.BurstEveryMs, err = parseMs(value)
		case "for":
			p.BurstForMs, err = parseMs(value)
		default:
			return Pattern{}, fmt.Errorf("%q: unknown option (want errors, latency, slow, every or for)", key)
		}
		if err != nil {
			return Pattern{}, fmt.Errorf("%s: %q is not a number or duration", key, value)
		}
	}
	p = p.withDefaults()
	return p, p.Validate()
}

func parseMs(s string) (float64, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	return float64(d) / float64(time.Millisecond), nil
}

// String is the compact form ParsePattern reads.
func (p Pattern) String() string {
	var b strings.Builder
	b.WriteString(p.Kind)
	ms := func(v float64) string { return (time.Duration(v * float64(time.Millisecond))).String() }
	if p.ErrorPercent != 0 {
		fmt.Fprintf(&b, ",errors=%s%%", strconv.FormatFloat(p.ErrorPercent, 'f', -1, 64))
	}
	if p.LatencyMs != 0 {
		b.WriteString(",latency=" + ms(p.LatencyMs))
	}
	if p.SlowMs != 0 {
		b.WriteString(",slow=" + ms(p.SlowMs))
	}
	if p.BurstEveryMs != 0 {
		b.WriteString(",every=" + ms(p.BurstEveryMs))
	}
	if p.BurstForMs != 0 {
		b.WriteString(",for=" + ms(p.BurstForMs))
	}
	return b.String()
}
