package pool

import (
	"fmt"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/faultline-dev/faultline/internal/wire"
)

// decoder is what decoding takes, owned by one reader at a time (an event loop, or a
// stream read by its own goroutine): the strings seen before, and memory reused from one
// snapshot to the next, so that decoding ten thousand snapshots a second leaves little
// garbage. The sink copies what it keeps.
type decoder struct {
	in   interner
	ar   arena
	snap wire.Snapshot
}

func newDecoder() *decoder { return &decoder{in: interner{}} }

// snapshot decodes a snapshot with the fast decoder, or with the general one when the
// fast one declines. The result is valid until the decoder's next use.
func (d *decoder) snapshot(data []byte, breakers int) (*wire.Snapshot, error) {
	d.snap = wire.Snapshot{}
	if fastSnapshot(data, &d.snap, d.in, breakers, &d.ar) == nil && d.snap.V == wire.Version {
		return &d.snap, nil
	}
	d.snap = wire.Snapshot{}
	return &d.snap, decode(data, &d.snap)
}

// cloneBreaker copies b with figures of its own: a transition outlives the decoder's
// memory.
func cloneBreaker(b wire.Breaker) wire.Breaker {
	cf := func(p *float64) *float64 {
		if p == nil {
			return nil
		}
		return wire.Ptr(*p)
	}
	b.FailureRate, b.SlowCallRate, b.CallsWindowMs, b.RatePerSec = cf(b.FailureRate), cf(b.SlowCallRate), cf(b.CallsWindowMs), cf(b.RatePerSec)
	if b.Latency != nil {
		l := *b.Latency
		b.Latency = &l
	}
	if t := b.Thresholds; t != nil {
		c := wire.Thresholds{FailureRate: cf(t.FailureRate), SlowCallRate: cf(t.SlowCallRate), SlowCallMs: cf(t.SlowCallMs), OpenMs: cf(t.OpenMs)}
		if t.MinimumCalls != nil {
			c.MinimumCalls = wire.Ptr(*t.MinimumCalls)
		}
		if t.ConsecutiveFails != nil {
			c.ConsecutiveFails = wire.Ptr(*t.ConsecutiveFails)
		}
		b.Thresholds = &c
	}
	return b
}

// decode unmarshals an agent's message and checks its wire version. It uses the JSON v2
// implementation, about twice as fast as encoding/json on snapshots.
func decode[T interface{ WireVersion() int }](data []byte, v *T) error {
	if err := jsonv2.Unmarshal(data, v); err != nil {
		return err
	}
	if got := (*v).WireVersion(); got != wire.Version {
		return fmt.Errorf("wire version %d, want %d", got, wire.Version)
	}
	return nil
}
