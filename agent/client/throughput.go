package client

import (
	"math"
	"net/http"
	"sync/atomic"
	"time"
)

// ObserveRequest records one request the service served: how long it took and whether
// it failed. The totals and the latency percentiles of each FlushInterval are pushed to
// the agent's POST /v1/throughput. It never blocks.
func (r *Reporter) ObserveRequest(d time.Duration, failed bool) {
	r.tp.requests.Add(1)
	if failed {
		r.tp.errors.Add(1)
	}
	r.tp.hist.Load().add(d)
}

// Middleware wraps an HTTP handler so that every request it serves is observed; a
// response status of 500 or more counts as an error.
func (r *Reporter) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, req)
		r.ObserveRequest(time.Since(start), sw.status >= 500)
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// latencyWindow is how far back the reported latency percentiles look, so that a
// service with little traffic still has percentiles in every report.
const latencyWindow = 10 * time.Second

// throughput holds the service's counters between pushes.
type throughput struct {
	requests, errors atomic.Uint64
	hist             atomic.Pointer[histogram] // observations since the last push
	recent           []histCounts              // the last pushes' histograms; sender only
	keep             int                       // how many of them cover latencyWindow
}

type histCounts [histBuckets]uint64

// throughputReport is the body of POST /v1/throughput: totals since start, and the
// latency percentiles of the requests since the previous report.
type throughputReport struct {
	V        int      `json:"v"`
	Requests uint64   `json:"requests"`
	Errors   uint64   `json:"errors"`
	Latency  *latency `json:"latency,omitempty"`
}

type latency struct {
	P50Ms float64 `json:"p50_ms"`
	P90Ms float64 `json:"p90_ms"`
	P99Ms float64 `json:"p99_ms"`
}

// report returns the report to push, or false while nothing was ever observed.
func (tp *throughput) report() (throughputReport, bool) {
	tp.recent = append(tp.recent, tp.hist.Swap(newHistogram()).snapshot())
	if len(tp.recent) > tp.keep {
		tp.recent = tp.recent[len(tp.recent)-tp.keep:]
	}
	h := histCounts{}
	for _, r := range tp.recent {
		for i, c := range r {
			h[i] += c
		}
	}
	// Errors first: a request observed between the two loads is then never counted
	// as an error without its request.
	errs := tp.errors.Load()
	reqs := tp.requests.Load()
	if reqs == 0 {
		return throughputReport{}, false
	}
	rep := throughputReport{V: 1, Requests: reqs, Errors: min(errs, reqs)}
	if h.total() > 0 {
		rep.Latency = &latency{P50Ms: h.quantile(0.5), P90Ms: h.quantile(0.9), P99Ms: h.quantile(0.99)}
	}
	return rep, true
}

// Latency histogram: bucket i holds durations up to histMin·histGrowth^i, so a
// percentile read from it is within one bucket (20 %) of the true value. Below histMin
// everything falls in bucket 0; above the last bound, in the last bucket.
const (
	histMin     = 50 * time.Microsecond
	histGrowth  = 1.2
	histBuckets = 80 // up to about 100 s
)

type histogram struct {
	counts [histBuckets]atomic.Uint64
}

func newHistogram() *histogram { return &histogram{} }

func (h *histogram) snapshot() histCounts {
	var c histCounts
	for i := range h.counts {
		c[i] = h.counts[i].Load()
	}
	return c
}

func bucketBound(i int) float64 { // in milliseconds
	return float64(histMin) / float64(time.Millisecond) * math.Pow(histGrowth, float64(i))
}

func (h *histogram) add(d time.Duration) {
	i := 0
	if d > histMin {
		i = int(math.Ceil(math.Log(float64(d)/float64(histMin)) / math.Log(histGrowth)))
	}
	h.counts[min(max(i, 0), histBuckets-1)].Add(1)
}

func (counts *histCounts) total() uint64 {
	var n uint64
	for _, c := range counts {
		n += c
	}
	return n
}

// quantile returns the q-quantile in milliseconds, interpolating linearly inside the
// bucket it falls in, as Prometheus' histogram_quantile does.
func (counts *histCounts) quantile(q float64) float64 {
	rank := q * float64(counts.total())
	var cum uint64
	for i, c := range counts {
		if c == 0 || float64(cum+c) < rank {
			cum += c
			continue
		}
		lo := 0.0
		if i > 0 {
			lo = bucketBound(i - 1)
		}
		hi := bucketBound(i)
		return lo + (hi-lo)*(rank-float64(cum))/float64(c)
	}
	return bucketBound(histBuckets - 1)
}
