package sample

import (
	"context"
	"fmt"

	"github.com/shirou/gopsutil/v4/mem"

	"github.com/faultline-dev/faultline/internal/wire"
)

// hostMemoryCollector reads the machine's memory (/proc/meminfo) through gopsutil.
type hostMemoryCollector struct{}

var _ collector = hostMemoryCollector{}

func (hostMemoryCollector) name() string { return "memory" }

func (hostMemoryCollector) collect(ctx context.Context, cy *cycle) (string, error) {
	vm, err := mem.VirtualMemoryWithContext(ctx)
	if err != nil {
		return "", fmt.Errorf("read memory: %w", err)
	}
	cy.out.Memory = hostMemory(vm.Total, vm.Available)
	return "", nil
}

// hostMemory builds the machine's memory section: the working set is what is not
// available (MemAvailable counts free memory and what the kernel can reclaim), and the
// limit is the physical memory.
func hostMemory(total, available uint64) *wire.Memory {
	used := uint64(0)
	if available < total {
		used = total - available
	}
	return &wire.Memory{
		WorkingSetBytes: used,
		LimitBytes:      wire.Ptr(total),
		TotalBytes:      wire.Ptr(total),
		PercentOfLimit:  percentOf(float64(used), wire.Ptr(float64(total))),
	}
}
