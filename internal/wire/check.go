package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"math"
	"strconv"
	"strings"

	"github.com/faultline-dev/faultline/internal/names"
)

// Bounds of the figures a v1 message may carry. The agent checks what applications
// report against them and the aggregator checks what agents send with the same functions,
// so that whatever one side accepts the other accepts too, and no sum or weighted mean
// the aggregator forms over a fleet can overflow: a billion calls a second on each of a
// million breakers still sums to a finite number, and call counters summed over 65,536
// pods stay exact in 64 bits.
const (
	MaxCount    = 1 << 48 // call counters, thresholds counted in calls
	MaxRate     = 1e9     // calls, requests or errors per second
	MaxMs       = 1e12    // durations and latencies in milliseconds (about 31 years)
	MaxBytes    = 1 << 50 // memory sizes (1 PiB)
	MaxByteRate = 1e13    // network bytes per second
	MaxCores    = 1e6     // CPU cores
	MaxPercent  = 1e6     // percentages of a limit (usage may exceed a limit); rates stay 0-100
	MaxProcs    = 1 << 31 // processes, threads, open files
	MaxLoad     = 1e6     // load averages
)

// CheckAgent reports what is wrong with an agent's identity, naming the field.
func CheckAgent(a *Agent) error {
	if err := names.ID(a.ID); err != nil {
		return fmt.Errorf("id: %w", err)
	}
	for _, f := range []struct{ field, value string }{
		{"pod", a.Pod}, {"namespace", a.Namespace}, {"uid", a.UID}, {"node", a.Node}, {"ip", a.IP},
		{"workload", a.Workload}, {"version", a.Version}, {"mode", a.Mode},
	} {
		if err := names.Identity(f.value); err != nil {
			return fmt.Errorf("%s: %w", f.field, err)
		}
	}
	return nil
}

// CheckBreaker reports what is wrong with a breaker, naming the field. Every figure must
// be finite and within the bounds above.
func CheckBreaker(b *Breaker) error {
	if err := names.Breaker(b.Name); err != nil {
		return fmt.Errorf("name: %w", err)
	}
	if !b.State.Valid() {
		return fmt.Errorf("state: %q is not one of closed, open, half_open, disabled, forced_open", b.State)
	}
	if b.Source != "" {
		if err := names.Source(b.Source); err != nil {
			return fmt.Errorf("source: %w", err)
		}
	}
	c := checker{}
	c.optPercent("failure_rate", b.FailureRate)
	c.optPercent("slow_call_rate", b.SlowCallRate)
	c.calls("calls", b.Calls)
	if b.CallsWindowMs != nil && (!finite(*b.CallsWindowMs) || *b.CallsWindowMs <= 0 || *b.CallsWindowMs > MaxMs) {
		c.fail("calls_window_ms", *b.CallsWindowMs, "a window length in ms (above 0)")
	}
	c.optRange("rate_per_sec", b.RatePerSec, MaxRate)
	c.latency("latency", b.Latency)
	if t := b.Thresholds; t != nil {
		c.optPercent("thresholds.failure_rate", t.FailureRate)
		c.optPercent("thresholds.slow_call_rate", t.SlowCallRate)
		c.optRange("thresholds.slow_call_ms", t.SlowCallMs, MaxMs)
		c.optRange("thresholds.open_ms", t.OpenMs, MaxMs)
		c.optCount("thresholds.minimum_calls", t.MinimumCalls)
		c.optCount("thresholds.consecutive_failures", t.ConsecutiveFails)
	}
	return c.err
}

// CheckSample reports what is wrong with a sample's figures and collectors.
func CheckSample(s *Sample) error {
	c := checker{}
	c.rangeOf("interval_ms", s.IntervalMs, MaxMs)
	if x := s.CPU; x != nil {
		c.rangeOf("cpu.cores", x.Cores, MaxCores)
		c.optRange("cpu.limit_cores", x.LimitCores, MaxCores)
		c.optRange("cpu.percent_of_limit", x.PercentOfLimit, MaxPercent)
		c.optRange("cpu.percent", x.Percent, MaxPercent)
		if t := x.Throttling; t != nil {
			c.count("cpu.throttling.periods", t.Periods)
			c.count("cpu.throttling.throttled_periods", t.ThrottledPeriods)
			c.rangeOf("cpu.throttling.throttled_ms", t.ThrottledMs, MaxMs)
			c.rangeOf("cpu.throttling.percent", t.Percent, 100)
		}
	}
	if m := s.Memory; m != nil {
		c.bytes("memory.working_set_bytes", &m.WorkingSetBytes)
		c.bytes("memory.rss_bytes", m.RSSBytes)
		c.bytes("memory.limit_bytes", m.LimitBytes)
		c.bytes("memory.total_bytes", m.TotalBytes)
		c.optRange("memory.percent_of_limit", m.PercentOfLimit, MaxPercent)
	}
	if n := s.Network; n != nil {
		c.rangeOf("network.rx_bytes_per_sec", n.RxBytesPerSec, MaxByteRate)
		c.rangeOf("network.tx_bytes_per_sec", n.TxBytesPerSec, MaxByteRate)
	}
	if p := s.Process; p != nil {
		for _, f := range []struct {
			field string
			v     int
		}{{"process.processes", p.Processes}, {"process.threads", p.Threads}, {"process.open_fds", p.OpenFDs}} {
			if f.v < 0 || f.v > MaxProcs {
				c.fail(f.field, float64(f.v), "a count")
			}
		}
	}
	if l := s.Load; l != nil {
		c.rangeOf("load.load1", l.Load1, MaxLoad)
		c.rangeOf("load.load5", l.Load5, MaxLoad)
		c.rangeOf("load.load15", l.Load15, MaxLoad)
	}
	if t := s.Throughput; t != nil {
		c.rangeOf("throughput.requests_per_sec", t.RequestsPerSec, MaxRate)
		c.rangeOf("throughput.errors_per_sec", t.ErrorsPerSec, MaxRate)
		c.latency("throughput.latency", t.Latency)
		c.text("throughput.source", t.Source, names.MaxSource)
	}
	if x := s.Self; x != nil {
		c.rangeOf("self.cpu_cores", x.CPUCores, MaxCores)
		c.bytes("self.rss_bytes", &x.RSSBytes)
	}
	for i := range s.Collectors {
		col := &s.Collectors[i]
		var in checker
		in.text("name", col.Name, names.MaxSource)
		in.text("status", col.Status, names.MaxText)
		in.rangeOf("duration_ms", col.DurationMs, MaxMs)
		if in.err != nil && c.err == nil {
			c.err = fmt.Errorf("collectors[%d].%w", i, in.err)
		}
	}
	return c.err
}

// CheckLatency reports what is wrong with latency percentiles, naming the field.
func CheckLatency(l *Latency) error {
	c := checker{}
	c.latency("", l)
	if c.err != nil {
		return errors.New(strings.TrimPrefix(c.err.Error(), "."))
	}
	return nil
}

// CheckSnapshot reports the first problem of an agent's snapshot, naming the field.
func CheckSnapshot(s *Snapshot) error {
	if err := CheckAgent(&s.Agent); err != nil {
		return fmt.Errorf("agent.%w", err)
	}
	if s.Sample != nil {
		if err := CheckSample(s.Sample); err != nil {
			return fmt.Errorf("sample.%w", err)
		}
	}
	for i := range s.Breakers {
		if err := CheckBreaker(&s.Breakers[i]); err != nil {
			return fmt.Errorf("breakers[%d].%w", i, err)
		}
	}
	return nil
}

// CheckTransition reports what is wrong with a transition, naming the field.
func CheckTransition(t *Transition) error {
	if t.Agent != "" {
		if err := names.ID(t.Agent); err != nil {
			return fmt.Errorf("agent: %w", err)
		}
	}
	if t.From != "" && !t.From.Valid() {
		return fmt.Errorf("from: %q is not a breaker state", t.From)
	}
	if t.To != t.Breaker.State {
		return fmt.Errorf("to: %q is not the breaker's state %q", t.To, t.Breaker.State)
	}
	if err := CheckBreaker(&t.Breaker); err != nil {
		return fmt.Errorf("breaker.%w", err)
	}
	return nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// checker keeps the first problem found.
type checker struct{ err error }

func (c *checker) fail(field string, v float64, want string) {
	if c.err == nil {
		c.err = fmt.Errorf("%s: %v is not %s", field, v, want)
	}
}

func (c *checker) rangeOf(field string, v, max float64) {
	switch {
	case c.err != nil:
	case !finite(v):
		c.err = fmt.Errorf("%s: %v is not a number", field, v)
	case v < 0:
		c.err = fmt.Errorf("%s: %v is negative", field, v)
	case v > max:
		c.err = fmt.Errorf("%s: %v is above the limit of %g", field, v, max)
	}
}

func (c *checker) optRange(field string, v *float64, max float64) {
	if v != nil {
		c.rangeOf(field, *v, max)
	}
}

func (c *checker) optPercent(field string, v *float64) {
	if v != nil && (!finite(*v) || *v < 0 || *v > 100) {
		c.fail(field, *v, "a percentage")
	}
}

func (c *checker) count(field string, v uint64) {
	if v > MaxCount {
		c.fail(field, float64(v), fmt.Sprintf("a count up to 2^48 (%d)", uint64(MaxCount)))
	}
}

func (c *checker) optCount(field string, v *uint64) {
	if v != nil {
		c.count(field, *v)
	}
}

func (c *checker) calls(field string, k Calls) {
	var in checker
	in.count("succeeded", k.Succeeded)
	in.count("failed", k.Failed)
	in.count("rejected", k.Rejected)
	in.count("timed_out", k.TimedOut)
	c.nested(field, in.err)
}

func (c *checker) bytes(field string, v *uint64) {
	if v != nil && *v > MaxBytes {
		c.fail(field, float64(*v), "a size up to 1 PiB")
	}
}

func (c *checker) latency(field string, l *Latency) {
	if l != nil {
		var in checker
		in.rangeOf("p50_ms", l.P50Ms, MaxMs)
		in.rangeOf("p90_ms", l.P90Ms, MaxMs)
		in.rangeOf("p99_ms", l.P99Ms, MaxMs)
		c.nested(field, in.err)
	}
}

// nested keeps err, the first problem of the object field, named as a field of it. The
// fields of an object are checked by a checker of their own and named in full only when
// one fails: ten thousand agents' messages a second would otherwise build every name.
func (c *checker) nested(field string, err error) {
	if err != nil && c.err == nil {
		c.err = fmt.Errorf("%s.%w", field, err)
	}
}

func (c *checker) text(field, s string, max int) {
	if err := names.Text(s, max); err != nil && c.err == nil {
		c.err = fmt.Errorf("%s: %w", field, err)
	}
}

// ErrDuplicateName is returned for a JSON object that names a member twice.
var ErrDuplicateName = errors.New("named twice in one object")

// CheckNames reports an object in the JSON text data that names a member twice, which
// encoding/json would otherwise accept, keeping the last. Names that differ only in case
// count as the same, as encoding/json matches them to the same field. Syntax errors are
// left to the decoder to report.
func CheckNames(data []byte) error {
	seen := map[int]map[string]bool{}
	for obj, key := range MemberNames(data) {
		folded := strings.ToLower(key)
		if seen[obj][folded] {
			return fmt.Errorf("%s: %w", strconv.Quote(key), ErrDuplicateName)
		}
		if seen[obj] == nil {
			seen[obj] = map[string]bool{}
		}
		seen[obj][folded] = true
	}
	return nil
}

// MemberNames yields every member name of the JSON text data with a number telling its
// object apart from the others, up to the first syntax error.
func MemberNames(data []byte) iter.Seq2[int, string] {
	return func(yield func(int, string) bool) {
		dec := json.NewDecoder(bytes.NewReader(data))
		type level struct {
			object, wantKey bool
			id              int
		}
		var stack []level
		objects := 0
		for {
			tok, err := dec.Token()
			if err != nil {
				return // io.EOF, or a syntax error the decoder reports
			}
			if d, ok := tok.(json.Delim); ok {
				switch d {
				case '{':
					objects++
					stack = append(stack, level{object: true, wantKey: true, id: objects})
				case '[':
					stack = append(stack, level{})
				default:
					stack = stack[:len(stack)-1]
					if n := len(stack); n > 0 && stack[n-1].object {
						stack[n-1].wantKey = true
					}
				}
				continue
			}
			n := len(stack)
			if n == 0 || !stack[n-1].object {
				continue
			}
			l := &stack[n-1]
			if !l.wantKey {
				l.wantKey = true
				continue
			}
			l.wantKey = false
			key, _ := tok.(string)
			if !yield(l.id, key) {
				return
			}
		}
	}
}
