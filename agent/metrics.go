package agent

import (
	"maps"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/faultline-dev/faultline/agent/exposition"
	"github.com/faultline-dev/faultline/internal/httpx"
	"github.com/faultline-dev/faultline/internal/wire"
)

// metrics holds the counters of the agent's Prometheus exposition (package exposition
// builds and writes it).
type metrics struct {
	samples  atomic.Uint64
	inFlight chan struct{} // bounds concurrent scrapes

	mu          sync.Mutex
	transitions map[wire.BreakerState]uint64 // by the state entered
	requests    map[exposition.Request]uint64
}

// maxScrapes is how many /metrics requests may be answered at once; more get 503.
const maxScrapes = 4

func newMetrics() *metrics {
	return &metrics{
		inFlight:    make(chan struct{}, maxScrapes),
		transitions: map[wire.BreakerState]uint64{},
		requests:    map[exposition.Request]uint64{},
	}
}

func (m *metrics) sampled() { m.samples.Add(1) }

func (m *metrics) transitioned(to wire.BreakerState) {
	m.mu.Lock()
	m.transitions[to]++
	m.mu.Unlock()
}

// instrument counts the requests a listener answers, by route pattern.
func (m *metrics) instrument(listener string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r)
		route := r.Pattern
		if route == "" || route == "/" {
			route = "other"
		}
		m.mu.Lock()
		m.requests[exposition.Request{Listener: listener, Route: route, Code: sw.code}]++
		m.mu.Unlock()
	})
}

// statusWriter records the status code. Unwrap lets http.ResponseController reach the
// connection for flushes and write deadlines.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// getMetrics is GET /metrics, in the format the scraper asks for (exposition.Format).
func (a *agent) getMetrics(w http.ResponseWriter, r *http.Request) {
	select {
	case a.metrics.inFlight <- struct{}{}:
		defer func() { <-a.metrics.inFlight }()
	default:
		httpx.WriteError(w, http.StatusServiceUnavailable, "%d scrapes of /metrics are already being answered; try again later", maxScrapes)
		return
	}
	if err := exposition.Write(w, exposition.Format(r.Header), exposition.Families(a.gather())); err != nil {
		a.log.Debug("write /metrics", "error", err) // the scraper went away
	}
}

// gather reads what a scrape reports: the counters, the latest sample and the breakers.
func (a *agent) gather() exposition.State {
	s := exposition.State{
		Agent:       a.id,
		Samples:     a.metrics.samples.Load(),
		Sample:      a.latestSample(),
		Breakers:    a.reg.List(),
		MaxBreakers: a.cfg.MaxBreakers,
		Refused:     a.reg.Refused(),
		RefusedHTTP: a.guard.Refused(),
		Subscribers: a.hub.Subscribers(),
		Dropped:     a.hub.Dropped(),
	}
	a.metrics.mu.Lock()
	s.Transitions = maps.Clone(a.metrics.transitions)
	s.Requests = maps.Clone(a.metrics.requests)
	a.metrics.mu.Unlock()
	return s
}
