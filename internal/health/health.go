// Package health tells whether a process does its job, for /healthz: each loop that must
// keep going (a sampler, a broadcast loop, an event loop) beats as it goes round, and a
// loop whose last beat is older than it allows is stuck. A stuck process answers 503
// with what is stuck, so that a liveness probe restarts it; a slow start or a quiet
// cluster is not stuck.
package health

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/faultline-dev/faultline/internal/httpx"
)

// Monitor holds the beats of one process.
type Monitor struct {
	now    func() time.Time
	mu     sync.Mutex
	beats  []*Beat
	checks []Check
}

// Check reports a problem that is no beat (work waiting too long), or "" when all is
// well.
type Check func(now time.Time) string

// New returns a monitor reading the time from now (time.Now when nil).
func New(now func() time.Time) *Monitor {
	if now == nil {
		now = time.Now
	}
	return &Monitor{now: now}
}

// Beat is one loop's heartbeat.
type Beat struct {
	m      *Monitor
	name   string
	what   string       // what the loop does each time round, for the message
	last   atomic.Int64 // Unix ns of the last beat
	within atomic.Int64 // ns the loop may take between beats
	off    atomic.Bool  // the loop has ended on purpose
}

// Beat registers a loop that must beat at least once every within; it counts as having
// beaten now. what says what a beat is, e.g. "broadcast".
func (m *Monitor) Beat(name, what string, within time.Duration) *Beat {
	b := &Beat{m: m, name: name, what: what}
	b.within.Store(int64(within))
	b.last.Store(m.now().UnixNano())
	m.mu.Lock()
	m.beats = append(m.beats, b)
	m.mu.Unlock()
	return b
}

// Tick records that the loop went round.
func (b *Beat) Tick() { b.last.Store(b.m.now().UnixNano()) }

// Within changes how long the loop may take between beats (a loop whose interval
// changed).
func (b *Beat) Within(d time.Duration) { b.within.Store(int64(d)) }

// Stop ends the beat: the loop has finished on purpose (shutting down).
func (b *Beat) Stop() { b.off.Store(true) }

// Add registers a check.
func (m *Monitor) Add(c Check) {
	m.mu.Lock()
	m.checks = append(m.checks, c)
	m.mu.Unlock()
}

// Stuck lists what is stuck now, one line each, sorted.
func (m *Monitor) Stuck() []string {
	now := m.now()
	m.mu.Lock()
	beats, checks := m.beats, m.checks
	m.mu.Unlock()
	var out []string
	for _, b := range beats {
		if b.off.Load() {
			continue
		}
		age, within := now.Sub(time.Unix(0, b.last.Load())), time.Duration(b.within.Load())
		if age > within {
			out = append(out, fmt.Sprintf("%s: no %s for %s (expected within %s)", b.name, b.what, age.Round(time.Millisecond), within))
		}
	}
	for _, c := range checks {
		if p := c(now); p != "" {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// Handler answers /healthz: 200 {"status":"ok"} and the fields of ok while nothing is
// stuck, else 503 with {"status":"stuck","error":...,"stuck":[...]} naming each loop
// that stopped.
func (m *Monitor) Handler(ok map[string]string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if stuck := m.Stuck(); len(stuck) > 0 {
			httpx.WriteJSON(w, http.StatusServiceUnavailable, map[string]any{
				"status": "stuck", "error": strings.Join(stuck, "; "), "stuck": stuck})
			return
		}
		answer := map[string]string{"status": "ok"}
		for k, v := range ok {
			answer[k] = v
		}
		httpx.WriteJSON(w, http.StatusOK, answer)
	}
}
