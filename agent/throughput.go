package agent

import (
	"fmt"
	"sync"
	"time"

	"github.com/faultline-dev/faultline/agent/ingest"
	"github.com/faultline-dev/faultline/internal/wire"
)

// appThroughput turns the counters the application posts into rates.
type appThroughput struct {
	mu     sync.Mutex
	base   *appReport // the report the current rates were measured from
	last   *appReport // the newest report
	rates  *wire.Throughput
	resets int
}

type appReport struct {
	requests, errors uint64
	latency          *wire.Latency
	at               time.Time
}

// minRateWindow is the shortest time over which a rate is measured; reports closer
// together than this are summed into the next window.
const minRateWindow = 100 * time.Millisecond

// record takes one report (a validated ingest.Throughput). Rates are the change of the
// counters since the report they were last measured from; a counter that went back
// means the application restarted, and measuring starts again.
func (t *appThroughput) record(r ingest.Throughput, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	rep := &appReport{requests: *r.Requests, errors: *r.Errors, latency: r.Latency, at: now}
	t.last = rep
	switch {
	case t.base == nil:
		t.base = rep
	case rep.requests < t.base.requests || rep.errors < t.base.errors:
		t.base, t.rates = rep, nil
		t.resets++
	case now.Sub(t.base.at) >= minRateWindow:
		dt := now.Sub(t.base.at).Seconds()
		t.rates = &wire.Throughput{
			RequestsPerSec: min(float64(rep.requests-t.base.requests)/dt, wire.MaxRate),
			ErrorsPerSec:   min(float64(rep.errors-t.base.errors)/dt, wire.MaxRate),
			Source:         "app",
		}
		t.base = rep
	}
}

// current returns the application's rates with its newest latency, or nil with the
// reason when it has not reported twice or its newest report is older than staleAfter.
func (t *appThroughput) current(now time.Time, staleAfter time.Duration) (*wire.Throughput, string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.last == nil:
		return nil, "the application has not posted to /v1/throughput"
	case now.Sub(t.last.at) > staleAfter:
		return nil, fmt.Sprintf("the application's last throughput report is %s old", now.Sub(t.last.at).Round(time.Second))
	case t.rates == nil:
		return nil, "the application's throughput needs a second report"
	}
	out := *t.rates
	out.Latency = t.last.latency
	return &out, fmt.Sprintf("from the application, last report %s ago", now.Sub(t.last.at).Round(time.Millisecond))
}

// breakerThroughput derives throughput from the breakers' call counters: requests are
// every call a breaker saw; errors are failed, timed-out and rejected calls (what the
// caller experienced as an error, as Hystrix counts them).
type breakerThroughput struct {
	prev map[string]wire.Calls
	at   time.Time
}

// update takes this tick's breakers and returns the rates since the previous tick, or
// nil with the reason.
func (d *breakerThroughput) update(bs []wire.Breaker, now time.Time) (*wire.Throughput, string) {
	cur := make(map[string]wire.Calls, len(bs))
	counting := 0
	for _, b := range bs {
		if b.Calls.Total() > 0 {
			cur[b.Name] = b.Calls
			counting++
		}
	}
	prev, prevAt := d.prev, d.at
	d.prev, d.at = cur, now
	if counting == 0 {
		return nil, "no breaker reports call counts"
	}
	if prev == nil || !now.After(prevAt) {
		return nil, "derived from breaker call counts: " + "rates available from the next sample"
	}
	var requests, errs uint64
	var windowed float64 // requests and errors per second of breakers counting a rolling window
	var windowedErrs float64
	for _, b := range bs {
		if b.CallsWindowMs == nil || b.RatePerSec == nil || b.Calls.Total() == 0 {
			continue
		}
		c := b.Calls
		windowed += *b.RatePerSec
		windowedErrs += *b.RatePerSec * float64(c.Failed+c.TimedOut+c.Rejected) / float64(c.Total())
		delete(cur, b.Name)
	}
	for name, c := range cur {
		p, ok := prev[name]
		if !ok || c.Succeeded < p.Succeeded || c.Failed < p.Failed || c.Rejected < p.Rejected || c.TimedOut < p.TimedOut {
			continue // new, or its counters restarted: no rate for it this interval
		}
		requests += c.Total() - p.Total()
		errs += (c.Failed - p.Failed) + (c.TimedOut - p.TimedOut) + (c.Rejected - p.Rejected)
	}
	dt := now.Sub(prevAt).Seconds()
	return &wire.Throughput{RequestsPerSec: min(float64(requests)/dt+windowed, wire.MaxRate),
			ErrorsPerSec: min(float64(errs)/dt+windowedErrs, wire.MaxRate), Source: "breakers"},
		fmt.Sprintf("derived from the call counts of %d breakers", counting)
}
