package broadcast

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/faultline-dev/faultline/aggregator/alert"
	"github.com/faultline-dev/faultline/aggregator/fleet"
	"github.com/faultline-dev/faultline/aggregator/history"
	"github.com/faultline-dev/faultline/aggregator/optimize"
	"github.com/faultline-dev/faultline/aggregator/rewind"
	"github.com/faultline-dev/faultline/aggregator/view"
	"github.com/faultline-dev/faultline/internal/stream"
	"github.com/faultline-dev/faultline/internal/wire"
)

// newBroadcaster is a broadcaster of a fleet of its own, publishing to hub.
func newBroadcaster(hub *stream.Hub, rules []alert.Rule) (*Broadcaster, *fleet.Fleet) {
	hist := history.New(history.Options{})
	record := rewind.New(hist.Retention(), time.Now())
	fl := fleet.New(fleet.Options{Hub: hub, Rewind: record})
	opt := optimize.New(optimize.Options{Hub: hub, SampleInterval: fl.SampleInterval, HistoryRetention: hist.Retention()})
	return New(Options{Mode: "static", Fleet: fl, Hub: hub, History: hist, Alerts: alert.NewEngine(rules), Optimizer: opt, Rewind: record}), fl
}

// Clients connecting at once share snapshot merges, and each still gets a snapshot that
// includes every event published before it asked.
func TestSnapshotsSharedByClientsConnectingAtOnce(t *testing.T) {
	hub := stream.New(stream.Options{})
	st, fl := newBroadcaster(hub, nil)
	const n = 100
	for i := range n {
		key := fmt.Sprintf("a%03d", i)
		fl.Status(view.AgentStatus{V: 1, Key: key, State: view.AgentConnected, Pod: key, Workload: "w" + key})
		fl.Snapshot(key, &wire.Snapshot{V: 1, Breakers: []wire.Breaker{{V: 1, Name: "db", State: wire.StateClosed}}}, true)
	}
	errs := make(chan error, n)
	for i := range n {
		go func() {
			key := fmt.Sprintf("a%03d", i)
			fl.Transition(key, wire.Transition{V: 1, Agent: key, To: wire.StateOpen, Breaker: wire.Breaker{V: 1, Name: "db", State: wire.StateOpen}})
			data, err := st.SnapshotData("", "")
			if err != nil {
				errs <- err
				return
			}
			var c view.Cluster
			if err := json.Unmarshal(data, &c); err != nil {
				errs <- err
				return
			}
			for _, tl := range c.Breakers {
				if tl.Workload == "w"+key {
					if tl.State != wire.StateOpen {
						errs <- fmt.Errorf("%s: snapshot taken after its transition shows %s", key, tl.State)
						return
					}
					errs <- nil
					return
				}
			}
			errs <- fmt.Errorf("%s: no tile", key)
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if m := st.snapMerges.Load(); m >= n {
		t.Errorf("%d merges for %d clients connecting at once", m, n)
	} else {
		t.Logf("%d merges for %d clients", m, n)
	}
}
