//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/faultline-dev/faultline/aggregator/view"
	"github.com/faultline-dev/faultline/internal/testbin"
	"github.com/faultline-dev/faultline/internal/wire"
)

// TestAgentContainerKilled: the agent container of a checkout pod is killed (SIGKILL on
// the node) while the payments service goes down and orders keep reaching the pod. The
// kubelet restarts the sidecar, the aggregator's stream client sees the agent go and come
// back without losing its own connection, the payments breaker's opening reaches it
// (whether it opened before the new agent was connected or after), and once the agent is
// back the aggregator holds every breaker of the pod in the state the application itself
// reports: nothing the application reported is lost, as far as the new agent can know.
func TestAgentContainerKilled(t *testing.T) {
	c := connect(t)
	pods := c.readyPods(t, c.selector("demo")+",faultline.dev/demo-role=checkout", c.timeout)
	c.connectedAgents(t, c.timeout, names(pods))
	p := pods[0]
	agents, err := c.agents(c.namespace)
	if err != nil {
		t.Fatal(err)
	}
	started := agents[p.Name].Agent.Started
	restarts := restartCount(p, agentContainer)

	s := c.openStream(t, url.Values{"namespace": {c.namespace},
		"events": {wire.EventSnapshot + "," + wire.EventCircuitBreaker + "," + wire.EventAgent}}, "")
	s.next(t, 30*time.Second, wire.EventSnapshot)

	app := c.forward(t, p.Name, 9810)
	containerd(t, "tasks", "kill", "--signal", "SIGKILL", containerID(p, agentContainer))
	t.Logf("killed the agent container of %s", p.Name)
	c.setPattern(t, "payments", "outage")
	// Orders placed with this pod directly: while its agent restarts the pod is not Ready,
	// the frontends send their orders to the other checkouts, and their own checkout
	// breakers open on those failures and then let only trial calls through, too few for
	// this pod's payments breaker to trip on.
	stopOrders := order(app+"/checkout", 50*time.Millisecond)
	defer stopOrders()

	// On the stream: the agent goes, comes back, and the payments breaker opens.
	var wentAway, cameBack, opened bool
	deadline := time.Now().Add(c.timeout)
	for !(wentAway && cameBack && opened) && time.Now().Before(deadline) {
		ev := s.next(t, time.Until(deadline), wire.EventAgent, wire.EventCircuitBreaker)
		switch ev.Name {
		case wire.EventAgent:
			var a view.AgentStatus
			if err := wire.Decode(ev, &a); err != nil {
				t.Fatal(err)
			}
			if a.Pod != p.Name {
				continue
			}
			t.Logf("agent of %s: %s", p.Name, describe(a))
			if a.State != view.AgentConnected {
				wentAway = true
			} else if wentAway {
				cameBack = true
			}
		case wire.EventCircuitBreaker:
			var be view.BreakerEvent
			if err := wire.Decode(ev, &be); err != nil {
				t.Fatal(err)
			}
			if be.Pod == p.Name && be.Transition.Breaker.Name == "payments" && be.Transition.To == wire.StateOpen {
				opened = true
			}
		}
	}
	stopOrders()
	if !(wentAway && cameBack && opened) {
		t.Fatalf("within %v the stream showed: agent gone %v, back %v, payments breaker opened %v", c.timeout, wentAway, cameBack, opened)
	}

	after := c.pod(t, p.Name)
	if got := restartCount(after, agentContainer); got <= restarts {
		t.Errorf("the kubelet restarted the agent container %d times, want more than %d", got, restarts)
	}
	agents = c.connectedAgents(t, c.timeout, []string{p.Name})
	if !agents[p.Name].Agent.Started.After(started.Time) {
		t.Errorf("agent of %s started %v, the killed one %v: not a new agent", p.Name, agents[p.Name].Agent.Started, started)
	}

	// Every breaker of the pod as the application has it.
	testbin.Eventually(t, 20*time.Second, func() error {
		own, err := c.appBreakers(app)
		if err != nil {
			return err
		}
		for name, state := range own {
			tile, err := c.tile(p.Labels["app.kubernetes.io/instance"]+"-demo-checkout", name)
			if err != nil {
				return err
			}
			held := wire.BreakerState("not held")
			for _, pb := range tile.PerPod {
				if pb.Pod == p.Name {
					held = pb.Breaker.State
				}
			}
			if held != state {
				return fmt.Errorf("breaker %s of %s: the application has %s, the aggregator %s", name, p.Name, state, held)
			}
		}
		return nil
	})
}

// order posts to url every interval until the returned function is first called, as a
// client placing orders with one checkout pod would; the answers do not matter.
func order(url string, every time.Duration) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			resp, err := http.Post(url, "application/json", nil)
			if err != nil {
				continue
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	return sync.OnceFunc(func() { close(done); <-finished })
}

func restartCount(p corev1.Pod, name string) int32 {
	for _, s := range append(p.Status.InitContainerStatuses, p.Status.ContainerStatuses...) {
		if s.Name == name {
			return s.RestartCount
		}
	}
	return 0
}

// TestAggregatorPodDeleted: when the aggregator's pod is deleted, the Deployment's new
// pod serves the same cluster view (every agent connected again), and a stream client
// that reconnects with the last event id it had gets a fresh snapshot of the new epoch,
// not an error.
func TestAggregatorPodDeleted(t *testing.T) {
	c := connect(t)
	ctx := context.Background()
	demo := names(c.demoPods(t))
	c.connectedAgents(t, c.timeout, demo)
	before, err := c.status()
	if err != nil {
		t.Fatal(err)
	}
	s := c.openStream(t, url.Values{"namespace": {c.namespace}}, "")
	first := s.next(t, 30*time.Second, wire.EventSnapshot)
	m := eventID.FindStringSubmatch(first.ID)
	if m == nil {
		t.Fatalf("snapshot id %q is not <epoch>-<seq>", first.ID)
	}
	oldEpoch := m[1]

	old := c.readyPods(t, c.selector("aggregator"), c.timeout)
	for _, p := range old {
		if err := c.cs.CoreV1().Pods(c.namespace).Delete(ctx, p.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	testbin.Eventually(t, c.timeout, func() error {
		pods := c.readyPods(t, c.selector("aggregator"), c.timeout)
		for _, p := range pods {
			if slices.Contains(names(old), p.Name) {
				return fmt.Errorf("the old aggregator pod %s is still there", p.Name)
			}
		}
		return nil
	})
	// The old stream ends with its pod; the last id it carried is what a browser resumes with.
	lastID := first.ID
	for ev := range s.events {
		lastID = ev.ID
	}
	c = connect(t)
	t.Logf("new aggregator ready %v after the old pod was deleted", time.Since(start).Round(time.Millisecond))

	resumed := c.openStream(t, url.Values{"namespace": {c.namespace}}, lastID)
	ev := resumed.next(t, 30*time.Second, wire.EventSnapshot, wire.EventMetrics, wire.EventCircuitBreaker, wire.EventAgent)
	if ev.Name != wire.EventSnapshot {
		t.Fatalf("resuming after %s on the new aggregator: first event %q, want a fresh snapshot", lastID, ev.Name)
	}
	if m := eventID.FindStringSubmatch(ev.ID); m == nil || m[1] == oldEpoch {
		t.Errorf("resumed snapshot id %q: want <epoch>-<seq> of a new epoch (the old one was %s)", ev.ID, oldEpoch)
	}

	c.connectedAgents(t, c.timeout, demo)
	testbin.Eventually(t, c.timeout, func() error {
		after, err := c.status()
		if err != nil {
			return err
		}
		want, got := workloadPods(before), workloadPods(after)
		if !maps.Equal(want, got) {
			return fmt.Errorf("workloads (connected pods) after the restart %v, before %v", got, want)
		}
		return nil
	})
}

// workloadPods maps each workload of a view to its connected pods.
func workloadPods(c view.Cluster) map[string]int {
	out := map[string]int{}
	for _, w := range c.Workloads {
		out[w.Name] = w.PodsConnected
	}
	return out
}
