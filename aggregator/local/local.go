// Package local is the aggregator's embedded agent (--local-agent): it samples this
// machine in host mode with the agent's own sampler and reports through the pool as a
// connected agent, so that the aggregator alone shows real data.
package local

import (
	"context"
	"os"
	"time"

	"github.com/faultline-dev/faultline/agent/sample"
	"github.com/faultline-dev/faultline/internal/version"
	"github.com/faultline-dev/faultline/internal/wire"
)

// Key is the local agent's key in the pool and its URL as shown to users.
const (
	Key = "local"
	URL = "local://this-machine"
)

// Feed is where the local agent reports (pool.Local).
type Feed interface {
	Snapshot(snap *wire.Snapshot)
}

// Run samples every interval until ctx is done.
func Run(ctx context.Context, feed Feed, interval time.Duration) {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	id := wire.Agent{V: wire.Version, ID: host, Pod: host, Workload: host, Version: version.Version, Mode: sample.ModeHost, Started: wire.Now()}
	s := sample.New(sample.Options{Mode: sample.ModeHost})
	t := time.NewTicker(interval)
	defer t.Stop()
	var seq uint64
	for {
		smp := s.Sample(ctx)
		seq++
		feed.Snapshot(&wire.Snapshot{V: wire.Version, Agent: id, Seq: seq, Sample: &smp, Breakers: []wire.Breaker{}})
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
