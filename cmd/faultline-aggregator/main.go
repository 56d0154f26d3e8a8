// Command faultline-aggregator finds faultline agents, keeps a stream open to each,
// merges what they send, and serves the dashboard, the API and one resumable event
// stream. Settings: flags, FAULTLINE_* environment variables or a YAML file (--config);
// see docs/aggregator.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/faultline-dev/faultline/aggregator"
	"github.com/faultline-dev/faultline/config"
	"github.com/faultline-dev/faultline/internal/version"
)

func main() {
	// Collecting at 50 % heap growth instead of Go's 100 % keeps about a fifth less
	// resident at 10,000 agents, with CPU within the noise of the fleet benchmark
	// (docs/performance.md); the environment's GOGC still wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	for _, arg := range os.Args[1:] {
		if arg == "--version" || arg == "-version" {
			fmt.Println("faultline-aggregator", version.Version)
			return
		}
	}
	cfg, err := config.LoadAggregator(os.Args[1:], os.Getenv)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "Usage: faultline-aggregator [flags]")
		config.AggregatorUsage(os.Stderr)
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "faultline-aggregator: invalid configuration:\n%v\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := aggregator.Run(ctx, cfg, aggregator.Options{}); err != nil {
		fmt.Fprintf(os.Stderr, "faultline-aggregator: %v\n", err)
		os.Exit(1)
	}
}
