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
	"syscall"

	"github.com/faultline-dev/faultline/agent"
	"github.com/faultline-dev/faultline/config"
	"github.com/faultline-dev/faultline/internal/version"
)

func main() { os.Exit(run()) }

func run() int {
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
