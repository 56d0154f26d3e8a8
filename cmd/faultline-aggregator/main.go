// Command faultline-aggregator finds faultline agents, keeps a stream open to each,
// merges what they send, and serves the dashboard, the API and one resumable event
// stream. Settings: flags, FAULTLINE_* environment variables or a YAML file (--config);
// see docs/aggregator.md.
package main

import (
	"context"
	"os"
	"runtime/debug"

	"github.com/faultline-dev/faultline/aggregator"
	"github.com/faultline-dev/faultline/config"
	"github.com/faultline-dev/faultline/internal/command"
)

func main() {
	// Collecting at 50 % heap growth instead of Go's 100 % keeps about a fifth less
	// resident at 10,000 agents, with CPU within the noise of the fleet benchmark
	// (docs/performance.md); the environment's GOGC still wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	os.Exit(command.Main("faultline-aggregator", config.LoadAggregator, config.AggregatorUsage, func(ctx context.Context, cfg config.Aggregator) error {
		return aggregator.Run(ctx, cfg, aggregator.Options{})
	}))
}
