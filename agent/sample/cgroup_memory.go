package sample

import (
	"context"
	"errors"
	"io/fs"

	"github.com/faultline-dev/faultline/internal/wire"
)

// cgroupMemoryCollector reads memory.current, memory.max and memory.stat of the cgroup.
type cgroupMemoryCollector struct {
	cg  *cgroupLocator
	lim limits
}

var _ collector = (*cgroupMemoryCollector)(nil)

func (c *cgroupMemoryCollector) name() string { return "cgroup-memory" }

func (c *cgroupMemoryCollector) collect(_ context.Context, cy *cycle) (string, error) {
	b, err := c.cg.read("memory.current")
	if errors.Is(err, fs.ErrNotExist) {
		return "", errors.New("no memory.current: the memory controller is not enabled for this cgroup v2 group")
	}
	if err != nil {
		return "", err
	}
	current, _, err := parseMemoryValue("memory.current", b)
	if err != nil {
		return "", err
	}
	limit := c.lim.memBytes
	if b, err := c.cg.read("memory.max"); err == nil {
		max, limited, err := parseMemoryValue("memory.max", b)
		if err != nil {
			return "", err
		}
		if limited {
			limit = &max
		}
	}
	var stat *cgroupMemoryStat
	note := ""
	if b, err := c.cg.read("memory.stat"); err == nil {
		s := parseMemoryStat(b)
		stat = &s
	} else {
		note = "working set is memory.current: " + err.Error()
	}
	cy.out.Memory = cgroupMemory(current, stat, limit)
	return note, nil
}

// cgroupMemory builds the memory section. The working set is what the kubelet and
// cAdvisor call one: usage less inactive file cache, which the kernel reclaims first.
func cgroupMemory(current uint64, stat *cgroupMemoryStat, limit *uint64) *wire.Memory {
	m := &wire.Memory{WorkingSetBytes: current, LimitBytes: limit}
	if stat != nil {
		if stat.HasInactiveFile {
			m.WorkingSetBytes = 0
			if stat.InactiveFile < current {
				m.WorkingSetBytes = current - stat.InactiveFile
			}
		}
		if stat.HasAnon {
			m.RSSBytes = wire.Ptr(stat.Anon)
		}
	}
	if limit != nil {
		m.PercentOfLimit = percentOf(float64(m.WorkingSetBytes), wire.Ptr(float64(*limit)))
	}
	return m
}
