package history

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)

func TestFinePointsRoundTrip(t *testing.T) {
	s := New(Options{})
	name := "pod:shop/cart-1:cpu_cores"
	vals := []float64{0.25, 0.251, 0.3, 0, 1.5}
	for i, v := range vals {
		s.Record(t0.Add(time.Duration(i)*time.Second), []Sample{{name, v}})
	}
	s.Record(t0.Add(10*time.Second), []Sample{{name, 2}}) // a gap of 5 s
	r, ok := s.Query(name, time.Minute, t0.Add(10*time.Second))
	if !ok {
		t.Fatal("series not found")
	}
	var want []Point
	for i, v := range vals {
		want = append(want, Point{T: t0.Add(time.Duration(i) * time.Second).UnixMilli(), V: v})
	}
	want = append(want, Point{T: t0.Add(10 * time.Second).UnixMilli(), V: 2})
	approx := cmp.Comparer(func(a, b float64) bool { return math.Abs(a-b) < 0.0005 })
	if diff := cmp.Diff(want, r.Points, approx); diff != "" {
		t.Errorf("points (-want +got):\n%s", diff)
	}
	if r.ResolutionMs != 1000 {
		t.Errorf("resolution = %d ms, want 1000", r.ResolutionMs)
	}
}

func TestWindowsAndTiers(t *testing.T) {
	s := New(Options{Retention: time.Hour})
	name := "cluster:requests_per_sec"
	// 40 minutes of one point a second: value = the minute number.
	for i := 0; i < 40*60; i++ {
		s.Record(t0.Add(time.Duration(i)*time.Second), []Sample{{name, float64(i / 60)}})
	}
	now := t0.Add(40*60*time.Second - time.Second)
	fine, _ := s.Query(name, 15*time.Minute, now)
	if n := len(fine.Points); n < 899 || n > 901 {
		t.Errorf("15 min window holds %d one-second points, want 900", n)
	}
	if fine.Points[0].T < now.Add(-15*time.Minute).UnixMilli() {
		t.Errorf("fine query reaches before its window")
	}
	coarse, _ := s.Query(name, time.Hour, now)
	if coarse.ResolutionMs != 60000 || len(coarse.Points) != 40 {
		t.Fatalf("1 h window: resolution %d, %d points; want 60000 and 40 minutes", coarse.ResolutionMs, len(coarse.Points))
	}
	for i, p := range coarse.Points {
		if p.V != float64(i) || p.Max == nil || *p.Max != float64(i) {
			t.Errorf("minute %d: mean %v max %v, want %d", i, p.V, p.Max, i)
		}
	}
	// The summary reads minutes: the one the window starts in (29) to the one in progress.
	st := s.Summary(name, 10*time.Minute, now)
	if st.Max != 39 || st.Min != 29 || st.N != 11 || st.Mean != 34 {
		t.Errorf("summary = %+v; want min 29, max 39, mean 34 over 11 minutes", st)
	}
}

// One pod's five series over a full retention stay within a few KiB: history is bounded
// by the number of pods, and a pod by its tiers. The figure is the Go heap the series
// take (measured over 100 pods with realistic noise: CPU, a memory random walk and
// request rates change every second), not an estimate; Bytes must agree with it.
func TestMemoryPerPodIsBounded(t *testing.T) {
	const pods = 100
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := New(Options{Retention: time.Hour})
	rng := rand.New(rand.NewPCG(1, 2))
	metrics := []string{"cpu_cores", "memory_bytes", "requests_per_sec", "errors_per_sec", "cpu_throttled_percent"}
	refs := make([][]Ref, pods)
	mem := make([]float64, pods)
	for p := range refs {
		mem[p] = 200e6
		for _, m := range metrics {
			refs[p] = append(refs[p], s.RefOf(ScopePod, fmt.Sprintf("shop/cart-%03d", p), m))
		}
	}
	vals := make([]Value, 0, pods*len(metrics))
	for i := 0; i < 2*3600; i++ {
		vals = vals[:0]
		for p := range refs {
			mem[p] += rng.NormFloat64() * 50e3
			v := []float64{0.2 + rng.Float64()*0.05, mem[p], 100 + rng.NormFloat64()*5, 0, 0}
			for j := range metrics {
				vals = append(vals, Value{refs[p][j], v[j]})
			}
		}
		s.Add(t0.Add(time.Duration(i)*time.Second), vals)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perPod := float64(after.HeapAlloc-before.HeapAlloc) / pods
	estimate := float64(s.Bytes()) / pods
	t.Logf("one pod, five series, 2 h of one-second points: %.0f bytes of heap (Bytes estimates %.0f)", perPod, estimate)
	if perPod > 11<<10 {
		t.Errorf("one pod's history holds %.0f bytes after 2 h; want at most 11 KiB", perPod)
	}
	if estimate < 0.8*perPod || estimate > 1.2*perPod {
		t.Errorf("Bytes estimates %.0f bytes a pod; the heap says %.0f", estimate, perPod)
	}
	runtime.KeepAlive(vals)
	s.Forget(t0.Add(4 * time.Hour))
	if s.Len() != 0 {
		t.Errorf("%d series outlived the retention", s.Len())
	}
	// A forgotten series recorded again starts afresh.
	s.Add(t0.Add(4*time.Hour), []Value{{refs[0][0], 0.5}})
	r, ok := s.Query(Name(ScopePod, "shop/cart-000", "cpu_cores"), time.Minute, t0.Add(4*time.Hour))
	if !ok || len(r.Points) != 1 || r.Points[0].V != 0.5 || s.Len() != len(metrics) {
		t.Errorf("after Forget and a new point: %+v, %v, %d series", r, ok, s.Len())
	}
}

// A series that misses points while its object's other series are recorded has gaps
// there, not invented values.
func TestAbsentPoints(t *testing.T) {
	s := New(Options{})
	cpu, rps := s.RefOf(ScopePod, "shop/a", "cpu_cores"), s.RefOf(ScopePod, "shop/a", "requests_per_sec")
	for i := 0; i < 10; i++ {
		vals := []Value{{cpu, float64(i) / 10}}
		if i%3 != 0 {
			vals = append(vals, Value{rps, 7})
		}
		s.Add(t0.Add(time.Duration(i)*time.Second), vals)
	}
	r, _ := s.Query(Name(ScopePod, "shop/a", "requests_per_sec"), time.Minute, t0.Add(9*time.Second))
	var got []int64
	for _, p := range r.Points {
		if p.V != 7 {
			t.Errorf("value %v at %d, want 7", p.V, p.T)
		}
		got = append(got, (p.T-t0.UnixMilli())/1000)
	}
	if diff := cmp.Diff([]int64{1, 2, 4, 5, 7, 8}, got); diff != "" {
		t.Errorf("seconds with a point (-want +got):\n%s", diff)
	}
	r, _ = s.Query(Name(ScopePod, "shop/a", "cpu_cores"), time.Minute, t0.Add(9*time.Second))
	if len(r.Points) != 10 || r.Points[9].V != 0.9 {
		t.Errorf("cpu points = %+v", r.Points)
	}
}

func TestParseName(t *testing.T) {
	tests := []struct {
		name, scope, object, metric string
		bad                         bool
	}{
		{name: "cluster:health", scope: "cluster", metric: "health"},
		{name: "workload:shop/cart:cpu_cores", scope: "workload", object: "shop/cart", metric: "cpu_cores"},
		{name: "pod:shop/cart-7d9f:memory_bytes", scope: "pod", object: "shop/cart-7d9f", metric: "memory_bytes"},
		{name: "cluster", bad: true},
		{name: "cluster:x:health", bad: true},
		{name: "pod:memory_bytes", bad: true},
		{name: "node:a:cpu_cores", bad: true},
		{name: "pod:a:bogus", bad: true},
	}
	for _, tt := range tests {
		scope, object, metric, err := ParseName(tt.name)
		if (err != nil) != tt.bad {
			t.Errorf("ParseName(%q) error = %v, want error %v", tt.name, err, tt.bad)
			continue
		}
		if !tt.bad && (scope != tt.scope || object != tt.object || metric != tt.metric) {
			t.Errorf("ParseName(%q) = %q %q %q", tt.name, scope, object, metric)
		}
	}
}

func TestIgnoresOldAndInvalidPoints(t *testing.T) {
	s := New(Options{})
	n := "cluster:health"
	s.Record(t0.Add(2*time.Second), []Sample{{n, 90}})
	s.Record(t0.Add(time.Second), []Sample{{n, 10}}) // older: ignored
	s.Record(t0.Add(3*time.Second), []Sample{{n, math.NaN()}, {"bogus", 1}})
	r, _ := s.Query(n, time.Minute, t0.Add(3*time.Second))
	if len(r.Points) != 1 || r.Points[0].V != 90 || s.Len() != 1 {
		t.Errorf("points = %+v, series = %d", r.Points, s.Len())
	}
}

func BenchmarkRecordPods(b *testing.B) {
	s := New(Options{})
	const pods = 1000
	batch := make([]Sample, 0, pods*4)
	for p := 0; p < pods; p++ {
		for _, m := range []string{"cpu_cores", "memory_bytes", "requests_per_sec", "errors_per_sec"} {
			batch = append(batch, Sample{Name: Name(ScopePod, "ns/pod-"+string(rune('a'+p%26))+string(rune('a'+p/26%26))+string(rune('a'+p/676)), m), Value: float64(p)})
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.Record(t0.Add(time.Duration(i)*time.Second), batch)
	}
}

// Minutes without points stay gaps in the one-minute tier.
func TestCoarseGaps(t *testing.T) {
	s := New(Options{Retention: time.Hour})
	n := "cluster:health"
	for _, m := range []int{0, 1, 5, 6} { // nothing in minutes 2-4
		for sec := 0; sec < 60; sec++ {
			s.Record(t0.Add(time.Duration(m)*time.Minute+time.Duration(sec)*time.Second), []Sample{{n, float64(m)}})
		}
	}
	r, _ := s.Query(n, time.Hour, t0.Add(7*time.Minute))
	var got []float64
	for _, p := range r.Points {
		got = append(got, p.V)
	}
	if diff := cmp.Diff([]float64{0, 1, 5, 6}, got); diff != "" {
		t.Errorf("minute means (-want +got):\n%s", diff)
	}
}
