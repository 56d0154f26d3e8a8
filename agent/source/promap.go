package source

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"

	"github.com/faultline-dev/faultline/config"
	"github.com/faultline-dev/faultline/internal/wire"
)

// Formats a Prometheus exposition can carry breakers in, as named in Mapped.Formats.
const (
	FormatResilience4j       = "resilience4j"        // one-hot state gauge (Micrometer, resilience4j-prometheus 1.x)
	FormatResilience4jLegacy = "resilience4j-legacy" // ordinal state gauge (older resilience4j-prometheus)
	FormatEnvoy              = "envoy"
	FormatMapping            = "mapping" // a configured prometheus-mappings entry
)

// Mapped is what MapFamilies found in one exposition.
type Mapped struct {
	Breakers []wire.Breaker // sorted by name; each passes wire.CheckBreaker
	Formats  []string       // formats seen, sorted
	// Problems are series that could not be turned into a breaker (unknown state, two
	// states set, NaN, a name that cannot name a breaker), one line each.
	Problems []string
}

// Resilience4j metric families. Micrometer names a Timer <name>_seconds (a summary) and
// a Counter <name>_total; the older resilience4j-prometheus collectors use plain gauges
// and, in 1.x, a histogram. Without # TYPE lines the text parser sees the _count series
// as untyped families of their own, so both spellings are looked up.
const (
	r4jState             = "resilience4j_circuitbreaker_state"
	r4jCallsSeconds      = "resilience4j_circuitbreaker_calls_seconds"
	r4jCalls             = "resilience4j_circuitbreaker_calls"
	r4jNotPermitted      = "resilience4j_circuitbreaker_not_permitted_calls"
	r4jFailureRate       = "resilience4j_circuitbreaker_failure_rate"
	r4jSlowCallRate      = "resilience4j_circuitbreaker_slow_call_rate"
	r4jBufferedCalls     = "resilience4j_circuitbreaker_buffered_calls"
	envoyBreakerPrefix   = "envoy_cluster_circuit_breakers_"
	envoyRqXX            = "envoy_cluster_upstream_rq_xx"
	envoyPendingOverflow = "envoy_cluster_upstream_rq_pending_overflow"
	envoyRqTimeout       = "envoy_cluster_upstream_rq_timeout"
	envoyEjectionsActive = "envoy_cluster_outlier_detection_ejections_active"
)

// envoyOpenGauges are the circuit_breakers.<priority>.* gauges that are 1 while that
// breaker is at capacity and no longer admitting.
var envoyOpenGauges = []string{"_cx_open", "_cx_pool_open", "_rq_open", "_rq_pending_open", "_rq_retry_open"}

// r4jOrdinal is resilience4j's CircuitBreaker.State#getOrder. METRICS_ONLY (5) never
// rejects a call and never changes state, so it is shown as disabled.
var r4jOrdinal = []wire.BreakerState{wire.StateClosed, wire.StateOpen, wire.StateHalfOpen, wire.StateDisabled, wire.StateForcedOpen, wire.StateDisabled}

// r4jStateLabel maps the state label of the one-hot gauge (State#name lower-cased).
var r4jStateLabel = map[string]wire.BreakerState{
	"closed": wire.StateClosed, "open": wire.StateOpen, "half_open": wire.StateHalfOpen,
	"disabled": wire.StateDisabled, "forced_open": wire.StateForcedOpen, "metrics_only": wire.StateDisabled,
}

// partial collects what the exposition says about one breaker before it becomes a
// wire.Breaker.
type partial struct {
	format     string
	state      wire.BreakerState
	stateSet   int // one-hot: how many states read 1
	calls      wire.Calls
	callsSet   map[string]bool
	failRate   *float64
	rateSeen   bool // a failure-rate series exists, even if it said "unknown"
	slowRate   *float64
	buffered   map[string]float64 // resilience4j sliding window counts by kind
	envoy5xx   uint64             // 5xx responses, before timeouts are taken out
	envoy5xxOK bool
}

type mapper struct {
	byName   map[string]*partial
	formats  map[string]bool
	problems []string
}

// MapFamilies turns parsed metric families into breakers. It is a pure function of its
// input: it understands resilience4j (Micrometer's one-hot state gauge and the legacy
// ordinal gauge), Envoy cluster circuit-breaker and outlier-detection stats, and the
// configured generic mappings, and reports what it could not use in Problems.
func MapFamilies(fams map[string]*dto.MetricFamily, mappings []config.BreakerMapping) Mapped {
	m := &mapper{byName: map[string]*partial{}, formats: map[string]bool{}}
	m.resilience4j(fams)
	m.envoy(fams)
	for _, mp := range mappings {
		m.generic(fams, mp)
	}
	return m.result()
}

func (m *mapper) problem(format string, args ...any) {
	m.problems = append(m.problems, fmt.Sprintf(format, args...))
}

// get returns the partial breaker named name for format, or nil when another format
// already claimed the name.
func (m *mapper) get(name, format string) *partial {
	p, ok := m.byName[name]
	if !ok {
		p = &partial{format: format}
		m.byName[name] = p
		m.formats[format] = true
		return p
	}
	if p.format != format {
		m.problem("breaker %q: reported as %s and as %s; keeping %s", name, p.format, format, p.format)
		return nil
	}
	return p
}

func (m *mapper) resilience4j(fams map[string]*dto.MetricFamily) {
	if f := fams[r4jState]; f != nil {
		for _, s := range f.GetMetric() {
			name, ok := label(s, "name")
			if !ok {
				m.problem("%s: series without a name label", r4jState)
				continue
			}
			v, ok := value(s)
			if !ok {
				m.problem("%s{name=%q}: value is not a number", r4jState, name)
				continue
			}
			if st, oneHot := label(s, "state"); oneHot {
				p := m.get(name, FormatResilience4j)
				if p == nil || v == 0 {
					continue
				}
				state, known := r4jStateLabel[st]
				switch {
				case v != 1:
					m.problem("%s{name=%q,state=%q}: value %v is neither 0 nor 1", r4jState, name, st, v)
				case !known:
					m.problem("%s{name=%q}: unknown state %q", r4jState, name, st)
				default:
					p.state = state
					p.stateSet++
				}
				continue
			}
			p := m.get(name, FormatResilience4jLegacy)
			if p == nil {
				continue
			}
			if v != math.Trunc(v) || v < 0 || int(v) >= len(r4jOrdinal) {
				m.problem("%s{name=%q}: unknown state ordinal %v", r4jState, name, v)
				continue
			}
			p.state = r4jOrdinal[int(v)]
			p.stateSet++
		}
	}
	isR4j := func(name string) *partial {
		p := m.byName[name]
		if p == nil || (p.format != FormatResilience4j && p.format != FormatResilience4jLegacy) {
			return nil
		}
		return p
	}
	for _, fam := range []string{r4jCallsSeconds, r4jCallsSeconds + "_count", r4jCalls, r4jCalls + "_count", r4jNotPermitted, r4jNotPermitted + "_total"} {
		for _, s := range fams[fam].GetMetric() {
			name, _ := label(s, "name")
			p := isR4j(name)
			if p == nil {
				continue
			}
			kind, _ := label(s, "kind")
			if strings.HasPrefix(fam, r4jNotPermitted) {
				kind = "not_permitted"
			}
			n, ok := count(s)
			if !ok {
				m.problem("%s{name=%q,kind=%q}: not a call count", fam, name, kind)
				continue
			}
			p.setCalls(kind, n)
		}
	}
	for _, fam := range []string{r4jFailureRate, r4jSlowCallRate} {
		for _, s := range fams[fam].GetMetric() {
			name, _ := label(s, "name")
			p := isR4j(name)
			if p == nil {
				continue
			}
			v, _ := value(s)
			rate := percent(v)
			if rate == nil && v != -1 {
				m.problem("%s{name=%q}: %v is not a percentage", fam, name, v)
			}
			if fam == r4jFailureRate {
				p.failRate, p.rateSeen = rate, true
			} else {
				p.slowRate = rate
			}
		}
	}
	for _, s := range fams[r4jBufferedCalls].GetMetric() {
		name, _ := label(s, "name")
		kind, hasKind := label(s, "kind")
		p := isR4j(name)
		if p == nil || !hasKind {
			continue
		}
		if v, ok := value(s); ok && v >= 0 {
			if p.buffered == nil {
				p.buffered = map[string]float64{}
			}
			p.buffered[kind] = v
		}
	}
}

// setCalls records a resilience4j call count by kind. "ignored" calls are neither
// successes nor failures for the breaker and have no place in wire.Calls.
func (p *partial) setCalls(kind string, n uint64) {
	if p.callsSet == nil {
		p.callsSet = map[string]bool{}
	}
	if p.callsSet[kind] {
		return // the first family that reports a kind wins
	}
	switch kind {
	case "successful":
		p.calls.Succeeded = n
	case "failed":
		p.calls.Failed = n
	case "not_permitted":
		p.calls.Rejected = n
	default:
		return
	}
	p.callsSet[kind] = true
}

func (m *mapper) envoy(fams map[string]*dto.MetricFamily) {
	names := make([]string, 0, 8)
	for fam := range fams {
		if strings.HasPrefix(fam, envoyBreakerPrefix) {
			names = append(names, fam)
		}
	}
	sort.Strings(names)
	for _, fam := range names {
		if !hasAnySuffix(fam, envoyOpenGauges) {
			continue // remaining_* gauges and the like
		}
		for _, s := range fams[fam].GetMetric() {
			cluster, ok := envoyCluster(s)
			if !ok {
				m.problem("%s: series without an envoy_cluster_name label", fam)
				continue
			}
			p := m.get(cluster, FormatEnvoy)
			if p == nil {
				continue
			}
			v, _ := value(s)
			switch v {
			case 0:
				if p.state == "" {
					p.state = wire.StateClosed
				}
			case 1:
				p.state = wire.StateOpen
			default:
				m.problem("%s{envoy_cluster_name=%q}: value %v is neither 0 nor 1", fam, cluster, v)
			}
		}
	}
	isEnvoy := func(s *dto.Metric) (*partial, bool) {
		cluster, _ := envoyCluster(s)
		p := m.byName[cluster]
		return p, p != nil && p.format == FormatEnvoy
	}
	for _, s := range pick(fams, envoyRqXX).GetMetric() {
		p, ok := isEnvoy(s)
		n, okN := count(s)
		if !ok || !okN {
			continue
		}
		class, _ := label(s, "envoy_response_code_class")
		if class == "" {
			class, _ = label(s, "response_code_class")
		}
		switch strings.TrimSuffix(class, "xx") {
		case "1", "2", "3", "4":
			p.calls.Succeeded += n
		case "5":
			p.envoy5xx += n
			p.envoy5xxOK = true
		}
	}
	for _, fam := range []string{envoyPendingOverflow, envoyRqTimeout} {
		for _, s := range pick(fams, fam).GetMetric() {
			p, ok := isEnvoy(s)
			n, okN := count(s)
			if !ok || !okN {
				continue
			}
			if fam == envoyPendingOverflow {
				p.calls.Rejected = n
			} else {
				p.calls.TimedOut = n
			}
		}
	}
	for _, p := range m.byName {
		if p.format == FormatEnvoy && p.envoy5xxOK {
			// Envoy charges a request that timed out upstream as a 504, so the
			// timeouts are already among the 5xx responses.
			p.calls.Failed = p.envoy5xx - min(p.envoy5xx, p.calls.TimedOut)
		}
	}
	// Outlier detection ejects hosts rather than opening the cluster: it is shown as
	// a breaker of its own, open while at least one host is ejected.
	for _, s := range pick(fams, envoyEjectionsActive).GetMetric() {
		cluster, ok := envoyCluster(s)
		v, okV := value(s)
		if !ok || !okV || v < 0 {
			m.problem("%s: series without a cluster or with value %v", envoyEjectionsActive, v)
			continue
		}
		p := m.get(cluster+" outlier-detection", FormatEnvoy)
		if p == nil {
			continue
		}
		p.state = wire.StateClosed
		if v > 0 {
			p.state = wire.StateOpen
		}
	}
}

func (m *mapper) generic(fams map[string]*dto.MetricFamily, mp config.BreakerMapping) {
	f := fams[mp.Metric]
	if f == nil {
		return
	}
	for _, s := range f.GetMetric() {
		name, ok := label(s, mp.NameLabel)
		if !ok {
			m.problem("%s: series without the %s label", mp.Metric, mp.NameLabel)
			continue
		}
		v, ok := value(s)
		if !ok {
			m.problem("%s{%s=%q}: value is not a number", mp.Metric, mp.NameLabel, name)
			continue
		}
		state, ok := mappedState(mp.States, v)
		if !ok {
			m.problem("%s{%s=%q}: value %v is not in the mapping's states", mp.Metric, mp.NameLabel, name, v)
			continue
		}
		if p := m.get(name, FormatMapping); p != nil {
			p.state = state
			p.stateSet++
		}
	}
}

// mappedState finds v in a mapping's value -> state table; keys are compared as
// numbers, so "1", "1.0" and "1e0" are the same key.
func mappedState(states map[string]string, v float64) (wire.BreakerState, bool) {
	for k, s := range states {
		if f, err := strconv.ParseFloat(strings.TrimSpace(k), 64); err == nil && f == v {
			return wire.BreakerState(s), wire.BreakerState(s).Valid()
		}
	}
	return "", false
}

func (m *mapper) result() Mapped {
	out := Mapped{Breakers: make([]wire.Breaker, 0, len(m.byName))}
	names := make([]string, 0, len(m.byName))
	for name := range m.byName {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p := m.byName[name]
		switch {
		case p.state == "":
			m.problem("breaker %q (%s): no state is set", name, p.format)
			continue
		case p.stateSet > 1 && p.format != FormatEnvoy:
			m.problem("breaker %q (%s): %d states are set at once", name, p.format, p.stateSet)
			continue
		}
		b := wire.Breaker{
			V:            wire.Version,
			Name:         name, // as the label says, byte for byte
			State:        p.state,
			FailureRate:  p.failRate,
			SlowCallRate: p.slowRate,
			Calls:        p.calls,
		}
		if !p.rateSeen && p.buffered != nil {
			// Exporters without a failure-rate gauge: the rate over the calls in the
			// breaker's sliding window, as resilience4j computes it.
			f, s := p.buffered["failed"], p.buffered["successful"]
			if f+s > 0 {
				b.FailureRate = percent(f / (f + s) * 100)
			}
		}
		if err := wire.CheckBreaker(&b); err != nil {
			m.problem("breaker %q: %v", name, err)
			continue
		}
		out.Breakers = append(out.Breakers, b)
	}
	sort.Slice(out.Breakers, func(i, j int) bool { return out.Breakers[i].Name < out.Breakers[j].Name })
	for f := range m.formats {
		out.Formats = append(out.Formats, f)
	}
	sort.Strings(out.Formats)
	sort.Strings(m.problems)
	out.Problems = m.problems
	return out
}

// pick returns the family name or, for a counter exposed without # TYPE, name_total.
func pick(fams map[string]*dto.MetricFamily, name string) *dto.MetricFamily {
	if f := fams[name]; f != nil {
		return f
	}
	return fams[name+"_total"]
}

func envoyCluster(s *dto.Metric) (string, bool) {
	if c, ok := label(s, "envoy_cluster_name"); ok {
		return c, true
	}
	return label(s, "cluster_name") // Istio's relabelled form
}

func label(s *dto.Metric, name string) (string, bool) {
	for _, l := range s.GetLabel() {
		if l.GetName() == name {
			return l.GetValue(), l.GetValue() != ""
		}
	}
	return "", false
}

// value is a sample's value: the gauge, counter or untyped value, or the observation
// count of a summary or histogram. NaN and infinities are not values.
func value(s *dto.Metric) (float64, bool) {
	var v float64
	switch {
	case s.Gauge != nil:
		v = s.GetGauge().GetValue()
	case s.Counter != nil:
		v = s.GetCounter().GetValue()
	case s.Untyped != nil:
		v = s.GetUntyped().GetValue()
	case s.Summary != nil:
		v = float64(s.GetSummary().GetSampleCount())
	case s.Histogram != nil:
		v = float64(s.GetHistogram().GetSampleCount())
	default:
		return 0, false
	}
	return v, !math.IsNaN(v) && !math.IsInf(v, 0)
}

// count is a sample's value as a call count: a whole number from 0 to 2^53.
func count(s *dto.Metric) (uint64, bool) {
	v, ok := value(s)
	if !ok || v < 0 || v > 1<<53 {
		return 0, false
	}
	return uint64(v), true
}

// percent returns v when it is a percentage and nil otherwise (resilience4j's -1, "not
// enough calls yet", among them).
func percent(v float64) *float64 {
	if math.IsNaN(v) || v < 0 || v > 100 {
		return nil
	}
	return &v
}

func hasAnySuffix(s string, suffixes []string) bool {
	for _, suf := range suffixes {
		if strings.HasSuffix(s, suf) {
			return true
		}
	}
	return false
}
