// Command faultline-agent is the faultline sidecar: it samples the pod it runs in,
// learns the application's circuit-breaker states and serves both to the aggregator.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"

	"github.com/faultline-dev/faultline/agent"
	"github.com/faultline-dev/faultline/config"
	"github.com/faultline-dev/faultline/internal/version"
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
	for _, arg := range os.Args[1:] {
		if arg == "--version" || arg == "-version" {
			fmt.Println("faultline-agent", version.Version)
			return 0
		}
	}
	cfg, err := config.LoadAgent(os.Args[1:], os.Getenv)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(os.Stdout, "Usage: faultline-agent [flags]\n\nEvery flag can also be set as FAULTLINE_<NAME> in the environment or as <name> in the --config file.\n\n")
		config.AgentUsage(os.Stdout)
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "faultline-agent: invalid configuration:\n%v\n", err)
		return 2
	}
	log := cfg.Logger("faultline-agent")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := agent.Run(ctx, cfg, log); err != nil {
		log.Error("agent failed", "error", err)
		return 1
	}
	return 0
}
