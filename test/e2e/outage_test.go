//go:build e2e

package e2e

import (
	"fmt"
	"net/url"
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
// control API, makes every checkout pod's payments breaker open (their calls really
// fail), each transition reaches a stream client within two seconds of the moment the
// checkout saw it, and the workload's tile counts every pod open ("k of n").
func TestOutageOpensBreakers(t *testing.T) {
	c := connect(t)
	checkouts := names(c.readyPods(t, c.selector("demo")+",faultline.dev/demo-role=checkout", c.timeout))
	s := c.openStream(t, url.Values{"namespace": {c.namespace}, "events": {wire.EventSnapshot + "," + wire.EventCircuitBreaker}}, "")
	s.next(t, 30*time.Second, wire.EventSnapshot)

	c.setPattern(t, "payments", "outage")
	opened := map[string]time.Duration{}
	deadline := time.Now().Add(time.Minute)
	for len(opened) < len(checkouts) && time.Now().Before(deadline) {
		ev := s.next(t, time.Until(deadline), wire.EventCircuitBreaker)
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
		opened[be.Pod] = delay
		t.Logf("payments breaker of %s opened; on the stream %v after the checkout saw it (event %s)", be.Pod, delay.Round(time.Millisecond), ev.ID)
		if delay > maxTransitionDelay || delay < 0 {
			t.Errorf("payments breaker of %s: transition on the stream %v after it happened, want within %v", be.Pod, delay, maxTransitionDelay)
		}
	}
	if len(opened) < len(checkouts) {
		t.Fatalf("payments breaker opened on %d of %d checkout pods within a minute of the outage: %v", len(opened), len(checkouts), opened)
	}

	workload := c.release + "-demo-checkout"
	testbin.Eventually(t, 10*time.Second, func() error {
		tile, err := c.tile(workload, "payments")
		if err != nil {
			return err
		}
		if tile.Pods != len(checkouts) || tile.Open != len(checkouts) {
			return fmt.Errorf("tile %s/payments: %d of %d pods open, want %d of %d", workload, tile.Open, tile.Pods, len(checkouts), len(checkouts))
		}
		return nil
	})
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
