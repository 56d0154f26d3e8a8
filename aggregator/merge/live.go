package merge

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/faultline-dev/faultline/aggregator/view"
	"github.com/faultline-dev/faultline/internal/wire"
)

// Live keeps each workload's part of the view up to date agent by agent: a change of an
// agent takes away what its previous state added to its workload and adds what its new
// state adds, at the moment the change arrives. Building the view then costs as much as
// there are workloads and breaker tiles, however many agents there are, instead of
// merging every agent's snapshot again at every broadcast. A new snapshot costs as much
// as it holds breakers; one breaker's transition costs the same however many breakers
// its agent and workload hold (tiles are found by name, and the snapshot is not copied:
// the transition is kept beside it until a reader needs the agent whole).
//
// Sums are kept in double-double arithmetic, so that taking away exactly what was added
// leaves no rounding residue however many changes there were; a maximum that is taken
// away is found again among the workload's agents. Live is the one merge of agents into
// workloads: a view of a set of agents at once (Cluster) is a Live they are all set in,
// and parts kept up to date change by change equal that (TestLiveAgreesWithFreshMerge).
//
// Live is not safe for concurrent use.
type Live struct {
	workloads map[wkey]*liveWorkload
	members   map[string]*member
	// StaleAfter is how old an agent's data may be before Lag marks it (nil: never).
	StaleAfter func(Agent) time.Duration
}

// member is one agent as Live last saw it.
type member struct {
	key   string
	agent Agent    // its Snapshot is never changed: transitions are kept in over
	row   view.Pod // podRow of the agent, its breaker counts kept up to date
	w     *liveWorkload
	// Breakers changed by transitions since the snapshot: by name, and the names the
	// snapshot does not hold, in arrival order. index finds a name in the snapshot.
	over  map[string]*wire.Breaker
	added []string
	index map[string]int
	// staleAt is when the agent's data becomes too old (Unix ns; 0: never), worked out
	// when it arrives so that Lag only compares.
	staleAt int64
}

// each calls f with every breaker of the member as it stands: the snapshot's, with the
// transitions since applied.
func (m *member) each(f func(b *wire.Breaker)) {
	if m.agent.Snapshot == nil {
		return
	}
	bs := m.agent.Snapshot.Breakers
	for i := range bs {
		if len(m.over) > 0 {
			if o := m.over[bs[i].Name]; o != nil {
				f(o)
				continue
			}
		}
		f(&bs[i])
	}
	for _, name := range m.added {
		f(m.over[name])
	}
}

// current is the agent as it stands, its transitions written into a snapshot of its own
// (which then replaces the kept one, so that this is done once).
func (m *member) current() Agent {
	if len(m.over) == 0 {
		return m.agent
	}
	next := *m.agent.Snapshot
	next.Breakers = make([]wire.Breaker, 0, len(next.Breakers)+len(m.added))
	m.each(func(b *wire.Breaker) { next.Breakers = append(next.Breakers, *b) })
	m.agent.Snapshot = &next
	m.over, m.added, m.index = nil, nil, nil
	return m.agent
}

// NewLive returns an empty Live.
func NewLive() *Live {
	return &Live{workloads: map[wkey]*liveWorkload{}, members: map[string]*member{}}
}

// Set records agent key's new state and snapshot (the snapshot must not change after).
func (l *Live) Set(key string, a Agent) {
	m := l.members[key]
	if m == nil {
		m = &member{key: key}
		l.members[key] = m
	} else {
		m.w.sub(m)
	}
	m.agent, m.row = a, podRow(a)
	m.over, m.added, m.index = nil, nil, nil
	m.staleAt = 0
	if l.StaleAfter != nil && a.live() {
		m.staleAt = a.Status.LastSeen.Add(l.StaleAfter(a)).UnixNano()
	}
	k := wkey{a.Status.Namespace, WorkloadOf(a.Status)}
	if m.w == nil || m.w.key != k {
		if m.w != nil {
			l.leave(m)
		}
		w := l.workloads[k]
		if w == nil {
			w = &liveWorkload{key: k, members: map[string]*member{}}
			l.workloads[k] = w
		}
		w.members[key] = m
		m.w = w
	}
	m.w.add(m)
}

// Remove forgets agent key.
func (l *Live) Remove(key string) {
	m := l.members[key]
	if m == nil {
		return
	}
	m.w.sub(m)
	l.leave(m)
	delete(l.members, key)
}

func (l *Live) leave(m *member) {
	delete(m.w.members, m.key)
	m.w.changed = true
	if len(m.w.members) == 0 {
		delete(l.workloads, m.w.key)
	}
	m.w = nil
}

// SetStatus records agent key's new state, keeping its snapshot and transitions; it
// reports false for an agent Live does not hold.
func (l *Live) SetStatus(key string, st view.AgentStatus) bool {
	m := l.members[key]
	if m == nil {
		return false
	}
	a := m.current()
	a.Status = st
	l.Set(key, a)
	return true
}

// Status returns agent key's state.
func (l *Live) Status(key string) (view.AgentStatus, bool) {
	m := l.members[key]
	if m == nil {
		return view.AgentStatus{}, false
	}
	return m.agent.Status, true
}

// Sample returns agent key's latest sample, nil if none.
func (l *Live) Sample(key string) *wire.Sample {
	m := l.members[key]
	if m == nil || m.agent.Snapshot == nil {
		return nil
	}
	return m.agent.Snapshot.Sample
}

// Transition records one breaker of agent key as a transition left it, and returns the
// workload's tile of that breaker after the change and the agent's state. It reports
// false for an agent without a snapshot (its next one carries the breaker).
func (l *Live) Transition(key string, b wire.Breaker) (view.BreakerTile, view.AgentStatus, bool) {
	m := l.members[key]
	if m == nil || m.agent.Snapshot == nil {
		return view.BreakerTile{}, view.AgentStatus{}, false
	}
	if m.index == nil {
		bs := m.agent.Snapshot.Breakers
		m.index = make(map[string]int, len(bs))
		for i := range bs {
			m.index[bs[i].Name] = i
		}
	}
	var old *wire.Breaker
	if o := m.over[b.Name]; o != nil {
		old = o
	} else if i, ok := m.index[b.Name]; ok {
		old = &m.agent.Snapshot.Breakers[i]
	}
	w := m.w
	live := m.agent.live()
	if live && old != nil { // a pod row counts the breakers of a live agent only
		w.applyBreaker(m, old, -1)
		if old.State.Open() {
			m.row.BreakersOpen--
		}
	}
	if m.over == nil {
		m.over = map[string]*wire.Breaker{}
	}
	if old == nil {
		m.added = append(m.added, b.Name)
		if live {
			m.row.Breakers++
		}
	}
	nb := b
	m.over[b.Name] = &nb
	if live {
		w.applyBreaker(m, &nb, 1)
		if nb.State.Open() {
			m.row.BreakersOpen++
		}
	}
	w.changed = true
	t, _ := w.tileOf(b.Name)
	if t == nil {
		return view.BreakerTile{Namespace: w.key.ns, Workload: w.key.name, Name: b.Name, State: b.State, Sources: []string{}}, m.agent.Status, true
	}
	if t.sinceStale {
		w.findSince(t)
	}
	return t.tile(w.key), m.agent.Status, true
}

// Agent returns what Live holds for agent key, its transitions applied.
func (l *Live) Agent(key string) (Agent, bool) {
	m := l.members[key]
	if m == nil {
		return Agent{}, false
	}
	return m.current(), true
}

// Lag marks the agents whose data is older than StaleAfter says it may be at now, and
// no longer marks those that are fresh again: a lagging agent's breakers count as stale
// in its tiles until its data is fresh. It costs a comparison per agent, and a change of
// mark as much as a Set.
func (l *Live) Lag(now time.Time) {
	t := now.UnixNano()
	for _, m := range l.members {
		lag := m.staleAt != 0 && t > m.staleAt
		if lag != m.agent.Lagging {
			m.w.sub(m)
			m.agent.Lagging, m.row.Stale = lag, lag
			m.w.add(m)
		}
	}
}

// Parts returns every workload's part (pods and agents in key order), sorted by
// namespace and name. A part is built again only if its workload changed since it was
// last built; keys, when not nil, receives the agent keys of each part's rows.
func (l *Live) Parts(keys map[*Part][]string) []*Part {
	out := make([]*Part, 0, len(l.workloads))
	for _, k := range l.WorkloadKeys() {
		p, rows := l.Part(k)
		out = append(out, p)
		if keys != nil {
			keys[p] = rows
		}
	}
	return out
}

// WorkloadKey names a workload.
type WorkloadKey struct{ Namespace, Name string }

// WorkloadKeys returns every workload's key, sorted by namespace and name.
func (l *Live) WorkloadKeys() []WorkloadKey {
	out := make([]WorkloadKey, 0, len(l.workloads))
	for k := range l.workloads {
		out = append(out, WorkloadKey{k.ns, k.name})
	}
	slices.SortFunc(out, func(a, b WorkloadKey) int {
		return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
	})
	return out
}

// Part returns workload k's part, built again only if the workload changed since it was
// last built, and the agent keys of its rows; nil for a workload Live does not hold.
func (l *Live) Part(k WorkloadKey) (*Part, []string) {
	w := l.workloads[wkey{k.Namespace, k.Name}]
	if w == nil {
		return nil, nil
	}
	if w.changed || w.part == nil {
		w.build()
	}
	return w.part, w.keys
}

// Len is the number of agents.
func (l *Live) Len() int { return len(l.members) }

// Agents returns every agent, in no particular order.
func (l *Live) Agents() []Agent {
	out := make([]Agent, 0, len(l.members))
	for _, m := range l.members {
		out = append(out, m.current())
	}
	return out
}

// Statuses returns every agent's state, sorted by key.
func (l *Live) Statuses() []view.AgentStatus {
	out := make([]view.AgentStatus, 0, len(l.members))
	for _, m := range l.members {
		out = append(out, m.agent.Status)
	}
	slices.SortFunc(out, func(a, b view.AgentStatus) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// Detail returns the part of workload namespace/name with per-pod detail: each pod's
// sample in its row and each pod's breaker in its tile, sorted by pod; nil for a
// workload Live does not hold.
func (l *Live) Detail(namespace, name string) *Part {
	w := l.workloads[wkey{namespace, name}]
	if w == nil {
		return nil
	}
	p, _ := w.assemble(true)
	return p
}

// dd is a double-double sum: hi + lo carries about 106 bits, so that adding and then
// subtracting the same values returns to the same sum.
type dd struct{ hi, lo float64 }

func (d *dd) add(x float64) {
	s := d.hi + x
	bp := s - d.hi
	e := (d.hi - (s - bp)) + (x - bp)
	lo := d.lo + e
	d.hi = s + lo
	d.lo = lo - (d.hi - s)
}

func (d *dd) value() float64 { return d.hi + d.lo }

// liveStat is a statistic over a workload's pods, kept up to date.
type liveStat struct {
	n        int
	sum      dd
	max      float64
	maxStale bool // the maximum was taken away: find it again
}

func (s *liveStat) add(v *float64) {
	if v == nil {
		return
	}
	switch {
	case s.n == 0 || *v > s.max:
		s.max, s.maxStale = *v, false
	case *v == s.max:
		s.maxStale = false // at least the maximum taken away: it is the maximum
	}
	s.n++
	s.sum.add(*v)
}

func (s *liveStat) sub(v *float64) {
	if v == nil {
		return
	}
	s.n--
	if s.n == 0 {
		*s = liveStat{}
		return
	}
	s.sum.add(-*v)
	if *v >= s.max {
		s.maxStale = true
	}
}

func (s *liveStat) stat() view.Stat {
	if s.n == 0 {
		return view.Stat{}
	}
	sum := s.sum.value()
	return view.Stat{Max: wire.Ptr(s.max), Mean: wire.Ptr(sum / float64(s.n)), Sum: wire.Ptr(sum)}
}

func memFloat(p *uint64) *float64 {
	if p == nil {
		return nil
	}
	return wire.Ptr(float64(*p))
}

// liveWorkload is a workload's figures, tiles and totals, kept up to date.
type liveWorkload struct {
	key     wkey
	members map[string]*member
	changed bool
	part    *Part
	keys    []string // agent keys of part's rows

	pods, connected int
	cpu, cpuPct     liveStat
	mem, memPct     liveStat
	rps, eps        dd
	rpsN, epsN      int // pods reporting them (a sum back to no pod is exactly 0)
	open            int

	agents            [4]int // connected, unavailable, missing, other
	live              int    // pods counted in the totals
	cpuCores, memory  dd
	cpuN, memN        int
	cpuLimit          dd
	memLimit          uint64
	cpuLimits, memLim int // live pods with a limit
	breakers, bOpen   int
	bHalfOpen         int
	pressure          dd
	hot               int
	tiles             []*liveTile
	tileIndex         map[string]int // position of each tile by name, once there are many
}

// indexFrom is the number of tiles from which a workload keeps an index of them: a few
// names are found faster by comparing them.
const indexFrom = 16

// tileOf returns the tile of a breaker name and its position, or nil.
func (w *liveWorkload) tileOf(name string) (*liveTile, int) {
	if w.tileIndex != nil {
		if i, ok := w.tileIndex[name]; ok {
			return w.tiles[i], i
		}
		return nil, -1
	}
	for i, t := range w.tiles {
		if t.name == name {
			return t, i
		}
	}
	return nil, -1
}

func (w *liveWorkload) addTile(t *liveTile) {
	w.tiles = append(w.tiles, t)
	switch {
	case w.tileIndex != nil:
		w.tileIndex[t.name] = len(w.tiles) - 1
	case len(w.tiles) > indexFrom:
		w.tileIndex = make(map[string]int, len(w.tiles))
		for i, x := range w.tiles {
			w.tileIndex[x.name] = i
		}
	}
}

// removeTile takes away the tile at i, moving the last one into its place.
func (w *liveWorkload) removeTile(i int) {
	last := len(w.tiles) - 1
	if w.tileIndex != nil {
		delete(w.tileIndex, w.tiles[i].name)
		if i != last {
			w.tileIndex[w.tiles[last].name] = i
		}
	}
	w.tiles[i] = w.tiles[last]
	w.tiles[last] = nil
	w.tiles = w.tiles[:last]
}

func agentSlot(state string) int {
	switch state {
	case view.AgentConnected:
		return 0
	case view.AgentUnavailable:
		return 1
	case view.AgentMissing:
		return 2
	}
	return 3
}

func (w *liveWorkload) add(m *member) { w.apply(m, 1) }
func (w *liveWorkload) sub(m *member) { w.apply(m, -1) }

// apply adds (sign 1) or takes away (sign -1) what one member contributes.
func (w *liveWorkload) apply(m *member, sign int) {
	w.changed = true
	a, p := m.agent, &m.row
	w.pods += sign
	w.agents[agentSlot(a.Status.State)] += sign
	if !a.live() {
		return
	}
	w.connected += sign
	stats := []struct {
		s *liveStat
		v *float64
	}{{&w.cpu, p.CPUCores}, {&w.cpuPct, p.CPUPercent}, {&w.mem, memFloat(p.MemoryBytes)}, {&w.memPct, p.MemoryPercent}}
	for _, x := range stats {
		if sign > 0 {
			x.s.add(x.v)
		} else {
			x.s.sub(x.v)
		}
	}
	f := float64(sign)
	sumOpt := func(d *dd, n *int, v *float64) {
		if v == nil {
			return
		}
		*n += sign
		if *n == 0 {
			*d = dd{}
			return
		}
		d.add(f * *v)
	}
	sumOpt(&w.rps, &w.rpsN, p.RequestsPerSec)
	sumOpt(&w.eps, &w.epsN, p.ErrorsPerSec)
	// totals
	w.live += sign
	sumOpt(&w.cpuCores, &w.cpuN, p.CPUCores)
	if p.MemoryBytes != nil {
		w.memN += sign
		w.memory.add(f * float64(*p.MemoryBytes))
		if w.memN == 0 {
			w.memory = dd{}
		}
	}
	s := a.Snapshot.Sample
	if s != nil && s.CPU != nil && s.CPU.LimitCores != nil {
		w.cpuLimits += sign
		w.cpuLimit.add(f * *s.CPU.LimitCores)
		if w.cpuLimits == 0 {
			w.cpuLimit = dd{}
		}
	}
	if s != nil && s.Memory != nil && s.Memory.LimitBytes != nil {
		w.memLim += sign
		w.memLimit += uint64(sign) * *s.Memory.LimitBytes
	}
	pr := podPressure(*p)
	w.pressure.add(f * pr)
	if pr > 0 {
		w.hot += sign
	}
	if w.live == 0 {
		w.pressure = dd{}
	}
	if len(m.over) == 0 {
		bs := a.Snapshot.Breakers
		for i := range bs {
			w.applyBreaker(m, &bs[i], sign)
		}
		return
	}
	m.each(func(b *wire.Breaker) { w.applyBreaker(m, b, sign) })
}

// applyBreaker adds (sign 1) or takes away (sign -1) what one breaker of a live member
// contributes.
func (w *liveWorkload) applyBreaker(m *member, b *wire.Breaker, sign int) {
	w.changed = true
	w.breakers += sign
	switch {
	case b.State.Open():
		w.bOpen += sign
		w.open += sign
	case b.State == wire.StateHalfOpen:
		w.bHalfOpen += sign
	}
	t, i := w.tileOf(b.Name)
	if t == nil {
		t = &liveTile{name: b.Name}
		w.addTile(t)
		i = len(w.tiles) - 1
	}
	t.apply(b, sign, m.agent.Lagging)
	if t.pods == 0 {
		w.removeTile(i)
	}
}

// findSince finds a tile's latest transition again among the workload's live members.
func (w *liveWorkload) findSince(t *liveTile) {
	t.since, t.sinceStale = wire.Time{}, false
	for _, m := range w.members {
		if !m.agent.live() {
			continue
		}
		var b *wire.Breaker
		if o := m.over[t.name]; o != nil {
			b = o
		} else if m.index != nil {
			if i, ok := m.index[t.name]; ok {
				b = &m.agent.Snapshot.Breakers[i]
			}
		} else {
			m.each(func(x *wire.Breaker) {
				if x.Name == t.name {
					b = x
				}
			})
		}
		if b != nil && b.Since.After(t.since.Time) {
			t.since = b.Since
		}
	}
}

// build makes the workload's part from its sums and keeps it until the workload changes.
func (w *liveWorkload) build() {
	w.changed = false
	w.part, w.keys = w.assemble(false)
}

// assemble makes the workload's part from its sums, finding again the maxima and latest
// transitions that were taken away; with perPod, each pod's sample goes in its row and
// each pod's breaker in its tile. It returns the agent keys of the part's rows.
func (w *liveWorkload) assemble(perPod bool) (*Part, []string) {
	keys := make([]string, 0, len(w.members))
	for k := range w.members {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, s := range []*liveStat{&w.cpu, &w.cpuPct, &w.mem, &w.memPct} {
		if s.maxStale {
			s.maxStale = false
			first := true
			for _, k := range keys {
				m := w.members[k]
				if !m.agent.live() {
					continue
				}
				var v *float64
				switch s {
				case &w.cpu:
					v = m.row.CPUCores
				case &w.cpuPct:
					v = m.row.CPUPercent
				case &w.mem:
					v = memFloat(m.row.MemoryBytes)
				default:
					v = m.row.MemoryPercent
				}
				if v != nil && (first || *v > s.max) {
					s.max, first = *v, false
				}
			}
		}
	}
	p := &Part{
		Workload: view.Workload{
			Namespace: w.key.ns, Name: w.key.name, Pods: w.pods, PodsConnected: w.connected,
			CPUCores: w.cpu.stat(), CPUPercent: w.cpuPct.stat(), MemoryBytes: w.mem.stat(), MemoryPercent: w.memPct.stat(),
			RequestsPerSec: w.rps.value(), ErrorsPerSec: w.eps.value(), BreakersOpen: w.open,
		},
		Pressure: Pressure{Sum: w.pressure.value(), Pods: w.live, Hot: w.hot},
		Tiles:    make([]view.BreakerTile, 0, len(w.tiles)),
		Pods:     make([]view.Pod, 0, len(keys)),
		Agents:   make([]view.AgentStatus, 0, len(keys)),
	}
	if w.live == 0 {
		p.Pressure.Sum = 0
	}
	stale := false
	for _, t := range w.tiles {
		if t.sinceStale {
			t.since, stale = wire.Time{}, true
		}
	}
	if stale { // find the latest transitions again, in one pass
		for _, k := range keys {
			m := w.members[k]
			if !m.agent.live() {
				continue
			}
			m.each(func(b *wire.Breaker) {
				if t, _ := w.tileOf(b.Name); t != nil && t.sinceStale && b.Since.After(t.since.Time) {
					t.since = b.Since
				}
			})
		}
	}
	for _, t := range w.tiles {
		t.sinceStale = false
		p.Tiles = append(p.Tiles, t.tile(w.key))
	}
	for _, k := range keys {
		m := w.members[k]
		row := m.row
		if perPod && m.agent.live() {
			row.Sample = m.agent.Snapshot.Sample
			id := m.agent.Status.Key
			if m.agent.Status.Agent != nil {
				id = m.agent.Status.Agent.ID
			}
			m.each(func(b *wire.Breaker) {
				if _, i := w.tileOf(b.Name); i >= 0 {
					p.Tiles[i].PerPod = append(p.Tiles[i].PerPod, view.PodBreaker{Agent: id, Pod: m.agent.Status.Pod, Breaker: *b})
				}
			})
		}
		p.Pods = append(p.Pods, row)
		p.Agents = append(p.Agents, m.agent.Status)
	}
	if perPod {
		for i := range p.Tiles {
			slices.SortStableFunc(p.Tiles[i].PerPod, func(a, b view.PodBreaker) int { return strings.Compare(a.Pod, b.Pod) })
		}
	}
	t := &p.totals
	t.t.Agents = w.pods
	t.t.AgentsConnected, t.t.AgentsUnavailable, t.t.AgentsMissing = w.agents[0], w.agents[1], w.agents[2]
	t.pods = w.live
	if w.live > 0 {
		t.cpuLimitAll, t.memLimitAll = w.cpuLimits == w.live, w.memLim == w.live
		t.cpuLimit, t.memLimit = w.cpuLimit.value(), w.memLimit
		t.t.CPUCores, t.t.MemoryBytes = w.cpuCores.value(), uint64(w.memory.value())
		t.t.RequestsPerSec, t.t.ErrorsPerSec = w.rps.value(), w.eps.value()
	}
	t.t.Breakers, t.t.BreakersOpen, t.t.BreakersHalfOpen = w.breakers, w.bOpen, w.bHalfOpen
	return p, keys
}

// liveTile is one breaker name merged over a workload's pods, kept up to date.
type liveTile struct {
	name            string
	pods            int
	open, halfOpen  int
	ranks           [6]int // pods by state rank
	unknown         wire.BreakerState
	rate            dd
	frSum, frWeight dd
	frN             int
	calls           wire.Calls
	since           wire.Time
	sinceStale      bool
	stale           int
	sources         []sourceCount
}

type sourceCount struct {
	name string
	n    int
}

// apply adds (sign 1) or takes away (sign -1) one pod's breaker; lag counts it as stale.
func (t *liveTile) apply(b *wire.Breaker, sign int, lag bool) {
	f := float64(sign)
	t.pods += sign
	switch {
	case b.State.Open():
		t.open += sign
	case b.State == wire.StateHalfOpen:
		t.halfOpen += sign
	}
	r := stateRank(b.State)
	t.ranks[r] += sign
	if r == 0 && sign > 0 {
		t.unknown = b.State
	}
	rate := 0.0
	if b.RatePerSec != nil {
		rate = *b.RatePerSec
		t.rate.add(f * rate)
	}
	if b.FailureRate != nil {
		w := rate
		if w <= 0 {
			w = 1
		}
		t.frN += sign
		t.frSum.add(f * *b.FailureRate * w)
		t.frWeight.add(f * w)
		if t.frN == 0 {
			t.frSum, t.frWeight = dd{}, dd{}
		}
	}
	u := uint64(sign) // adding 2^64-1 is subtracting one
	t.calls.Succeeded += u * b.Calls.Succeeded
	t.calls.Failed += u * b.Calls.Failed
	t.calls.Rejected += u * b.Calls.Rejected
	t.calls.TimedOut += u * b.Calls.TimedOut
	if sign > 0 && !b.Since.Before(t.since.Time) {
		t.since, t.sinceStale = b.Since, false
	}
	if sign < 0 && !b.Since.Before(t.since.Time) {
		t.sinceStale = true
	}
	if b.Stale || lag {
		t.stale += sign
	}
	if b.Source != "" {
		i := slices.IndexFunc(t.sources, func(s sourceCount) bool { return s.name == b.Source })
		if i < 0 {
			t.sources = append(t.sources, sourceCount{name: b.Source})
			i = len(t.sources) - 1
		}
		if t.sources[i].n += sign; t.sources[i].n == 0 {
			t.sources = slices.Delete(t.sources, i, i+1)
		}
	}
	if t.pods == 0 {
		t.rate = dd{}
	}
}

func (t *liveTile) tile(k wkey) view.BreakerTile {
	tl := view.BreakerTile{Namespace: k.ns, Workload: k.name, Name: t.name, Pods: t.pods, Open: t.open, HalfOpen: t.halfOpen,
		RatePerSec: t.rate.value(), Calls: t.calls, Since: t.since, Stale: t.stale > 0, Sources: make([]string, 0, len(t.sources))}
	for r := len(t.ranks) - 1; r >= 0; r-- {
		if t.ranks[r] > 0 {
			tl.State = rankState(r, t.unknown)
			break
		}
	}
	if t.frN > 0 {
		tl.FailureRate = wire.Ptr(t.frSum.value() / t.frWeight.value())
	}
	for _, s := range t.sources {
		tl.Sources = append(tl.Sources, s.name)
	}
	slices.SortFunc(tl.Sources, strings.Compare)
	return tl
}

func rankState(r int, unknown wire.BreakerState) wire.BreakerState {
	switch r {
	case 5:
		return wire.StateForcedOpen
	case 4:
		return wire.StateOpen
	case 3:
		return wire.StateHalfOpen
	case 2:
		return wire.StateClosed
	case 1:
		return wire.StateDisabled
	}
	return unknown
}
