package sample

import (
	"context"
	"errors"
	"io/fs"

	"github.com/faultline-dev/faultline/internal/wire"
)

// cgroupCPUCollector reads cpu.stat and cpu.max of the cgroup: CPU used, its limit and
// throttling.
type cgroupCPUCollector struct {
	cg   *cgroupLocator
	lim  limits
	prev *cgroupCPUStat
}

var _ collector = (*cgroupCPUCollector)(nil)

func (c *cgroupCPUCollector) name() string { return "cgroup-cpu" }

func (c *cgroupCPUCollector) collect(_ context.Context, cy *cycle) (string, error) {
	b, err := c.cg.read("cpu.stat")
	if err != nil {
		return "", err
	}
	cur, err := parseCPUStat(b)
	if err != nil {
		return "", err
	}
	lim := c.lim.cpuCores
	note := ""
	switch b, err := c.cg.read("cpu.max"); {
	case err == nil:
		cores, limited, err := parseCPUMax(b)
		if err != nil {
			return "", err
		}
		if limited {
			lim = &cores
		}
	case errors.Is(err, fs.ErrNotExist):
		note = "no cpu.max (cpu controller not enabled for this group)"
	default:
		return "", err
	}
	prev := c.prev
	c.prev = &cur
	if prev == nil || cy.dt <= 0 {
		return joinNotes(noteFirst, note), nil
	}
	cy.out.CPU = cgroupCPU(*prev, cur, cy.dt, lim)
	return note, nil
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
