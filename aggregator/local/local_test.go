package local

import (
	"context"
	"testing"
	"time"

	"github.com/faultline-dev/faultline/internal/wire"
)

type feed chan *wire.Snapshot

func (f feed) Snapshot(s *wire.Snapshot) { f <- s }

// The embedded agent reports real samples of this machine, in host mode, every interval.
func TestLocalAgentSamplesThisMachine(t *testing.T) {
	f := make(feed, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { Run(ctx, f, 100*time.Millisecond); close(done) }()
	defer func() { cancel(); <-done }()
	var got []*wire.Snapshot
	deadline := time.After(10 * time.Second)
	for len(got) < 3 {
		select {
		case s := <-f:
			got = append(got, s)
		case <-deadline:
			t.Fatalf("%d snapshots in 10 s, want 3", len(got))
		}
	}
	last := got[2]
	if last.Agent.Mode != "host" || last.Agent.ID == "" || last.Seq != 3 {
		t.Errorf("identity %+v seq %d; want host mode, an id, seq 3", last.Agent, last.Seq)
	}
	if last.Sample == nil || last.Sample.Memory == nil || last.Sample.Memory.WorkingSetBytes == 0 || len(last.Sample.Collectors) == 0 {
		t.Errorf("sample = %+v; want this machine's memory and the collectors' status", last.Sample)
	}
	if last.Sample.CPU == nil {
		t.Errorf("no CPU figure by the third sample")
	}
}
