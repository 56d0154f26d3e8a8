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
	"sort"
	"strings"
	"sync"
	"time"
	"unsafe"
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
	// resource_pressure is the cluster's mean resource pressure over connected pods (0-1,
	// see the health score) and pods_pressured the pods above 80 % of a limit.
	"resource_pressure": 0.0001,
	"pods_pressured":    1,
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

// Store holds every series. Series are grouped by object (the cluster, one workload, one
// pod): an object's metrics are recorded at the same seconds, so they share one index of
// the seconds recorded and one set of chunks, and a pod's five series cost little more
// than their points.
type Store struct {
	retention time.Duration
	mu        sync.Mutex
	objects   map[string]*object // by scope:object
	series    int
	bytes     int // last Bytes figure and when it was computed
	bytesAt   time.Time
}

// New returns an empty store.
func New(opts Options) *Store {
	if opts.Retention < Fine {
		opts.Retention = time.Hour
	}
	return &Store{retention: opts.Retention, objects: make(map[string]*object)}
}

// Retention is how far back queries can go.
func (s *Store) Retention() time.Duration { return s.retention }

// Sample is one value to record.
type Sample struct {
	Name  string
	Value float64
}

// Ref is a handle on one series: recording through it skips parsing and looking up the
// name. It stays valid while the store lives; a series that Forget dropped starts afresh
// when recorded again.
type Ref struct {
	o *object
	m int
}

// Value is one point to record through a Ref.
type Value struct {
	Ref   Ref
	Value float64
}

// Ref returns the handle of series name.
func (s *Store) Ref(name string) (Ref, error) {
	scope, obj, metric, err := ParseName(name)
	if err != nil {
		return Ref{}, err
	}
	return s.RefOf(scope, obj, metric), nil
}

// RefOf returns the handle of the series named by its parts, which must be valid (as
// ParseName would split a valid name).
func (s *Store) RefOf(scope, obj, metric string) Ref {
	key := objectKey(scope, obj)
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.objects[key]
	if o == nil {
		o = &object{key: key, lastSec: math.MinInt64, coarseCap: int(s.retention / time.Minute)}
		s.objects[key] = o
	}
	m := o.metric(metric)
	if m < 0 {
		m = len(o.metrics)
		// Exactly as many as recorded: most objects have five.
		o.metrics = append(o.metrics[:len(o.metrics):len(o.metrics)], newMetricState(metric, Metrics[metric]))
		if !o.dead {
			s.series++
		}
	}
	return Ref{o: o, m: m}
}

func objectKey(scope, obj string) string {
	if obj == "" {
		return scope
	}
	return scope + ":" + obj
}

// Record adds one point per sample at time t (truncated to the second). Points older
// than a series' newest are ignored, as are NaN and infinite values and invalid names.
func (s *Store) Record(t time.Time, samples []Sample) {
	values := make([]Value, 0, len(samples))
	for _, x := range samples {
		if r, err := s.Ref(x.Name); err == nil {
			values = append(values, Value{Ref: r, Value: x.Value})
		}
	}
	s.Add(t, values)
}

// Add is Record through handles.
func (s *Store) Add(t time.Time, values []Value) {
	sec := t.Unix()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range values {
		if math.IsNaN(v.Value) || math.IsInf(v.Value, 0) || v.Ref.o == nil {
			continue
		}
		o := v.Ref.o
		if o.dead { // dropped by Forget: back, empty
			o.dead = false
			s.objects[o.key] = o
			s.series += len(o.metrics)
		}
		o.add(sec, v.Ref.m, v.Value)
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
	r := Result{Series: name, WindowMs: window.Milliseconds(), ResolutionMs: 1000, Points: []Point{}}
	if window > Fine {
		r.ResolutionMs = 60000
	}
	ok := s.scan(name, window, now, window > Fine, func(t int64, v float64, max *float64) {
		p := Point{T: t, V: v}
		if max != nil {
			p.Max = ptr(*max)
		}
		r.Points = append(r.Points, p)
	})
	if !ok {
		return Result{}, false
	}
	return r, true
}

// scan calls point for each one-second point within window, or each minute with coarse,
// without building them.
func (s *Store) scan(name string, window time.Duration, now time.Time, coarse bool, point func(t int64, v float64, max *float64)) bool {
	scope, obj, metric, err := ParseName(name)
	if err != nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.objects[objectKey(scope, obj)]
	if o == nil {
		return false
	}
	m := o.metric(metric)
	if m < 0 || o.metrics[m].lastSec == math.MinInt64 {
		return false
	}
	from := now.Add(-window).Unix()
	if coarse {
		o.metrics[m].coarseFrom(from, point)
	} else {
		o.fine(m, from, point)
	}
	return true
}

// Stat summarises a series over a window.
type Stat struct {
	N              int
	Min, Max, Mean float64
	First, Last    time.Time
}

// Summary returns statistics of the minutes within window (the minute in progress
// included): Min and Mean of their means, Max of their maxima, N minutes; N is 0 when there
// are none. Reading minutes rather than seconds keeps it cheap enough to run over every
// pod: 15 entries for 15 minutes instead of 900 points.
func (s *Store) Summary(name string, window time.Duration, now time.Time) Stat {
	var st Stat
	var first, last int64
	s.scan(name, window, now, true, func(t int64, v float64, max *float64) {
		hi := v
		if max != nil {
			hi = *max
		}
		if st.N == 0 || v < st.Min {
			st.Min = v
		}
		if st.N == 0 || hi > st.Max {
			st.Max = hi
		}
		st.Mean += v
		st.N++
		if st.N == 1 {
			first = t
		}
		last = t
	})
	if st.N > 0 {
		st.Mean /= float64(st.N)
		st.First, st.Last = time.UnixMilli(first), time.UnixMilli(last)
	}
	return st
}

// Forget drops objects (and their series) whose newest point is older than the
// retention.
func (s *Store) Forget(now time.Time) {
	cut := now.Add(-s.retention).Unix()
	s.mu.Lock()
	defer s.mu.Unlock()
	for key, o := range s.objects {
		if o.lastSec < cut {
			delete(s.objects, key)
			s.series -= len(o.metrics)
			o.reset()
		}
	}
}

// Len is the number of series.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.series
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
	for key, o := range s.objects {
		n += len(key) + 48 + o.size()
	}
	s.bytes, s.bytesAt = n, time.Now()
	return n
}

// chunkSecs is the span of one chunk of one-second points: five minutes, so that the
// fixed cost of a chunk is spread over 300 points.
const chunkSecs = 300

// keepChunks covers Fine whatever the alignment.
const keepChunks = int(Fine/time.Second)/chunkSecs + 1

// bitmap has one bit per second of a chunk.
type bitmap [(chunkSecs + 63) / 64]uint64

func (b *bitmap) has(off int) bool { return b[off/64]&(1<<uint(off%64)) != 0 }
func (b *bitmap) set(off int)      { b[off/64] |= 1 << uint(off%64) }

// object is the series of one cluster, workload or pod.
type object struct {
	key       string
	metrics   []metricState
	chunks    []*chunk // oldest first
	lastSec   int64    // newest second recorded for any metric
	coarseCap int
	dead      bool // dropped by Forget
}

// chunk holds an object's one-second points of five minutes.
type chunk struct {
	start   int64  // Unix second the chunk starts at
	present bitmap // seconds at which the object was recorded
	cols    []column
}

// column is one metric's points in a chunk: zigzag varint deltas of quantized values,
// with repeated values costing no bytes.
type column struct {
	absent *bitmap // seconds of present the metric has no point at; nil while none
	same   *bitmap // the point repeats the previous value (no bytes stored); nil while none
	first  int64   // quantized value of the first point
	n      int32
	data   []byte
}

// metricState is one series' running state and its one-minute tier: the minutes from
// the oldest kept to the newest, each the mean (quantized to a tenth of the step) and the
// maximum as zigzag varint deltas from the minute before, a minute without points
// costing one byte.
type metricState struct {
	name    string
	step    float64
	lastSec int64
	last    int64 // quantized value of the newest point
	// one-minute tier
	cdata   []byte // entries from coff on, oldest first
	coff    int32
	cN      int32    // minutes held
	lastMin int64    // minute of the newest entry
	base    [2]int64 // mean and max before the oldest entry
	prev    [2]int64 // mean and max of the newest entry with points
	// the minute in progress (the minute of lastSec, while mN > 0)
	mN   int32
	mSum float64
	mMax float64
}

// meanSteps is how much finer than its points a series' minute means are kept.
const meanSteps = 10

func newMetricState(name string, step float64) metricState {
	return metricState{name: name, step: step, lastSec: math.MinInt64}
}

func (o *object) metric(name string) int {
	for i := range o.metrics {
		if o.metrics[i].name == name {
			return i
		}
	}
	return -1
}

// reset empties a dropped object, keeping its metrics' names for a return.
func (o *object) reset() {
	o.dead = true
	o.chunks = nil
	o.lastSec = math.MinInt64
	for i := range o.metrics {
		o.metrics[i] = newMetricState(o.metrics[i].name, o.metrics[i].step)
	}
}

func (o *object) add(sec int64, m int, v float64) {
	mt := &o.metrics[m]
	if sec <= mt.lastSec || sec < o.lastSec {
		return // one point a second per series, in time order
	}
	mt.addMinute(sec, v, o.coarseCap)
	if sec > o.lastSec {
		o.advance(sec)
	}
	c := o.chunks[len(o.chunks)-1]
	if len(c.cols) < len(o.metrics) {
		c.cols = append(c.cols, make([]column, len(o.metrics)-len(c.cols))...)
	}
	col := &c.cols[m]
	off := int(sec - c.start)
	q := int64(math.Round(v / mt.step))
	switch {
	case col.n == 0:
		col.first = q
	case q == mt.last:
		if col.same == nil {
			col.same = new(bitmap)
		}
		col.same.set(off)
	default:
		col.data = binary.AppendVarint(col.data, q-mt.last)
	}
	col.n++
	mt.last, mt.lastSec = q, sec
}

// advance starts a new second for the object: the metrics that had no point at the
// previous one are marked absent there, and the second gets its place in a chunk.
func (o *object) advance(sec int64) {
	if n := len(o.chunks); n > 0 {
		prev := o.chunks[n-1]
		off := int(o.lastSec - prev.start)
		for i := range o.metrics {
			if o.metrics[i].lastSec == o.lastSec {
				continue
			}
			if len(prev.cols) < len(o.metrics) {
				prev.cols = append(prev.cols, make([]column, len(o.metrics)-len(prev.cols))...)
			}
			col := &prev.cols[i]
			if col.absent == nil {
				col.absent = new(bitmap)
			}
			col.absent.set(off)
		}
	}
	o.lastSec = sec
	start := sec - sec%chunkSecs
	if n := len(o.chunks); n == 0 || o.chunks[n-1].start != start {
		if n > 0 {
			o.chunks[n-1].clip()
		}
		if len(o.chunks) >= keepChunks {
			copy(o.chunks, o.chunks[1:])
			o.chunks[len(o.chunks)-1] = nil
			o.chunks = o.chunks[:len(o.chunks)-1]
		}
		o.chunks = append(o.chunks, &chunk{start: start, cols: make([]column, len(o.metrics))})
	}
	c := o.chunks[len(o.chunks)-1]
	c.present.set(int(sec - c.start))
}

// clip gives back the spare capacity of a finished chunk.
func (c *chunk) clip() {
	for i := range c.cols {
		col := &c.cols[i]
		switch {
		case len(col.data) == 0:
			col.data = nil
		case cap(col.data) > len(col.data):
			col.data = append([]byte(nil), col.data...)
		}
	}
}

func (mt *metricState) addMinute(sec int64, v float64, coarseCap int) {
	if mt.mN > 0 && sec/60 != mt.lastSec/60 {
		mt.closeMinute(coarseCap)
		mt.mN, mt.mSum, mt.mMax = 0, 0, 0
	}
	mt.mN++
	mt.mSum += v
	if mt.mN == 1 || v > mt.mMax {
		mt.mMax = v
	}
}

// closeMinute moves the minute in progress into the one-minute tier.
func (mt *metricState) closeMinute(coarseCap int) {
	if mt.mN == 0 || coarseCap == 0 {
		return
	}
	if mt.cN > 0 {
		// minutes without points between the newest entry and this one
		for gap := min(mt.lastSec/60-mt.lastMin-1, int64(coarseCap)); gap > 0; gap-- {
			mt.pushCoarse(nil, coarseCap)
		}
	}
	v := [2]int64{int64(math.Round(mt.mSum / float64(mt.mN) / mt.step * meanSteps)), int64(math.Round(mt.mMax / mt.step))}
	mt.pushCoarse(&v, coarseCap)
	mt.lastMin = mt.lastSec / 60
}

// pushCoarse appends one minute (nil: without points), dropping the oldest beyond the
// retention.
func (mt *metricState) pushCoarse(v *[2]int64, coarseCap int) {
	if int(mt.cN) == coarseCap {
		mt.dropOldest()
	}
	if mt.coff > 0 && len(mt.cdata)+2*binary.MaxVarintLen64 > cap(mt.cdata) {
		// Reuse the space of dropped minutes rather than growing.
		mt.cdata = append(mt.cdata[:0], mt.cdata[mt.coff:]...)
		mt.coff = 0
	}
	if v == nil {
		mt.cdata = binary.AppendUvarint(mt.cdata, 1)
	} else {
		mt.cdata = binary.AppendUvarint(mt.cdata, zigzag(v[0]-mt.prev[0])<<1)
		mt.cdata = binary.AppendUvarint(mt.cdata, zigzag(v[1]-mt.prev[1]))
		mt.prev = *v
	}
	mt.cN++
}

func (mt *metricState) dropOldest() {
	d, n := binary.Uvarint(mt.cdata[mt.coff:])
	mt.coff += int32(n)
	if d&1 == 0 {
		mt.base[0] += unzigzag(d >> 1)
		dm, n := binary.Uvarint(mt.cdata[mt.coff:])
		mt.coff += int32(n)
		mt.base[1] += unzigzag(dm)
	}
	mt.cN--
}

func zigzag(v int64) uint64   { return uint64(v<<1) ^ uint64(v>>63) }
func unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

// fine hands out metric m's one-second points after from.
func (o *object) fine(m int, from int64, point func(t int64, v float64, max *float64)) {
	mt := &o.metrics[m]
	for _, c := range o.chunks {
		if c.start+chunkSecs <= from || m >= len(c.cols) || c.cols[m].n == 0 {
			continue
		}
		col := &c.cols[m]
		q := col.first
		data := col.data
		first := true
		for off := 0; off < chunkSecs; off++ {
			t := c.start + int64(off)
			if !c.present.has(off) || (col.absent != nil && col.absent.has(off)) || (t == o.lastSec && mt.lastSec != t) {
				continue
			}
			if !first && (col.same == nil || !col.same.has(off)) {
				d, n := binary.Varint(data)
				if n <= 0 {
					break
				}
				data = data[n:]
				q += d
			}
			first = false
			if t > from {
				point(t*1000, float64(q)*mt.step, nil)
			}
		}
	}
}

func (mt *metricState) coarseFrom(from int64, point func(t int64, v float64, max *float64)) {
	v := mt.base
	data := mt.cdata[mt.coff:]
	for i := int32(0); i < mt.cN; i++ {
		minute := mt.lastMin - int64(mt.cN-1-i)
		d, n := binary.Uvarint(data)
		data = data[n:]
		if d&1 == 1 {
			continue // no points that minute
		}
		dm, n := binary.Uvarint(data)
		data = data[n:]
		v[0] += unzigzag(d >> 1)
		v[1] += unzigzag(dm)
		if minute*60+60 <= from {
			continue
		}
		mx := float64(v[1]) * mt.step
		point(minute*60000, float64(v[0])*mt.step/meanSteps, &mx)
	}
	if minute := mt.lastSec / 60; mt.mN > 0 && minute*60+60 > from { // the minute in progress
		mx := mt.mMax
		point(minute*60000, mt.mSum/float64(mt.mN), &mx)
	}
}

// size estimates the bytes an object holds.
func (o *object) size() int {
	n := 64 + cap(o.chunks)*8
	for i := range o.metrics {
		n += int(unsafe.Sizeof(metricState{})) + cap(o.metrics[i].cdata)
	}
	for _, c := range o.chunks {
		n += 80 + cap(c.cols)*int(unsafe.Sizeof(column{}))
		for i := range c.cols {
			n += cap(c.cols[i].data)
			if c.cols[i].absent != nil {
				n += int(unsafe.Sizeof(bitmap{}))
			}
			if c.cols[i].same != nil {
				n += int(unsafe.Sizeof(bitmap{}))
			}
		}
	}
	return n
}

func ptr(v float64) *float64 { return &v }
