package aggregator_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/faultline-dev/faultline/aggregator/api"
	"github.com/faultline-dev/faultline/aggregator/view"
	"github.com/faultline-dev/faultline/internal/stream"
	"github.com/faultline-dev/faultline/internal/testbin"
	"github.com/faultline-dev/faultline/internal/wire"
	"github.com/faultline-dev/faultline/internal/wire/wiretest"
)

// Every field of the wire types survives the trip from an agent through the real
// aggregator to its API and its stream, unchanged. The messages are built by reflection
// with every field set (wiretest.Filled), so a field added to internal/wire later is
// covered without editing this test; only through public endpoints, so the test holds
// whatever the aggregator's insides become.
//
// Where each field of a snapshot comes out: the identity in GET /api/v1/agents, the
// sample in the pod rows of GET /api/v1/fault-tolerance/status, each breaker in the
// per-pod detail of its tile there, and a transition, breaker and all, in the stream's
// circuit-breaker event. The envelope's "v" and "seq" (the agent's stream position) are
// what the aggregator reads the stream by.
func TestEveryFieldArrives(t *testing.T) {
	comesOut := map[string]string{"V": "envelope", "Seq": "envelope", "Agent": "agents", "Sample": "status pods", "Breakers": "status per-pod"}
	for i := 0; i < reflect.TypeOf(wire.Snapshot{}).NumField(); i++ {
		if f := reflect.TypeOf(wire.Snapshot{}).Field(i); comesOut[f.Name] == "" {
			t.Errorf("wire.Snapshot.%s: this test does not know where the aggregator shows it; add it there and here", f.Name)
		}
	}

	snap := wiretest.Filled[wire.Snapshot](1)
	snap.Breakers = append(snap.Breakers, wiretest.Filled[wire.Breaker](2))
	tr := wiretest.Filled[wire.Transition](3)
	tr.To, tr.Agent = tr.Breaker.State, snap.Agent.ID
	if z := wiretest.Zero(snap); len(z) > 0 {
		t.Fatalf("the snapshot sent has zero fields %v", z)
	}

	hub := stream.New(stream.Options{})
	defer hub.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/stream", func(w http.ResponseWriter, r *http.Request) {
		hub.Serve(w, r, nil, func() ([]byte, error) { return json.Marshal(snap) })
	})
	ln, err := net.Listen("tcp", testbin.FreeAddr(t, "127.0.0.11"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	agentURL := "http://" + ln.Addr().String()

	agg := startAggregator(t, "--agents="+agentURL)
	c := connect(t, "http://"+agg.api+"/api/v1/performance/stream?events=circuit-breaker", "")
	waitConnected(t, agg, 1)

	var agents api.AgentsResponse
	if err := testbin.GetJSON("http://"+agg.api+"/api/v1/agents", &agents); err != nil {
		t.Fatal(err)
	}
	if len(agents.Agents) != 1 || agents.Agents[0].Agent == nil {
		t.Fatalf("agents = %+v", agents.Agents)
	}
	if diff := cmp.Diff(snap.Agent, *agents.Agents[0].Agent); diff != "" {
		t.Errorf("the agent's identity in GET /api/v1/agents (-sent +shown):\n%s", diff)
	}

	var status view.Cluster
	testbin.Eventually(t, 10*time.Second, func() error {
		if err := testbin.GetJSON("http://"+agg.api+"/api/v1/fault-tolerance/status", &status); err != nil {
			return err
		}
		if len(status.Pods) != 1 || status.Pods[0].Sample == nil || len(status.Breakers) != len(snap.Breakers) {
			return fmt.Errorf("status has %d pods and %d tiles", len(status.Pods), len(status.Breakers))
		}
		return nil
	})
	if diff := cmp.Diff(*snap.Sample, *status.Pods[0].Sample); diff != "" {
		t.Errorf("the sample in GET /api/v1/fault-tolerance/status (-sent +shown):\n%s", diff)
	}
	for _, want := range snap.Breakers {
		var got *wire.Breaker
		for _, tile := range status.Breakers {
			for _, pp := range tile.PerPod {
				if pp.Breaker.Name == want.Name {
					got = &pp.Breaker
				}
			}
		}
		if got == nil {
			t.Errorf("breaker %q is not in the per-pod detail", want.Name)
			continue
		}
		if diff := cmp.Diff(want, *got); diff != "" {
			t.Errorf("breaker %q in GET /api/v1/fault-tolerance/status (-sent +shown):\n%s", want.Name, diff)
		}
	}

	if _, err := hub.Publish(wire.EventCircuitBreaker, "", "", tr); err != nil {
		t.Fatal(err)
	}
	ev := c.next(t, 5*time.Second, "the transition", func(ev wire.Event) bool { return ev.Name == wire.EventCircuitBreaker })
	var be view.BreakerEvent
	if err := json.Unmarshal(ev.Data, &be); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(tr, be.Transition); diff != "" {
		t.Errorf("the transition in the stream (-sent +streamed):\n%s", diff)
	}
	if z := wiretest.Zero(be.Transition); len(z) > 0 {
		t.Errorf("the streamed transition lost %v", z)
	}
}
