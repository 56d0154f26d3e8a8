package rewind

import (
	"cmp"
	"math"
	"slices"
	"time"

	"github.com/faultline-dev/faultline/aggregator/merge"
	"github.com/faultline-dev/faultline/aggregator/view"
	"github.com/faultline-dev/faultline/internal/wire"
)

// Bounds of a timeline.
const (
	MaxPeriods  = 500 // the most recent periods listed
	MaxOpenings = 100 // the most recent openings listed
)

// TileKey names a workload's breaker tile.
type TileKey struct{ Namespace, Workload, Breaker string }

// PodKey names one pod's breaker.
type PodKey struct{ Namespace, Pod, Breaker string }

// Timelines are the timelines of every tile and of the breakers of the pods present.
type Timelines struct {
	Tiles map[TileKey]*view.Timeline
	Pods  map[PodKey]*view.Timeline
}

// seg is a span in one state; code 0 is "not reported".
type seg struct {
	from, to int64
	state    uint8
}

// podRun is one pod's breaker over the window, for its tile.
type podRun struct {
	segs     []seg
	changes  int
	openings []view.Opening
	cut      int64
}

// Timelines computes what every breaker did between from and to: per pod from its
// transitions (and, for one that did not change, its state now), per tile from the worst
// state over its pods at each moment, as the grid shows it. Pods that are gone count in
// their tile until discovery dropped them.
func (l *Log) Timelines(from, to time.Time, live []merge.Agent) Timelines {
	lo, hi := ms(from), ms(to)
	cur := make(map[string][]wire.Breaker, len(live))
	for _, a := range live {
		if a.Snapshot != nil {
			cur[a.Status.Key] = a.Snapshot.Breakers
		}
	}
	out := Timelines{Tiles: map[TileKey]*view.Timeline{}, Pods: map[PodKey]*view.Timeline{}}
	runs := map[TileKey][]podRun{}
	l.mu.Lock()
	lo = max(lo, l.started)
	for key, a := range l.agents {
		if len(a.states) == 0 {
			continue
		}
		alive := [2]int64{max(lo, a.states[0].at), hi}
		if a.gone != 0 {
			alive[1] = min(hi, a.gone)
		}
		if alive[0] >= alive[1] {
			continue
		}
		now := cur[key]
		if a.gone != 0 {
			now = nil
		}
		st := a.status
		ns, wl := st.Namespace, merge.WorkloadOf(st)
		run := func(name string, b *breakerLog, state uint8) {
			r := podRun{segs: segments(b, state, alive)}
			if b != nil {
				r.cut = b.cut
				for _, e := range b.entries {
					if e.at() > alive[0] && e.at() <= alive[1] {
						r.changes++
					}
				}
				for _, tr := range b.trips {
					if tr.at >= alive[0] && tr.at <= alive[1] {
						r.openings = append(r.openings, opening(tr, st.Pod, b))
					}
				}
			}
			if len(r.segs) == 0 {
				return
			}
			k := TileKey{ns, wl, name}
			runs[k] = append(runs[k], r)
			if a.gone == 0 {
				out.Pods[PodKey{ns, st.Pod, name}] = summarize([]podRun{r}, r.segs, lo, hi)
			}
		}
		seen := map[string]bool{}
		for i := range a.breakers {
			b := &a.breakers[i]
			seen[b.name] = true
			run(b.name, b, 0)
		}
		for _, b := range now {
			if !seen[b.Name] {
				run(b.Name, nil, code(b.State))
			}
		}
		for _, f := range a.final {
			if a.gone != 0 && !seen[f.name] {
				run(f.name, nil, f.state)
			}
		}
	}
	l.mu.Unlock()
	for k, rs := range runs {
		out.Tiles[k] = summarize(rs, worst(rs), lo, hi)
	}
	return out
}

// segments is one pod's breaker states over alive: from its transitions when it has
// any, else constant in state.
func segments(b *breakerLog, state uint8, alive [2]int64) []seg {
	from, to := alive[0], alive[1]
	if b != nil {
		var decided bool
		if state, _, decided = b.at(from); !decided {
			return nil
		}
	}
	var out []seg
	start := from
	if b != nil {
		for _, e := range b.entries {
			if e.at() <= from || e.at() > to {
				continue
			}
			if e.to() != state {
				out = append(out, seg{start, e.at(), state})
				start, state = e.at(), e.to()
			}
		}
	}
	return append(out, seg{start, to, state})
}

func opening(tr trip, pod string, b *breakerLog) view.Opening {
	o := view.Opening{Time: wire.Time{Time: time.UnixMilli(tr.at).UTC()}, Pod: pod, Calls: tr.calls}
	if !math.IsNaN(tr.failureRate) {
		o.FailureRate = wire.Ptr(tr.failureRate)
	}
	i := slices.IndexFunc(b.entries, func(e entry) bool { return e.at() == tr.at && isOpen(e.to()) })
	if i >= 0 {
		o.From = states[min(int(b.entries[i].from()), len(states)-1)]
	}
	return o
}

// rank orders state codes from harmless to worst, as a tile's worst state is chosen:
// not reported, unknown, disabled, closed, half-open, open, forced open.
func rank(c uint8) int {
	switch c {
	case 5:
		return 6
	case 2:
		return 5
	case 3:
		return 4
	case 1:
		return 3
	case 4:
		return 2
	case 0xf:
		return 1
	}
	return 0
}

// worst merges pods' segments into the tile's: at each moment the worst state over the
// pods reporting the breaker.
func worst(rs []podRun) []seg {
	type change struct {
		at       int64
		pod      int
		from, to uint8
	}
	var changes []change
	for p, r := range rs {
		prev := uint8(0)
		for _, s := range r.segs {
			changes = append(changes, change{s.from, p, prev, s.state})
			prev = s.state
		}
		last := r.segs[len(r.segs)-1]
		changes = append(changes, change{last.to, p, last.state, 0})
	}
	slices.SortStableFunc(changes, func(a, b change) int { return cmp.Compare(a.at, b.at) })
	var counts [16]int
	var out []seg
	for i := 0; i < len(changes); {
		at := changes[i].at
		for ; i < len(changes) && changes[i].at == at; i++ {
			counts[changes[i].from]--
			counts[changes[i].to]++
		}
		state := uint8(0)
		for c := 1; c < len(counts); c++ {
			if counts[c] > 0 && rank(uint8(c)) > rank(state) {
				state = uint8(c)
			}
		}
		if n := len(out); n > 0 {
			out[n-1].to = at // moments are distinct: the span lasted
			if out[n-1].state == state {
				continue
			}
		}
		out = append(out, seg{at, at, state})
	}
	if n := len(out); n > 0 && out[n-1].from == out[n-1].to {
		out = out[:n-1]
	}
	return out
}

// summarize turns segments (a pod's, or a tile's with its pods' runs) into a timeline.
func summarize(rs []podRun, segs []seg, lo, hi int64) *view.Timeline {
	tl := &view.Timeline{From: wire.Time{Time: time.UnixMilli(lo).UTC()}, To: wire.Time{Time: time.UnixMilli(hi).UTC()},
		Openings: []view.Opening{}, Periods: []view.Period{}}
	var cut int64
	for _, r := range rs {
		tl.Transitions += r.changes
		tl.Openings = append(tl.Openings, r.openings...)
		cut = max(cut, r.cut)
	}
	if cut > lo {
		tl.KnownFrom = &wire.Time{Time: time.UnixMilli(cut).UTC()}
	}
	slices.SortStableFunc(tl.Openings, func(a, b view.Opening) int { return a.Time.Compare(b.Time.Time) })
	if n := len(tl.Openings); n > MaxOpenings {
		tl.Openings = tl.Openings[n-MaxOpenings:]
	}
	var longest, run, recoveries, recoverySum int64
	cycleStart := int64(-1) // when the breaker opened from closed, in the current cycle
	prev := uint8(0)
	for i, s := range segs {
		d := s.to - s.from
		switch {
		case isOpen(s.state):
			tl.OpenMs += float64(d)
			run += d
			longest = max(longest, run)
			if prev == 1 && i > 0 {
				cycleStart = s.from
			}
		case s.state == 3:
			tl.HalfOpenMs += float64(d)
			run = 0
		default:
			run = 0
			if s.state == 1 && cycleStart >= 0 {
				recoveries++
				recoverySum += s.from - cycleStart
			}
			cycleStart = -1
		}
		if s.state != 1 && s.state != 0 {
			state := unknown
			if int(s.state) < len(states) {
				state = states[s.state]
			}
			tl.Periods = append(tl.Periods, view.Period{From: wire.Time{Time: time.UnixMilli(s.from).UTC()},
				To: wire.Time{Time: time.UnixMilli(s.to).UTC()}, State: state, Ongoing: s.to == hi && i == len(segs)-1})
		}
		prev = s.state
	}
	tl.LongestOpenMs = float64(longest)
	tl.Recoveries = int(recoveries)
	if recoveries > 0 {
		tl.MeanOpenToClosedMs = wire.Ptr(float64(recoverySum) / float64(recoveries))
	}
	if n := len(tl.Periods); n > MaxPeriods {
		tl.Periods = tl.Periods[n-MaxPeriods:]
	}
	return tl
}
