// Package exposition is the agent's Prometheus exposition: the metric families that GET
// /metrics serves, built from a State, and their encoding in the format the scraper asks
// for. Names are prefixed faultline_agent_ and in base units.
//
// It builds the families itself from client_model's types and writes them with
// prometheus/common's encoders, both linked for the Prometheus breaker source anyway,
// rather than through client_golang: its registry, collectors and handler made the agent
// binary 0.6 MB larger and the agent 0.9 MiB larger resident (BenchmarkFootprint), in a
// sidecar whose budget is 12 MiB. The agent reads its gauges from the latest sample and
// the breaker registry when scraped, so sampling does no extra work. The fleet
// benchmark's simulated agents serve their /metrics through this package too.
package exposition

import (
	"cmp"
	"io"
	"net/http"
	"slices"
	"strconv"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/faultline-dev/faultline/internal/wire"
)

// State is what one scrape reports.
type State struct {
	Agent       wire.Agent
	Samples     uint64                       // samples taken
	Transitions map[wire.BreakerState]uint64 // breaker transitions, by the state entered
	Requests    map[Request]uint64           // HTTP requests answered
	Sample      *wire.Sample                 // the latest; nil before the first
	Breakers    []wire.Breaker
	MaxBreakers int                  // the max-breakers setting
	Refused     map[string]uint64    // new breakers refused, by source
	RefusedHTTP map[[2]string]uint64 // requests refused by the guard, by listener and reason
	Subscribers int                  // clients reading /v1/stream
	Dropped     uint64               // stream clients cut off for falling behind
}

// Request counts the HTTP requests a listener answered on one route with one status.
type Request struct {
	Listener, Route string
	Code            int
}

// Families is every series of s, ordered as Prometheus client libraries order them so
// that the exposition reads the same from scrape to scrape: families by name, labels by
// name, series by their label values.
func Families(s State) []*dto.MetricFamily {
	e := exposition{}
	id := s.Agent
	e.add(descInfo, 1, id.ID, id.Namespace, id.Pod, id.Workload, id.Node, id.Mode, id.Version)
	e.add(descSamples, float64(s.Samples))
	for state, n := range s.Transitions {
		e.add(descTransitions, float64(n), string(state))
	}
	for k, n := range s.Requests {
		e.add(descHTTPRequests, float64(n), k.Listener, k.Route, strconv.Itoa(k.Code))
	}
	if smp := s.Sample; smp != nil {
		e.addSample(smp)
	}
	e.add(descBreakers, float64(len(s.Breakers)))
	e.add(descMaxBreakers, float64(s.MaxBreakers))
	for src, n := range s.Refused {
		e.add(descRefused, float64(n), src)
	}
	for _, b := range s.Breakers {
		for _, st := range breakerStates {
			e.add(descState, oneIf(b.State == st), b.Name, b.Source, string(st))
		}
		e.add(descCalls, float64(b.Calls.Succeeded), b.Name, "succeeded")
		e.add(descCalls, float64(b.Calls.Failed), b.Name, "failed")
		e.add(descCalls, float64(b.Calls.Rejected), b.Name, "rejected")
		e.add(descCalls, float64(b.Calls.TimedOut), b.Name, "timed_out")
		if b.FailureRate != nil {
			e.add(descFailureRate, *b.FailureRate/100, b.Name)
		}
		e.add(descStale, oneIf(b.Stale), b.Name)
	}
	for k, n := range s.RefusedHTTP {
		e.add(descRefusedHTTP, float64(n), k[0], k[1])
	}
	e.add(descSubscribers, float64(s.Subscribers))
	e.add(descDropped, float64(s.Dropped))
	return e.families()
}

func (e exposition) addSample(s *wire.Sample) {
	if cpu := s.CPU; cpu != nil {
		e.add(descCPU, cpu.Cores)
		if cpu.LimitCores != nil {
			e.add(descCPULimit, *cpu.LimitCores)
		}
		if cpu.Throttling != nil {
			e.add(descThrottled, cpu.Throttling.Percent/100)
		}
	}
	if m := s.Memory; m != nil {
		e.add(descWorkingSet, float64(m.WorkingSetBytes))
		if m.RSSBytes != nil {
			e.add(descRSS, float64(*m.RSSBytes))
		}
		if m.LimitBytes != nil {
			e.add(descMemoryLimit, float64(*m.LimitBytes))
		}
	}
	if n := s.Network; n != nil {
		e.add(descRx, n.RxBytesPerSec)
		e.add(descTx, n.TxBytesPerSec)
	}
	if p := s.Process; p != nil {
		e.add(descProcesses, float64(p.Processes))
		e.add(descThreads, float64(p.Threads))
		e.add(descFDs, float64(p.OpenFDs))
	}
	if l := s.Load; l != nil {
		e.add(descLoad, l.Load1, "1m")
		e.add(descLoad, l.Load5, "5m")
		e.add(descLoad, l.Load15, "15m")
	}
	if t := s.Throughput; t != nil {
		e.add(descRequests, t.RequestsPerSec)
		e.add(descErrors, t.ErrorsPerSec)
		if l := t.Latency; l != nil {
			e.add(descLatency, l.P50Ms/1000, "0.5")
			e.add(descLatency, l.P90Ms/1000, "0.9")
			e.add(descLatency, l.P99Ms/1000, "0.99")
		}
	}
	if self := s.Self; self != nil {
		e.add(descSelfCPU, self.CPUCores)
		e.add(descSelfRSS, float64(self.RSSBytes))
	}
	seen := make(map[string]bool, len(s.Collectors))
	for _, col := range s.Collectors {
		if seen[col.Name] {
			continue // a series may appear once per scrape
		}
		seen[col.Name] = true
		e.add(descCollectorUp, oneIf(col.OK), col.Name)
		e.add(descCollectorDur, col.DurationMs/1000, col.Name)
	}
}

// Format is the format of the answer to a scrape that sent header h (its Accept):
// delimited protobuf or protobuf text when asked, else the Prometheus text format;
// OpenMetrics is not offered.
func Format(h http.Header) expfmt.Format {
	return expfmt.NegotiateAccept(h, expfmt.DefaultAcceptedFormats()...)
}

// Write answers a scrape with fams in format f (from Format). The answer is not
// compressed: a gzip writer allocates about 0.8 MB per scrape, more than the whole
// exposition of 50 breakers would ever save on a loopback or in-cluster connection. An
// error means the scraper went away.
func Write(w http.ResponseWriter, f expfmt.Format, fams []*dto.MetricFamily) error {
	SetHeader(w.Header(), f)
	return Encode(w, f, fams)
}

// SetHeader sets the headers of an answer in format f.
func SetHeader(h http.Header, f expfmt.Format) {
	h.Add("Vary", "Accept")
	h.Set("Content-Type", string(f))
}

// Encode writes fams in format f.
func Encode(w io.Writer, f expfmt.Format, fams []*dto.MetricFamily) error {
	enc := expfmt.NewEncoder(w, f)
	for _, mf := range fams {
		if err := enc.Encode(mf); err != nil {
			return err
		}
	}
	if c, ok := enc.(expfmt.Closer); ok {
		return c.Close()
	}
	return nil
}

func oneIf(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

var breakerStates = []wire.BreakerState{wire.StateClosed, wire.StateOpen, wire.StateHalfOpen, wire.StateDisabled, wire.StateForcedOpen}

// desc describes one metric family: its name, help, type and label names.
type desc struct {
	name, help string
	typ        dto.MetricType
	labels     []string
}

func gauge(name, help string, labels ...string) *desc {
	return &desc{name: "faultline_agent_" + name, help: help, typ: dto.MetricType_GAUGE, labels: labels}
}

func counter(name, help string, labels ...string) *desc {
	return &desc{name: "faultline_agent_" + name, help: help, typ: dto.MetricType_COUNTER, labels: labels}
}

var (
	descInfo         = gauge("info", "The agent's identity; always 1.", "agent", "namespace", "pod", "workload", "node", "mode", "version")
	descSamples      = counter("samples_total", "Samples taken.")
	descTransitions  = counter("breaker_transitions_total", "Breaker state transitions recorded, by the state entered.", "state")
	descHTTPRequests = counter("http_requests_total", "HTTP requests answered, by listener, route and status code.", "listener", "route", "code")
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
	descLoad         = gauge("load_average", "Host load average.", "window")
	descRequests     = gauge("requests_per_second", "Requests served per second, as the application reports them or derived from breaker call counts.")
	descErrors       = gauge("errors_per_second", "Failed requests per second.")
	descLatency      = gauge("latency_seconds", "Request latency percentile the application reports.", "quantile")
	descSelfCPU      = gauge("self_cpu_usage_cores", "CPU used by the agent itself, in cores.")
	descSelfRSS      = gauge("self_resident_memory_bytes", "Resident memory of the agent itself.")
	descCollectorUp  = gauge("collector_up", "1 when the collector or breaker source worked in the last sample.", "collector")
	descCollectorDur = gauge("collector_duration_seconds", "Time the collector or breaker source took in the last sample.", "collector")
	descState        = gauge("breaker_state", "1 for the state each breaker is in, 0 for the others.", "breaker", "source", "state")
	descCalls        = counter("breaker_calls_total", "Calls through each breaker as its source counts them, by outcome.", "breaker", "outcome")
	descFailureRate  = gauge("breaker_failure_ratio", "Failure rate each breaker reports (0-1).", "breaker")
	descStale        = gauge("breaker_stale", "1 when the breaker's source has stopped reporting it.", "breaker")
	descBreakers     = gauge("breakers", "Breakers held, over every source.")
	descMaxBreakers  = gauge("max_breakers", "The max-breakers setting: most breakers held over every source.")
	descRefused      = counter("breakers_refused_total", "New breakers refused for max-breakers or max-breakers-per-source, by source.", "source")
	descRefusedHTTP  = counter("http_refused_total", "HTTP requests refused by the guard (Host, header size, origin, auth, content type, body size), by listener and reason.", "listener", "reason")
	descSubscribers  = gauge("stream_subscribers", "Clients reading /v1/stream.")
	descDropped      = counter("stream_subscribers_dropped_total", "Stream clients cut off for falling behind.")
)

// exposition collects one scrape's series by family name.
type exposition map[string]*dto.MetricFamily

// add records one series of d with the label values in d.labels' order.
func (e exposition) add(d *desc, v float64, labelValues ...string) {
	f := e[d.name]
	if f == nil {
		f = &dto.MetricFamily{Name: &d.name, Help: &d.help, Type: d.typ.Enum()}
		e[d.name] = f
	}
	m := &dto.Metric{Label: make([]*dto.LabelPair, len(labelValues))}
	for i, lv := range labelValues {
		m.Label[i] = &dto.LabelPair{Name: &d.labels[i], Value: new(lv)}
	}
	slices.SortFunc(m.Label, func(a, b *dto.LabelPair) int { return cmp.Compare(a.GetName(), b.GetName()) })
	if d.typ == dto.MetricType_COUNTER {
		m.Counter = &dto.Counter{Value: new(v)}
	} else {
		m.Gauge = &dto.Gauge{Value: new(v)}
	}
	f.Metric = append(f.Metric, m)
}

// families orders the exposition.
func (e exposition) families() []*dto.MetricFamily {
	out := make([]*dto.MetricFamily, 0, len(e))
	for _, f := range e {
		slices.SortFunc(f.Metric, func(a, b *dto.Metric) int {
			for i := range a.Label {
				if c := cmp.Compare(a.Label[i].GetValue(), b.Label[i].GetValue()); c != 0 {
					return c
				}
			}
			return 0
		})
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b *dto.MetricFamily) int { return cmp.Compare(a.GetName(), b.GetName()) })
	return out
}
