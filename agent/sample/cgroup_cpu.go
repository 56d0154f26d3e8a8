package sample

import (
	"context"
	"errors"
	"io/fs"

	"github.com/faultline-dev/faultline/internal/wire"
)

// cgroupCPUCollector reads the CPU used by the cgroup, its limit and throttling: in v2
// from cpu.stat and cpu.max, in v1 from cpuacct.usage, cpu.cfs_quota_us,
// cpu.cfs_period_us and cpu.stat.
type cgroupCPUCollector struct {
	cg   *cgroupLocator
	lim  limits
	prev *cgroupCPUStat
}

var _ collector = (*cgroupCPUCollector)(nil)

func (c *cgroupCPUCollector) name() string { return "cgroup-cpu" }

func (c *cgroupCPUCollector) collect(_ context.Context, cy *cycle) (string, error) {
	v1, err := c.cg.isV1()
	if err != nil {
		return "", err
	}
	read := readCPUV2
	if v1 {
		read = readCPUV1
	}
	cur, limit, note, err := read(c.cg)
	if err != nil {
		return "", err
	}
	lim := c.lim.cpuCores
	if limit != nil {
		lim = limit
	}
	prev := c.prev
	c.prev = &cur
	if prev == nil || cy.dt <= 0 {
		return joinNotes(noteFirst, note), nil
	}
	cy.out.CPU = cgroupCPU(*prev, cur, cy.dt, lim)
	return note, nil
}

// readCPUV2 reads cpu.stat and cpu.max; a nil limit means none.
func readCPUV2(cg *cgroupLocator) (cgroupCPUStat, *float64, string, error) {
	b, err := cg.read("cpu", "cpu.stat")
	if err != nil {
		return cgroupCPUStat{}, nil, "", err
	}
	stat, err := parseCPUStat(b)
	if err != nil {
		return stat, nil, "", err
	}
	switch b, err := cg.read("cpu", "cpu.max"); {
	case err == nil:
		cores, limited, err := parseCPUMax(b)
		if err != nil || !limited {
			return stat, nil, "", err
		}
		return stat, &cores, "", nil
	case errors.Is(err, fs.ErrNotExist):
		return stat, nil, "no cpu.max (cpu controller not enabled for this group)", nil
	default:
		return stat, nil, "", err
	}
}

// readCPUV1 reads cpuacct.usage (nanoseconds) of the cpuacct controller, and the
// limit and throttling of the cpu controller; a nil limit means none.
func readCPUV1(cg *cgroupLocator) (cgroupCPUStat, *float64, string, error) {
	var err error
	read := func(controller, file string) []byte {
		if err != nil {
			return nil
		}
		var b []byte
		b, err = cg.read(controller, file)
		return b
	}
	usage, cpuStat := read("cpuacct", "cpuacct.usage"), read("cpu", "cpu.stat")
	quota, period := read("cpu", "cpu.cfs_quota_us"), read("cpu", "cpu.cfs_period_us")
	if err != nil {
		return cgroupCPUStat{}, nil, "", err
	}
	ns, err := parseCount("cpuacct.usage", usage)
	if err != nil {
		return cgroupCPUStat{}, nil, "", err
	}
	stat, _ := cpuStatFields(cpuStat)
	stat.UsageUsec = ns / 1000
	cores, limited, err := parseCFSQuota(quota, period)
	if err != nil || !limited {
		return stat, nil, "", err
	}
	return stat, &cores, "", nil
}

// cgroupCPU turns two cpu.stat readings dt seconds apart into the CPU section.
func cgroupCPU(prev, cur cgroupCPUStat, dt float64, limit *float64) *wire.CPU {
	cores, ok := rate(float64(prev.UsageUsec), float64(cur.UsageUsec), dt)
	if !ok {
		return nil
	}
	cores /= 1e6
	out := &wire.CPU{Cores: cores, LimitCores: limit, PercentOfLimit: percentOf(cores, limit)}
	if cur.Throttling && prev.Throttling && cur.NrPeriods >= prev.NrPeriods &&
		cur.NrThrottled >= prev.NrThrottled && cur.ThrottledUsec >= prev.ThrottledUsec {
		t := &wire.Throttling{
			Periods:          cur.NrPeriods - prev.NrPeriods,
			ThrottledPeriods: cur.NrThrottled - prev.NrThrottled,
			ThrottledMs:      float64(cur.ThrottledUsec-prev.ThrottledUsec) / 1000,
		}
		if t.Periods > 0 {
			t.Percent = float64(t.ThrottledPeriods) / float64(t.Periods) * 100
		}
		out.Throttling = t
	}
	return out
}
