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
	"syscall"

	"github.com/faultline-dev/faultline/aggregator"
	"github.com/faultline-dev/faultline/config"
)

func main() {
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
