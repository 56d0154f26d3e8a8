package sample

import (
	"context"
	"fmt"

	"github.com/shirou/gopsutil/v4/net"

	"github.com/faultline-dev/faultline/internal/wire"
)

// networkCollector reads interface counters (/proc/net/dev of the network namespace:
// the pod's in a pod) through gopsutil. Loopback traffic is left out: it never leaves
// the pod or host.
type networkCollector struct {
	prev map[string]ifaceBytes
}

type ifaceBytes struct{ rx, tx uint64 }

var _ collector = (*networkCollector)(nil)

func (c *networkCollector) name() string { return "network" }

func (c *networkCollector) collect(ctx context.Context, cy *cycle) (string, error) {
	stats, err := net.IOCountersWithContext(ctx, true)
	if err != nil {
		return "", fmt.Errorf("read interface counters: %w", err)
	}
	cur := make(map[string]ifaceBytes, len(stats))
	for _, s := range stats {
		if s.Name != "lo" {
			cur[s.Name] = ifaceBytes{rx: s.BytesRecv, tx: s.BytesSent}
		}
	}
	prev := c.prev
	c.prev = cur
	if prev == nil || cy.dt <= 0 {
		return noteFirst, nil
	}
	cy.out.Network = networkRates(prev, cur, cy.dt)
	return "", nil
}

// networkRates sums the per-second traffic of the interfaces present in both readings;
// an interface whose counters went back (recreated) is left out of this interval.
func networkRates(prev, cur map[string]ifaceBytes, dt float64) *wire.Network {
	n := &wire.Network{}
	for name, c := range cur {
		p, ok := prev[name]
		if !ok || c.rx < p.rx || c.tx < p.tx {
			continue
		}
		n.RxBytesPerSec += float64(c.rx-p.rx) / dt
		n.TxBytesPerSec += float64(c.tx-p.tx) / dt
	}
	return n
}
