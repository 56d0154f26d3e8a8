package merge

import (
	"github.com/faultline-dev/faultline/aggregator/view"
	"github.com/faultline-dev/faultline/internal/wire"
)

// totalsAcc sums a scope.
type totalsAcc struct {
	t           view.Totals
	cpuLimit    float64
	cpuLimitAll bool
	memLimit    uint64
	memLimitAll bool
	pods        int
	alerts      int
}

// merge adds another scope's sums (a workload's to its namespace's, say).
func (t *totalsAcc) merge(o *totalsAcc) {
	t.t.Agents += o.t.Agents
	t.t.AgentsConnected += o.t.AgentsConnected
	t.t.AgentsUnavailable += o.t.AgentsUnavailable
	t.t.AgentsMissing += o.t.AgentsMissing
	if o.pods > 0 {
		if t.pods == 0 {
			t.cpuLimitAll, t.memLimitAll = true, true
		}
		t.pods += o.pods
		t.cpuLimitAll = t.cpuLimitAll && o.cpuLimitAll
		t.memLimitAll = t.memLimitAll && o.memLimitAll
		t.cpuLimit += o.cpuLimit
		t.memLimit += o.memLimit
		t.t.CPUCores += o.t.CPUCores
		t.t.MemoryBytes += o.t.MemoryBytes
		t.t.RequestsPerSec += o.t.RequestsPerSec
		t.t.ErrorsPerSec += o.t.ErrorsPerSec
	}
	t.t.Breakers += o.t.Breakers
	t.t.BreakersOpen += o.t.BreakersOpen
	t.t.BreakersHalfOpen += o.t.BreakersHalfOpen
}

func (t *totalsAcc) totals() view.Totals {
	out := t.t
	if t.pods > 0 && t.cpuLimitAll {
		out.CPULimitCores = wire.Ptr(t.cpuLimit)
	}
	if t.pods > 0 && t.memLimitAll {
		out.MemoryLimitBytes = wire.Ptr(t.memLimit)
	}
	out.AlertsFiring = t.alerts
	return out
}
