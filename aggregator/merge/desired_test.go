package merge

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/faultline-dev/faultline/aggregator/discovery"
	"github.com/faultline-dev/faultline/aggregator/view"
	"github.com/faultline-dev/faultline/internal/wire"
)

func TestDesiredReplicas(t *testing.T) {
	agent := func(key, pod string, state string, b ...wire.Breaker) Agent {
		a := Agent{Status: view.AgentStatus{V: 1, Key: key, Pod: pod, Namespace: "shop", Workload: "cart", State: state}}
		if state == view.AgentConnected {
			a.Snapshot = &wire.Snapshot{V: 1, Breakers: b}
		}
		return a
	}
	pay := func(s wire.BreakerState) wire.Breaker { return wire.Breaker{V: 1, Name: "payments", State: s} }
	in := Input{Time: time.Now(), Detail: true, Agents: []Agent{
		agent("a", "cart-a", view.AgentConnected, pay(wire.StateOpen)),
		agent("b", "cart-b", view.AgentUnavailable),
	}, Desired: map[discovery.Workload]int{{Namespace: "shop", Name: "cart"}: 3, {Namespace: "shop", Name: "db"}: 2}}
	c := Cluster(in)
	got := map[string]*int{}
	for _, w := range c.Workloads {
		got[w.Name] = w.DesiredPods
	}
	if diff := cmp.Diff(map[string]*int{"cart": wire.Ptr(3), "db": wire.Ptr(2)}, got); diff != "" {
		t.Errorf("workloads' desired pods (-want +got):\n%s", diff)
	}
	if len(c.Breakers) != 1 || c.Breakers[0].Pods != 1 || c.Breakers[0].DesiredPods == nil || *c.Breakers[0].DesiredPods != 3 {
		t.Errorf("tile %+v: want 1 pod reporting, 3 desired", c.Breakers)
	}
	var absent []string
	for _, a := range c.Agents {
		if a.State == view.AgentAbsent {
			absent = append(absent, a.Key+": "+a.Reason)
		}
	}
	want := []string{
		"absent:shop/cart/1: 2 of 3 desired pods of shop/cart are Ready",
		"absent:shop/db/1: 0 of 2 desired pods of shop/db are Ready",
		"absent:shop/db/2: 0 of 2 desired pods of shop/db are Ready",
	}
	if diff := cmp.Diff(want, absent); diff != "" {
		t.Errorf("absent rows (-want +got):\n%s", diff)
	}
	if c.Totals.Agents != 2 || c.Totals.AgentsMissing != 0 {
		t.Errorf("totals %+v: absent pods are not agents", c.Totals)
	}
	rows := AbsentAgents(in.Desired, []view.AgentStatus{in.Agents[0].Status, in.Agents[1].Status})
	if len(rows) != 3 || rows[0].Key != "absent:shop/cart/1" {
		t.Errorf("AbsentAgents = %+v", rows)
	}
	if c := Cluster(Input{Time: time.Now(), Detail: true, Agents: in.Agents}); c.Breakers[0].DesiredPods != nil || len(c.Agents) != 2 {
		t.Errorf("without desired replicas nothing changes: %+v", c)
	}
}
