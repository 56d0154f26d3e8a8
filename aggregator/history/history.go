// Package history keeps recent time series in memory, bounded: one-second points for the
// last 15 minutes and one-minute points (mean and max) beyond, up to the retention.
// One-second points are stored as varint deltas of values quantized to a resolution that
// suits the metric (millicores, KiB, hundredths of a request per second), about one or
// two bytes a point, so that thousands of pods fit in a few tens of MiB.
package history

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Metrics recorded, with the step values are quantized to.
var Metrics = map[string]float64{
	"cpu_cores":               0.001,
	"cpu_percent_of_limit":    0.01,
	"cpu_throttled_percent":   0.01,
	"memory_bytes":            1024,
	"memory_percent_of_limit": 0.01,
	"requests_per_sec":        0.01,
	"errors_per_sec":          0.01,
	"breakers_open":           1,
	"health":                  1,
	"agents_unavailable":      1,
}

// Scopes of a series name.
const (
	ScopeCluster  = "cluster"
	ScopePod      = "pod"
	ScopeWorkload = "workload"
)

// Name builds a series name: "cluster:health", "workload:shop/cart:cpu_cores",
// "pod:shop/cart-7d9f:memory_bytes".
func Name(scope, object, metric string) string {
	if object == "" {
		return scope + ":" + metric
	}
	return scope + ":" + object + ":" + metric
}

// ParseName checks a series name and splits it.
func ParseName(name string) (scope, object, metric string, err error) {
	first := strings.IndexByte(name, ':')
	last := strings.LastIndexByte(name, ':')
	if first < 0 {
		return "", "", "", fmt.Errorf("%q is not scope:object:metric (e.g. cluster:health, workload:shop/cart:cpu_cores)", name)
	}
	scope, metric = name[:first], name[last+1:]
	if first != last {
		object = name[first+1 : last]
	}
	if _, ok := Metrics[metric]; !ok {
		known := make([]string, 0, len(Metrics))
		for m := range Metrics {
			known = append(known, m)
		}
		sort.Strings(known)
		return "", "", "", fmt.Errorf("unknown metric %q (one of %s)", metric, strings.Join(known, ", "))
	}
	switch scope {
	case ScopeCluster:
		if object != "" {
			return "", "", "", fmt.Errorf("cluster series take no object: use cluster:%s", metric)
		}
	case ScopePod, ScopeWorkload:
		if object == "" {
			return "", "", "", fmt.Errorf("%s series need an object: %s:<namespace>/<name>:%s", scope, scope, metric)
		}
	default:
		return "", "", "", fmt.Errorf("unknown scope %q (one of cluster, workload, pod)", scope)
	}
	return scope, object, metric, nil
}

// Fine is how long one-second points are kept.
const Fine = 15 * time.Minute

// Options bound the store.
type Options struct {
	Retention time.Duration // how far back one-minute points go (default 1 h, at least Fine)
}

// Store holds every series.
type Store struct {
	retention time.Duration
	mu        sync.Mutex
	series    map[string]*series
	bytes     int // last Bytes figure and when it was computed
	bytesAt   time.Time
}

// New returns an empty store.
func New(opts Options) *Store {
	if opts.Retention < Fine {
		opts.Retention = time.Hour
	}
	return &Store{retention: opts.Retention, series: make(map[string]*series)}
}

// Retention is how far back queries can go.
func (s *Store) Retention() time.Duration { return s.retention }

// Sample is one value to record.
type Sample struct {
	Name  string
	Value float64
}

// Record adds one point per sample at time t (truncated to the second). Points older
// than a series' newest are ignored, as are NaN and infinite values.
func (s *Store) Record(t time.Time, samples []Sample) {
	sec := t.Unix()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range samples {
		if math.IsNaN(x.Value) || math.IsInf(x.Value, 0) {
			continue
		}
		sr := s.series[x.Name]
		if sr == nil {
			_, _, metric, err := ParseName(x.Name)
			if err != nil {
				continue
			}
			sr = newSeries(Metrics[metric], int(s.retention/time.Minute))
			s.series[x.Name] = sr
		}
		sr.add(sec, x.Value)
	}
}

// Point is one value at one time.
type Point struct {
	T   int64    `json:"t"` // Unix milliseconds
	V   float64  `json:"v"` // the value, or the mean over the step
	Max *float64 `json:"max,omitempty"`
}

// Result is a query's answer.
type Result struct {
	Series       string  `json:"series"`
	WindowMs     int64   `json:"window_ms"`
	ResolutionMs int64   `json:"resolution_ms"`
	Points       []Point `json:"points"`
}

// Query returns the points of series name within window before now: one-second points
// for windows up to Fine, one-minute means and maxima beyond. ok is false when the
// series has never been recorded.
func (s *Store) Query(name string, window time.Duration, now time.Time) (Result, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sr := s.series[name]
	if sr == nil {
		return Result{}, false
	}
	from := now.Add(-window).Unix()
	r := Result{Series: name, WindowMs: window.Milliseconds(), Points: []Point{}}
	if window <= Fine {
		r.ResolutionMs = 1000
		r.Points = sr.fine(from, r.Points)
	} else {
		r.ResolutionMs = 60000
		r.Points = sr.coarseFrom(from, r.Points)
	}
	return r, true
}

// Stat summarises a series over a window.
type Stat struct {
	N              int
	Min, Max, Mean float64
	First, Last    time.Time
}

// Summary returns statistics of the one-second points within window (at most Fine) or
// of the one-minute means beyond; N is 0 when there are none.
func (s *Store) Summary(name string, window time.Duration, now time.Time) Stat {
	r, ok := s.Query(name, window, now)
	var st Stat
	if !ok {
		return st
	}
	for _, p := range r.Points {
		hi := p.V
		if p.Max != nil {
			hi = *p.Max
		}
		if st.N == 0 || p.V < st.Min {
			st.Min = p.V
		}
		if st.N == 0 || hi > st.Max {
			st.Max = hi
		}
		st.Mean += p.V
		st.N++
		t := time.UnixMilli(p.T)
		if st.N == 1 {
			st.First = t
		}
		st.Last = t
	}
	if st.N > 0 {
		st.Mean /= float64(st.N)
	}
	return st
}

// Forget drops series whose newest point is older than the retention.
func (s *Store) Forget(now time.Time) {
	cut := now.Add(-s.retention).Unix()
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, sr := range s.series {
		if sr.lastSec < cut {
			delete(s.series, name)
		}
	}
}

// Len is the number of series.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.series)
}

// Bytes estimates the memory the store holds. Walking every series is not free with
// tens of thousands of them, so the figure is recomputed at most every 10 seconds.
func (s *Store) Bytes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if time.Since(s.bytesAt) < 10*time.Second {
		return s.bytes
	}
	n := 0
	for name, sr := range s.series {
		n += len(name) + 64 + sr.bytes()
	}
	s.bytes, s.bytesAt = n, time.Now()
	return n
}

// chunkSecs is the span of one chunk of one-second points: five minutes, so that the
// fixed cost of a chunk is spread over 300 points.
const chunkSecs = 300

// chunk holds the one-second points of five minutes.
type chunk struct {
	start   int64     // Unix second the chunk starts at
	present [5]uint64 // bit i: a point at start+i
	same    [5]uint64 // bit i: that point repeats the previous value (no bytes stored)
	data    []byte    // zigzag varint deltas of quantized values
	first   int64     // quantized value of the first point
	last    int64     // quantized value of the last point
	n       int32
}

func (c *chunk) has(off int) bool     { return c.present[off/64]&(1<<uint(off%64)) != 0 }
func (c *chunk) repeats(off int) bool { return c.same[off/64]&(1<<uint(off%64)) != 0 }

// series is one time series: one-second points in chunks for Fine, and one-minute means
// and maxima for the retention, in a ring of consecutive minutes (NaN for a minute
// without points).
type series struct {
	step      float64
	chunks    []*chunk // oldest first
	lastSec   int64
	coarse    []float32 // ring of mean, max pairs
	coarseCap int       // minutes kept
	cHead     int       // index of the oldest minute
	lastMin   int64     // minute of the newest coarse entry
	// the minute in progress
	minute int64
	mN     int32
	mSum   float64
	mMax   float64
}

// keepChunks covers Fine whatever the alignment.
const keepChunks = int(Fine/time.Second)/chunkSecs + 1

func newSeries(step float64, coarseCap int) *series {
	return &series{step: step, coarseCap: coarseCap, lastSec: math.MinInt64, minute: math.MinInt64}
}

func (sr *series) add(sec int64, v float64) {
	if sec <= sr.lastSec {
		return
	}
	sr.lastSec = sec
	if m := sec / 60; m != sr.minute {
		sr.closeMinute()
		sr.minute, sr.mN, sr.mSum, sr.mMax = m, 0, 0, 0
	}
	sr.mN++
	sr.mSum += v
	if sr.mN == 1 || v > sr.mMax {
		sr.mMax = v
	}

	start := sec - sec%chunkSecs
	var c *chunk
	if n := len(sr.chunks); n > 0 && sr.chunks[n-1].start == start {
		c = sr.chunks[n-1]
	} else {
		if n > 0 {
			prev := sr.chunks[n-1]
			prev.data = slices.Clip(prev.data) // finished: give back the spare capacity
			if len(prev.data) == 0 {
				prev.data = nil
			} else if cap(prev.data) > len(prev.data) {
				prev.data = append([]byte(nil), prev.data...)
			}
		}
		if len(sr.chunks) >= keepChunks {
			copy(sr.chunks, sr.chunks[1:])
			sr.chunks[len(sr.chunks)-1] = nil
			sr.chunks = sr.chunks[:len(sr.chunks)-1]
		}
		c = &chunk{start: start}
		sr.chunks = append(sr.chunks, c)
	}
	off := int(sec - start)
	q := int64(math.Round(v / sr.step))
	switch {
	case c.n == 0:
		c.first = q
	case q == c.last:
		c.same[off/64] |= 1 << uint(off%64)
	default:
		c.data = binary.AppendVarint(c.data, q-c.last)
	}
	c.last = q
	c.present[off/64] |= 1 << uint(off%64)
	c.n++
}

// closeMinute moves the minute in progress into the one-minute ring.
func (sr *series) closeMinute() {
	if sr.mN == 0 || sr.coarseCap == 0 {
		return
	}
	if len(sr.coarse) > 0 {
		// minutes without points between the newest entry and this one
		for gap := sr.minute - sr.lastMin - 1; gap > 0; gap-- {
			sr.pushCoarse(float32(math.NaN()), float32(math.NaN()))
			if gap > int64(sr.coarseCap) {
				gap = int64(sr.coarseCap)
			}
		}
	}
	sr.pushCoarse(float32(sr.mSum/float64(sr.mN)), float32(sr.mMax))
	sr.lastMin = sr.minute
}

func (sr *series) pushCoarse(mean, max float32) {
	if len(sr.coarse)/2 < sr.coarseCap {
		sr.coarse = append(sr.coarse, mean, max)
		return
	}
	sr.coarse[2*sr.cHead], sr.coarse[2*sr.cHead+1] = mean, max
	sr.cHead = (sr.cHead + 1) % sr.coarseCap
}

func (sr *series) fine(from int64, out []Point) []Point {
	for _, c := range sr.chunks {
		if c.start+chunkSecs <= from || c.n == 0 {
			continue
		}
		q := c.first
		data := c.data
		first := true
		for off := 0; off < chunkSecs; off++ {
			if !c.has(off) {
				continue
			}
			if !first && !c.repeats(off) {
				d, n := binary.Varint(data)
				if n <= 0 {
					break
				}
				data = data[n:]
				q += d
			}
			first = false
			if t := c.start + int64(off); t > from {
				out = append(out, Point{T: t * 1000, V: float64(q) * sr.step})
			}
		}
	}
	return out
}

func (sr *series) coarseFrom(from int64, out []Point) []Point {
	n := len(sr.coarse) / 2
	for i := 0; i < n; i++ {
		k := (sr.cHead + i) % n
		if len(sr.coarse)/2 < sr.coarseCap {
			k = i // not yet wrapped
		}
		minute := sr.lastMin - int64(n-1-i)
		mean, mx := sr.coarse[2*k], sr.coarse[2*k+1]
		if minute*60+60 <= from || math.IsNaN(float64(mean)) {
			continue
		}
		out = append(out, Point{T: minute * 60000, V: float64(mean), Max: ptr(float64(mx))})
	}
	if sr.mN > 0 && sr.minute*60+60 > from { // the minute in progress
		out = append(out, Point{T: sr.minute * 60000, V: sr.mSum / float64(sr.mN), Max: ptr(sr.mMax)})
	}
	return out
}

func (sr *series) bytes() int {
	n := 120 + cap(sr.coarse)*4 + cap(sr.chunks)*8
	for _, c := range sr.chunks {
		n += 128 + cap(c.data)
	}
	return n
}

func ptr(v float64) *float64 { return &v }
