package merge

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/faultline-dev/faultline/aggregator/discovery"
	"github.com/faultline-dev/faultline/aggregator/view"
	"github.com/faultline-dev/faultline/internal/wire"
)

// applyDesired puts the desired pods of workloads into a merged view: on each workload
// and on its tiles (so that "k of n" counts n as the larger of the desired pods and the
// pods reporting), as workloads of their own for those with no pod at all, and, with
// detail, as agent rows in state absent for each pod short of the desired count. Absent
// pods are not counted in the totals or the health score: a rollout makes some for a
// moment; the replicas-missing alert says when the shortfall lasts.
func applyDesired(c *view.Cluster, desired map[discovery.Workload]int, detail bool) {
	seen := make(map[discovery.Workload]bool, len(c.Workloads))
	for i := range c.Workloads {
		w := &c.Workloads[i]
		k := discovery.Workload{Namespace: w.Namespace, Name: w.Name}
		if n, ok := desired[k]; ok {
			seen[k] = true
			w.DesiredPods = wire.Ptr(n)
		}
	}
	added := false
	for k, n := range desired {
		if !seen[k] && n > 0 {
			c.Workloads = append(c.Workloads, view.Workload{Namespace: k.Namespace, Name: k.Name, DesiredPods: wire.Ptr(n)})
			added = true
		}
	}
	if added {
		slices.SortFunc(c.Workloads, func(a, b view.Workload) int {
			return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
		})
	}
	for i := range c.Breakers {
		t := &c.Breakers[i]
		if n, ok := desired[discovery.Workload{Namespace: t.Namespace, Name: t.Workload}]; ok {
			t.DesiredPods = wire.Ptr(n)
		}
	}
	if detail {
		c.Agents = append(c.Agents, absentRows(desired, c.Workloads)...)
	}
}

// AbsentAgents returns a row in state absent for each pod that a workload's desired
// replicas call for beyond the agents listed (rows of every state count as there).
func AbsentAgents(desired map[discovery.Workload]int, agents []view.AgentStatus) []view.AgentStatus {
	pods := map[discovery.Workload]int{}
	for _, a := range agents {
		pods[discovery.Workload{Namespace: a.Namespace, Name: WorkloadOf(a)}]++
	}
	ws := make([]view.Workload, 0, len(desired))
	for k := range desired {
		ws = append(ws, view.Workload{Namespace: k.Namespace, Name: k.Name, Pods: pods[k]})
	}
	slices.SortFunc(ws, func(a, b view.Workload) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return absentRows(desired, ws)
}

// absentRows makes the absent rows of the given workloads, whose Pods count the pods
// that are there.
func absentRows(desired map[discovery.Workload]int, workloads []view.Workload) []view.AgentStatus {
	var out []view.AgentStatus
	for _, w := range workloads {
		n, ok := desired[discovery.Workload{Namespace: w.Namespace, Name: w.Name}]
		if !ok || w.Pods >= n {
			continue
		}
		reason := fmt.Sprintf("%d of %d desired pods of %s are Ready", w.Pods, n, scopedName(w.Namespace, w.Name))
		for i := w.Pods; i < n; i++ {
			out = append(out, view.AgentStatus{V: wire.Version, Key: fmt.Sprintf("absent:%s/%s/%d", w.Namespace, w.Name, i-w.Pods+1),
				State: view.AgentAbsent, Reason: reason, Namespace: w.Namespace, Workload: w.Name})
		}
	}
	return out
}

func scopedName(ns, name string) string {
	if ns == "" {
		return name
	}
	return ns + "/" + name
}
