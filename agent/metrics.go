package agent

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/faultline-dev/faultline/internal/wire"
)

// metrics is the agent's Prometheus exposition: its own registry (never the global
// one), with names prefixed faultline_agent_ and base units. Gauges are read from the
// latest sample and the breaker registry when scraped, so sampling does no extra work.
type metrics struct {
	reg         *prometheus.Registry
	transitions *prometheus.CounterVec
	requests    *prometheus.CounterVec
	samples     prometheus.Counter
}

func newMetrics(a *agent) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "faultline_agent_breaker_transitions_total",
			Help: "Breaker state transitions recorded, by the state entered.",
		}, []string{"state"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "faultline_agent_http_requests_total",
			Help: "HTTP requests answered, by listener, route and status code.",
		}, []string{"listener", "route", "code"}),
		samples: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "faultline_agent_samples_total",
			Help: "Samples taken.",
		}),
	}
	m.reg.MustRegister(m.transitions, m.requests, m.samples, stateCollector{a})
	return m
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
		m.requests.WithLabelValues(listener, route, strconv.Itoa(sw.code)).Inc()
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

var (
	descInfo = prometheus.NewDesc("faultline_agent_info", "The agent's identity; always 1.",
		[]string{"agent", "namespace", "pod", "workload", "node", "mode", "version"}, nil)
	descCPU          = gauge("cpu_usage_cores", "CPU used by the watched unit (pod, cgroup or host) over the last interval, in cores.")
	descCPULimit     = gauge("cpu_limit_cores", "CPU limit of the watched unit, in cores.")
	descThrottled    = gauge("cpu_throttled_ratio", "Share of CFS periods in the last interval in which the cgroup was throttled (0-1).")
	descWorkingSet   = gauge("memory_working_set_bytes", "Working set of the watched unit.")
	descRSS          = gauge("memory_rss_bytes", "Resident (anonymous) memory of the watched unit.")
	descMemoryLimit  = gauge("memory_limit_bytes", "Memory limit of the watched unit.")
	descRx           = gauge("network_receive_bytes_per_second", "Bytes received per second over non-loopback interfaces.")
	descTx           = gauge("network_transmit_bytes_per_second", "Bytes sent per second over non-loopback interfaces.")
	descProcesses    = gauge("processes", "Processes of the watched unit.")
	descThreads      = gauge("threads", "Threads of the watched unit.")
	descFDs          = gauge("open_fds", "Open file descriptors of the watched unit.")
	descLoad         = prometheus.NewDesc("faultline_agent_load_average", "Host load average.", []string{"window"}, nil)
	descRequests     = gauge("requests_per_second", "Requests served per second, as the application reports them or derived from breaker call counts.")
	descErrors       = gauge("errors_per_second", "Failed requests per second.")
	descLatency      = prometheus.NewDesc("faultline_agent_latency_seconds", "Request latency percentile the application reports.", []string{"quantile"}, nil)
	descSelfCPU      = gauge("self_cpu_usage_cores", "CPU used by the agent itself, in cores.")
	descSelfRSS      = gauge("self_resident_memory_bytes", "Resident memory of the agent itself.")
	descCollectorUp  = prometheus.NewDesc("faultline_agent_collector_up", "1 when the collector or breaker source worked in the last sample.", []string{"collector"}, nil)
	descCollectorDur = prometheus.NewDesc("faultline_agent_collector_duration_seconds", "Time the collector or breaker source took in the last sample.", []string{"collector"}, nil)
	descState        = prometheus.NewDesc("faultline_agent_breaker_state", "1 for the state each breaker is in, 0 for the others.", []string{"breaker", "source", "state"}, nil)
	descCalls        = prometheus.NewDesc("faultline_agent_breaker_calls_total", "Calls through each breaker as its source counts them, by outcome.", []string{"breaker", "outcome"}, nil)
	descFailureRate  = prometheus.NewDesc("faultline_agent_breaker_failure_ratio", "Failure rate each breaker reports (0-1).", []string{"breaker"}, nil)
	descStale        = prometheus.NewDesc("faultline_agent_breaker_stale", "1 when the breaker's source has stopped reporting it.", []string{"breaker"}, nil)
	descSubscribers  = gauge("stream_subscribers", "Clients reading /v1/stream.")
	descDropped      = prometheus.NewDesc("faultline_agent_stream_subscribers_dropped_total", "Stream clients cut off for falling behind.", nil, nil)
)

func gauge(name, help string) *prometheus.Desc {
	return prometheus.NewDesc("faultline_agent_"+name, help, nil, nil)
}

var breakerStates = []wire.BreakerState{wire.StateClosed, wire.StateOpen, wire.StateHalfOpen, wire.StateDisabled, wire.StateForcedOpen}

// stateCollector exposes the latest sample and the breakers.
type stateCollector struct{ a *agent }

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descInfo, descCPU, descCPULimit, descThrottled, descWorkingSet, descRSS,
		descMemoryLimit, descRx, descTx, descProcesses, descThreads, descFDs, descLoad, descRequests, descErrors,
		descLatency, descSelfCPU, descSelfRSS, descCollectorUp, descCollectorDur, descState, descCalls,
		descFailureRate, descStale, descSubscribers, descDropped} {
		ch <- d
	}
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	a := c.a
	id := a.id
	ch <- prometheus.MustNewConstMetric(descInfo, prometheus.GaugeValue, 1, id.ID, id.Namespace, id.Pod, id.Workload, id.Node, id.Mode, id.Version)
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	if s := a.latestSample(); s != nil {
		if cpu := s.CPU; cpu != nil {
			g(descCPU, cpu.Cores)
			if cpu.LimitCores != nil {
				g(descCPULimit, *cpu.LimitCores)
			}
			if cpu.Throttling != nil {
				g(descThrottled, cpu.Throttling.Percent/100)
			}
		}
		if m := s.Memory; m != nil {
			g(descWorkingSet, float64(m.WorkingSetBytes))
			if m.RSSBytes != nil {
				g(descRSS, float64(*m.RSSBytes))
			}
			if m.LimitBytes != nil {
				g(descMemoryLimit, float64(*m.LimitBytes))
			}
		}
		if n := s.Network; n != nil {
			g(descRx, n.RxBytesPerSec)
			g(descTx, n.TxBytesPerSec)
		}
		if p := s.Process; p != nil {
			g(descProcesses, float64(p.Processes))
			g(descThreads, float64(p.Threads))
			g(descFDs, float64(p.OpenFDs))
		}
		if l := s.Load; l != nil {
			g(descLoad, l.Load1, "1m")
			g(descLoad, l.Load5, "5m")
			g(descLoad, l.Load15, "15m")
		}
		if t := s.Throughput; t != nil {
			g(descRequests, t.RequestsPerSec)
			g(descErrors, t.ErrorsPerSec)
			if l := t.Latency; l != nil {
				g(descLatency, l.P50Ms/1000, "0.5")
				g(descLatency, l.P90Ms/1000, "0.9")
				g(descLatency, l.P99Ms/1000, "0.99")
			}
		}
		if self := s.Self; self != nil {
			g(descSelfCPU, self.CPUCores)
			g(descSelfRSS, float64(self.RSSBytes))
		}
		seen := make(map[string]bool, len(s.Collectors))
		for _, col := range s.Collectors {
			if seen[col.Name] {
				continue // a series may appear once per scrape
			}
			seen[col.Name] = true
			up := 0.0
			if col.OK {
				up = 1
			}
			g(descCollectorUp, up, col.Name)
			g(descCollectorDur, col.DurationMs/1000, col.Name)
		}
	}
	for _, b := range a.reg.List() {
		for _, st := range breakerStates {
			v := 0.0
			if b.State == st {
				v = 1
			}
			g(descState, v, b.Name, b.Source, string(st))
		}
		for outcome, n := range map[string]uint64{"succeeded": b.Calls.Succeeded, "failed": b.Calls.Failed, "rejected": b.Calls.Rejected, "timed_out": b.Calls.TimedOut} {
			ch <- prometheus.MustNewConstMetric(descCalls, prometheus.CounterValue, float64(n), b.Name, outcome)
		}
		if b.FailureRate != nil {
			g(descFailureRate, *b.FailureRate/100, b.Name)
		}
		stale := 0.0
		if b.Stale {
			stale = 1
		}
		g(descStale, stale, b.Name)
	}
	g(descSubscribers, float64(a.hub.Subscribers()))
	ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(a.hub.Dropped()))
}
