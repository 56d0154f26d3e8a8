package sample

import (
	"context"
	"errors"
	"io/fs"

	"github.com/faultline-dev/faultline/internal/wire"
)

// cgroupMemoryCollector reads the memory usage, limit and memory.stat of the cgroup:
// memory.current and memory.max in v2, memory.usage_in_bytes and memory.limit_in_bytes
// in v1.
type cgroupMemoryCollector struct {
	cg  *cgroupLocator
	lim limits
}

var _ collector = (*cgroupMemoryCollector)(nil)

func (c *cgroupMemoryCollector) name() string { return "cgroup-memory" }

// memoryFiles are the memory files of one cgroup version.
type memoryFiles struct {
	usage, limit string
	parseStat    func([]byte) cgroupMemoryStat
}

var (
	memoryV2 = memoryFiles{"memory.current", "memory.max", parseMemoryStat}
	memoryV1 = memoryFiles{"memory.usage_in_bytes", "memory.limit_in_bytes", parseMemoryStatV1}
)

func (c *cgroupMemoryCollector) collect(_ context.Context, cy *cycle) (string, error) {
	v1, err := c.cg.isV1()
	if err != nil {
		return "", err
	}
	files := memoryV2
	if v1 {
		files = memoryV1
	}
	b, err := c.cg.read("memory", files.usage)
	if !v1 && errors.Is(err, fs.ErrNotExist) {
		return "", errors.New("no memory.current: the memory controller is not enabled for this cgroup v2 group")
	}
	if err != nil {
		return "", err
	}
	current, err := parseCount(files.usage, b)
	if err != nil {
		return "", err
	}
	limit := c.lim.memBytes
	if b, err := c.cg.read("memory", files.limit); err == nil {
		max, limited, err := parseMemoryValue(files.limit, b)
		if err != nil {
			return "", err
		}
		if limited {
			limit = &max
		}
	}
	var stat *cgroupMemoryStat
	note := ""
	if b, err := c.cg.read("memory", "memory.stat"); err == nil {
		s := files.parseStat(b)
		stat = &s
	} else {
		note = "working set is " + files.usage + ": " + err.Error()
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
