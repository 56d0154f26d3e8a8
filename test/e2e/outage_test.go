//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/faultline-dev/faultline/aggregator/api"
	"github.com/faultline-dev/faultline/aggregator/view"
	"github.com/faultline-dev/faultline/internal/testbin"
	"github.com/faultline-dev/faultline/internal/wire"
)

// maxTransitionDelay is how long a breaker transition may take from the application that
// saw it to a client of the aggregator's stream.
const maxTransitionDelay = 2 * time.Second

// TestOutageOpensBreakers: an outage of the payments service, set through the demo's
// control API, makes the checkout's payments breakers open (their calls really fail);
// each opening reaches a stream client within two seconds of the moment the checkout saw
// it, and the workload's tile and per-pod states are what every checkout pod itself
// reports. (Which checkout pods trip depends on the traffic they get: once the frontends'
// checkout breakers open in turn, the checkouts get only trial calls.)
func TestOutageOpensBreakers(t *testing.T) {
	c := connect(t)
	checkouts := c.readyPods(t, c.selector("demo")+",faultline.dev/demo-role=checkout", c.timeout)
	s := c.openStream(t, url.Values{"namespace": {c.namespace}, "events": {wire.EventSnapshot + "," + wire.EventCircuitBreaker}}, "")
	s.next(t, 30*time.Second, wire.EventSnapshot)

	c.setPattern(t, "payments", "outage")
	opened := map[string]time.Duration{}
	deadline := time.Now().Add(time.Minute)
	for len(opened) < len(checkouts) {
		ev, ok := s.nextBefore(deadline, wire.EventCircuitBreaker)
		if !ok {
			break
		}
		received := time.Now()
		var be view.BreakerEvent
		if err := wire.Decode(ev, &be); err != nil {
			t.Fatal(err)
		}
		tr := be.Transition
		if tr.Breaker.Name != "payments" || tr.To != wire.StateOpen || tr.From == "" {
			continue
		}
		delay := received.Sub(tr.Breaker.Since.Time)
		t.Logf("payments breaker of %s opened; on the stream %v after the checkout saw it (event %s)", be.Pod, delay.Round(time.Millisecond), ev.ID)
		if delay > maxTransitionDelay || delay < 0 {
			t.Errorf("payments breaker of %s: transition on the stream %v after it happened, want within %v", be.Pod, delay, maxTransitionDelay)
		}
		opened[be.Pod] = delay
		// The other pods trip within moments, or get no more calls to trip on.
		if soon := time.Now().Add(10 * time.Second); soon.Before(deadline) {
			deadline = soon
		}
	}
	if len(opened) == 0 {
		t.Fatal("no checkout's payments breaker opened within a minute of the outage")
	}

	// Each checkout pod's breaker as the aggregator holds it and as the pod has it.
	workload := c.release + "-demo-checkout"
	apps := map[string]string{}
	for _, p := range checkouts {
		apps[p.Name] = c.forward(t, p.Name, 9810)
	}
	testbin.Eventually(t, 10*time.Second, func() error {
		tile, err := c.tile(workload, "payments")
		if err != nil {
			return err
		}
		held := map[string]wire.BreakerState{}
		for _, pb := range tile.PerPod {
			held[pb.Pod] = pb.Breaker.State
		}
		open := 0
		for pod, base := range apps {
			own, err := c.appBreakers(base)
			if err != nil {
				return err
			}
			if own["payments"] == wire.StateOpen {
				open++
			}
			if held[pod] != own["payments"] {
				return fmt.Errorf("payments breaker of %s: %s in the pod, %q in the aggregator", pod, own["payments"], held[pod])
			}
		}
		if tile.Pods != len(checkouts) || tile.Open != open {
			return fmt.Errorf("tile %s/payments: %d of %d pods open, the pods say %d of %d", workload, tile.Open, tile.Pods, open, len(checkouts))
		}
		return nil
	})
}

// appBreakers reads the demo's own breakers from its control API (base is a port-forward
// to the pod), in the wire's state names.
func (c *cluster) appBreakers(base string) (map[string]wire.BreakerState, error) {
	var own []struct {
		Name  string `json:"name"`
		State string `json:"state"`
	}
	r, err := fetch(http.DefaultClient, base+"/control/breakers")
	if err == nil {
		err = json.Unmarshal(r.Body, &own)
	}
	if err != nil {
		return nil, fmt.Errorf("the demo's breakers: %w", err)
	}
	out := map[string]wire.BreakerState{}
	for _, b := range own {
		out[b.Name] = wire.BreakerState(strings.ReplaceAll(b.State, "-", "_")) // gobreaker's half-open
	}
	return out, nil
}

// tile is the breaker tile of a workload, from the circuit-breakers endpoint.
func (c *cluster) tile(workload, breaker string) (view.BreakerTile, error) {
	var resp api.BreakersResponse
	q := url.Values{"namespace": {c.namespace}, "workload": {workload}}
	if err := c.getJSON("/api/v1/fault-tolerance/circuit-breakers?"+q.Encode(), &resp); err != nil {
		return view.BreakerTile{}, err
	}
	for _, tile := range resp.Breakers {
		if tile.Workload == workload && tile.Name == breaker {
			return tile, nil
		}
	}
	return view.BreakerTile{}, fmt.Errorf("no breaker tile %s/%s among %d", workload, breaker, len(resp.Breakers))
}
