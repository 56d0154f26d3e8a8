package sample

import (
	"context"
	"errors"
	"fmt"

	"github.com/shirou/gopsutil/v4/cpu"

	"github.com/faultline-dev/faultline/internal/wire"
)

// hostCPUCollector reads the machine's CPU times (/proc/stat) through gopsutil.
type hostCPUCollector struct {
	cpus int // logical CPUs, counted on first use
	prev *cpu.TimesStat
}

var _ collector = (*hostCPUCollector)(nil)

func (c *hostCPUCollector) name() string { return "cpu" }

func (c *hostCPUCollector) collect(ctx context.Context, cy *cycle) (string, error) {
	if c.cpus == 0 {
		per, err := cpu.TimesWithContext(ctx, true)
		if err != nil {
			return "", fmt.Errorf("count CPUs: %w", err)
		}
		c.cpus = len(per)
	}
	all, err := cpu.TimesWithContext(ctx, false)
	if err != nil {
		return "", fmt.Errorf("read CPU times: %w", err)
	}
	if len(all) == 0 || c.cpus == 0 {
		return "", errors.New("read CPU times: no cpu line in /proc/stat")
	}
	cur := all[0]
	prev := c.prev
	c.prev = &cur
	if prev == nil || cy.dt <= 0 {
		return noteFirst, nil
	}
	cy.out.CPU = hostCPU(*prev, cur, cy.dt, c.cpus)
	return "", nil
}

// hostCPU turns two readings of the machine's CPU times dt seconds apart into the CPU
// section. Busy time is everything but idle and iowait; guest time is already part of
// user time in /proc/stat.
func hostCPU(prev, cur cpu.TimesStat, dt float64, cpus int) *wire.CPU {
	busy := func(t cpu.TimesStat) float64 { return t.User + t.Nice + t.System + t.Irq + t.Softirq + t.Steal }
	idle := func(t cpu.TimesStat) float64 { return t.Idle + t.Iowait }
	b, okB := rate(busy(prev), busy(cur), dt)
	i, okI := rate(idle(prev), idle(cur), dt)
	if !okB || !okI {
		return nil
	}
	limit := float64(cpus)
	out := &wire.CPU{Cores: b, LimitCores: &limit, PercentOfLimit: percentOf(b, &limit)}
	if b+i > 0 {
		out.Percent = wire.Ptr(b / (b + i) * 100)
	}
	return out
}
