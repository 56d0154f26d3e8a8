package rewind

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/faultline-dev/faultline/aggregator/history"
	"github.com/faultline-dev/faultline/aggregator/merge"
	"github.com/faultline-dev/faultline/aggregator/view"
	"github.com/faultline-dev/faultline/internal/wire"
)

// heapAfter returns the heap in use after build, less before, with what build returns
// kept alive.
func heapAfter(build func() any) (uint64, any) {
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	before := m.HeapAlloc
	v := build()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc - before, v
}

// BenchmarkMemory measures what rewinding keeps, per pod and per breaker, for 1,000
// pods of 10 breakers each in 50 workloads: pods whose breakers never change (the
// steady state: only the agents' state changes are kept), then one opening and closing
// of every breaker (two transitions and what tripped the opening). Baseline in the same
// run: what the history already keeps for the same pods, their five series over 15
// minutes of one-second points.
//
//	go test -run '^$' -bench Memory -benchtime 1x ./aggregator/rewind/
func BenchmarkMemory(b *testing.B) {
	const pods, breakers = 1000, 10
	names := make([]string, breakers)
	for i := range names {
		names[i] = fmt.Sprintf("dependency-%d", i)
	}
	st := func(i int, state string) view.AgentStatus {
		return view.AgentStatus{V: 1, Key: fmt.Sprintf("pod-uid-%06d", i), State: state, Pod: fmt.Sprintf("w%02d-7d9f8c6b5-%05d", i%50, i),
			Namespace: "shop", Workload: fmt.Sprintf("w%02d", i%50), URL: fmt.Sprintf("http://10.0.%d.%d:9800", i/250, i%250),
			Since: wire.NewTime(t0), LastSeen: wire.NewTime(t0)}
	}
	for i := 0; i < b.N; i++ {
		steady, lv := heapAfter(func() any {
			l := New(time.Hour, t0)
			for p := 0; p < pods; p++ {
				l.Status(st(p, view.AgentConnecting), t0)
				l.Status(st(p, view.AgentConnected), t0.Add(time.Second))
			}
			return l
		})
		l := lv.(*Log)
		flips, _ := heapAfter(func() any {
			for p := 0; p < pods; p++ {
				for _, n := range names {
					fr := 62.5
					l.Transition(st(p, "").Key, wire.Transition{V: 1, From: wire.StateClosed, To: wire.StateOpen,
						Breaker: wire.Breaker{Name: n, FailureRate: &fr, Calls: wire.Calls{Succeeded: 1000, Failed: 1700}}}, t0.Add(time.Minute))
					l.Transition(st(p, "").Key, wire.Transition{V: 1, From: wire.StateOpen, To: wire.StateClosed,
						Breaker: wire.Breaker{Name: n}}, t0.Add(2*time.Minute))
				}
			}
			return nil
		})
		hist, hv := heapAfter(func() any {
			h := history.New(history.Options{Retention: time.Hour})
			metrics := []string{"cpu_cores", "memory_bytes", "requests_per_sec", "errors_per_sec", "cpu_throttled_percent"}
			refs := make([][]history.Ref, pods)
			for p := range refs {
				for _, m := range metrics {
					refs[p] = append(refs[p], h.RefOf(history.ScopePod, "shop/"+st(p, "").Pod, m))
				}
			}
			values := make([]history.Value, 0, pods*len(metrics))
			for sec := 0; sec < int(history.Fine/time.Second); sec++ {
				values = values[:0]
				for p := range refs {
					for m, r := range refs[p] {
						values = append(values, history.Value{Ref: r, Value: float64((sec*7+p*13+m)%97) * 0.37})
					}
				}
				h.Add(t0.Add(time.Duration(sec)*time.Second), values)
			}
			return h
		})
		runtime.KeepAlive(l)
		runtime.KeepAlive(hv)
		b.ReportMetric(float64(steady)/pods, "B/pod")
		b.ReportMetric(float64(flips)/(pods*breakers), "B/breaker-with-2-transitions")
		b.ReportMetric(float64(hist)/pods, "baseline-history-B/pod")
	}
}

// BenchmarkAt measures building the view at an instant (GET /api/v1/snapshot?at=) for
// 1,000 pods of 10 breakers, each breaker with one opening and closing recorded.
func BenchmarkAt(b *testing.B) {
	const pods, breakers = 1000, 10
	l := New(time.Hour, t0)
	h := history.New(history.Options{Retention: time.Hour})
	live := make([]merge.Agent, pods)
	for p := 0; p < pods; p++ {
		st := view.AgentStatus{V: 1, Key: fmt.Sprint(p), State: view.AgentConnected, Pod: fmt.Sprintf("pod-%d", p), Namespace: "shop", Workload: fmt.Sprintf("w%d", p%50)}
		l.Status(st, t0)
		bs := make([]wire.Breaker, breakers)
		for j := range bs {
			bs[j] = wire.Breaker{V: 1, Name: fmt.Sprintf("dependency-%d", j), State: wire.StateClosed, Since: wire.NewTime(t0)}
			l.Transition(st.Key, wire.Transition{From: wire.StateClosed, To: wire.StateOpen, Breaker: bs[j]}, t0.Add(time.Minute))
			l.Transition(st.Key, wire.Transition{From: wire.StateOpen, To: wire.StateClosed, Breaker: bs[j]}, t0.Add(3*time.Minute))
		}
		live[p] = merge.Agent{Status: st, Snapshot: &wire.Snapshot{V: 1, Breakers: bs}}
		for sec := 0; sec < 300; sec++ {
			h.Record(t0.Add(time.Duration(sec)*time.Second), []history.Sample{{Name: "pod:shop/" + st.Pod + ":cpu_cores", Value: 0.25}})
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		snap := l.At(Query{At: t0.Add(2 * time.Minute), Now: t0.Add(5 * time.Minute), Live: live, History: h, MaxGap: 8 * time.Second})
		if snap.Totals.BreakersOpen != pods*breakers {
			b.Fatalf("%d breakers open, want %d", snap.Totals.BreakersOpen, pods*breakers)
		}
	}
}
