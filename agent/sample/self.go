package sample

import (
	"context"
	"fmt"

	"github.com/shirou/gopsutil/v4/process"

	"github.com/faultline-dev/faultline/internal/wire"
)

// selfCollector reads the agent's own CPU and memory, reported apart from what it
// watches so that its cost is visible.
type selfCollector struct {
	proc *process.Process
	prev float64 // CPU seconds at the previous sample
	read bool
}

var _ collector = (*selfCollector)(nil)

func (c *selfCollector) name() string { return "self" }

func (c *selfCollector) collect(ctx context.Context, cy *cycle) (string, error) {
	t, err := c.proc.TimesWithContext(ctx)
	if err != nil {
		return "", fmt.Errorf("read own CPU time: %w", err)
	}
	m, err := c.proc.MemoryInfoWithContext(ctx)
	if err != nil {
		return "", fmt.Errorf("read own memory: %w", err)
	}
	cpu := t.User + t.System
	prev, read := c.prev, c.read
	c.prev, c.read = cpu, true
	if !read || cy.dt <= 0 {
		return noteFirst, nil
	}
	cores, ok := rate(prev, cpu, cy.dt)
	if !ok {
		return "", fmt.Errorf("own CPU time went back from %v s to %v s", prev, cpu)
	}
	cy.out.Self = &wire.Self{CPUCores: cores, RSSBytes: m.RSS}
	return "", nil
}
