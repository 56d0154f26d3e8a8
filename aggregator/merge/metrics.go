package merge

import (
	"sort"

	"github.com/faultline-dev/faultline/aggregator/view"
	"github.com/faultline-dev/faultline/internal/wire"
)

// Metrics is the compact, every-interval form of the view: no pods, no per-pod breaker
// detail, and at most maxWorkloads workloads and maxTiles breaker tiles (worst first), so
// that its size does not grow with the fleet. The totals always cover everything, and
// WorkloadsTotal and BreakersTotal say how many were left out. Zero limits mean no limit.
func Metrics(c view.Cluster, maxWorkloads, maxTiles int) view.Metrics {
	m := view.Metrics{
		V:              wire.Version,
		Time:           c.Time,
		Health:         c.Health,
		Totals:         c.Totals,
		Namespaces:     c.Namespaces,
		Workloads:      c.Workloads,
		WorkloadsTotal: len(c.Workloads),
		BreakersTotal:  len(c.Breakers),
	}
	if maxWorkloads > 0 && len(m.Workloads) > maxWorkloads {
		m.Workloads = worstWorkloads(m.Workloads, maxWorkloads)
	}
	tiles := c.Breakers
	if maxTiles > 0 && len(tiles) > maxTiles {
		tiles = tiles[:maxTiles] // c.Breakers is sorted worst first
	}
	m.Breakers = make([]view.BreakerTile, len(tiles))
	for i, t := range tiles {
		t.PerPod = nil
		m.Breakers[i] = t
	}
	return m
}

// worstWorkloads keeps the n workloads most worth seeing: open breakers, then
// unavailable pods, then error rate; ties keep the sorted order.
func worstWorkloads(ws []view.Workload, n int) []view.Workload {
	idx := make([]int, len(ws))
	for i := range idx {
		idx[i] = i
	}
	score := func(w view.Workload) (int, int, float64) {
		return w.BreakersOpen, w.Pods - w.PodsConnected, w.ErrorsPerSec
	}
	sortStable(idx, func(a, b int) bool {
		oa, ua, ea := score(ws[a])
		ob, ub, eb := score(ws[b])
		if oa != ob {
			return oa > ob
		}
		if ua != ub {
			return ua > ub
		}
		return ea > eb
	})
	idx = idx[:n]
	sortStable(idx, func(a, b int) bool { return a < b })
	out := make([]view.Workload, n)
	for i, j := range idx {
		out[i] = ws[j]
	}
	return out
}

// Filter narrows a view to a namespace and/or workload (empty matches all). Totals are
// recomputed from what is kept only where the view holds the parts (namespaces); the
// cluster totals and health stay cluster-wide.
func Filter(c view.Cluster, namespace, workload string) view.Cluster {
	if namespace == "" && workload == "" {
		return c
	}
	match := func(ns, wl string) bool {
		return (namespace == "" || ns == namespace) && (workload == "" || wl == workload)
	}
	out := c
	out.Namespaces = nil
	for _, n := range c.Namespaces {
		if namespace == "" || n.Name == namespace {
			out.Namespaces = append(out.Namespaces, n)
		}
	}
	out.Workloads = nil
	for _, w := range c.Workloads {
		if match(w.Namespace, w.Name) {
			out.Workloads = append(out.Workloads, w)
		}
	}
	out.Breakers = []view.BreakerTile{}
	for _, t := range c.Breakers {
		if match(t.Namespace, t.Workload) {
			out.Breakers = append(out.Breakers, t)
		}
	}
	out.Pods = nil
	for _, p := range c.Pods {
		if match(p.Namespace, p.Workload) {
			out.Pods = append(out.Pods, p)
		}
	}
	out.Agents = nil
	for _, a := range c.Agents {
		if match(a.Namespace, WorkloadOf(a)) {
			out.Agents = append(out.Agents, a)
		}
	}
	out.Alerts = []wire.Alert{}
	for _, a := range c.Alerts {
		if (namespace == "" || a.Target.Namespace == "" || a.Target.Namespace == namespace) &&
			(workload == "" || a.Target.Workload == "" || a.Target.Workload == workload) {
			out.Alerts = append(out.Alerts, a)
		}
	}
	return out
}

func sortStable(idx []int, less func(a, b int) bool) {
	sort.SliceStable(idx, func(i, j int) bool { return less(idx[i], idx[j]) })
}
