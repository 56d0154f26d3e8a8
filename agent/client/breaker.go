package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/faultline-dev/faultline/internal/names"
)

// Breaker is a gobreaker.CircuitBreaker whose state changes and calls are reported.
// Everything of gobreaker's API is there (State, Counts, Name); Execute is wrapped to
// count calls.
type Breaker[T any] struct {
	*gobreaker.CircuitBreaker[T]
	t *tracked
}

// NewBreaker builds a gobreaker.CircuitBreaker from st and reports it through r. Your
// own OnStateChange and ReadyToTrip keep working. The breaker is reported under st.Name,
// byte for byte (reports carry names in their body, never in a URL). It panics if r
// already reports a breaker of that name, or the name is empty, longer than 200 bytes,
// "." or "..", or holds control characters: these are programming errors.
func NewBreaker[T any](r *Reporter, st gobreaker.Settings) *Breaker[T] {
	if r == nil {
		panic(errNoReporter)
	}
	name, err := reportedName(st.Name)
	if err != nil {
		panic(err)
	}
	t := &tracked{name: name, r: r, isSuccessful: st.IsSuccessful, isExcluded: st.IsExcluded, state: gobreaker.StateClosed, since: time.Now()}
	open := st.Timeout
	if open <= 0 {
		open = 60 * time.Second // gobreaker's default open period
	}
	t.openMs = float64(open) / float64(time.Millisecond)

	userChange, userTrip := st.OnStateChange, st.ReadyToTrip
	if userTrip == nil {
		userTrip = func(c gobreaker.Counts) bool { return c.ConsecutiveFailures > 5 } // gobreaker's default
	}
	st.ReadyToTrip = func(c gobreaker.Counts) bool {
		trip := userTrip(c)
		if trip {
			t.tripped(c)
		}
		return trip
	}
	// gobreaker calls OnStateChange with its lock held: only quick, non-blocking work.
	st.OnStateChange = func(name string, from, to gobreaker.State) {
		t.changed(to)
		if userChange != nil {
			userChange(name, from, to)
		}
	}
	cb := gobreaker.NewCircuitBreaker[T](st)
	t.stateFn, t.countsFn = cb.State, cb.Counts
	if err := r.register(t); err != nil {
		panic(err)
	}
	r.enqueue(t.report(gobreaker.StateClosed))
	return &Breaker[T]{CircuitBreaker: cb, t: t}
}

// reportedName is the name the agent accepts for a gobreaker name: the same name, byte
// for byte, when the agent accepts it.
func reportedName(name string) (string, error) {
	if err := names.Breaker(name); err != nil {
		return "", fmt.Errorf("faultline client: breaker name: %w", err)
	}
	return name, nil
}

// Execute runs req if the breaker lets it through, as gobreaker's Execute does, and
// counts the outcome: succeeded, failed, timed out (a context deadline or a network
// timeout) or rejected by the breaker.
func (b *Breaker[T]) Execute(req func() (T, error)) (T, error) {
	ran := false
	v, err := b.CircuitBreaker.Execute(func() (T, error) {
		ran = true
		v, err := req()
		// Counted before gobreaker records the outcome, so that a state change
		// it causes is reported with the call that caused it.
		b.t.count(true, err)
		return v, err
	})
	if !ran {
		b.t.count(false, err)
	}
	return v, err
}

// tracked is what the reporter knows of one breaker.
type tracked struct {
	name         string
	r            *Reporter
	isSuccessful func(error) bool
	isExcluded   func(error) bool
	openMs       float64
	stateFn      func() gobreaker.State
	countsFn     func() gobreaker.Counts

	succeeded, failed, rejected, timedOut atomic.Uint64

	mu       sync.Mutex
	state    gobreaker.State
	since    time.Time
	tripRate *float64 // failure rate when the breaker last tripped
	lastSent breakerReport
	sentOnce bool
}

func (t *tracked) count(ran bool, err error) {
	switch {
	case !ran && (errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests)):
		t.rejected.Add(1)
	case t.isExcluded != nil && t.isExcluded(err):
	case t.isSuccessful != nil && t.isSuccessful(err), t.isSuccessful == nil && err == nil:
		t.succeeded.Add(1)
	case isTimeout(err):
		t.timedOut.Add(1)
	default:
		t.failed.Add(1)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// tripped remembers the failure rate that opened the breaker (gobreaker clears its
// counts on every change of state).
func (t *tracked) tripped(c gobreaker.Counts) {
	rate := failureRate(c)
	t.mu.Lock()
	t.tripRate = rate
	t.mu.Unlock()
}

// changed records a state change and queues its report at once.
func (t *tracked) changed(to gobreaker.State) {
	t.mu.Lock()
	t.state, t.since = to, time.Now()
	t.mu.Unlock()
	t.r.enqueue(t.report(to))
}

// poll reads the breaker's state, which lets gobreaker notice an expired open period.
func (t *tracked) poll() { t.stateFn() }

// report builds the breaker's report in state s from the counters now.
func (t *tracked) report(s gobreaker.State) breakerReport {
	t.mu.Lock()
	defer t.mu.Unlock()
	rep := breakerReport{
		V:     1,
		Name:  t.name,
		State: stateName(s),
		Calls: calls{
			Succeeded: t.succeeded.Load(),
			Failed:    t.failed.Load(),
			Rejected:  t.rejected.Load(),
			TimedOut:  t.timedOut.Load(),
		},
		Since:      t.since.UTC().Format(timeFormat),
		Source:     t.r.opts.Source,
		Thresholds: &thresholds{OpenMs: &t.openMs},
	}
	if s == gobreaker.StateOpen {
		rep.FailureRate = t.tripRate
	}
	return rep
}

// periodic returns the breaker's current report when it changed since the last one
// sent, or when force is set.
func (t *tracked) periodic(force bool) (breakerReport, bool) {
	t.mu.Lock()
	s := t.state
	t.mu.Unlock()
	rep := t.report(s)
	if s != gobreaker.StateOpen {
		rep.FailureRate = failureRate(t.countsFn())
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !force && t.sentOnce && rep.sameAs(t.lastSent) {
		return rep, false
	}
	t.lastSent, t.sentOnce = rep, true
	return rep, true
}

// failureRate is failures over the calls counted in gobreaker's current window, in
// percent; nil when the window holds none.
func failureRate(c gobreaker.Counts) *float64 {
	n := c.TotalSuccesses + c.TotalFailures
	if n == 0 {
		return nil
	}
	r := float64(c.TotalFailures) / float64(n) * 100
	return &r
}

func stateName(s gobreaker.State) string {
	switch s {
	case gobreaker.StateOpen:
		return "open"
	case gobreaker.StateHalfOpen:
		return "half_open"
	default:
		return "closed"
	}
}

// timeFormat is the agent's time format: RFC 3339 with milliseconds, UTC.
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

// breakerReport is one breaker in POST /v1/breakers; it mirrors the agent's breaker
// model (a test checks the agent decodes it to the same values).
type breakerReport struct {
	V           int         `json:"v"`
	Name        string      `json:"name"`
	State       string      `json:"state"`
	FailureRate *float64    `json:"failure_rate"`
	Calls       calls       `json:"calls"`
	Since       string      `json:"since"`
	Source      string      `json:"source"`
	Thresholds  *thresholds `json:"thresholds,omitempty"`
}

type calls struct {
	Succeeded uint64 `json:"succeeded"`
	Failed    uint64 `json:"failed"`
	Rejected  uint64 `json:"rejected"`
	TimedOut  uint64 `json:"timed_out"`
}

type thresholds struct {
	OpenMs *float64 `json:"open_ms,omitempty"`
}

func (a breakerReport) sameAs(b breakerReport) bool {
	return a.State == b.State && a.Calls == b.Calls && a.Since == b.Since && eqRate(a.FailureRate, b.FailureRate)
}

func eqRate(a, b *float64) bool {
	return (a == nil && b == nil) || (a != nil && b != nil && *a == *b)
}
