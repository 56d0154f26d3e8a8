package sample

import (
	"context"
	"fmt"

	"github.com/shirou/gopsutil/v4/load"

	"github.com/faultline-dev/faultline/internal/wire"
)

// loadCollector reads the machine's load averages (/proc/loadavg) through gopsutil.
type loadCollector struct{}

var _ collector = loadCollector{}

func (loadCollector) name() string { return "load" }

func (loadCollector) collect(ctx context.Context, cy *cycle) (string, error) {
	avg, err := load.AvgWithContext(ctx)
	if err != nil {
		return "", fmt.Errorf("read load average: %w", err)
	}
	cy.out.Load = &wire.Load{Load1: avg.Load1, Load5: avg.Load5, Load15: avg.Load15}
	return "", nil
}
