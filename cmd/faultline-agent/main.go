// Command faultline-agent is the faultline sidecar: it samples the pod it runs in,
// learns the application's circuit-breaker states and serves both to the aggregator.
package main

import (
	"context"
	"os"
	"runtime"
	"runtime/debug"

	"github.com/faultline-dev/faultline/agent"
	"github.com/faultline-dev/faultline/config"
	"github.com/faultline-dev/faultline/internal/command"
)

func main() { os.Exit(run()) }

// sidecarRuntime sizes the Go runtime for a sidecar that does little work at a steady
// pace; the environment's GOGC and GOMAXPROCS still win. Measured by BenchmarkFootprint
// (docs/performance.md): collecting at 50 % heap growth instead of 100 % keeps about
// 1.5 MiB less resident; one P instead of one per core saves the idle-time GC workers,
// which cut CPU by about a quarter at 1 Hz; heap profiling is of no use without a
// profiling endpoint and its tables cost resident memory.
func sidecarRuntime() {
	runtime.MemProfileRate = 0
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
}

func run() int {
	sidecarRuntime()
	return command.Main("faultline-agent", config.LoadAgent, config.AgentUsage, func(ctx context.Context, cfg config.Agent) error {
		return agent.Run(ctx, cfg, cfg.Logger("faultline-agent"))
	})
}
